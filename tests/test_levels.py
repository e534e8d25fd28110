"""Levels scored on a tiny random Llama: WinoGrande by partial evaluation, the k-shot levels as one request list,
answer metrics beside the likelihood."""

from __future__ import annotations

import pytest
import torch
import transformers

from junkdna_core.config.errors import ConfigError
from junkdna_core.data.prompts import qa_prompt, render_partial
from junkdna_core.data.settings import ANSWER_METRICS, get_setting
from junkdna_core.data.tasks import load_task
from junkdna_core.models.conventions import input_format
from junkdna_core.models.loading import load_model
from junkdna_core.models.synthetic import tiny_llama_config
from junkdna_core.scoring.engine import score_continuations
from junkdna_core.scoring.generation import METRIC_FUNCTIONS, answer_metrics, generate
from junkdna_core.scoring.levels import (
    cached_level_scores,
    level_requests,
    score_level,
    scored_together,
    setting_items,
)
from junkdna_core.storage.cache import ArtifactCache


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_model("random:tiny-llama", device="cpu", cache=ArtifactCache(tmp_path_factory.mktemp("cache")))


def test_winogrande_level_picks_the_option_whose_prefix_makes_the_rest_likelier(tiny):
    level = get_setting("setting5").level("winogrande")
    assert level.format == "partial"
    items = load_task("winogrande", limit=12).items
    scores = score_level(tiny.model, tiny.tokenizer, level, items, batch_size=3, progress=False)
    expected = []
    for item in items:  # each option's request scored on its own, one sequence per request
        suffix = [score_continuations(tiny.model, tiny.tokenizer, [request], reuse_prefix=False,
                                      progress=False)[0][0].loglik for request in render_partial(level.task, item)]
        expected.append(float(max(range(len(suffix)), key=suffix.__getitem__) == item.gold))
    assert scores.scores == tuple(expected) and scores.item_ids == tuple(it.id for it in items)
    assert 0 < sum(expected) < len(expected)  # both outcomes occur, so the comparison can fail


def test_every_item_of_a_k_shot_level_gets_the_same_demonstrations_and_fewer_shots_are_a_prefix(tmp_path):
    setting = get_setting("setting4")
    items = setting_items(setting, 6, 0, cache=ArtifactCache(tmp_path))["arc_easy"].items
    contexts = {lv.name: [context for context, _ in level_requests(lv, items, seed=0).flat_requests]
                for lv in setting.levels}
    zero_shot = contexts["shots-0"]
    for k in (5, 3, 1):
        lead = {context[: len(context) - len(question)] for context, question in zip(contexts[f"shots-{k}"], zero_shot)}
        assert len(lead) == 1 and next(iter(lead)).count("Question:") == k  # one set of k demonstrations
        assert all(c.endswith(q) for c, q in zip(contexts[f"shots-{k}"], zero_shot))
    assert contexts["shots-5"][0].startswith(contexts["shots-3"][0][: -len(zero_shot[0])])
    other_seed = level_requests(setting.level("shots-1"), items, seed=1).flat_requests[0][0]
    assert other_seed != contexts["shots-1"][0]  # the run's seed draws them


def test_only_the_passage_levels_are_one_request_list_and_they_score_as_each_level_alone(tiny, tmp_path):
    setting = get_setting("setting4")
    assert all(scored_together(setting, level) == (level,) for level in setting.levels)  # demonstrations: a prefix
    assert scored_together(get_setting("setting2"), get_setting("setting2").level("options-3")) == (
        get_setting("setting2").level("options-3"),)
    passages = get_setting("setting3")
    assert [lv.name for lv in scored_together(passages, passages.level("context-60"))] == [
        "context-20", "context-60", "context-100"]
    assert scored_together(passages, passages.level("closed-book")) == (passages.level("closed-book"),)
    pairs, calls = _cached_and_alone(tiny, ArtifactCache(tmp_path), passages, "squad")
    for joint, alone in pairs:
        assert joint.item_ids == alone.item_ids
        assert joint.scores == pytest.approx(alone.scores, rel=1e-5)
    assert calls == 2  # two lists: the passage levels' and the closed book's


