"""How scoring requests are laid out in sequences: the token tree of contexts and their continuations.

A request is a context and several continuations of it. One or more requests
run as one sequence: the prefix tree (trie) of their contexts, each context
followed by the trie of its continuations' tokens, each token but a
continuation's last one, which is only predicted. Sequences that start with
the same tokens share those tokens' positions, so every distinct token prefix
is computed once: the options of a question after its prompt, and the leading
demonstrations that the k-shot prompts of one item have in common. An ancestor
mask lets each token see exactly what it would see in its plain sequence
``context + continuation``: the tokens before it on its own path, at the same
position ids.

Each distinct predicting position (a context's last token, or a tree node) is
projected to the vocabulary once, however many continuations it predicts a
token of.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PackedRequest:
    """Requests laid out as one sequence (see the module docstring).

    ``parents[i]``: the index of the token before token ``i`` on its path (-1 for the first token).
    ``chain``: the number of leading tokens that form one plain causal run (each the parent of the next).
    ``predictors[j]``: for the ``j``-th continuation (requests in order, each request's continuations in
    order), the indices whose hidden states predict its tokens, in order.
    """

    ids: tuple[int, ...]
    positions: tuple[int, ...]
    parents: tuple[int, ...]
    chain: int
    predictors: tuple[tuple[int, ...], ...]

    def __len__(self) -> int:
        return len(self.ids)


def pack(requests: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]]) -> PackedRequest:
    """The trie of ``requests`` (``(context, continuations)`` token ids): contexts from one root, each
    followed by its continuations (each without its last token)."""
    ids: list[int] = []
    positions: list[int] = []
    parents: list[int] = []
    nodes: dict[tuple[int, int], int] = {}  # (parent index, token) -> index

    def step(at: int, token: int) -> int:
        if (at, token) not in nodes:
            nodes[at, token] = len(ids)
            ids.append(token)
            positions.append(positions[at] + 1 if at >= 0 else 0)
            parents.append(at)
        return nodes[at, token]

    predictors = []
    for context, continuations in requests:
        if not context:
            raise ValueError("a packed request needs at least one context token")
        end = -1
        for token in context:
            end = step(end, token)
        for tokens in continuations:
            at, path = end, [end]
            for token in tokens[:-1]:
                at = step(at, token)
                path.append(at)
            predictors.append(tuple(path))
    chain = next((i for i, parent in enumerate(parents) if parent != i - 1), len(parents))
    return PackedRequest(tuple(ids), tuple(positions), tuple(parents), chain, tuple(predictors))


def ancestors(request: PackedRequest) -> torch.Tensor:
    """``(n, n)`` bool: entry ``[q, k]`` is True when token ``q`` attends to token ``k`` (itself included)."""
    n, chain = len(request), request.chain
    allowed = torch.zeros(n, n, dtype=torch.bool)
    allowed[:chain, :chain] = torch.ones(chain, chain).tril().bool()
    for index in range(chain, n):  # tree nodes come after their parents
        parent = request.parents[index]
        if parent >= 0:
            allowed[index] = allowed[parent]
        allowed[index, index] = True
    return allowed


def batch_mask(requests: list[PackedRequest], dtype: torch.dtype, *, prefix: int = 0) -> torch.Tensor:
    """Additive attention mask ``(rows, 1, width, prefix + width)`` of packed requests padded to one width,
    each continuing ``prefix`` cached tokens that every query sees.

    A padding query sees only itself and the prefix (no empty softmax).
    """
    width = max(len(r) for r in requests)
    allowed = torch.zeros(len(requests), width, prefix + width, dtype=torch.bool)
    allowed[:, :, :prefix] = True
    for row, request in enumerate(requests):
        own = len(request)
        allowed[row, :own, prefix : prefix + own] = ancestors(request)
        allowed[row, own:, prefix + own :] = torch.eye(width - own, dtype=torch.bool)
    blocked = torch.zeros(allowed.shape, dtype=dtype)
    return blocked.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]
