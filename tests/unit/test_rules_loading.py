"""Rule files load like Prometheus's, and every problem names file, group, rule and line."""

from __future__ import annotations

import textwrap

import pytest

from orbiter.satellite.rules import (
    AlertingRule,
    DurationError,
    RecordingRule,
    RuleFileInvalid,
    format_duration,
    format_go_duration,
    load_rule_files,
    parse_duration,
    parse_rule_file,
)


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_rule_file(textwrap.dedent(text), "rules.yml")


def errors_of(text: str) -> list[str]:
    with pytest.raises(RuleFileInvalid) as e:
        parse(text)
    return [str(x) for x in e.value.errors]


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("5m", 300_000),
        ("1h30m", 5_400_000),
        ("1d", 86_400_000),
        ("90s", 90_000),
        ("1w", 604_800_000),
        ("250ms", 250),
        ("1y", 31_536_000_000),
    ],
)
def test_durations_parse_like_prometheus(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "1.5m", "5", "m", "5m1h", "-1m", "1 m"])
def test_invalid_durations_are_refused(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("ms", "model", "go"),
    [
        (0, "0s", "0s"),
        (60_000, "1m", "1m0s"),
        (5_400_000, "1h30m", "1h30m0s"),
        (90_000, "1m30s", "1m30s"),
        (500, "500ms", "500ms"),
        (86_400_000, "1d", "24h0m0s"),
    ],
)
def test_durations_print_in_both_prometheus_styles(ms: int, model: str, go: str) -> None:
    assert format_duration(ms) == model
    assert format_go_duration(ms) == go


def test_a_valid_file_yields_groups_and_rules_in_order() -> None:
    groups = parse("""
        groups:
          - name: g
            interval: 30s
            limit: 5
            rules:
              - record: job:up:sum
                expr: sum by (job) (up)
                labels: {team: infra}
              - alert: Down
                expr: up == 0
                for: 5m
                keep_firing_for: 10m
                labels: {severity: page}
                annotations: {summary: "{{ $labels.instance }} down"}
    """)
    (g,) = groups
    assert (g.name, g.interval_ms, g.limit, g.file) == ("g", 30_000, 5, "rules.yml")
    rec, alert = g.rules
    assert isinstance(rec, RecordingRule) and rec.labels == (("team", "infra"),)
    assert isinstance(alert, AlertingRule)
    assert (alert.for_ms, alert.keep_firing_for_ms) == (300_000, 600_000)
    assert alert.annotations == (("summary", "{{ $labels.instance }} down"),)
    assert alert.line == 10


def test_empty_file_has_no_groups() -> None:
    assert parse("") == []


def test_unparsable_expression_names_file_line_group_and_rule() -> None:
    (err,) = errors_of("""
        groups:
          - name: g
            rules:
              - alert: A
                expr: sum(up
    """)
    assert err.startswith('rules.yml: 6:15: group "g", rule 1, "A": could not parse expression')


def test_unsupported_promql_is_refused_at_load_naming_the_construct() -> None:
    (err,) = errors_of("""
        groups:
          - name: g
            rules:
              - record: limited
                expr: limitk(2, x)
    """)
    assert 'rules.yml: 6:15: group "g", rule 1, "limited": unsupported PromQL construct' in err
    assert "limitk" in err


def test_unsupported_template_function_is_refused_at_load() -> None:
    (err,) = errors_of("""
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
                annotations:
                  summary: '{{ $value | nosuch }}'
    """)
    assert 'group "g", rule 1, "A": annotation "summary": template: __alert_A:1:' in err
    assert 'function "nosuch" not defined' in err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "- record: r\n  expr: up\n  annotations: {a: b}",
            "invalid field 'annotations' in recording rule",
        ),
        ("- record: r\n  expr: up\n  for: 5m", "invalid field 'for' in recording rule"),
        (
            "- record: r\n  expr: up\n  keep_firing_for: 5m",
            "invalid field 'keep_firing_for' in recording rule",
        ),
        ("- record: 'bad name'\n  expr: up", "invalid recording rule name: bad name"),
        ("- alert: A\n  record: r\n  expr: up", "only one of 'record' and 'alert' must be set"),
        ("- expr: up", "one of 'record' or 'alert' must be set"),
        ("- alert: A", "field 'expr' must be set in rule"),
        ("- alert: A\n  expr: up\n  labels: {bad-name: x}", "invalid label name: bad-name"),
        ("- alert: A\n  expr: up\n  labels: {__name__: x}", "invalid label name: __name__"),
        (
            "- alert: A\n  expr: up\n  severity: page",
            "field severity not found in type rulefmt.RuleNode",
        ),
        ("- alert: A\n  expr: up\n  for: 1.5m", 'not a valid duration string: "1.5m"'),
    ],
)
def test_invalid_rules_are_refused_like_promtool(body: str, message: str) -> None:
    rules = textwrap.indent(body, "      ")
    errs = errors_of(f"groups:\n  - name: g\n    rules:\n{rules}\n")
    assert any(message in e and 'group "g", rule 1' in e for e in errs), errs


def test_group_names_must_be_set_and_unique() -> None:
    errs = errors_of("""
        groups:
          - name: g
          - name: g
          - name: ""
    """)
    assert errs == [
        'rules.yml: 4:5: groupname: "g" is repeated in the same file',
        "rules.yml: 5:5: Groupname must not be empty",
    ]


def test_yaml_syntax_error_carries_the_line() -> None:
    (err,) = errors_of("groups:\n  - name: [\n")
    assert err.startswith("rules.yml: 3:1: yaml:")


def test_every_file_is_checked_before_refusing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = tmp_path / "a.yml"
    b = tmp_path / "b.yml"
    a.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n")
    b.write_text("groups:\n  - name: h\n    rules:\n      - record: r\n")
    with pytest.raises(RuleFileInvalid) as e:
        load_rule_files([a, b])
    assert [x.file for x in e.value.errors] == [str(a), str(b)]


def test_unreadable_file_is_an_error_not_a_crash(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleFileInvalid) as e:
        load_rule_files([tmp_path / "missing.yml"])
    assert "cannot read file" in str(e.value)