def _cached_and_alone(tiny, cache: ArtifactCache, setting, task: str) -> tuple[list[tuple], int]:
    """Per level of ``setting`` (6 items of ``task``), its cached scores (scored with the levels it is scored
    together with) and its scores on its own, on a tiny model with room for long prompts, peaked (clear
    choices); and how many times the cached path needed the model."""
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(tiny_llama_config(len(tiny.tokenizer), max_position_embeddings=1024,
                                                            initializer_range=0.2)).eval()
    items = setting_items(setting, 6, 0, cache=cache)[task]
    inputs = input_format(tiny.conventions)
    calls: list[int] = []
    pairs = [(cached_level_scores(cache, "tiny", _loader(model, tiny.tokenizer, calls), setting, level, items,
                                  inputs=inputs, progress=False),
              score_level(model, tiny.tokenizer, level, items.items, inputs=inputs, progress=False))
             for level in setting.levels]
    return pairs, len(calls)


# ---------------------------------------------------------------- answer metrics beside the likelihood (--jd-metric)

def _factoid(tiny, cache: ArtifactCache):
    setting = get_setting("setting6")
    return setting, setting.level("factoid"), setting_items(setting, 6, 0, cache=cache)["triviaqa"]


def _loader(model, tokenizer, calls: list[int]):
    def load():
        calls.append(1)
        return model, tokenizer

    return load


def test_answer_metrics_are_the_greedy_answers_em_and_f1_cached_once(tiny, tmp_path):
    cache = ArtifactCache(tmp_path)
    setting, level, items = _factoid(tiny, cache)
    calls: list[int] = []
    inputs = input_format(tiny.conventions)
    load = _loader(tiny.model, tiny.tokenizer, calls)
    scores = cached_level_scores(cache, "tiny", load, setting, level, items, metrics=("em", "f1"), inputs=inputs,
                                 progress=False)
    assert set(scores.extra) == {"em", "f1"} and len(calls) == 2  # once for the likelihood, once for the answers
    prompts = [qa_prompt(item) for item in items.items]
    answers = generate(tiny.model, tiny.tokenizer, prompts, inputs=inputs, stop=("\n", ".", ","), progress=False)
    assert scores.extra == answer_metrics(answers, [item.answers for item in items.items], ("em", "f1"))
    assert all(len(values) == len(items) for values in scores.extra.values())

    only_f1 = cached_level_scores(cache, "tiny", load, setting, level, items, metrics=("f1",), inputs=inputs,
                                  progress=False)
    assert only_f1.extra == {"f1": scores.extra["f1"]} and only_f1.scores == scores.scores
    assert len(calls) == 2  # the answers and the likelihoods come from the cache
    plain = cached_level_scores(cache, "tiny", load, setting, level, items, inputs=inputs, progress=False)
    assert plain.extra == {} and len(calls) == 2


def test_the_input_format_is_part_of_the_answers_cache_key(tiny, tmp_path):
    cache = ArtifactCache(tmp_path)
    setting, level, items = _factoid(tiny, cache)
    calls: list[int] = []
    for bos in ("never", "always"):
        cached_level_scores(cache, "tiny", _loader(tiny.model, tiny.tokenizer, calls), setting, level, items,
                            metrics=("em",), inputs=input_format(tiny.conventions, bos=bos), progress=False)
    assert len(calls) == 4  # likelihoods and answers once per input format
    assert len([e for e in cache.entries() if e.kind == "answers"]) == 2


def test_levels_without_generative_items_record_no_answer_metrics(tiny, tmp_path):
    cache = ArtifactCache(tmp_path)
    setting = get_setting("setting6")
    level = setting.level("mcq")
    assert level.answer_metrics(("em", "f1")) == () and setting.level("factoid").answer_metrics(["f1"]) == ("f1",)
    items = setting_items(setting, 6, 0, cache=cache)["arc_easy"]
    scores = cached_level_scores(cache, "tiny", lambda: (tiny.model, tiny.tokenizer), setting, level, items,
                                 metrics=("em", "f1"), inputs=input_format(tiny.conventions), progress=False)
    assert scores.extra == {} and not [e for e in cache.entries() if e.kind == "answers"]


def test_answer_metric_names_agree_between_the_settings_and_the_scorer():
    assert tuple(METRIC_FUNCTIONS) == ANSWER_METRICS


def test_answer_metrics_per_item():
    values = answer_metrics(["Paris", "the Seine river", ""], [["Paris"], ["Seine"], ["Rome"]], ("em", "f1"))
    assert values == {"em": (1.0, 0.0, 0.0), "f1": (1.0, pytest.approx(2 / 3), 0.0)}
    with pytest.raises(ConfigError, match="unknown answer metric 'bleu'; known: em, f1"):
        answer_metrics(["a"], [["a"]], ("bleu",))
    with pytest.raises(ConfigError, match="2 predictions for 1 items"):
        answer_metrics(["a", "b"], [["a"]], ("em",))
