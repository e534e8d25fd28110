"""Fine-tuning in the four transfer modes: mask invariants after real AdamW steps, seeds, interpolation."""

from __future__ import annotations

import pytest
import torch

from junkdna_core import stats
from junkdna_core.compress.registry import get_method
from junkdna_core.config.budgets import FinetuneBudget
from junkdna_core.config.errors import ConfigError
from junkdna_core.data.items import ClassificationItem, MultipleChoiceItem
from junkdna_core.data.settings import get_setting
from junkdna_core.models.loading import load_model
from junkdna_core.storage.cache import ArtifactCache
from junkdna_core.study import finetune as finetuning
from junkdna_core.study import transfer
from junkdna_core.study.finetune import (
    Example,
    FinetuneConfig,
    build_classifier,
    evaluate,
    finetune,
    head_size,
    interpolate,
    to_example,
    transfer_masks,
)

CONFIG = FinetuneConfig(epochs=2, batch_size=4, learning_rate=5e-3, weight_decay=0.1, max_length=24, min_steps=6)
WORDS = ["good", "great", "fine", "bad", "awful", "poor", "nice", "sad"]
TRAIN = [Example(f"t{i}", ((f"it was {WORDS[i % 8]} indeed", None),), int(i % 8 < 3 or i % 8 == 6)) for i in range(16)]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return load_model("random:tiny-bert", cache=ArtifactCache(tmp_path_factory.mktemp("cache")))


def _masked(encoder, seed=0):
    classifier = build_classifier(encoder, 2, seed=seed)
    return classifier, transfer_masks(classifier, get_method("magnitude").at_level(0.5))


def _weights(model, masks):
    modules = dict(model.named_modules())
    return {name: modules[name].weight.detach().clone() for name in masks}


def test_masks_are_computed_without_touching_the_classifier(encoder):
    classifier = build_classifier(encoder, 2, seed=0)
    before = {k: v.clone() for k, v in classifier.state_dict().items()}
    masks = transfer_masks(classifier, get_method("magnitude").at_level(0.5))
    assert masks and all(m.dtype == torch.bool and 0.45 < (~m).float().mean() < 0.55 for m in masks.values())
    assert all(torch.equal(before[k], v) for k, v in classifier.state_dict().items())


def test_sparse_transfer_holds_zeros_through_adamw_with_weight_decay(encoder):
    classifier, masks = _masked(encoder)
    before = _weights(classifier, masks)
    finetune(classifier, encoder.tokenizer, TRAIN, CONFIG, mode="sparse", masks=masks, seed=0)
    after = _weights(classifier, masks)
    for name, mask in masks.items():
        assert torch.all(after[name][~mask] == 0)
        assert not torch.equal(after[name][mask], before[name][mask])  # the kept weights did train
    assert not any("parametrizations" in k for k in classifier.state_dict())  # masks squashed into the weights


def test_dense_frozen_keeps_the_small_weights_exactly(encoder):
    classifier, masks = _masked(encoder)
    before = _weights(classifier, masks)
    finetune(classifier, encoder.tokenizer, TRAIN, CONFIG, mode="dense-frozen", masks=masks, seed=0)
    after = _weights(classifier, masks)
    for name, mask in masks.items():
        assert torch.equal(after[name][~mask], before[name][~mask])
        assert not torch.equal(after[name][mask], before[name][mask])


def test_sparse_to_dense_starts_at_zero_and_regrows(encoder):
    classifier, masks = _masked(encoder)
    finetune(classifier, encoder.tokenizer, TRAIN, CONFIG, mode="sparse-to-dense", masks=masks, seed=0)
    after = _weights(classifier, masks)
    regrown = sum(int((after[n][~m] != 0).sum()) for n, m in masks.items())
    pruned = sum(int((~m).sum()) for m in masks.values())
    assert regrown > 0.5 * pruned


