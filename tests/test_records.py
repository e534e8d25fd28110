"""Run records: typed (schema 2), written with provenance, read back unchanged; schema 1 upgraded on read; a plugin
extends a record under "extra" through the pytest_junkdna_update_record hook and nowhere else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from junkdna_core.config.errors import CacheError
from junkdna_core.results.records import RejectedUpdate, read_run_record, write_run_record
from junkdna_core.results.schema import (
    DETAIL_KINDS,
    RECORD_SCHEMA,
    ClaimRecord,
    Condition,
    Interval,
    RecordError,
    dump,
    load,
    verdict_of,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RUN = FIXTURES / "leaderboard" / "run-20250301T120000Z-fixture0.json"
SCHEMA_1 = FIXTURES / "records-schema1" / "run-20250301T120000Z-fixture0.json"


def _claims() -> list[dict]:
    return json.loads(RUN.read_text())["claims"]


def test_round_trip_keeps_every_claim_and_the_provenance(tmp_path):
    claims = _claims()
    records = [{"test": "t::x", "seconds": 1.5}]
    path = write_run_record(tmp_path, claims, records, options={"model": "smollm2", "budget": "smoke"})
    body = json.loads(path.read_text())
    assert body["schema"] == RECORD_SCHEMA == 2
    assert body["environment"]["packages"]["torch"] and body["environment"]["python"]
    assert sorted(json.dumps(r, sort_keys=True) for r in body["claims"]) == sorted(
        json.dumps(r, sort_keys=True) for r in claims)
    assert body["records"] == records and body["extra"] == {}
    run = read_run_record(path)
    assert run.run_id == body["run_id"] and run.read_schema == 2 and run.path == path
    assert [dump(c) for c in run.claims] == body["claims"]
    assert not list(tmp_path.glob("*.tmp"))  # written by atomic rename


def test_the_fixture_holds_every_details_kind_but_legacy_and_each_reads_back():
    kinds = {c["details"]["kind"] for c in _claims() if c["details"]}
    assert kinds == {"curve", "slopes", "quantization", "random-control"}
    for claim in _claims():
        record = load(ClaimRecord, claim)
        assert dump(record) == claim
        assert type(record.details) in (*DETAIL_KINDS.values(), type(None))


def test_the_verdict_follows_the_conditions_in_three_values():
    def c(statistic, direction=">=", threshold=0.0, decided_by="estimate", low=None, high=None):
        interval = Interval(low, high, 0.95, "bootstrap over items") if low is not None else None
        return Condition("x", statistic, direction, threshold, decided_by, interval)

    assert verdict_of((c(0.5), c(0.1))) == "holds"
    assert verdict_of((c(0.5), c(-0.1))) == "fails"
    assert verdict_of((c(None), c(0.1))) == "undefined"
    assert verdict_of((c(None), c(-0.1))) == "fails"  # one defined condition fails: the claim fails anyway
    assert c(0.0, ">").holds() is False and c(0.0, ">=").holds() is True  # the direction decides at the margin
    interval = c(0.5, ">", 0.0, "interval", low=-0.1, high=0.9)
    assert interval.decisive == -0.1 and interval.holds() is False
    assert c(-0.5, "<", 0.0, "interval", low=-0.9, high=-0.1).holds() is True
    with pytest.raises(RecordError, match="undefined .null. but carries an interval"):
        Condition("x", None, ">", 0.0, "estimate", Interval(0, 1, 0.95, "bootstrap over items"))
    with pytest.raises(RecordError, match="decided by its interval but has none"):
        c(0.5, ">", 0.0, "interval")


@pytest.mark.parametrize(("edit", "where", "problem"), [
    (lambda c: c.update(verdict="maybe"), "verdict", "expected one of 'holds', 'fails', 'undefined'"),
    (lambda c: c["conditions"][0].update(statistic="high"), "conditions[0].statistic", "expected a number or null"),
    (lambda c: c["conditions"][0]["interval"].update(low=2.0, high=1.0), "conditions[0].interval.low",
     "lies above its high end"),
    (lambda c: c.update(conditions=[]), "conditions", "at least one condition"),
    (lambda c: c["provenance"].update(model_parameters=1.5), "provenance.model_parameters",
     "expected a whole number or null"),
    (lambda c: c["provenance"]["studies"][0]["configurations"][0].update(measured={}),
     "provenance.studies[0].configurations[0].measured", "non-empty object"),
    (lambda c: c.update(colour="red"), "colour", "unknown field; ClaimRecord has"),
    (lambda c: c["details"]["drops"].popitem(), "details.difficulty", "one entry per level"),
    (lambda c: c.update(verdict="undefined", reason=None), "verdict", "disagrees with its conditions"),
])
def test_a_claim_that_does_not_fit_names_the_field(edit, where, problem):
    claim = next(c for c in _claims() if c["claim"] == "monotonic" and c["verdict"] == "holds")
    edit(claim)
    with pytest.raises(RecordError) as info:
        load(ClaimRecord, claim, "claims[4]")
    assert info.value.where == f"claims[4].{where}" and problem in info.value.problem


def test_a_file_that_does_not_fit_names_the_file_and_the_field(tmp_path):
    body = json.loads(RUN.read_text())
    body["claims"][3]["conditions"][0]["direction"] = "=="
    path = tmp_path / "run-bad.json"
    path.write_text(json.dumps(body))
    with pytest.raises(RecordError, match=rf"^{path}: claims\[3\]\.conditions\[0\]\.direction: expected one of"):
        read_run_record(path)


def test_schema_2_claims_need_their_intervals_where_schema_1_ones_could_not_have_them(tmp_path):
    claim = _claims()[0]
    claim["conditions"][0]["interval"] = None
    with pytest.raises(RecordError, match=r"claims\[0\]\.conditions: every defined condition needs an interval"):
        write_run_record(tmp_path, [claim], options={})
    assert not list(tmp_path.iterdir())  # nothing half-written
    old = read_run_record(SCHEMA_1)
    assert old.read_schema == 1 and any(c.headline.interval is None for c in old.claims)


def test_schema_1_records_are_upgraded_on_read():
    run = read_run_record(SCHEMA_1)
    old = json.loads(SCHEMA_1.read_text())["records"]
    assert len(run.claims) == len(old) and run.records == ()
    for before, after in zip(old, run.claims):
        assert after.key == (before["model"], before["setting"], before["method"], before["claim"])
        assert after.holds == before["holds"] and after.headline.statistic == before["statistic"]
        assert after.provenance.seed == 0 and after.provenance.model_parameters is None
        assert not any(s.measured for s in after.provenance.studies)
    difficulty = next(c for c in run.claims if c.claim == "difficulty")
    assert [c.name for c in difficulty.conditions] == ["Spearman(difficulty, -slope)", "slope(hardest) - slope(easiest)"]
    gap = difficulty.conditions[1]
    assert (gap.decided_by, gap.interval.resamples, gap.interval.seed) == ("interval", 1000, 0)
    rtn = next(c for c in run.claims if c.method == "rtn")
    assert rtn.family == "quantization" and [c.strength for c in rtn.provenance.studies[0].configurations][-1] == 0.875


def test_a_schema_1_random_control_keeps_the_direction_that_decided_it(tmp_path):
    body = json.loads(SCHEMA_1.read_text())
    quant = next(r for r in body["records"] if r["claim"] == "quantization")
    body["records"] = [{**quant, "claim": "random", "method": "magnitude-vs-random", "statistic": 0.0, "threshold": 0.0,
                        "holds": False, "details": {"ratios": {}, "dense": {}}}]
    path = tmp_path / "run-old.json"
    path.write_text(json.dumps(body))
    (control,) = read_run_record(path).claims
    assert control.headline.direction == ">" and control.verdict == "fails"  # ">=" at 0 would have held
    assert type(control.details).kind == "legacy"


def test_an_unwritable_results_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CacheError, match="--jd-results"):
        write_run_record(blocker / "results", _claims()[:1], options={})


def test_an_update_may_add_keys_under_extra_only(tmp_path):
    def good(body):
        body["extra"]["ci"] = {"job": 17}

    run = read_run_record(write_run_record(tmp_path / "a", _claims()[:1], options={}, update=good))
    assert run.extra == {"ci": {"job": 17}}

    def bad(body):
        body["options"]["model"] = "other"
        body["extra"]["ci"] = 1

    with pytest.raises(RejectedUpdate, match=r"changed record\['options'\]; plugins may only add keys under "
                                             r"record\['extra'\]") as info:
        write_run_record(tmp_path / "b", _claims()[:1], options={"model": "smollm2"}, update=bad)
    written = read_run_record(info.value.path)  # the measurements are kept, without the plugin's changes
    assert written.options == {"model": "smollm2"} and written.extra == {} and len(written.claims) == 1

    def not_json(body):
        body["extra"]["when"] = object()

    with pytest.raises(RejectedUpdate, match=r"record\['extra'\]\['when'\] .* is not JSON"):
        write_run_record(tmp_path / "c", _claims()[:1], options={}, update=not_json)


CLAIM_TEST = """
import json
from pathlib import Path

