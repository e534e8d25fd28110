"""Difficulty transforms and prompt formats: the answer stays, the gold option stays, nothing random."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from junkdna_core.config.errors import ConfigError
from junkdna_core.data.items import GenerativeItem, MultipleChoiceItem
from junkdna_core.data.prompts import (
    answer_span,
    choose_demos,
    close_book,
    cut_passage,
    keep_options,
    kept_options,
    render_cloze,
    render_gold,
    render_letter,
    render_partial,
    split_blank,
)
from junkdna_core.data.tasks import load_task

ITEM = MultipleChoiceItem("arc/x/1", "Which is a gas?", ("rock", "steam", "ice", "wood"), gold=1)


@given(st.integers(2, 6).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(2, n),
                                                        st.text(min_size=1, max_size=8))))
def test_keep_options_keeps_gold_and_order(args):
    n, gold, k, key = args
    item = MultipleChoiceItem(key, "q", tuple(f"c{i}" for i in range(n)), gold)
    kept = keep_options(item, k)
    assert len(kept.choices) == k
    assert kept.choices[kept.gold] == item.choices[gold]
    indices = kept_options(item, k)
    assert indices == sorted(indices) and gold in indices
    assert keep_options(item, k) == kept  # deterministic


def test_fewer_options_are_nested_subsets_per_item():
    two, three = set(kept_options(ITEM, 2)), set(kept_options(ITEM, 3))
    assert two <= three


def test_keep_options_rejects_impossible_counts():
    with pytest.raises(ConfigError, match="cannot keep 5 of its 4"):
        keep_options(ITEM, 5)
    with pytest.raises(ConfigError, match="cannot keep 1"):
        keep_options(ITEM, 1)


PASSAGE = ("The river starts in the mountains. It flows east for many miles. Farmers use its water. "
           "The capital city of Freedonia is Sylvania. Tourists visit the old bridge. "
           "Boats carry goods to the sea. The delta is home to many birds.")
QA = GenerativeItem("squad/x/1", "What is the capital?", ("Sylvania",), PASSAGE, (PASSAGE.index("Sylvania"),))


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.6, 1.0])
def test_cut_passage_keeps_the_answer_and_enough_words(fraction):
    cut = cut_passage(QA, fraction)
    assert "Sylvania" in cut.passage
    assert len(cut.passage.split()) >= fraction * len(PASSAGE.split())
    assert cut.passage in PASSAGE  # whole sentences, contiguous
    assert cut.passage.endswith((".", "!", "?"))
    start = cut.answer_starts[0]
    assert cut.passage[start : start + len("Sylvania")] == "Sylvania"
    assert answer_span(cut) is not None


def test_shorter_fractions_give_nested_windows():
    windows = [cut_passage(QA, f).passage for f in (0.2, 0.6, 1.0)]
    assert windows[0] in windows[1] in windows[2] == PASSAGE


def test_cut_passage_errors():
    with pytest.raises(ConfigError, match="no gold answer"):
        cut_passage(GenerativeItem("x", "q", ("absent",), PASSAGE), 0.5)
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        cut_passage(QA, 0.0)


def test_closed_book_and_gold_prompt():
    closed = close_book(QA)
    assert closed.passage is None
    context, (continuation,) = render_gold(closed)
    assert context == "Question: What is the capital?\nAnswer:" and continuation == " Sylvania"
    assert render_gold(QA)[0].startswith(PASSAGE)


def test_cloze_and_letter_formats_with_demos():
    demo = MultipleChoiceItem("arc/t/9", "Which is a metal?", ("iron", "salt"), gold=0)
    context, options = render_cloze("arc_easy", ITEM, [demo])
    assert context == "Question: Which is a metal?\nAnswer: iron\n\nQuestion: Which is a gas?\nAnswer:"
    assert options == [" rock", " steam", " ice", " wood"]
    context, letters = render_letter("mmlu", ITEM)
    assert context.endswith("A. rock\nB. steam\nC. ice\nD. wood\nAnswer:") and letters == [" A", " B", " C", " D"]
    hs = MultipleChoiceItem("hs/1", "A man lifts a weight and", ("drops it.", "sings."), 0)
    assert render_cloze("hellaswag", hs)[0] == "A man lifts a weight and"


def test_demos_are_seeded_and_distinct():
    pool = [MultipleChoiceItem(f"p{i}", f"q{i}", ("a", "b"), 0) for i in range(20)]
    first = choose_demos(pool, 5, seed=0)
    assert first == choose_demos(pool, 5, seed=0)
    assert len({d.id for d in first}) == 5
    assert first != choose_demos(pool, 5, seed=1)
    assert choose_demos(pool, 3, seed=0) == first[:3]  # fewer shots are a prefix of more
    with pytest.raises(ConfigError, match="pool holds 20"):
        choose_demos(pool, 21, seed=0)


WINO = MultipleChoiceItem("winogrande/x/0", "Sarah was a much better surgeon than Maria so _ always got the easier cases.",
                          ("Sarah", "Maria"), gold=1)


def test_partial_requests_fill_the_blank_and_share_the_rest():
    assert render_partial("winogrande", WINO) == [
        ("Sarah was a much better surgeon than Maria so Sarah", [" always got the easier cases."]),
        ("Sarah was a much better surgeon than Maria so Maria", [" always got the easier cases."]),
    ]


def test_partial_demos_are_whole_gold_sentences():
    demo = MultipleChoiceItem("winogrande/t/3", "The cup fell off the shelf because _ was tilted.",
                              ("the cup", "the shelf"), gold=1)
    (context, _), _ = render_partial("winogrande", WINO, [demo])
    assert context == ("The cup fell off the shelf because the shelf was tilted.\n\n"
                       "Sarah was a much better surgeon than Maria so Sarah")


def _lmeval_requests(sentence: str, options: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """lm-evaluation-harness's WinoGrande (preprocess_winogrande.py): doc_to_choice contexts, " " + doc_to_target."""
    idx = sentence.index("_")
    return [(sentence[:idx] + option, [" " + sentence[idx + 1 :].strip()]) for option in options]


