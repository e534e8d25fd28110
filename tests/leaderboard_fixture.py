"""The run records of fixtures/leaderboard: planted studies of two models through the real claims (test helper).

Regenerate them (only after a deliberate change of the claims or the record schema) with
``python tests/leaderboard_fixture.py``, then the golden files with ``python tests/test_leaderboard.py``.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from datetime import datetime, timezone
from pathlib import Path

from planted import planted_study

from junkdna_core.data.settings import get_setting
from junkdna_core.results import claims
from junkdna_core.results.schema import ClaimRecord, RunRecord

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "leaderboard"
PRUNING = (0.0, 0.2, 0.4, 0.6)
QUANTIZATION = (0.0, 0.5, 0.75, 0.8125, 0.875)  # dense, then 8, 4, 3 and 2 bits
ITEMS = 60
MODELS = {"smollm2": (134_515_008, "3f9a1c0d5e7b2a4c"), "llama-1b": (1_235_814_400, "77aa12bc90de4f31")}
# Per model, method and setting: how fast each level falls with strength (easiest level first).
RATES = {
    ("smollm2", "magnitude", "setting2"): (0.3, 0.6, 1.0), ("smollm2", "magnitude", "setting3"): (0.2, 0.3, 0.5, 0.9),
    ("smollm2", "wanda", "setting2"): (0.2, 0.35, 0.6), ("smollm2", "wanda", "setting3"): (0.3, 0.3, 0.3, 0.35),
    ("smollm2", "rtn", "setting2"): (0.1, 0.12, 0.1), ("smollm2", "rtn", "setting3"): (0.1, 0.0, 0.1, 0.05),
    ("smollm2", "random", "setting2"): (0.9, 0.9, 0.9), ("smollm2", "sparsegpt", "setting2"): (0.2, 0.3, 0.4),
    ("llama-1b", "magnitude", "setting2"): (0.15, 0.35, 0.7),
}
FAMILY = {"magnitude": "pruning", "wanda": "pruning", "random": "pruning", "sparsegpt": "pruning",
          "rtn": "quantization"}


def _study(model: str, method: str, setting: str, *, measured: bool = True, seed: int = 0):
    parameters, fingerprint = MODELS[model]
    family = FAMILY[method]
    return planted_study(get_setting(setting), RATES[model, method, setting], items=ITEMS, model=model,
                         method=method, family=family, parameters=parameters, fingerprint=fingerprint,
                         strengths=QUANTIZATION if family == "quantization" else PRUNING, measured=measured,
                         params={"seed": seed} if method == "random" else {"scope": "layer"} if family == "pruning"
                         else {"group_size": 64}, draw_seed=zlib.crc32(f"{model}-{setting}".encode()))


def _test(module: str, name: str, setting: str, method: str, model: str) -> str:
    return f"benchmarks/{module}.py::{name}[{setting}-{method}-{model}]"


def _claims(model: str) -> list[ClaimRecord]:
    out = []

    def add(record: ClaimRecord, module: str, name: str, case: str, asserted: bool = True) -> None:
        out.append(dataclasses.replace(record, test=_test(module, name, record.setting, case, model),
                                       asserted=asserted))

    settings = ("setting2", "setting3") if model == "smollm2" else ("setting2",)
    for setting in settings:
        methods = [m for m in ("magnitude", "wanda") if (model, m, setting) in RATES]
        for method in methods:
            study = _study(model, method, setting)
            add(claims.monotonic(study), "test_monotonic", "test_monotonic", method)
            add(claims.difficulty(study), "test_difficulty", "test_difficulty", method)
            if setting == "setting2":
                add(claims.difficulty(study, drop="chance_corrected", claim="difficulty-chance-corrected"),
                    "test_difficulty", "test_difficulty_chance_corrected", method)
        if (model, "rtn", setting) in RATES:
            quantized = _study(model, "rtn", setting)
            add(claims.monotonic(quantized), "test_quantization", "test_quantization", "rtn", asserted=False)
            add(claims.quantization(_study(model, "magnitude", setting), quantized), "test_quantization",
                "test_quantization", "rtn")
        if (model, "random", setting) in RATES:
            add(claims.random_control(_study(model, "magnitude", setting), [_study(model, "random", setting)]),
                "test_random_control", "test_random_control", "magnitude-vs-random")
        if (model, "sparsegpt", setting) in RATES:  # a run that did not verify its levels: listed, not ranked
            add(claims.monotonic(_study(model, "sparsegpt", setting, measured=False)), "test_monotonic",
                "test_monotonic", "sparsegpt")
    return out


def fixture_runs() -> dict[str, RunRecord]:
    """The fixture runs by file name: one per model, a day apart."""
    runs = {}
    for day, model in enumerate(MODELS, start=1):
        created = datetime(2025, 3, day, 12, tzinfo=timezone.utc)
        run_id = f"{created:%Y%m%dT%H%M%SZ}-fixture{day - 1}"
        options = {"models": [model], "model_labels": [model], "budget": "smoke", "items": ITEMS, "seed": 0,
                   "random_seeds": 1, "methods": None, "device": "cpu", "dtype": "float32"}
        environment = {"python": "3.11.7", "platform": "fixture", "cpu_count": 2, "git_commit": None, "packages": {}}
        runs[f"run-{run_id}.json"] = RunRecord(run_id, created, options, environment, tuple(_claims(model)))
    return runs


def write_fixtures() -> None:
    """Rewrite the fixture run records."""
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, run in fixture_runs().items():
        (FIXTURES / name).write_text(json.dumps(run.to_json(), indent=1, sort_keys=True) + "\n")
        print(f"wrote {FIXTURES / name}")


if __name__ == "__main__":
    write_fixtures()