import pytest

from junkdna_core.results.schema import ClaimRecord, load

CLAIM = json.loads(Path({run!r}).read_text())["claims"][0]


def test_claim(jd_claim):
    jd_claim(load(ClaimRecord, CLAIM))
"""

EXTRA_PLUGIN = """
def pytest_junkdna_update_record(config, record):
    record["extra"]["ci"] = {{"pipeline": 42, "runner": "gpu-node-3"}}
    {more}
"""


def test_a_conftest_plugin_adds_a_field_to_the_run_record(pytester: pytest.Pytester):
    pytester.makepyfile(test_claim=CLAIM_TEST.format(run=str(RUN)))
    pytester.makeconftest(EXTRA_PLUGIN.format(more=""))
    result = pytester.runpytest_subprocess("--jd-results", "res", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    (path,) = (pytester.path / "res").glob("run-*.json")
    run = read_run_record(path)
    assert run.extra == {"ci": {"pipeline": 42, "runner": "gpu-node-3"}}
    assert run.claims[0].test == "test_claim.py::test_claim" and run.claims[0].asserted


def test_a_plugin_that_changes_anything_else_fails_the_session_naming_the_key(pytester: pytest.Pytester):
    pytester.makepyfile(test_claim=CLAIM_TEST.format(run=str(RUN)))
    pytester.makeconftest(EXTRA_PLUGIN.format(more='record["claims"] = []'))
    result = pytester.runpytest_subprocess("--jd-results", "res", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str()
    assert ("junkdna: error: a pytest_junkdna_update_record hook changed record['claims']; plugins may only add keys "
            "under record['extra']; the run record ") in out and "was written without the plugins' changes" in out
    (path,) = (pytester.path / "res").glob("run-*.json")
    run = read_run_record(path)
    assert len(run.claims) == 1 and run.extra == {}
