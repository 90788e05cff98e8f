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
import subprocess
from pathlib import Path

import pytest
import yaml

from orbiter.satellite import rules_cli
from orbiter.satellite.promql.aggregations import SUPPORTED_AGGREGATIONS
from orbiter.satellite.promql.engine import SUPPORTED_FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "rules_corpus"
TEST_FILES = [*sorted(CORPUS.glob("*.test.yml")), ROOT / "alerts" / "default.rules.test.yml"]
RULE_FILES = [*sorted(CORPUS.glob("*.rules.yml")), *sorted(CORPUS.glob("*/*.rules.yml")),
              ROOT / "alerts" / "default.rules.yml"]

# Corpus files whose expected values are promtool's but which our evaluator still gets wrong.
# Strict: once the evaluator is fixed the XPASS fails, and the entry must go.
KNOWN_DISAGREEMENTS: dict[str, str] = {}

_FAILURE = re.compile(
    r'alertname: (\S+), time: ([^,\s]+),|expr: ("(?:[^"\\]|\\.)*"), time: ([^,\s]+)')


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


# --- coverage: every function, aggregation, operator and modifier is in the corpus -----------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_NUMBER = re.compile(
    r"(?<![\w.])(?:0x[0-9a-f]+|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|inf|nan)(?![\w.])", re.I)
_OPERAND = r"(?<=[\w)\]}])\s*"  # a binary operator follows an operand, a unary one does not


def _binary(op: str, suffix: str = "") -> re.Pattern[str]:
    return re.compile(_OPERAND + re.escape(op) + suffix)


# What the corpus must exercise besides every function and aggregation: each binary operator
# (comparisons both filtering and with bool), the matching and grouping modifiers, @, offset
# and subqueries. Patterns run over expressions without strings, label matchers and ranges.
REQUIRED_SYNTAX: dict[str, re.Pattern[str]] = {
    **{op: _binary(op) for op in ("+", "-", "*", "/", "%", "^")},
    **{op: _binary(op, r"(?![=~])(?!\s*bool\b)") for op in ("==", "!=", "<", ">", "<=", ">=")},
    **{f"{op} bool": _binary(op, r"(?![=~])\s*bool\b")
       for op in ("==", "!=", "<", ">", "<=", ">=")},
    **{word: re.compile(_OPERAND + rf"\b{word}\b") for word in ("atan2", "and", "or", "unless")},
    "on(...)": re.compile(r"\bon\s*\("),
    "ignoring(...)": re.compile(r"\bignoring\s*\("),
    "group_left": re.compile(r"\bgroup_left\b"),
    "group_left(labels)": re.compile(r"\bgroup_left\s*\(\s*\w"),
    "group_right": re.compile(r"\bgroup_right\b"),
    "group_right(labels)": re.compile(r"\bgroup_right\s*\(\s*\w"),
    "by": re.compile(r"\bby\s*\("),
    "without": re.compile(r"\bwithout\s*\("),
    "offset": re.compile(r"\boffset\b"),
    "@": re.compile(r"@"),
    "unary -": re.compile(r"(?<![\w)\]}\s])\s*-\s*[\w(]|^\s*-"),
}


def _load(path: Path) -> dict:  # type: ignore[type-arg]
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return {}  # the corpus's deliberately broken files
    return doc if isinstance(doc, dict) else {}


def corpus_expressions() -> list[str]:
    """Every PromQL expression the passing unit-test files evaluate: their promql_expr_test
    expressions and the rules of the rule files they load. A `_fail_` file only shows that
    both tools fail the same expressions, not that they computed the same values."""
    exprs: list[str] = []
    rule_files: set[Path] = set()
    for path in TEST_FILES:
        if "_fail_" in path.name or path.name in KNOWN_DISAGREEMENTS:
            continue  # coverage must come from files both tools pass
        doc = _load(path)
        for pattern in doc.get("rule_files") or []:
            rule_files.update(path.parent.glob(str(pattern)))
        for test in doc.get("tests") or []:
            exprs += [str(case["expr"]) for case in test.get("promql_expr_test") or []]
    for path in sorted(rule_files):
        for group in _load(path).get("groups") or []:
            if isinstance(group, dict):
                exprs += [str(rule["expr"]) for rule in group.get("rules") or []
                          if isinstance(rule, dict) and "expr" in rule]
    return exprs


def _syntax_only(expr: str) -> str:
    """The expression without strings, label matchers, ranges and number literals."""
    expr = _STRING.sub('""', expr)
    expr = _MATCHERS.sub("{}", expr)
    expr = _BRACKETS.sub("[]", expr)
    return _NUMBER.sub("1", expr)


def missing_from_corpus(exprs: list[str]) -> list[str]:
    syntax = [_syntax_only(e) for e in exprs]
    missing = [f"function {name}" for name in sorted(SUPPORTED_FUNCTIONS)
               if not any(re.search(rf"\b{name}\s*\(", s) for s in syntax)]
    missing += [f"aggregation {name}" for name in sorted(SUPPORTED_AGGREGATIONS)
                if not any(re.search(rf"\b{name}\s*(?:\(|by\b|without\b)", s) for s in syntax)]
    missing += [f"operator {name}" for name, pattern in REQUIRED_SYNTAX.items()
                if not any(pattern.search(s) for s in syntax)]
    subquery = re.compile(r"\[[^\[\]]*:[^\[\]]*\]")
    if not any(subquery.search(_MATCHERS.sub("{}", _STRING.sub('""', e))) for e in exprs):
        missing.append("subquery")
    return missing


def test_corpus_covers_every_function_and_operator() -> None:
    exprs = corpus_expressions()
    assert len(exprs) >= 300
    assert missing_from_corpus(exprs) == []


def test_coverage_check_notices_what_is_missing() -> None:
    """The coverage scan is not vacuous: it sees operators only where they really are."""
    assert missing_from_corpus(["x"]) == missing_from_corpus([])
    only = missing_from_corpus(['a{k!="v", j=~"x"} >= bool b offset 1m', "stdvar by (k) (c[5m:])"])
    assert "operator >= bool" not in only and "operator offset" not in only
    assert "aggregation stdvar" not in only and "subquery" not in only
    assert "operator !=" in only  # a label matcher is no comparison
    assert "operator >=" in only  # the bool form is no filtering comparison
    assert "operator -" in only and "function exp" in only
    assert "operator -" not in missing_from_corpus(["1e-05 - x"])
    assert "operator -" in missing_from_corpus(["clamp(x, -1e-05, 1)"])
    assert "operator or" in missing_from_corpus(["vector(1)", "sort(x)"])  # no word's tail
    assert "operator or" not in missing_from_corpus(["x or vector(1)"])
