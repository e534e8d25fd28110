"""Levels scored on a tiny random Llama: WinoGrande by partial evaluation, answer metrics beside the likelihood."""

from __future__ import annotations

import pytest

from junkdna_core.data.prompts import render_partial
from junkdna_core.data.settings import get_setting
from junkdna_core.data.tasks import load_task
from junkdna_core.models.loading import load_model
from junkdna_core.scoring.engine import score_continuations
from junkdna_core.scoring.levels import score_level
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
