"""`junkdna compare`: an identical run passes, injected regressions are caught and sized, improvements pass."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from junkdna_core.cli import main
from junkdna_core.config.errors import ConfigError
from junkdna_core.results.compare import Change, compare_pair, compare_runs, parse_tolerance, render_comparison

RUN = Path(__file__).resolve().parent.parent / "fixtures" / "leaderboard" / "run-20250301T120000Z-fixture0.json"
KEY = ("smollm2", "setting2", "magnitude", "monotonic")  # hardest level options-4, strengths 0.2, 0.4, 0.6


def _body() -> dict:
    return json.loads(RUN.read_text())


def _find(body: dict, model: str, setting: str, method: str, claim: str) -> dict:
    (record,) = [r for r in body["records"] if (r["model"], r["setting"], r["method"], r["claim"])
                 == (model, setting, method, claim)]
    return record


def _write(directory: Path, body: dict, run_id: str = "20250302T120000Z-current") -> Path:
    body = {**body, "run_id": run_id}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"run-{run_id}.json"
    path.write_text(json.dumps(body))
    return path


def _only(changes: list[Change], status: str) -> list[Change]:
    return [c for c in changes if c.status == status]


def test_identical_run_passes_with_every_quantity_unchanged() -> None:
    comparison = compare_runs(RUN, RUN)
    records = _body()["records"]
    gaps = sum(1 for r in records if "hard_minus_easy" in r["details"])
    curves = sum(1 for r in records if r["claim"] == "monotonic")
    assert len(comparison.changes) == len(records) + gaps + curves
    assert {c.status for c in comparison.changes} == {"unchanged"}
    assert all(c.delta == 0.0 for c in comparison.changes)
    assert comparison.exit_code == 0 and not comparison.failed


def test_statistic_without_interval_worse_beyond_tolerance_is_a_regression_with_its_size(tmp_path: Path) -> None:
    body = _body()
    _find(body, *KEY)["statistic"] = -0.9  # "<=" claim: larger is worse; -1.0 -> -0.9 is 0.1 > 0.05
    comparison = compare_runs(RUN, _write(tmp_path, body))
    (regression,) = comparison.with_status("regression")
    assert (regression.model, regression.setting, regression.method, regression.claim) == KEY
    assert regression.quantity.startswith("statistic")
    assert regression.delta == pytest.approx(0.1)
    assert comparison.exit_code == 1
    message = regression.message()
    for word in (*KEY, "-1.000 -> -0.900", "+0.100", "tolerance 0.05"):
        assert word in message
    assert message in render_comparison(comparison)


def test_statistic_within_tolerance_or_float_noise_is_unchanged(tmp_path: Path) -> None:
    body = _body()
    _find(body, *KEY)["statistic"] = -0.96
    assert compare_runs(RUN, _write(tmp_path, body)).exit_code == 0
    _find(body, *KEY)["statistic"] = -1.0 + 1e-12
    strict = compare_runs(RUN, _write(tmp_path, body), tolerance=0.0)
    assert strict.exit_code == 0
    _find(body, *KEY)["statistic"] = -0.99
    assert compare_runs(RUN, _write(tmp_path, body), tolerance=0.0).exit_code == 1


def test_statistic_with_interval_is_judged_against_the_baseline_ci() -> None:
    base = copy.deepcopy(_find(_body(), "smollm2", "setting2", "magnitude-vs-rtn", "quantization"))
    base.update(statistic=0.2, low=0.1, high=0.3)  # ">=" claim: smaller is worse
    inside = {**base, "statistic": 0.11}  # 0.09 worse: beyond the tolerance, inside the CI
    outside = {**base, "statistic": 0.05}
    assert [c.status for c in compare_pair(base, inside)] == ["unchanged"]
    (change,) = compare_pair(base, outside)
    assert change.status == "regression"
    assert change.delta == pytest.approx(-0.15)
    assert "baseline CI [0.100, 0.300]" in change.message()


def test_difficulty_slope_gap_outside_its_ci_is_a_regression(tmp_path: Path) -> None:
    body = _body()
    record = _find(body, "smollm2", "setting2", "wanda", "difficulty")
    high = record["details"]["hard_minus_easy"]["high"]
    record["details"]["hard_minus_easy"]["difference"] = high + 0.01  # hard level drops less steeply: worse
    (regression,) = compare_runs(RUN, _write(tmp_path, body)).with_status("regression")
    assert regression.quantity == "slope(hardest) - slope(easiest)"
    assert regression.current == pytest.approx(high + 0.01)
    assert regression.claim == "difficulty" and regression.method == "wanda"


def test_verdict_flip_is_always_a_regression(tmp_path: Path) -> None:
    body = _body()
    record = _find(body, *KEY)
    record.update(holds=False, reason="injected")
    regressions = compare_runs(RUN, _write(tmp_path, body)).with_status("regression")
    assert [c.quantity for c in regressions] == ["verdict"]
    assert "held, now does not hold: injected" in regressions[0].message()


def test_lower_hard_task_retention_is_a_regression_at_its_strength(tmp_path: Path) -> None:
    body = _body()
    details = _find(body, *KEY)["details"]
    hardest = max(details["difficulty"], key=details["difficulty"].get)
    assert hardest == "options-4"
    before = 1.0 + details["drops"][hardest][1]
    details["drops"][hardest][1] -= 0.2
    comparison = compare_runs(RUN, _write(tmp_path, body))
    (regression,) = comparison.with_status("regression")
    assert regression.quantity == "retention(options-4)"
    assert regression.baseline == pytest.approx(before)
    assert regression.current == pytest.approx(before - 0.2)
    assert "at strength 0.4" in regression.message() and "-0.200" in regression.message()
    assert comparison.exit_code == 1


def test_retention_of_an_easier_level_is_not_compared(tmp_path: Path) -> None:
    body = _body()
    _find(body, *KEY)["details"]["drops"]["options-2"][1] -= 0.3
    assert compare_runs(RUN, _write(tmp_path, body)).exit_code == 0


def test_improvements_are_reported_and_pass(tmp_path: Path) -> None:
    body = _body()
    _find(body, *KEY)["details"]["drops"]["options-4"][2] += 0.2
    _find(body, "smollm2", "setting2", "magnitude-vs-rtn", "quantization")["statistic"] = 0.5
    rtn = _find(body, "smollm2", "setting2", "rtn", "monotonic")
    rtn.update(statistic=-1.0, holds=True)
    comparison = compare_runs(RUN, _write(tmp_path, body))
    improved = {(c.method, c.quantity.split(" ")[0]) for c in comparison.with_status("improvement")}
    assert improved == {("magnitude", "retention(options-4)"), ("magnitude-vs-rtn", "statistic"),
                        ("rtn", "verdict"), ("rtn", "statistic")}
    assert comparison.exit_code == 0


def test_missing_record_warns_and_fails_only_when_strict(tmp_path: Path) -> None:
    body = _body()
    body["records"] = [r for r in body["records"] if (r["model"], r["setting"], r["method"], r["claim"]) != KEY]
    current = _write(tmp_path, body)
    lenient = compare_runs(RUN, current)
    (missing,) = lenient.with_status("missing")
    assert (missing.model, missing.setting, missing.method, missing.claim) == KEY
    assert lenient.exit_code == 0
    assert "warning: MISSING smollm2 setting2 magnitude monotonic" in render_comparison(lenient)
    assert compare_runs(RUN, current, strict=True).exit_code == 1
    new = compare_runs(current, RUN, strict=True)
    assert [(c.claim, c.status) for c in new.changes if c.status != "unchanged"] == [("monotonic", "new")]
    assert new.exit_code == 0


def test_changed_direction_is_incomparable() -> None:
    base = _find(_body(), *KEY)
    changes = compare_pair(base, {**base, "direction": ">="})
    assert [c.status for c in changes if c.quantity.startswith("statistic")] == ["incomparable"]


def test_newest_run_of_a_directory_is_compared(tmp_path: Path) -> None:
    regressed = _body()
    _find(regressed, *KEY)["statistic"] = -0.5
    regressed["created"] = "2025-03-02T12:00:00+00:00"
    fixed = {**_body(), "created": "2025-03-03T12:00:00+00:00"}
    _write(tmp_path, regressed, "20250302T120000Z-old")
    assert compare_runs(RUN, tmp_path).exit_code == 1
    _write(tmp_path, fixed, "20250303T120000Z-new")
    assert compare_runs(RUN, tmp_path).exit_code == 0


@pytest.mark.parametrize("text", ["-0.1", "nan", "inf", "much"])
def test_bad_tolerance_is_rejected(text: str) -> None:
    with pytest.raises(ConfigError, match="tolerance"):
        parse_tolerance(text)
    with pytest.raises(ConfigError, match="tolerance"):
        compare_runs(RUN, RUN, tolerance=text)


def test_bad_inputs_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        compare_runs(tmp_path / "nowhere", RUN)
    with pytest.raises(ConfigError, match="no run records"):
        compare_runs(RUN, tmp_path)
    (tmp_path / "run-broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a junkdna run record"):
        compare_runs(RUN, tmp_path / "run-broken.json")
    empty = _write(tmp_path / "empty", {**_body(), "records": [{"test": "x", "other": 1}]})
    with pytest.raises(ConfigError, match="holds no claim records"):
        compare_runs(empty, RUN)


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(RUN), str(RUN)]) == 0
    assert "compare passed" in capsys.readouterr().out
    body = _body()
    _find(body, *KEY)["details"]["drops"]["options-4"][0] -= 0.1
    assert main(["compare", str(RUN), str(_write(tmp_path, body))]) == 1
    out = capsys.readouterr().out
    assert "compare FAILED" in out and "REGRESSION smollm2 setting2 magnitude monotonic: retention(options-4)" in out
    assert main(["compare", str(RUN), str(_write(tmp_path, body)), "--tolerance", "0.2"]) == 0
    assert main(["compare", str(tmp_path / "nowhere"), str(RUN)]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(RUN), str(RUN), "--tolerance", "-1"])
    assert exc.value.code == 2
