"""Evaluation items: typed, fingerprinted, and sampled deterministically.

An :class:`ItemSet` is the items of one task split with where they came from
and a content fingerprint; equal fingerprints mean equal evaluation data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from junkdna_core.config.checks import check_count, check_seed
from junkdna_core.config.errors import ConfigError, CorruptResourceError

BLANK = "_"  # the gap a fill-in-the-blank item's choices fill (WinoGrande's own marker)


@dataclass(frozen=True)
class MultipleChoiceItem:
    """A question with answer options; ``gold`` indexes the correct one.

    ``context`` is supporting text shown before the question (a BoolQ or SciQ
    passage), empty when there is none. ``subject`` is the MMLU subject.
    A fill-in-the-blank task (WinoGrande) keeps its sentence whole: ``question``
    holds it with one :data:`BLANK` and each choice is a word that fills it.
    """

    id: str
    question: str
    choices: tuple[str, ...]
    gold: int
    context: str = ""
    subject: str = ""


@dataclass(frozen=True)
class GenerativeItem:
    """A question answered by free text; any of ``answers`` counts as correct.

    ``passage`` is the reading-comprehension text (None when closed-book);
    ``answer_starts[i]`` is the character offset of ``answers[i]`` in the
    passage, -1 where it does not occur verbatim (empty when there is no passage).
    """

    id: str
    question: str
    answers: tuple[str, ...]
    passage: str | None = None
    answer_starts: tuple[int, ...] = ()


@dataclass(frozen=True)
class ClassificationItem:
    """A text (or text pair) with an integer label."""

    id: str
    text: str
    label: int
    text_pair: str | None = None


Item = MultipleChoiceItem | GenerativeItem | ClassificationItem
TaskKind = Literal["multiple_choice", "generative", "classification"]



@dataclass(frozen=True)
class ItemSet:
    """The items of one task split, with where they came from and a content fingerprint.

    ``fingerprint`` is the sha256 of (task, split, source, every item's type and
    fields, in order): equal fingerprints mean equal evaluation data.
    """

    task: str
    split: str
    source: str
    items: tuple[Item, ...]
    fingerprint: str

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    @property
    def ids(self) -> tuple[str, ...]:
        """The item ids, in order."""
        return tuple(item.id for item in self.items)

    def to_json(self) -> dict[str, Any]:
        """The set as JSON-ready data (items tagged with their type), read back by :meth:`from_json`."""
        return {"task": self.task, "split": self.split, "source": self.source, "fingerprint": self.fingerprint,
                "items": [[type(item).__name__, dataclasses.asdict(item)] for item in self.items]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemSet:
        """The set :meth:`to_json` wrote; CorruptResourceError if its items do not match its fingerprint."""
        items = tuple(_ITEM_TYPES[kind](**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
                      for kind, fields in data["items"])
        fingerprint = items_fingerprint(data["task"], data["split"], data["source"], items)
        if fingerprint != data["fingerprint"]:
            raise CorruptResourceError(f"{data['task']}/{data['split']}: stored items do not match their fingerprint; "
                                       "the stored copy is damaged (`junkdna cache clear --kind items` removes it)")
        return cls(data["task"], data["split"], data["source"], items, fingerprint)


_ITEM_TYPES: Mapping[str, type] = MappingProxyType(
    {t.__name__: t for t in (MultipleChoiceItem, GenerativeItem, ClassificationItem)}
)




def stable_order(key: str, size: int) -> list[int]:
    """A permutation of ``range(size)`` fixed by ``key``: the same on every machine and in every run."""
    return sorted(range(size), key=lambda i: hashlib.sha256(f"{key}#{i}".encode()).hexdigest())


def sample_indices(total: int, limit: int | None, seed: int, what: str, name: str = "limit") -> list[int]:
    """Sorted indices of a deterministic sample of ``limit`` of ``total`` (all if limit is None)."""
    if limit is None:
        return list(range(total))
    if limit > total:
        raise ConfigError(f"{name}={limit} exceeds the {total} items of {what}; use {name} <= {total}")
    chosen = np.random.default_rng(seed).choice(total, size=limit, replace=False)
    return sorted(int(i) for i in chosen)


def fingerprint(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def items_fingerprint(task: str, split: str, source: str, items: tuple[Item, ...]) -> str:
    return fingerprint(
        {
            "task": task,
            "split": split,
            "source": source,
            "items": [[type(item).__name__, dataclasses.asdict(item)] for item in items],
        }
    )



def sample_items(
    items: ItemSet, limit: int, seed: int = 0, *, keep: Callable[[Item], bool] | None = None
) -> ItemSet:
    """A deterministic sample of ``limit`` items of ``items`` that pass ``keep``, in their original order.

    When fewer than ``limit`` items pass, all of them are returned (the item
    count is part of the fingerprint and of every record). The sample is drawn
    like :func:`load_task`'s, so the same arguments always give the same items.
    """
    check_count("limit", limit, allow_none=False)
    check_seed(seed)
    eligible = [item for item in items.items if keep is None or keep(item)]
    chosen = sample_indices(len(eligible), min(limit, len(eligible)), seed, f"{items.task}/{items.split}")
    picked = tuple(eligible[i] for i in chosen)
    return ItemSet(items.task, items.split, items.source, picked,
                   items_fingerprint(items.task, items.split, items.source, picked))

