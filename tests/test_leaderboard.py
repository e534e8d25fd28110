"""The leaderboard export: golden tables, rankings recomputed by hand, families from the record, unmeasured
records left unranked, the cross-model view, runs merged from several directories, bad input, plots.

The fixture runs (fixtures/leaderboard) are planted studies of two models through the real claims; regenerate
them with ``python tests/leaderboard_fixture.py`` and the golden files (only after a deliberate change of the
output) with ``python tests/test_leaderboard.py``.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from junkdna_core.cli import main
from junkdna_core.config.errors import ConfigError
from junkdna_core.results.export import export_leaderboard, write_leaderboard
from junkdna_core.results.leaderboard import build_leaderboard, parse_formats
from junkdna_core.results.records import read_run_record, read_runs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "leaderboard"
RUNS = sorted(FIXTURES.glob("run-*.json"))
SCHEMA_1 = FIXTURES.parent / "records-schema1" / "run-20250301T120000Z-fixture0.json"
GOLDEN = FIXTURES / "golden"
GOLDEN_FILES = ("leaderboard.md", "claims.csv", "ranking.csv", "scale.csv", "leaderboard.json")
# Drop curves: smollm2 setting2 (magnitude, wanda, rtn, sparsegpt), setting3 (magnitude, wanda, rtn), llama-1b
# setting2 magnitude; slopes per (model, setting) with a difficulty record; pruning beside rtn on two settings;
# drop vs model size for setting2 magnitude.
EXPECTED_PLOTS = 8 + 3 + 2 + 1


def _body(index: int = 0) -> dict:
    return json.loads(RUNS[index].read_text())


def _write_run(directory: Path, body: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"run-{body['run_id']}.json"
    path.write_text(json.dumps(body))
    return path


def _claims(body: dict, claim: str) -> list[dict]:
    return [c for c in body["claims"] if c["claim"] == claim]


def _board():
    return build_leaderboard(read_runs([FIXTURES]))


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_text_outputs_match_golden(tmp_path: Path, name: str) -> None:
    export_leaderboard([FIXTURES], tmp_path, ("md", "csv", "json"))
    assert (tmp_path / name).read_text() == (GOLDEN / name).read_text(), (
        f"{name} differs from {GOLDEN / name}; if the change is intended run `python tests/test_leaderboard.py`")


def test_claims_table_judges_asserted_claims_and_lists_the_others_apart() -> None:
    board = _board()
    records = [c for i in range(len(RUNS)) for c in _body(i)["claims"]]
    asserted = {(c["model"], c["setting"], c["method"], c["claim"]): c["verdict"] for c in records if c["asserted"]}
    assert {(c.model, c.setting, c.method, c.claim): c.verdict for c in board.claims} == asserted
    assert set(asserted.values()) == {"holds", "fails", "undefined"}  # the fixture has all three verdicts
    assert [(c.method, c.claim, c.asserted) for c in board.informational] == [("rtn", "monotonic", False)] * 2
    undefined = next(c for c in board.claims if c.verdict == "undefined")
    assert undefined.statistic is None and undefined.low is None and "undefined" in undefined.reason
    md = (GOLDEN / "leaderboard.md").read_text()
    assert "| smollm2 | setting3 | magnitude-vs-rtn | quantization | – | – | – | >= 0.1 | undefined |" in md
    assert "0.0000 ... fails" not in md


def test_ranking_recomputed_from_the_drops_with_families_from_the_record() -> None:
    body, board = _body(0), _board()
    for setting in ("setting2", "setting3"):
        curves = {c["method"]: c["details"] for c in _claims(body, "monotonic") if c["setting"] == setting}
        means = {}
        for method in ("magnitude", "wanda"):
            d = curves[method]
            hardest = max(d["difficulty"], key=lambda n: d["difficulty"][n])
            easiest = min(d["difficulty"], key=lambda n: d["difficulty"][n])
            assert d["strengths"] == [0.2, 0.4, 0.6]
            hard = [1 + v for v in d["drops"][hardest]]
            easy = [1 + v for v in d["drops"][easiest]]
            means[method] = sum(hard) / 3
            row = next(r for r in board.rankings if (r.model, r.setting, r.method) == ("smollm2", setting, method))
            assert row.family == "pruning" and row.hardest_level == hardest
            assert row.retention_hardest == pytest.approx(hard)
            assert row.easy_hard_gap == pytest.approx(sum(e - h for e, h in zip(easy, hard)) / 3)
            slope = next(c for c in _claims(body, "difficulty") if (c["setting"], c["method"]) == (setting, method))
            assert (row.slope, row.slope_low, row.slope_high) == tuple(
                slope["details"]["slopes"][hardest][k] for k in ("slope", "low", "high"))
        ranked = [r.method for r in sorted(board.rankings, key=lambda r: r.rank or 0)
                  if (r.model, r.setting, r.family) == ("smollm2", setting, "pruning")]
        assert ranked == sorted(means, key=lambda m: -means[m])
        rtn = next(r for r in board.rankings if (r.model, r.setting, r.method) == ("smollm2", setting, "rtn"))
        assert rtn.family == "quantization" and rtn.rank == 1 and rtn.strengths == (0.5, 0.75, 0.8125, 0.875)
        assert rtn.slope is None  # no difficulty record for rtn


def test_a_method_unknown_to_the_registry_is_ranked_by_the_family_its_record_names(tmp_path: Path) -> None:
    body = _body(0)
    for claim in body["claims"]:
        if claim["method"] == "wanda":
            claim["method"] = "my-plugin"
            for study in claim["provenance"]["studies"]:
                study["method"] = "my-plugin"
                for config in study["configurations"]:
                    config["method"] = "my-plugin"
    board = build_leaderboard([read_run_record(_write_run(tmp_path, body))])
    plugin = [r for r in board.rankings if r.method == "my-plugin"]
    assert {r.family for r in plugin} == {"pruning"} and len(plugin) == 2


def test_the_leaderboard_imports_neither_torch_nor_the_method_registry(tmp_path: Path) -> None:
    code = (f"import sys; from pathlib import Path; from junkdna_core.results.export import export_leaderboard; "
            f"export_leaderboard([Path({str(FIXTURES)!r})], Path({str(tmp_path)!r}), ('md', 'csv', 'json')); "
            "bad = [m for m in ('torch', 'transformers', 'junkdna_core.compress.registry') if m in sys.modules]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_a_record_without_measured_levels_is_not_ranked_and_says_why(tmp_path: Path) -> None:
    board = _board()
    assert [(s.model, s.setting, s.method) for s in board.skipped] == [("smollm2", "setting2", "sparsegpt")]
    assert "carry no measured levels" in board.skipped[0].why
    assert all(r.method != "sparsegpt" for r in board.rankings)
    assert any(c.method == "sparsegpt" for c in board.claims)  # its claim is still listed
    md = (GOLDEN / "leaderboard.md").read_text()
    assert "## Not ranked" in md and "| smollm2 | setting2 | sparsegpt | monotonic | its configurations" in md


def test_a_curve_whose_strengths_are_not_its_configurations_is_not_ranked(tmp_path: Path) -> None:
    body = _body(1)
    monotonic = _claims(body, "monotonic")[0]
    monotonic["details"]["strengths"] = [0.1, 0.4, 0.6]
    board = build_leaderboard([read_run_record(_write_run(tmp_path, body))])
    assert not board.rankings and "are not its configurations'" in board.skipped[0].why


def test_cross_model_view_sets_models_side_by_side_and_against_their_size() -> None:
    board = _board()
    assert board.all_models() == ["llama-1b", "smollm2"]
    md = (GOLDEN / "leaderboard.md").read_text()
    assert "| setting | method | claim | smollm2 (135M) | llama-1b (1.24B) |" in md
    values = {c.model: f"{c.statistic:.4f} {c.verdict}" for c in board.claims
              if (c.setting, c.method, c.claim) == ("setting2", "magnitude", "monotonic")}
    assert f"| setting2 | magnitude | monotonic | {values['smollm2']} | {values['llama-1b']} |" in md
    scale = [r for r in board.scale if r.strength == 0.4]
    assert [(r.model, r.parameters) for r in scale] == [("smollm2", 134_515_008), ("llama-1b", 1_235_814_400)]
    for row in scale:
        curve = next(e.record.details for e in board.entries
                     if (e.record.model, e.record.setting, e.record.method, e.record.claim)
                     == (row.model, "setting2", "magnitude", "monotonic"))
        assert row.drop_hardest == pytest.approx(curve.drops[curve.hardest][1])
    one_model = build_leaderboard(read_runs([RUNS[0]]))
    assert not one_model.scale and "## Across models" not in _markdown(one_model)


def _markdown(board) -> str:
    from junkdna_core.results.leaderboard import render_markdown

    return render_markdown(board)


def test_runs_in_two_directories_merge_into_the_one_leaderboard(tmp_path: Path) -> None:
    group1, group2 = tmp_path / "group1", tmp_path / "machine-b" / "group2"
    for run, directory in zip(RUNS, (group1, group2)):
        directory.mkdir(parents=True)
        shutil.copy(run, directory / run.name)
    assert main(["leaderboard", str(group1), str(group2), "--out", str(tmp_path / "two"), "--formats", "md"]) == 0
    assert main(["leaderboard", str(tmp_path), "--out", str(tmp_path / "parent"), "--formats", "md"]) == 0
    for out in ("two", "parent"):
        assert (tmp_path / out / "leaderboard.md").read_text() == (GOLDEN / "leaderboard.md").read_text()
    shutil.copy(RUNS[0], group2 / RUNS[0].name)  # the same run twice (copied to both) counts once
    assert len(read_runs([group1, group2])) == 2
    changed = _body(0)
    changed["options"]["seed"] = 1
    _write_run(group2, changed)
    with pytest.raises(ConfigError, match="are both run 20250301T120000Z-fixture0 but differ"):
        read_runs([group1, group2])


def test_cli_end_to_end_writes_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "board"
    assert main(["leaderboard", str(FIXTURES), "--out", str(out)]) == 0
    assert f"wrote {len(GOLDEN_FILES) + 1 + EXPECTED_PLOTS} files" in capsys.readouterr().out
    for name in GOLDEN_FILES:
        assert (out / name).read_text() == (GOLDEN / name).read_text()
    page = (out / "leaderboard.html").read_text()
    board = _board()
    sections = 2 + len(board.models()) + 1 + 2  # claims, informational, rankings, not ranked, across models, size
    rows = (len(board.claims) + len(board.informational) + len(board.rankings) + len(board.skipped)
            + len({(c.setting, c.method, c.claim) for c in board.claims}) + len(board.scale))
    assert page.count("<tr>") == rows + sections
    plots = sorted((out / "plots").glob("*.png"))
    assert len(plots) == EXPECTED_PLOTS
    for png in plots:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert f"plots/{png.name}" in page
    assert {p.name for p in plots if p.name.startswith(("pruning-vs", "scale"))} == {
        "pruning-vs-quantization-smollm2-setting2-rtn.png", "pruning-vs-quantization-smollm2-setting3-rtn.png",
        "scale-setting2-magnitude.png"}


def test_cli_defaults_read_jd_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "jd-results").mkdir()
    shutil.copy(RUNS[0], tmp_path / "jd-results" / RUNS[0].name)
    monkeypatch.chdir(tmp_path)
    assert main(["leaderboard", "--formats", "md"]) == 0
    assert sorted(p.name for p in (tmp_path / "jd-results" / "leaderboard").iterdir()) == ["leaderboard.md"]


def test_newest_record_wins_per_key(tmp_path: Path) -> None:
    old, new = _body(0), _body(0)
    new.update(run_id="20250303T090000Z-newer", created="2025-03-03T09:00:00+00:00")
    new["claims"] = [c for c in _claims(new, "monotonic") if (c["setting"], c["method"]) == ("setting2", "wanda")]
    new["claims"][0]["test"] = "newer"
    # the newer run is written first and sorts first by name: order must not matter, only `created`
    paths = [_write_run(tmp_path / "a", new), _write_run(tmp_path / "b", old)]
    board = build_leaderboard(read_runs(paths))
    by_key = {(c.setting, c.method, c.claim): c for c in board.claims}
    winner = by_key[("setting2", "wanda", "monotonic")]
    assert (winner.test, winner.run_id) == ("newer", "20250303T090000Z-newer")
    assert by_key[("setting3", "wanda", "monotonic")].run_id == old["run_id"]
    assert [r["run_id"] for r in board.provenance["runs"]] == [old["run_id"], new["run_id"]]


def test_a_run_of_several_models_lists_each_of_them(tmp_path: Path) -> None:
    both = _body(0)  # one run of --jd-model smollm2,llama-1b: both models' claims in one record
    both["claims"] += _body(1)["claims"]
    both["options"].update(models=["smollm2", "llama-1b"], model_labels=["smollm2", "llama-1b"])
    board = build_leaderboard(read_runs([_write_run(tmp_path, both)]))
    assert [r["models"] for r in board.provenance["runs"]] == [["llama-1b", "smollm2"]]
    assert board.all_models() == ["llama-1b", "smollm2"]


def test_free_form_records_are_kept_but_never_ranked(tmp_path: Path) -> None:
    body = _body(0)
    body["records"] = [{"test": "benchmarks/perf/test_x.py::test_speed", "seconds": 1.5, "claim": "anything"}]
    run = read_run_record(_write_run(tmp_path, body))
    assert run.records == ({"test": "benchmarks/perf/test_x.py::test_speed", "seconds": 1.5, "claim": "anything"},)
    assert len(build_leaderboard([run]).claims) == len(_board().claims) - 3  # llama-1b's three are in run 2


def test_undefined_claims_without_details_are_listed_but_not_plotted_or_ranked(tmp_path: Path) -> None:
    body = _body(1)
    for claim in body["claims"]:
        claim.update(verdict="undefined", details=None, reason="options-4: the dense score is 0")
        for condition in claim["conditions"]:
            condition.update(statistic=None, interval=None, pvalue=None)
    out = tmp_path / "board"
    assert main(["leaderboard", str(_write_run(tmp_path / "runs", body).parent), "--out", str(out)]) == 0
    board = build_leaderboard(read_runs([tmp_path / "runs"]))
    assert {c.verdict for c in board.claims} == {"undefined"} and not board.rankings
    assert not list((out / "plots").glob("*.png"))


def test_schema_1_records_are_read_upgraded_and_not_ranked(tmp_path: Path) -> None:
    board = build_leaderboard(read_runs([SCHEMA_1]))
    assert len(board.claims) == 14 and not board.rankings  # schema 1 recorded nothing measured after compression
    assert {s.method for s in board.skipped} == {"magnitude", "wanda", "rtn"}
    assert "upgraded on read from run record schema 1" in _markdown(board)
    assert main(["leaderboard", str(SCHEMA_1), "--out", str(tmp_path), "--formats", "md,csv"]) == 0


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    body = _body(1)

    def edited(change) -> str:
        copy = json.loads(json.dumps(body))
        change(copy)
        return json.dumps(copy)

    cases = {
        "not-json": ("run-x.json", "{not json", "unreadable JSON"),
        "no-schema": ("run-y.json", json.dumps({"hello": 1}), 'with a "schema" key'),
        "schema": ("run-z.json", json.dumps({**body, "schema": 3}), "unknown run record schema 3"),
        "direction": ("run-w.json", edited(lambda b: b["claims"][0]["conditions"][0].update(direction="=>")),
                      r"claims\[0\]\.conditions\[0\]\.direction: expected one of '>=', '>', '<=', '<'; got '=>'"),
        "verdict": ("run-u.json", edited(lambda b: b["claims"][0].update(
                        verdict="holds" if b["claims"][0]["verdict"] != "holds" else "fails")),
                    r"claims\[0\]\.verdict: '\w+' disagrees with its conditions, which give '\w+'"),
        "interval": ("run-t.json", edited(lambda b: b["claims"][2]["conditions"][0].update(interval=None)),
                     r"claims\[2\]\.conditions: every defined condition needs an interval"),
        "missing": ("run-s.json", edited(lambda b: b["claims"][1]["provenance"].pop("studies")),
                    r"claims\[1\]\.provenance\.studies: missing"),
        "details": ("run-r.json", edited(lambda b: b["claims"][2]["details"].update(kind="curvy")),
                    r"claims\[2\]\.details\.kind: expected one of 'curve'"),
        "empty-run": ("run-v.json", json.dumps({**body, "claims": []}), "no claim records"),
    }
    out = {}
    for name, (filename, text, message) in cases.items():
        path = tmp_path / name / filename
        path.parent.mkdir()
        path.write_text(text)
        out[name] = (path, message)
    (tmp_path / "empty").mkdir()
    out["empty-dir"] = (tmp_path / "empty", "holds no run records")
    out["nowhere"] = (tmp_path / "nowhere", "does not exist")
    return out


BAD_CASES = ["not-json", "no-schema", "schema", "direction", "verdict", "interval", "missing", "details", "empty-run",
             "empty-dir", "nowhere"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_raises_config_error_naming_the_file_and_the_field(tmp_path: Path, case: str,
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
    # smollm2: per setting magnitude, wanda at 3 strengths and rtn at 4 bit widths; llama-1b: magnitude at 3
    assert len(rows) == 2 * (3 + 3 + 4) + 3
    for row in rows:
        assert float(row["retention_hardest"]) <= 1.1 and row["model"] in ("smollm2", "llama-1b")


def regenerate_golden() -> None:
    """Rewrite the golden files from the fixture run records."""
    GOLDEN.mkdir(exist_ok=True)
    write_leaderboard(build_leaderboard(read_runs([FIXTURES])), GOLDEN, ("md", "csv", "json"))
    for name in GOLDEN_FILES:
        print(f"wrote {GOLDEN / name}")


if __name__ == "__main__":
    regenerate_golden()
