"""`orbiter rules test` reads promtool's unit-test format and reports failures as promtool does."""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbiter.satellite import rules_cli
from orbiter.satellite.rules import AppendError, is_stale
from orbiter.satellite.ruletest import (
    InMemoryStorage,
    SeriesError,
    expand_values,
    parse_metric,
    run_test_file,
)
from orbiter.satellite.series import Matcher, MatchOp

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("1 2 3", [1, 2, 3]),
        ("1+1x3", [1, 2, 3, 4]),
        ("10-2x2", [10, 8, 6]),
        ("5x2", [5, 5, 5]),
        ("-1x1", [-1, -1]),
        ("1 _ 3", [1, None, 3]),
        ("_x3", [None, None, None]),
        ("0x10", [0] * 11),
        ("1.5e3 .5", [1500, 0.5]),
        ("0+60x2 0+1x1", [0, 60, 120, 0, 1]),
        ("Inf -Inf", [math.inf, -math.inf]),
    ],
)
def test_series_values_expand_like_promtool(text: str, values: list) -> None:  # type: ignore[type-arg]
    assert expand_values(text) == values


def test_stale_expands_to_the_staleness_marker() -> None:
    (v,) = expand_values("stale")
    assert v is not None and is_stale(v)


@pytest.mark.parametrize("text", ["1+x3", "abc", "1x", "stalex2", "1+1"])
def test_bad_series_values_are_refused(text: str) -> None:
    with pytest.raises(SeriesError):
        expand_values(text)


@given(st.integers(-100, 100), st.integers(-10, 10), st.integers(0, 50))
def test_a_plus_b_times_n_is_n_plus_one_evenly_spaced_values(a: int, b: int, n: int) -> None:
    sign = "+" if b >= 0 else "-"
    assert expand_values(f"{a}{sign}{abs(b)}x{n}") == [a + b * i for i in range(n + 1)]


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ('up{job="a", instance="x:1"}', (("__name__", "up"), ("instance", "x:1"), ("job", "a"))),
        ("up", (("__name__", "up"),)),
        ('{job="a"}', (("job", "a"),)),
        ("{}", ()),
        ("job:up:sum{a='b'}", (("__name__", "job:up:sum"), ("a", "b"))),
        ('x{a="q\\"t"}', (("__name__", "x"), ("a", 'q"t'))),
    ],
)
def test_metrics_parse_like_prometheus(text: str, labels: tuple) -> None:  # type: ignore[type-arg]
    assert parse_metric(text) == labels


def test_storage_refuses_out_of_order_and_conflicting_samples_but_accepts_repeats() -> None:
    s = InMemoryStorage()
    lbls = (("__name__", "x"),)
    s.append(lbls, 10, 1.0)
    s.append(lbls, 10, 1.0)
    with pytest.raises(AppendError, match="duplicate sample"):
        s.append(lbls, 10, 2.0)
    with pytest.raises(AppendError, match="out of order"):
        s.append(lbls, 5, 2.0)
    s.load(lbls, 5, 2.0)
    assert s.series[lbls] == ([10], [1.0])


def test_storage_selects_by_matchers_within_the_window() -> None:
    s = InMemoryStorage()
    for t in (0, 60, 120):
        s.append((("__name__", "x"), ("job", "a")), t, float(t))
        s.append((("__name__", "x"), ("job", "b")), t, float(t))
    (series,) = s.select([Matcher("job", MatchOp.REGEX, "a|c")], 60, 120)
    assert (dict(series.labels)["job"], list(series.timestamps)) == ("a", [60, 120])


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


RULES = """
    groups:
      - name: g
        rules:
          - alert: Down
            expr: up == 0
            for: 2m
            labels: {severity: page}
            annotations: {summary: "{{ $labels.instance }} is down"}
"""


def test_passing_file_prints_success(tmp_path: Path) -> None:
    write(tmp_path, "r.yml", RULES)
    t = write(
        tmp_path,
        "t.yml",
        """
        rule_files: [r.yml]
        tests:
          - interval: 1m
            input_series:
              - series: 'up{instance="a"}'
                values: '0 0 0'
            alert_rule_test:
              - eval_time: 1m
                alertname: Down
              - eval_time: 2m
                alertname: Down
                exp_alerts:
                  - exp_labels: {severity: page, instance: a}
                    exp_annotations: {summary: a is down}
    """,
    )
    out, err = io.StringIO(), io.StringIO()
    assert rules_cli.test_main([str(t)], out=out, err=err) == 0
    assert out.getvalue() == f"Unit Testing:  {t}\n  SUCCESS\n\n"
    assert err.getvalue() == ""


