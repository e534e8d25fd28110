"""`junkdna compare`: an identical run passes, injected regressions are caught and sized, improvements pass,
informational claims are never judged, records are matched by model, and several directories merge."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from junkdna_core.cli import main
from junkdna_core.config.errors import ConfigError
from junkdna_core.results.compare import Change, compare_pair, compare_runs, parse_tolerance, render_comparison
from junkdna_core.results.records import read_run_record
from junkdna_core.results.schema import Condition, load, verdict_of

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RUNS = sorted((FIXTURES / "leaderboard").glob("run-*.json"))
RUN = RUNS[0]  # smollm2
SCHEMA_1 = FIXTURES / "records-schema1" / "run-20250301T120000Z-fixture0.json"
KEY = ("smollm2", "setting2", "magnitude", "monotonic")  # hardest level options-4, strengths 0.2, 0.4, 0.6
CONTROL = ("smollm2", "setting2", "magnitude-vs-random", "random")


def _body(path: Path = RUN) -> dict:
    return json.loads(path.read_text())


def _find(body: dict, model: str, setting: str, method: str, claim: str) -> dict:
    (record,) = [r for r in body["claims"] if (r["model"], r["setting"], r["method"], r["claim"])
                 == (model, setting, method, claim)]
    return record


def _set(record: dict, statistic: float, condition: int = 0) -> None:
    """Give a condition a new statistic (its interval moved along) and the claim the verdict that follows."""
    c = record["conditions"][condition]
    shift = statistic - c["statistic"]
    c["statistic"] = statistic
    c["interval"].update(low=c["interval"]["low"] + shift, high=c["interval"]["high"] + shift)
    record["verdict"] = verdict_of(tuple(load(Condition, c) for c in record["conditions"]))
    record["reason"] = record.get("reason") or "injected"


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
    claims = _body()["claims"]
    asserted = sum(len(c["conditions"]) for c in claims if c["asserted"])
    curves = sum(1 for c in claims if c["details"] and c["details"]["kind"] == "curve")
    assert len(comparison.changes) == asserted + curves
    assert {c.status for c in comparison.changes} == {"unchanged"}
    assert all(c.delta in (0.0, None) for c in comparison.changes)
    assert comparison.exit_code == 0 and not comparison.failed


def test_a_statistic_beyond_the_baseline_interval_is_a_regression_with_its_size(tmp_path: Path) -> None:
    body = _body()
    control = dict(_find(body, *CONTROL)["conditions"][0])
    low = control["interval"]["low"]
    inside = _body()
    _set(_find(inside, *CONTROL), low + 0.01)  # worse, but inside the baseline's interval
    assert compare_runs(RUN, _write(tmp_path, inside)).exit_code == 0
    _set(_find(body, *CONTROL), low - 0.05)  # ">" claim: smaller is worse
    comparison = compare_runs(RUN, _write(tmp_path, body))
    (regression,) = comparison.with_status("regression")
    assert (regression.model, regression.setting, regression.method, regression.claim) == CONTROL
    assert regression.quantity == control["name"]
    assert regression.delta == pytest.approx(low - 0.05 - control["statistic"])
    assert comparison.exit_code == 1
    message = regression.message()
    for word in (*CONTROL, f"{control['statistic']:.3f} -> {low - 0.05:.3f}", "baseline CI", "needs > 0"):
        assert word in message
    assert message in render_comparison(comparison)


def test_schema_1_statistics_without_interval_are_judged_by_the_tolerance(tmp_path: Path) -> None:
    body = _body(SCHEMA_1)
    record = next(r for r in body["records"] if (r["model"], r["setting"], r["method"], r["claim"]) == KEY)
    record["statistic"] = -0.98
    assert compare_runs(SCHEMA_1, _write(tmp_path, body)).exit_code == 0
    record["statistic"] = -1.0 + 1e-12
    assert compare_runs(SCHEMA_1, _write(tmp_path, body), tolerance=0.0).exit_code == 0
    record.update(statistic=-0.9, holds=False)  # "<=" claim: larger is worse; -1.0 -> -0.9 is 0.1 > 0.05
    regressions = compare_runs(SCHEMA_1, _write(tmp_path, body)).with_status("regression")
    assert [c.quantity for c in regressions] == ["verdict", "max over levels of Spearman(strength, drop)"]
    assert "tolerance 0.05" in regressions[1].message() and regressions[1].delta == pytest.approx(0.1)


def test_compare_spans_the_schema_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(SCHEMA_1), str(SCHEMA_1)]) == 0
    assert "0 regression" in capsys.readouterr().out
    comparison = compare_runs(SCHEMA_1, RUN)  # old records, new records of other numbers: compared, not a crash
    curve = [c for c in comparison.changes if (c.model, c.setting, c.method, c.claim) == KEY]
    assert {c.quantity for c in curve} >= {"max over levels of Spearman(strength, drop)", "retention(options-4)"}
    assert "tolerance" in next(c for c in curve if c.quantity.startswith("max")).allowed
    control = read_run_record(RUN).claims
    redefined = next(c for c in control if c.claim == "random")
    undefined = replace(redefined, verdict="undefined", reason="now undefined", details=None,
                        conditions=(replace(redefined.headline, name="an older statistic", statistic=None,
                                            interval=None, pvalue=None),))
    verdict = next(c for c in compare_pair(redefined, undefined) if c.quantity == "verdict")
    assert verdict.status == "incomparable" and "decided on other conditions now" in verdict.note
    old_control = [c for c in compare_runs(SCHEMA_1, SCHEMA_1).changes if c.claim == "random"]
    assert not old_control  # schema 1 had no random control in this fixture; a new one is "new" against it
    assert [c.status for c in comparison.changes if c.claim == "random"] == ["new"]


def test_difficulty_slope_gap_outside_its_ci_is_a_regression(tmp_path: Path) -> None:
    body = _body()
    record = _find(body, "smollm2", "setting2", "magnitude", "difficulty")
    gap = record["conditions"][1]
    high = gap["interval"]["high"]
    _set(record, high + 0.5, condition=1)  # the hard level drops less steeply than the easy one: worse
    regressions = compare_runs(RUN, _write(tmp_path, body)).with_status("regression")
    assert [c.quantity for c in regressions] == ["verdict", "slope(hardest) - slope(easiest)"]
    assert regressions[1].current == pytest.approx(high + 0.5)
    assert "holds -> fails" in regressions[0].message()


def test_holds_to_undefined_is_a_regression_and_fails_to_undefined_cannot_be_compared(tmp_path: Path) -> None:
    body = _body()
    for key in (KEY, ("smollm2", "setting3", "wanda", "difficulty")):
        record = _find(body, *key)
        record.update(verdict="undefined", reason="options-4: the dense score is 0", details=None)
        for c in record["conditions"]:
            c.update(statistic=None, interval=None, pvalue=None)
    comparison = compare_runs(RUN, _write(tmp_path, body))
    verdicts = {(c.method, c.setting): c for c in comparison.changes if c.quantity == "verdict"}
    assert verdicts["magnitude", "setting2"].status == "regression"
    assert "holds -> undefined: options-4: the dense score is 0" in verdicts["magnitude", "setting2"].note
    assert verdicts["wanda", "setting3"].status == "incomparable"
    assert "undefined in the current run" in {c.note for c in comparison.changes if c.method == "wanda"
                                              and c.quantity == "slope(hardest) - slope(easiest)"}


def test_informational_claims_are_never_judged(tmp_path: Path) -> None:
    body = _body()
    quantized = _find(body, "smollm2", "setting2", "rtn", "monotonic")
    assert not quantized["asserted"]
    quantized["conditions"][0]["statistic"] = 1.0  # would flip the verdict and be far worse if it were judged
    quantized["conditions"][0]["interval"].update(low=1.0, high=1.0)
    quantized["verdict"] = "fails"
    comparison = compare_runs(RUN, _write(tmp_path, body))
    assert comparison.exit_code == 0
    rtn = [c for c in comparison.changes if (c.setting, c.method, c.claim) == ("setting2", "rtn", "monotonic")]
    assert [c.quantity for c in rtn] == ["retention(options-4)"]  # the measurement is compared, not the verdict


def test_an_assertion_that_changed_cannot_be_compared(tmp_path: Path) -> None:
    body = _body()
    _find(body, *KEY)["asserted"] = False
    (change,) = compare_runs(RUN, _write(tmp_path, body), strict=True).with_status("incomparable")
    assert change.quantity == "assertion" and change.note == "asserted -> informational"


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
    control = _find(body, *CONTROL)
    _set(control, control["conditions"][0]["interval"]["high"] + 0.2)
    comparison = compare_runs(RUN, _write(tmp_path, body))
    improved = {(c.method, c.quantity) for c in comparison.with_status("improvement")}
    assert improved == {("magnitude", "retention(options-4)"), ("magnitude-vs-random", control["conditions"][0]["name"])}
    assert comparison.exit_code == 0


def test_missing_record_warns_and_fails_only_when_strict(tmp_path: Path) -> None:
    body = _body()
    body["claims"] = [r for r in body["claims"] if (r["model"], r["setting"], r["method"], r["claim"]) != KEY]
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


def test_changed_direction_or_a_missing_condition_is_incomparable() -> None:
    base = read_run_record(RUN)
    record = next(c for c in base.claims if c.key == KEY)
    flipped = replace(record.conditions[0], direction=">=", threshold=0.975)
    changed = replace(record, conditions=(flipped,), verdict="fails", reason="flipped")
    (change,) = [c for c in compare_pair(record, changed) if c.quantity.startswith("max")]
    assert change.status == "incomparable" and change.note == "direction <= -> >="
    renamed = replace(record, conditions=(replace(record.conditions[0], name="another statistic"),))
    (gone,) = [c for c in compare_pair(record, renamed) if c.quantity.startswith("max")]
    assert gone.status == "incomparable" and gone.note == "not a condition of the current record"


def test_a_model_with_other_weights_is_flagged(tmp_path: Path) -> None:
    body = _body()
    _find(body, *KEY)["provenance"]["model_fingerprint"] = "ffffffffffffffff"
    comparison = compare_runs(RUN, _write(tmp_path, body))
    (flag,) = comparison.with_status("incomparable")
    assert flag.quantity == "model fingerprint" and "different weights" in flag.note
    assert comparison.exit_code == 0 and compare_runs(RUN, _write(tmp_path, body), strict=True).exit_code == 1


def test_records_are_matched_by_model(tmp_path: Path) -> None:
    both = tmp_path / "both"
    both.mkdir()
    for run in RUNS:
        shutil.copy(run, both / run.name)
    worse = _body(RUNS[1])
    _find(worse, "llama-1b", *KEY[1:])["details"]["drops"]["options-4"][2] -= 0.3
    current = tmp_path / "current"
    shutil.copy(RUNS[0], _write(current, worse, "20250302T120000Z-fixture1").parent / RUNS[0].name)
    comparison = compare_runs(both, current)
    assert comparison.models == ["llama-1b", "smollm2"]
    (regression,) = comparison.with_status("regression")
    assert regression.model == "llama-1b" and regression.quantity == "retention(options-4)"
    only_smollm2 = compare_runs(RUN, both)
    assert {c.model for c in only_smollm2.with_status("new")} == {"llama-1b"} and only_smollm2.exit_code == 0
    assert "models llama-1b, smollm2" in render_comparison(only_smollm2)


def test_records_are_matched_by_the_method_variant_label(tmp_path: Path) -> None:
    body = _body()
    variant = json.loads(json.dumps(_find(body, *KEY)))
    variant["method"] = "magnitude[scope=global]"  # another variant of the method: a claim of its own
    body["claims"].append(variant)
    baseline = _write(tmp_path / "baseline", body, "20250301T120000Z-baseline")
    current = json.loads(json.dumps(body))
    _set(_find(current, "smollm2", "setting2", "magnitude[scope=global]", "monotonic"),
         variant["conditions"][0]["interval"]["high"] + 0.05)  # "<=" claim: larger is worse
    comparison = compare_runs(baseline, _write(tmp_path / "current", current))
    regressions = comparison.with_status("regression")  # its verdict and its statistic
    assert regressions and {(c.method, c.claim) for c in regressions} == {("magnitude[scope=global]", "monotonic")}
    assert {c.status for c in comparison.changes if c.method == "magnitude"} == {"unchanged"}


def test_the_current_side_merges_several_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline, group1, group2 = tmp_path / "baseline", tmp_path / "group1", tmp_path / "group2"
    for directory, runs in ((baseline, RUNS), (group1, RUNS[:1]), (group2, RUNS[1:])):
        directory.mkdir()
        for run in runs:
            shutil.copy(run, directory / run.name)
    assert main(["compare", str(baseline), str(group1), str(group2), "--strict"]) == 0
    assert "compare passed: 0 regression, 0 improvement, 0 missing" in capsys.readouterr().out
    assert main(["compare", str(baseline), str(group1), "--strict"]) == 1  # group 2's records are missing
    assert main(["compare", str(baseline), str(tmp_path / "group*")]) == 2  # paths, not patterns
    assert "does not exist" in capsys.readouterr().err


def test_newest_run_of_a_directory_is_compared(tmp_path: Path) -> None:
    regressed = _body()
    _find(regressed, *KEY)["details"]["drops"]["options-4"][2] -= 0.5
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
    empty = _write(tmp_path / "empty", {**_body(), "claims": [], "records": [{"test": "x", "other": 1}]})
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