def test_same_seed_same_run_and_another_seed_differs(encoder):
    runs = []
    for seed in (0, 0, 1):
        classifier = build_classifier(encoder, 2, seed=seed)
        losses = finetune(classifier, encoder.tokenizer, TRAIN, CONFIG, mode="dense", seed=seed)
        runs.append((losses, classifier.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(v, runs[1][1][k]) for k, v in runs[0][1].items())
    assert runs[0][0] != runs[2][0]


def test_masked_modes_need_masks_and_pruning_methods(encoder):
    classifier = build_classifier(encoder, 2, seed=0)
    with pytest.raises(ConfigError, match="needs the pruning masks"):
        finetune(classifier, encoder.tokenizer, TRAIN, CONFIG, mode="sparse", seed=0)
    with pytest.raises(ConfigError, match="transfer mode must be one of"):
        finetune(classifier, encoder.tokenizer, TRAIN, CONFIG, mode="frozen", seed=0)
    with pytest.raises(ConfigError, match="calibration"):
        transfer_masks(classifier, get_method("sparsegpt").at_level(0.5))


def test_multiple_choice_items_become_one_score_per_option(encoder):
    item = MultipleChoiceItem("q1", "Which is hot?", ("ice", "fire", "snow"), 1, context="Think.")
    example = to_example(item)
    assert example.inputs == (("Think.\nWhich is hot?", "ice"), ("Think.\nWhich is hot?", "fire"),
                              ("Think.\nWhich is hot?", "snow"))
    assert head_size([example]) == 1
    assert head_size([to_example(ClassificationItem("c", "x", 2))]) == 3
    classifier = build_classifier(encoder, 1, seed=0)
    scored = evaluate(classifier, encoder.tokenizer, [example, example])
    assert len(scored.correct) == 2 and all(0 <= v <= 1 for v in scored.correct)


def test_evaluation_batches_examples_of_similar_length_and_keeps_their_order(encoder, monkeypatch):
    examples = [Example(f"e{i}", (("ok" if i % 2 else " ".join(WORDS * 2), None),), i % 2) for i in range(8)]
    classifier = build_classifier(encoder, 2, seed=0)
    alone = [evaluate(classifier, encoder.tokenizer, [e], batch_size=1) for e in examples]  # no padding at all
    batches = []
    real = finetuning._logits
    monkeypatch.setattr(finetuning, "_logits", lambda model, tokenizer, batch, *args, **kwargs:
                        batches.append({e.id for e in batch}) or real(model, tokenizer, batch, *args, **kwargs))
    scored = evaluate(classifier, encoder.tokenizer, examples, batch_size=4)
    assert batches == [{"e1", "e3", "e5", "e7"}, {"e0", "e2", "e4", "e6"}]
    assert scored.item_ids == tuple(e.id for e in examples)
    assert scored.losses == pytest.approx([a.losses[0] for a in alone], abs=1e-5)
    assert scored.correct == tuple(a.correct[0] for a in alone)


def test_interpolating_a_model_with_itself_has_no_barrier(encoder):
    classifier = build_classifier(encoder, 2, seed=0)
    state = {k: v.clone() for k, v in classifier.state_dict().items()}
    test = TRAIN[:8]
    losses = []
    for alpha in (0.0, 0.5, 1.0):
        classifier.load_state_dict(interpolate(state, state, alpha))
        losses.append(evaluate(classifier, encoder.tokenizer, test).loss)
    assert stats.interpolation_barrier([0.0, 0.5, 1.0], losses) == 0.0
    assert losses[0] == losses[1] == losses[2]


def test_interpolate_end_points_and_bad_alpha():
    first, second = {"w": torch.zeros(3), "n": torch.tensor([1])}, {"w": torch.ones(3), "n": torch.tensor([2])}
    assert torch.equal(interpolate(first, second, 0.0)["w"], first["w"])
    assert torch.equal(interpolate(first, second, 1.0)["w"], second["w"])
    assert torch.equal(interpolate(first, second, 0.5)["n"], first["n"])
    with pytest.raises(ConfigError, match="alpha"):
        interpolate(first, second, 1.5)


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"epochs": -1}, {"warmup": 1.0}, {"learning_rate": float("nan")}])
def test_bad_finetune_config(bad):
    with pytest.raises(ConfigError):
        FinetuneConfig(**bad)


PATH_BUDGET = FinetuneBudget(train_items=12, test_items=8, seeds=(0, 1), comparison_sparsity=0.5,
                             alphas=(0.0, 0.5, 1.0), config=CONFIG)


@pytest.fixture
def counted_training(monkeypatch):
    trained = []
    real = transfer._trained
    monkeypatch.setattr(transfer, "_trained", lambda *args, **kwargs: trained.append(args[3]) or real(*args, **kwargs))
    return trained


@pytest.mark.parametrize("route", ["modes", "study"])
def test_lmc_paths_are_cached_from_the_runs_that_trained_both_ends(encoder, tmp_path, counted_training, route,
                                                                   monkeypatch):
    setting = get_setting("setting5-finetune")
    method = get_method("magnitude").at_level(0.5)
    cache = ArtifactCache(tmp_path / "cache")
    evaluations = []
    real = transfer.evaluate
    monkeypatch.setattr(transfer, "evaluate", lambda *args, **kwargs: evaluations.append(1) or real(*args, **kwargs))
    if route == "modes":
        transfer.compare_modes(cache, encoder, setting, method, PATH_BUDGET)
    else:
        transfer.transfer_study(cache, encoder, setting, [get_method("magnitude").at_level(s) for s in (0.25, 0.5)],
                                PATH_BUDGET, compared=method)
    runs = len(counted_training)
    paths = len(setting.levels) * len(PATH_BUDGET.seeds)
    assert len(evaluations) == runs + paths * (len(PATH_BUDGET.alphas) - 2)  # each path's ends: its runs' scores
    level = setting.levels[-1]
    kept = [transfer.interpolation_path(cache, encoder, level, method, PATH_BUDGET, seed) for seed in (0, 1)]
    assert len(counted_training) == runs  # read, not trained again
    retrained = [transfer.interpolation_path(ArtifactCache(tmp_path / "other"), encoder, level, method, PATH_BUDGET,
                                             seed) for seed in (0, 1)]
    assert counted_training[runs:] == ["dense", "sparse"] * 2
    for a, b in zip(kept, retrained):  # the kept paths' ends are the runs' own evaluations, not scored again
        assert a.losses == pytest.approx(b.losses, rel=1e-6) and a.accuracies == b.accuracies
    assert kept[0].losses != kept[1].losses  # two seeds, two paths


def test_no_path_is_kept_from_a_dense_run_read_from_the_cache(encoder, tmp_path, counted_training):
    setting = get_setting("setting5-finetune")
    method = get_method("magnitude").at_level(0.5)
    cache = ArtifactCache(tmp_path / "cache")
    transfer.transfer_study(cache, encoder, setting, [method], PATH_BUDGET)  # dense and sparse runs, no path asked
    transfer.compare_modes(cache, encoder, setting, method, PATH_BUDGET)  # both ends read: nothing to keep
    runs = len(counted_training)
    transfer.interpolation_path(cache, encoder, setting.levels[0], method, PATH_BUDGET, 0)
    assert counted_training[runs:] == ["dense", "sparse"]