@given(st.text(st.characters(blacklist_characters="_"), max_size=20),
       st.text(st.characters(blacklist_characters="_"), max_size=20).filter(str.strip),
       st.lists(st.text(min_size=1, max_size=6), min_size=2, max_size=4))
def test_partial_requests_are_lm_evals(before, after, options):
    item = MultipleChoiceItem("w", f"{before}_{after}", tuple(options), gold=0)
    assert render_partial("winogrande", item) == _lmeval_requests(item.question, item.choices)


def test_shipped_winogrande_renders_as_lm_eval_does():
    items = load_task("winogrande").items
    assert all(render_partial("winogrande", it) == _lmeval_requests(it.question, it.choices) for it in items)


@pytest.mark.parametrize("question, message", [
    ("no blank here.", "exactly one '_'"),
    ("two _ blanks _ here.", "exactly one '_'"),
    ("nothing after the _  ", "nothing follows the blank"),
])
def test_partial_rejects_items_without_one_blank_and_a_rest(question, message):
    with pytest.raises(ConfigError, match=message):
        render_partial("winogrande", MultipleChoiceItem("w/1", question, ("a", "b"), 0))
    if "exactly" in message:
        with pytest.raises(ConfigError, match=message):
            split_blank(MultipleChoiceItem("w/1", question, ("a", "b"), 0))


def test_partial_and_cloze_each_refuse_the_other_kind_of_task():
    with pytest.raises(ConfigError, match="fill-in-the-blank tasks \\(winogrande\\); got task 'arc_easy'"):
        render_partial("arc_easy", ITEM)
    with pytest.raises(ConfigError, match="score them with format 'partial'"):
        render_cloze("winogrande", WINO)
    context, letters = render_letter("winogrande", WINO)  # the letter format shows the blank as it is
    assert letters == [" A", " B"]
    assert context.endswith("Maria so _ always got the easier cases.\nA. Sarah\nB. Maria\nAnswer:")
