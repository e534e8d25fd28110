"""How scoring requests are laid out in sequences: one context and the token tree of its continuations.

A request is a context and several continuations of it. It is run as one
sequence: the context, then the prefix tree (trie) of the continuations'
tokens, each token but a continuation's last one, which is only predicted.
Continuations that start with the same tokens share those tokens' positions,
so every distinct (context, continuation prefix) is computed once. An
ancestor mask lets each token see exactly what it would see in the plain
sequence ``context + continuation``: the context and the tokens before it on
its own path, at the same position ids.

Each distinct predicting position (the context's last token, or a tree node)
is projected to the vocabulary once, however many continuations it predicts a
token of.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PackedRequest:
    """A request laid out as one sequence (see the module docstring).

    ``parents[i]``: the index of the token before token ``i`` on its path (-1 for the first token).
    ``context``: the number of context tokens (the first ones).
    ``predictors[o]``: the indices whose hidden states predict continuation ``o``'s tokens, in order.
    """

    ids: tuple[int, ...]
    positions: tuple[int, ...]
    parents: tuple[int, ...]
    context: int
    predictors: tuple[tuple[int, ...], ...]

    def __len__(self) -> int:
        return len(self.ids)


def pack(context: list[int], continuations: list[list[int]]) -> PackedRequest:
    """The context followed by the prefix tree of the continuations (each without its last token)."""
    if not context:
        raise ValueError("a packed request needs at least one context token")
    ids, positions, parents = list(context), list(range(len(context))), list(range(-1, len(context) - 1))
    nodes: dict[tuple[int, int], int] = {}  # (parent index, token) -> index
    predictors = []
    for tokens in continuations:
        at, path = len(context) - 1, [len(context) - 1]
        for token in tokens[:-1]:
            if (at, token) not in nodes:
                nodes[at, token] = len(ids)
                ids.append(token)
                positions.append(positions[at] + 1)
                parents.append(at)
            at = nodes[at, token]
            path.append(at)
        predictors.append(tuple(path))
    return PackedRequest(tuple(ids), tuple(positions), tuple(parents), len(context), tuple(predictors))


def ancestors(request: PackedRequest) -> torch.Tensor:
    """``(n, n)`` bool: entry ``[q, k]`` is True when token ``q`` attends to token ``k`` (itself included)."""
    n = len(request)
    allowed = torch.zeros(n, n, dtype=torch.bool)
    allowed[: request.context, : request.context] = torch.ones(request.context, request.context).tril().bool()
    for index in range(request.context, n):  # tree nodes come after their parents
        allowed[index] = allowed[request.parents[index]]
        allowed[index, index] = True
    return allowed


def batch_mask(requests: list[PackedRequest], dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask ``(rows, 1, width, width)`` of packed requests padded to one width.

    A padding query sees only itself (no empty softmax).
    """
    width = max(len(r) for r in requests)
    allowed = torch.zeros(len(requests), width, width, dtype=torch.bool)
    for row, request in enumerate(requests):
        own = len(request)
        allowed[row, :own, :own] = ancestors(request)
        allowed[row, own:, own:] = torch.eye(width - own, dtype=torch.bool)
    blocked = torch.zeros(allowed.shape, dtype=dtype)
    return blocked.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]
