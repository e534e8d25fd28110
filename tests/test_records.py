"""Run records: written with provenance, read back unchanged by the leaderboard and compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from junkdna_core.config.errors import CacheError
from junkdna_core.results.leaderboard import load_run_record
from junkdna_core.results.records import RECORD_SCHEMA, write_run_record

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "leaderboard" / "run-20250301T120000Z-fixture0.json"


def test_round_trip_keeps_every_record_and_the_provenance(tmp_path):
    records = json.loads(FIXTURE.read_text())["records"]
    path = write_run_record(tmp_path, records, options={"model": "smollm2", "budget": "smoke"})
    body = json.loads(path.read_text())
    assert body["schema"] == RECORD_SCHEMA
    assert body["environment"]["packages"]["torch"] and body["environment"]["python"]
    assert sorted(json.dumps(r, sort_keys=True) for r in body["records"]) == sorted(
        json.dumps(r, sort_keys=True) for r in records)
    run = load_run_record(path)
    assert run.run_id == body["run_id"]
    assert len(run.entries) == len(records)
    assert not list(tmp_path.glob("*.tmp"))  # written by atomic rename


def test_an_unwritable_results_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CacheError, match="--jd-results"):
        write_run_record(blocker / "results", [{"claim": "x"}], options={})
