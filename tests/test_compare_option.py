"""pytest --jd-compare BASELINE: a regression against a baseline run record fails the session."""

import json
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "fixtures" / "leaderboard" / "run-20250301T120000Z-fixture0.json"
PLUGIN_ARGS = ()


def _recording_test(pytester: pytest.Pytester, records: list[dict]) -> None:
    pytester.makepyfile(test_rec=f"""
import json
RECORDS = json.loads({json.dumps(json.dumps(records))})

def test_records(jd_record):
    for record in RECORDS:
        jd_record(record)
""")


def test_jd_compare_option_fails_the_session_on_a_regression(pytester: pytest.Pytester) -> None:
    records = [{k: v for k, v in r.items() if k != "test"} for r in json.loads(RUN.read_text())["records"]]
    _recording_test(pytester, records)
    same = pytester.runpytest(*PLUGIN_ARGS, "--jd-results", "res", "--jd-compare", str(RUN))
    assert same.ret == 0
    same.stdout.fnmatch_lines(["*junkdna compare*", "compare passed: 0 regression*"])
    (monotonic,) = [r for r in records if (r["setting"], r["method"], r["claim"]) == ("setting2", "magnitude",
                                                                                          "monotonic")]
    monotonic["details"]["drops"]["options-4"][1] -= 0.2
    _recording_test(pytester, records)
    worse = pytester.runpytest(*PLUGIN_ARGS, "--jd-results", "res", "--jd-compare", str(RUN))
    assert worse.ret == pytest.ExitCode.TESTS_FAILED
    worse.stdout.fnmatch_lines(["REGRESSION smollm2 setting2 magnitude monotonic: retention(options-4) *(-0.200)*"])
    assert pytester.runpytest(*PLUGIN_ARGS, "--jd-results", "res", "--jd-compare", str(RUN),
                              "--jd-compare-tolerance", "0.3").ret == 0
    missing = pytester.runpytest(*PLUGIN_ARGS, "--jd-compare", str(pytester.path / "nowhere"))
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
