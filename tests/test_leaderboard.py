"""The leaderboard export: golden tables, rankings recomputed by hand, newest run wins, bad input, plots.

Regenerate the golden files (only after a deliberate change of the output) with
``python tests/test_leaderboard.py``.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from junkdna_core.cli import main
from junkdna_core.config.errors import ConfigError
from junkdna_core.results.export import export_leaderboard, write_leaderboard
from junkdna_core.results.leaderboard import build_leaderboard, load_run_record, parse_formats

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "leaderboard"
RUN = FIXTURES / "run-20250301T120000Z-fixture0.json"
GOLDEN = FIXTURES / "golden"
GOLDEN_FILES = ("leaderboard.md", "claims.csv", "ranking.csv", "leaderboard.json")
# 2 settings x 3 methods of drop curves, 2 slope plots, 2 pruning-vs-quantization pairs.
EXPECTED_PLOTS = 6 + 2 + 2


def _fixture_body() -> dict:
    return json.loads(RUN.read_text())


def _write_run(directory: Path, body: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"run-{body['run_id']}.json"
    path.write_text(json.dumps(body))
    return path


def _records(body: dict, claim: str) -> list[dict]:
    return [r for r in body["records"] if r["claim"] == claim]


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_text_outputs_match_golden(tmp_path: Path, name: str) -> None:
    export_leaderboard([RUN], tmp_path, ("md", "csv", "json"))
    assert (tmp_path / name).read_text() == (GOLDEN / name).read_text(), (
        f"{name} differs from {GOLDEN / name}; if the change is intended run `python tests/test_leaderboard.py`")


def test_claims_table_has_every_record_with_its_verdict() -> None:
    board = build_leaderboard([load_run_record(RUN)])
    body = _fixture_body()
    assert len(board.claims) == len(body["records"])
    expected = {(r["setting"], r["method"], r["claim"]): r["holds"] for r in body["records"]}
    assert {(c.setting, c.method, c.claim): c.holds for c in board.claims} == expected
    assert not all(expected.values()) and any(expected.values())  # the fixture has both verdicts


def test_ranking_recomputed_from_the_drops() -> None:
    body = _fixture_body()
    board = build_leaderboard([load_run_record(RUN)])
    for setting in ("setting2", "setting3"):
        curves = {r["method"]: r["details"] for r in _records(body, "monotonic") if r["setting"] == setting}
        pruning = {m: d for m, d in curves.items() if m in ("magnitude", "wanda")}
        common = sorted(set.intersection(*(set(d["strengths"]) for d in pruning.values())))
        assert common == [0.2, 0.4, 0.6]
        means = {}
        for method, d in pruning.items():
            hardest = max(d["difficulty"], key=lambda n: d["difficulty"][n])
            easiest = min(d["difficulty"], key=lambda n: d["difficulty"][n])
            hard = [1 + d["drops"][hardest][d["strengths"].index(s)] for s in common]
            easy = [1 + d["drops"][easiest][d["strengths"].index(s)] for s in common]
            means[method] = sum(hard) / 3
            row = next(r for r in board.rankings if r.setting == setting and r.method == method)
            assert row.family == "pruning" and row.hardest_level == hardest
            assert row.retention_hardest == pytest.approx(hard)
            assert row.easy_hard_gap == pytest.approx(sum(e - h for e, h in zip(easy, hard)) / 3)
            slope = next(r for r in _records(body, "difficulty") if r["setting"] == setting and r["method"] == method)
            assert (row.slope, row.slope_low, row.slope_high) == tuple(
                slope["details"]["slopes"][hardest][k] for k in ("slope", "low", "high"))
        expected_order = sorted(means, key=lambda m: -means[m])
        ranked = [r.method for r in sorted(board.rankings, key=lambda r: r.rank or 0)
                  if r.setting == setting and r.family == "pruning"]
        assert ranked == expected_order
        rtn = next(r for r in board.rankings if r.setting == setting and r.method == "rtn")
        assert rtn.family == "quantization" and rtn.rank == 1 and rtn.strengths == (0.5, 0.75, 0.8125, 0.875)
        assert rtn.slope is None  # no difficulty record for rtn


def test_cli_end_to_end_writes_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "board"
    assert main(["leaderboard", str(FIXTURES), "--out", str(out)]) == 0
    assert f"wrote {len(GOLDEN_FILES) + 1 + EXPECTED_PLOTS} files" in capsys.readouterr().out
    for name in GOLDEN_FILES:
        assert (out / name).read_text() == (GOLDEN / name).read_text()
    page = (out / "leaderboard.html").read_text()
    assert page.count("<tr>") == len(_fixture_body()["records"]) + 1 + 6 + 1  # claims, rankings, headers
    plots = sorted((out / "plots").glob("*.png"))
    assert len(plots) == EXPECTED_PLOTS
    for png in plots:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert f"plots/{png.name}" in page
    assert {p.name for p in plots if p.name.startswith("pruning-vs")} == {
        "pruning-vs-quantization-smollm2-setting2-rtn.png", "pruning-vs-quantization-smollm2-setting3-rtn.png"}


def test_cli_defaults_read_jd_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "jd-results").mkdir()
    shutil.copy(RUN, tmp_path / "jd-results" / RUN.name)
    monkeypatch.chdir(tmp_path)
    assert main(["leaderboard", "--formats", "md"]) == 0
    assert sorted(p.name for p in (tmp_path / "jd-results" / "leaderboard").iterdir()) == ["leaderboard.md"]


def test_newest_record_wins_per_key(tmp_path: Path) -> None:
    old = _fixture_body()
    new = _fixture_body()
    new.update(run_id="20250302T090000Z-newer", created="2025-03-02T09:00:00+00:00")
    new["records"] = [dict(r, statistic=-0.5, holds=False) for r in _records(new, "monotonic")
                      if r["setting"] == "setting2" and r["method"] == "magnitude"]
    # the newer run is written first and sorts first by name: order must not matter, only `created`
    paths = [_write_run(tmp_path / "a", new), _write_run(tmp_path / "b", old)]
    board = build_leaderboard([load_run_record(p) for p in paths])
    assert len(board.claims) == len(old["records"])
    by_key = {(c.setting, c.method, c.claim): c for c in board.claims}
    winner = by_key[("setting2", "magnitude", "monotonic")]
    assert (winner.statistic, winner.holds, winner.run_id) == (-0.5, False, "20250302T090000Z-newer")
    assert by_key[("setting3", "magnitude", "monotonic")].run_id == old["run_id"]
    assert [r["run_id"] for r in board.provenance["runs"]] == [old["run_id"], new["run_id"]]


def test_records_without_a_claim_are_skipped(tmp_path: Path) -> None:
    body = _fixture_body()
    body["records"].append({"test": "benchmarks/perf/test_x.py::test_speed", "seconds": 1.5})
    board = build_leaderboard([load_run_record(_write_run(tmp_path, body))])
    assert len(board.claims) == len(_fixture_body()["records"])


def test_undefined_claims_are_listed_but_not_plotted_or_ranked(tmp_path: Path) -> None:
    body = _fixture_body()
    for record in body["records"]:
        if record["claim"] in ("monotonic", "difficulty") and record["method"] == "wanda":
            record.update(statistic_name="undefined", statistic=0.0, holds=False, details={},
                          reason="undefined: options-4: the dense score is 0; the normalized drop is undefined")
    out = tmp_path / "board"
    assert main(["leaderboard", str(_write_run(tmp_path / "runs", body).parent), "--out", str(out)]) == 0
    board = build_leaderboard([load_run_record(next((tmp_path / "runs").glob("run-*.json")))])
    assert len(board.claims) == len(body["records"])
    assert all(row.method != "wanda" for row in board.rankings)
    assert not list((out / "plots").glob("drop-*wanda*.png"))


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    cases = {
        "not-json": ("run-x.json", "{not json", "unreadable JSON"),
        "no-keys": ("run-y.json", json.dumps({"hello": 1}), "missing keys"),
        "schema": ("run-z.json", json.dumps({**_fixture_body(), "schema": 2}), "unknown run record schema 2"),
        "no-details": ("run-w.json", json.dumps({**_fixture_body(), "records": [
            {k: v for k, v in _records(_fixture_body(), "monotonic")[0].items() if k != "details"}]}),
            "lacks details"),
        "empty-run": ("run-v.json", json.dumps({**_fixture_body(), "records": []}), "no claim records"),
    }
    out = {}
    for name, (filename, text, message) in cases.items():
        path = tmp_path / name / filename
        path.parent.mkdir()
        path.write_text(text)
        out[name] = (path, message)
    (tmp_path / "empty").mkdir()
    out["empty-dir"] = (tmp_path / "empty", "holds no run records")
    out["missing"] = (tmp_path / "nowhere", "does not exist")
    return out


@pytest.mark.parametrize("case", ["not-json", "no-keys", "schema", "no-details", "empty-run", "empty-dir", "missing"])
def test_bad_input_raises_config_error_naming_the_path(tmp_path: Path, case: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path, message = _bad_inputs(tmp_path)[case]
    with pytest.raises(ConfigError, match=message) as info:
        export_leaderboard([path], tmp_path / "out", ("md",))
    assert str(path) in str(info.value)
    assert not (tmp_path / "out").exists()
    assert main(["leaderboard", str(path), "--out", str(tmp_path / "out"), "--formats", "md"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("junkdna: error: ") and str(path) in err


@pytest.mark.parametrize("text", ["", "md,pdf", "xlsx"])
def test_unknown_format_is_rejected(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="subset of md,csv,json,html,png"):
        parse_formats(text)
    with pytest.raises(SystemExit) as exit_info:  # an argparse usage error, before anything is read
        main(["leaderboard", str(FIXTURES), "--formats", text])
    assert exit_info.value.code == 2
    assert "argument --formats: --formats takes a comma-separated subset" in capsys.readouterr().err


def test_parse_formats_keeps_order_and_drops_repeats() -> None:
    assert parse_formats(" CSV,md,csv ") == ("csv", "md")


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_golden_ranking_csv_is_tidy() -> None:
    rows = _csv_rows(GOLDEN / "ranking.csv")
    assert len(rows) == 2 * (3 + 3 + 4)  # per setting: magnitude, wanda at 3 strengths, rtn at 4 bit widths
    for row in rows:
        assert float(row["retention_hardest"]) <= 1.1 and row["model"] == "smollm2"


def regenerate_golden() -> None:
    """Rewrite the golden files from the fixture run record."""
    GOLDEN.mkdir(exist_ok=True)
    write_leaderboard(build_leaderboard([load_run_record(RUN)]), GOLDEN, ("md", "csv", "json"))
    for name in GOLDEN_FILES:
        print(f"wrote {GOLDEN / name}")


if __name__ == "__main__":
    regenerate_golden()
