"""pytest --jd-compare BASELINE: a regression against a baseline run record fails the session."""

import json
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "fixtures" / "leaderboard" / "run-20250301T120000Z-fixture0.json"
PLUGIN_ARGS = ("-p", "no:cacheprovider")


def _recording_test(pytester: pytest.Pytester, claims: list[dict]) -> None:
    """One test per claim that records it as the benchmarks do (only claims that pass or are informational)."""
    pytester.makepyfile(test_rec=f"""
import json

import pytest

from junkdna_core.results.schema import ClaimRecord, load

CLAIMS = json.loads({json.dumps(json.dumps(claims))})


@pytest.mark.parametrize("claim", CLAIMS)
def test_records(jd_claim, claim):
    jd_claim(load(ClaimRecord, claim), asserted=claim["asserted"])
""")


def test_jd_compare_option_fails_the_session_on_a_regression(pytester: pytest.Pytester) -> None:
    claims = [c for c in json.loads(RUN.read_text())["claims"] if c["verdict"] == "holds" or not c["asserted"]]
    _recording_test(pytester, claims)
    same = pytester.runpytest(*PLUGIN_ARGS, "--jd-results", "res", "--jd-compare", str(RUN))
    assert same.ret == 0
    same.stdout.fnmatch_lines(["*junkdna compare*", "compare passed: 0 regression*"])
    (monotonic,) = [c for c in claims if (c["setting"], c["method"], c["claim"]) == ("setting2", "magnitude",
                                                                                       "monotonic")]
    monotonic["details"]["drops"]["options-4"][1] -= 0.2
    _recording_test(pytester, claims)
    worse = pytester.runpytest(*PLUGIN_ARGS, "--jd-results", "res", "--jd-compare", str(RUN))
    assert worse.ret == pytest.ExitCode.TESTS_FAILED
    worse.stdout.fnmatch_lines(["REGRESSION smollm2 setting2 magnitude monotonic: retention(options-4) *(-0.200)*"])
    assert pytester.runpytest(*PLUGIN_ARGS, "--jd-results", "res", "--jd-compare", str(RUN),
                              "--jd-compare-tolerance", "0.3").ret == 0
    missing = pytester.runpytest(*PLUGIN_ARGS, "--jd-compare", str(pytester.path / "nowhere"))
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
