"""`orbiter rules test|check` agree with the real `promtool test|check rules` (Prometheus 2.42).

Every corpus file (tests/rules_corpus/*.test.yml and the shipped alerts/default.rules.test.yml)
runs through both tools; they must pass and fail the same files, and report the same failing
alerts and expressions. Files named `*_fail_*` are written to fail: asserting that promtool
fails them too proves the corpus exercises failure agreement, not only success.

promtool comes from Debian's `prometheus` package (`make deps`). Without it the tests fail,
never skip: a run that silently skipped the comparison would prove nothing.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from orbiter.satellite import rules_cli

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "rules_corpus"
TEST_FILES = [*sorted(CORPUS.glob("*.test.yml")), ROOT / "alerts" / "default.rules.test.yml"]
RULE_FILES = [*sorted(CORPUS.glob("*.rules.yml")), *sorted(CORPUS.glob("*/*.rules.yml")),
              ROOT / "alerts" / "default.rules.yml"]

# Corpus files whose expected values are promtool's but which our evaluator still gets wrong.
# Strict: once the evaluator is fixed the XPASS fails, and the entry must go.
KNOWN_DISAGREEMENTS = {
    "59_go_float_math.test.yml": (
        "math functions and ^ use the C library, Prometheus uses Go's math package: the last "
        "bits differ for ordinary finite inputs (e.g. log10(0.1), tan(1), 1.7 ^ 100.25)"),
    "60_atan2_keeps_metric_name.test.yml": (
        "vector atan2 scalar must keep the metric name as in Prometheus 2.42; ours drops it"),
}

_FAILURE = re.compile(
    r'alertname: (\S+), time: ([^,\s]+),|expr: ("(?:[^"\\]|\\.)*"), time: ([^,\s]+)')


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        # Never a skip: without promtool this test would prove nothing. `make deps` installs it.
        pytest.fail("promtool not found: run `make deps` (Debian package prometheus)")
    return path


def failures(stderr: str) -> list[str]:
    """The failing alert checks and expressions named in promtool-style output, in order."""
    return [f"{m.group(1) or m.group(3)}@{m.group(2) or m.group(4)}"
            for m in _FAILURE.finditer(stderr)]


def run_ours(main, path: Path) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    out, err = io.StringIO(), io.StringIO()
    code = main([str(path)], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_corpus_is_large_enough_and_has_failing_files() -> None:
    assert len(TEST_FILES) >= 40
    assert sum("_fail_" in p.name for p in TEST_FILES) >= 10


def _test_file_param(path: Path):  # type: ignore[no-untyped-def]
    reason = KNOWN_DISAGREEMENTS.get(path.name)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(path, id=path.name, marks=marks)


@pytest.mark.parametrize("path", [_test_file_param(p) for p in TEST_FILES])
def test_unit_test_file_gives_the_same_verdict_as_promtool(promtool: str, path: Path) -> None:
    real = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True,
                          text=True, timeout=60, cwd=path.parent)
    code, _, err = run_ours(rules_cli.test_main, path)
    assert (code == 0) == (real.returncode == 0), (
        f"promtool rc={real.returncode}:\n{real.stderr}\n--- orbiter rc={code}:\n{err}")
    assert failures(err) == failures(real.stderr)
    expected_to_fail = "_fail_" in path.name
    assert (real.returncode != 0) == expected_to_fail, "corpus file name disagrees with promtool"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_rule_file_check_gives_the_same_verdict_as_promtool(promtool: str, path: Path) -> None:
    real = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60)
    code, out, err = run_ours(rules_cli.check_main, path)
    assert (code == 0) == (real.returncode == 0), f"{real.stderr}\n---\n{err}"
    if code == 0:
        assert out == real.stdout
    else:
        assert err.count("\n") >= 2

