"""Turning items into scorer requests: the difficulty transforms and the prompt formats.

Pure functions of items. The transforms make a level harder or easier without
changing what is asked: fewer answer options (gold kept), a passage cut to a
window around the answer (answer kept), no passage (closed book), or k
demonstrations in front. The renderers produce ``(context, continuations)``
pairs for :func:`junkdna_core.scoring.engine.score_continuations`: one per item
whose options continue a shared prompt, one per option for a fill-in-the-blank
item (:func:`render_partial`), whose options share the text after the blank.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from junkdna_core.config.errors import ConfigError
from junkdna_core.data.items import BLANK, GenerativeItem, MultipleChoiceItem, stable_order

LETTERS = "ABCDEFGHIJ"
# Tasks whose "question" is the start of a sentence the options complete, scored without a Q/A frame
# (as lm-evaluation-harness does for HellaSwag).
SENTENCE_COMPLETION_TASKS = frozenset({"hellaswag"})
# Tasks whose "question" is a sentence with one BLANK that each option fills (scored by render_partial).
BLANK_TASKS = frozenset({"winogrande"})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def kept_options(item: MultipleChoiceItem, k: int) -> list[int]:
    """Indices of the ``k`` options kept: the gold one and k-1 distractors fixed by the item id, in order.

    Raises ConfigError if the item has fewer than ``k`` options or ``k < 2``.
    """
    if k < 2 or k > len(item.choices):
        raise ConfigError(f"{item.id}: cannot keep {k} of its {len(item.choices)} options (need 2 <= k <= options)")
    distractors = [i for i in stable_order(item.id, len(item.choices)) if i != item.gold][: k - 1]
    return sorted([item.gold, *distractors])


def keep_options(item: MultipleChoiceItem, k: int) -> MultipleChoiceItem:
    """The item with only the options :func:`kept_options` keeps (original order, gold re-indexed)."""
    kept = kept_options(item, k)
    return dataclasses.replace(item, choices=tuple(item.choices[i] for i in kept), gold=kept.index(item.gold))


def answer_span(item: GenerativeItem) -> tuple[int, int] | None:
    """(start, end) character offsets of the first gold answer found in the passage, or None."""
    if not item.passage:
        return None
    for answer, start in zip(item.answers, item.answer_starts or (-1,) * len(item.answers)):
        if start >= 0 and item.passage[start : start + len(answer)] == answer:
            return start, start + len(answer)
    for answer in item.answers:
        start = item.passage.find(answer)
        if start >= 0:
            return start, start + len(answer)
    return None


def cut_passage(item: GenerativeItem, fraction: float) -> GenerativeItem:
    """The item with its passage cut to whole sentences around the answer, >= ``fraction`` of its words.

    Sentences are added alternately after and before the one(s) holding the
    answer until the window has at least ``fraction`` of the passage's words.
    The answer is always inside. Raises ConfigError when the answer is not in
    the passage or ``fraction`` is not in (0, 1].
    """
    if not 0 < fraction <= 1:
        raise ConfigError(f"context fraction must be in (0, 1]; got {fraction!r}")
    span = answer_span(item)
    if span is None:
        raise ConfigError(f"{item.id}: no gold answer occurs in the passage; it cannot be cut around the answer")
    passage = item.passage or ""
    bounds, start = [], 0
    for match in _SENTENCE_END.finditer(passage):
        bounds.append((start, match.start()))
        start = match.end()
    bounds.append((start, len(passage)))
    first = next(i for i, (s, e) in enumerate(bounds) if e > span[0])
    last = next(i for i, (s, e) in enumerate(bounds) if e >= span[1])
    total = len(passage.split())

    def words(lo: int, hi: int) -> int:
        return len(passage[bounds[lo][0] : bounds[hi][1]].split())

    lo, hi, grow_right = first, last, True
    while words(lo, hi) < fraction * total:
        if (grow_right and hi + 1 < len(bounds)) or lo == 0:
            hi += 1
        else:
            lo -= 1
        grow_right = not grow_right
    cut = passage[bounds[lo][0] : bounds[hi][1]]
    offset = bounds[lo][0]
    starts = tuple(s - offset if s >= bounds[lo][0] and s < bounds[hi][1] else -1 for s in item.answer_starts)
    return dataclasses.replace(item, passage=cut, answer_starts=starts)


def close_book(item: GenerativeItem) -> GenerativeItem:
    """The item without its passage."""
    return dataclasses.replace(item, passage=None, answer_starts=())


def choose_demos(pool: Sequence[MultipleChoiceItem], k: int, seed: int) -> list[MultipleChoiceItem]:
    """``k`` demonstrations for every item of a level: the first ``k`` of one seeded order of ``pool`` (the same
    for every item and model, as MMLU's k-shot prompts all take its dev split's first k), so fewer shots are a
    prefix of more and all k-shot prompts of a level start with the same text."""
    if k > len(pool):
        raise ConfigError(f"{k} demonstrations asked for but the pool holds {len(pool)}")
    order = stable_order(f"demonstrations:{seed}", len(pool))
    return [pool[i] for i in order[:k]]


def _mc_stem(task: str, item: MultipleChoiceItem) -> str:
    if task in SENTENCE_COMPLETION_TASKS:
        return item.question
    text = f"Question: {item.question}\nAnswer:"
    return f"{item.context}\n{text}" if item.context else text


def render_cloze(
    task: str, item: MultipleChoiceItem, demos: Sequence[MultipleChoiceItem] = ()
) -> tuple[str, list[str]]:
    """Cloze request: each option is scored as the continuation of the question."""
    if task in BLANK_TASKS:
        raise ConfigError(f"{task} items are sentences with a blank: score them with format 'partial' (or 'letter'), "
                          "not 'cloze'")
    shots = "".join(f"{_mc_stem(task, d)} {d.choices[d.gold]}\n\n" for d in demos)
    return shots + _mc_stem(task, item), [f" {c}" for c in item.choices]


def split_blank(item: MultipleChoiceItem) -> tuple[str, str]:
    """The text of a fill-in-the-blank item before and after its one blank; ConfigError unless there is one."""
    if item.question.count(BLANK) != 1:
        raise ConfigError(f"{item.id}: a fill-in-the-blank item needs exactly one {BLANK!r} in its question; "
                          f"got {item.question!r}")
    before, after = item.question.split(BLANK)
    return before, after


def _filled(item: MultipleChoiceItem, option: int) -> tuple[str, str]:
    """(the text up to the blank with ``option`` in it, the rest of the text after a single space)."""
    before, after = split_blank(item)
    if not after.strip():
        raise ConfigError(f"{item.id}: nothing follows the blank, so partial scoring has no shared text to score")
    return before + item.choices[option], f" {after.strip()}"


def render_partial(
    task: str, item: MultipleChoiceItem, demos: Sequence[MultipleChoiceItem] = ()
) -> list[tuple[str, list[str]]]:
    """Partial-evaluation requests of a fill-in-the-blank item, one per option (lm-evaluation-harness's WinoGrande).

    Request ``i``'s context is the text up to the blank with option ``i`` filled
    in; its one continuation is the rest of the text, the same for every option.
    The option whose context gives that shared suffix the higher likelihood is
    chosen (Trinh & Le 2018). Demonstrations are whole sentences, their blank
    filled with the gold option, each followed by a blank line.
    """
    if task not in BLANK_TASKS:
        raise ConfigError(f"format 'partial' scores fill-in-the-blank tasks ({', '.join(sorted(BLANK_TASKS))}); "
                          f"got task {task!r}")
    shots = "".join("".join(_filled(d, d.gold)) + "\n\n" for d in demos)
    return [(shots + context, [suffix]) for context, suffix in (_filled(item, i) for i in range(len(item.choices)))]


def _lettered(item: MultipleChoiceItem) -> str:
    options = "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(item.choices))
    head = f"{item.context}\n" if item.context else ""
    return f"{head}Question: {item.question}{options}\nAnswer:"


def render_letter(
    task: str, item: MultipleChoiceItem, demos: Sequence[MultipleChoiceItem] = ()
) -> tuple[str, list[str]]:
    """Letter request (the paper's MMLU format): options listed as A., B., ...; the letter is scored."""
    if len(item.choices) > len(LETTERS):
        raise ConfigError(f"{item.id}: {len(item.choices)} options exceed the {len(LETTERS)} answer letters")
    shots = "".join(f"{_lettered(d)} {LETTERS[d.gold]}\n\n" for d in demos)
    return shots + _lettered(item), [f" {LETTERS[i]}" for i in range(len(item.choices))]


def qa_prompt(item: GenerativeItem) -> str:
    """The prompt of a generative item: its passage (if any), the question, and ``Answer:``."""
    head = f"{item.passage}\n\n" if item.passage else ""
    return f"{head}Question: {item.question}\nAnswer:"


def render_gold(item: GenerativeItem) -> tuple[str, list[str]]:
    """Gold-answer request: the first gold answer scored as the continuation of the prompt."""
    return qa_prompt(item), [f" {item.answers[0]}"]