def test_failing_alert_check_is_reported_in_promtools_words(tmp_path: Path) -> None:
    write(tmp_path, "r.yml", RULES)
    t = write(
        tmp_path,
        "t.yml",
        """
        rule_files: [r.yml]
        tests:
          - name: down
            interval: 1m
            input_series:
              - series: 'up{instance="a"}'
                values: '0 0 0'
            alert_rule_test:
              - eval_time: 2m
                alertname: Down
    """,
    )
    out, err = io.StringIO(), io.StringIO()
    assert rules_cli.test_main([str(t)], out=out, err=err) == 1
    assert err.getvalue() == (
        "  FAILED:\n"
        "    name: down,\n"
        "    alertname: Down, time: 2m, \n"
        "        exp:[], \n"
        "        got:[\n"
        "            0:\n"
        '              Labels:{alertname="Down", instance="a", severity="page"}\n'
        '              Annotations:{summary="a is down"}\n'
        "            ]\n"
    )


def test_failing_expression_lists_expected_and_got_samples(tmp_path: Path) -> None:
    t = write(
        tmp_path,
        "t.yml",
        """
        rule_files: []
        tests:
          - interval: 1m
            input_series:
              - series: 'x{a="1"}'
                values: '1 2'
            promql_expr_test:
              - expr: sum(x)
                eval_time: 1m
                exp_samples:
                  - labels: '{}'
                    value: 3
    """,
    )
    result = run_test_file(str(t))
    assert result.errors == (
        '    expr: "sum(x)", time: 1m,\n        exp: {} 3E+00\n        got: {} 2E+00',
    )


def test_rule_evaluation_error_stops_the_test_group(tmp_path: Path) -> None:
    write(
        tmp_path,
        "r.yml",
        """
        groups:
          - name: g
            rules:
              - record: r
                expr: a + on (j) b
    """,
    )
    t = write(
        tmp_path,
        "t.yml",
        """
        rule_files: [r.yml]
        tests:
          - interval: 1m
            input_series:
              - series: 'a{i="1", j="x"}'
                values: '1'
              - series: 'a{i="2", j="x"}'
                values: '1'
              - series: 'b{j="x"}'
                values: '1'
            promql_expr_test:
              - expr: r
                eval_time: 5m
    """,
    )
    (err,) = run_test_file(str(t)).errors
    assert err.startswith("    rule: r, time: 0s, err: ")


def test_unknown_field_and_missing_alertname_fail_the_file(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yml", "rule_files: []\ntests:\n  - intervall: 1m\n")
    (err,) = run_test_file(str(bad)).errors
    assert "line 3: field intervall not found in type main.testGroup" in err
    missing = write(
        tmp_path,
        "missing.yml",
        """
        tests:
          - alert_rule_test:
              - eval_time: 1m
    """,
    )
    assert run_test_file(str(missing)).errors == (
        "an item under alert_rule_test misses required attribute alertname at eval_time 1m",
    )


def test_missing_rule_file_pattern_warns(tmp_path: Path) -> None:
    t = write(tmp_path, "t.yml", "rule_files: [nothing*.yml]\ntests: []\n")
    result = run_test_file(str(t))
    assert result.passed
    assert result.warnings == (f"  WARNING: no file match pattern {tmp_path}/nothing*.yml",)


def test_check_prints_rule_count_or_errors(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yml", RULES)
    bad = write(tmp_path, "bad.yml", "groups:\n  - name: g\n    rules:\n      - alert: A\n")
    out, err = io.StringIO(), io.StringIO()
    assert rules_cli.check_main([str(good), str(bad)], out=out, err=err) == 1
    assert out.getvalue() == (f"Checking {good}\n  SUCCESS: 1 rules found\n\nChecking {bad}\n\n")
    assert err.getvalue() == (
        f'  FAILED:\n{bad}: 4:9: group "g", rule 1, "A": field \'expr\' must be set in rule\n'
    )


def test_shipped_default_rules_pass_their_tests() -> None:
    result = run_test_file(str(ROOT / "alerts" / "default.rules.test.yml"))
    assert result.errors == ()
