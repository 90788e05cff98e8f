"""Alert templates expand the way Prometheus's Go templates do, and broken ones fail at parse."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbiter.satellite.templates import (
    TemplateData,
    TemplateError,
    expand_alert_template,
    go_float,
    go_sprintf,
    humanize,
    humanize1024,
    humanize_duration,
    humanize_percentage,
    humanize_timestamp,
    parse_template,
)


def expand(
    text: str,
    labels: dict[str, str] | None = None,
    value: float = 0.0,
    external: dict[str, str] | None = None,
    url: str = "",
) -> str:
    data = TemplateData(labels or {}, external or {}, url, value)
    return parse_template(text, "__alert_T").expand(data)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (1.0, "1"),
        (-2.5, "-2.5"),
        (0.1, "0.1"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (1e21, "1e+21"),
    ],
)
def test_values_print_like_go_fmt_sprint(value: float, text: str) -> None:
    assert go_float(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1E+00"),
        (60.0, "6E+01"),
        (0.16666666666666669, "1.6666666666666669E-01"),
        (0.0, "0E+00"),
        (-1234.5, "-1.2345E+03"),
    ],
)
def test_sample_values_print_like_go_formatfloat_E(value: float, text: str) -> None:
    assert go_float(value, "E") == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_go_float_round_trips_every_finite_float(x: float) -> None:
    assert float(go_float(x)) == x


@pytest.mark.parametrize(
    ("fn", "value", "text"),
    [
        (humanize, 0, "0"),
        (humanize, 1234567, "1.235M"),
        (humanize, 0.00123, "1.23m"),
        (humanize, 999, "999"),
        (humanize, -1500, "-1.5k"),
        (humanize, math.inf, "+Inf"),
        (humanize1024, 1048576, "1Mi"),
        (humanize1024, 2048, "2ki"),
        (humanize1024, 0.5, "0.5"),
        (humanize_duration, 0, "0s"),
        (humanize_duration, 1.5, "1.5s"),
        (humanize_duration, 90061, "1d 1h 1m 1s"),
        (humanize_duration, 3725, "1h 2m 5s"),
        (humanize_duration, 61, "1m 1s"),
        (humanize_duration, 0.012, "12ms"),
        (humanize_duration, -90, "-1m 30s"),
        (humanize_percentage, 0.1234, "12.34%"),
        (humanize_percentage, 1, "100%"),
        (humanize_timestamp, 1234567890, "2009-02-13 23:31:30 +0000 UTC"),
        (humanize_timestamp, 1.5, "1970-01-01 00:00:01.5 +0000 UTC"),
        (humanize, "2048", "2.048k"),
    ],
)
def test_humanize_functions_match_prometheus(fn, value, text) -> None:  # type: ignore[no-untyped-def]
    assert fn(value) == text


@pytest.mark.parametrize(
    ("fmt", "args", "text"),
    [
        ("%.2f", (1.234,), "1.23"),
        ("%d items", (3,), "3 items"),
        ("%s/%s", ("a", "b"), "a/b"),
        ("%5.1f|", (3.14159,), "  3.1|"),
        ("%-4s|", ("ab",), "ab  |"),
        ("%v", (2.0,), "2"),
        ("%q", ('x"y',), '"x\\"y"'),
        ("%x", (255,), "ff"),
        ("100%%", (), "100%"),
        ("%d", (1.5,), "%!d(float64=1.5)"),
        ("%d", (), "%!d(MISSING)"),
        ("%d", (1, 2), "1%!(EXTRA int=2)"),
        ("%e", (12345.678,), "1.234568e+04"),
        ("%g", (0.000012,), "1.2e-05"),
    ],
)
def test_printf_follows_go_verbs(fmt: str, args: tuple, text: str) -> None:  # type: ignore[type-arg]
    assert go_sprintf(fmt, *args) == text


def test_labels_value_and_external_labels_are_predeclared() -> None:
    text = (
        "{{ $labels.instance }} {{ .Labels.job }} {{ $value }} {{ $externalLabels.dc }} "
        "{{ $externalURL }}"
    )
    out = expand(text, {"instance": "n1:9100", "job": "node"}, 0.25, {"dc": "fra1"}, "http://x")
    assert out == "n1:9100 node 0.25 fra1 http://x"


def test_missing_label_expands_to_empty_string() -> None:
    assert expand("[{{ $labels.nope }}]", {"a": "b"}) == "[]"


SEVERITY = "{{ if gt $value 0.9 }}crit{{ else if gt $value 0.5 }}warn{{ else }}ok{{ end }}"


@pytest.mark.parametrize(
    ("text", "value", "out"),
    [
        (SEVERITY, 0.95, "crit"),
        (SEVERITY, 0.6, "warn"),
        (SEVERITY, 0.1, "ok"),
        ("{{ $value | humanizePercentage }}", 0.5, "50%"),
        ('{{ printf "%.1f" $value }}', 2.25, "2.2"),
        ("{{ $x := 3 }}{{ $x }}", 0, "3"),
        ("a  {{- 1 -}}  b", 0, "a1b"),
        ("{{/* note */}}x", 0, "x"),
        ('{{ "a" | toUpper }}{{ toLower "B" }}{{ title "c d" }}', 0, "AbC D"),
        ('{{ reReplaceAll "(.*):.*" "$1" "host:9100" }}', 0, "host"),
        ('{{ if match "^n[0-9]$" "n1" }}yes{{ end }}', 0, "yes"),
        ('{{ stripPort "h:80" }} {{ stripPort "[::1]:80" }}', 0, "h ::1"),
        ("{{ with $labels.a }}<{{ . }}>{{ else }}none{{ end }}", 0, "none"),
        ("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", 0, "a=1;b=2;"),
        ('{{ len $labels }} {{ index $labels "b" }}', 0, "2 2"),
        ("{{ and 1 0 }} {{ or 0 2 }} {{ not true }}", 0, "0 2 false"),
    ],
)
def test_go_template_control_flow_and_functions(text: str, value: float, out: str) -> None:
    assert (
        expand(text, {"a": "1", "b": "2"} if "range" in text or "len" in text else {}, value) == out
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{{ $value | humanize", "unclosed action"),
        ("{{ nosuch $value }}", 'function "nosuch" not defined'),
        ("{{ $nosuch }}", 'undefined variable "$nosuch"'),
        ("{{ if true }}x", "unexpected EOF"),
        ("x{{ end }}", "unexpected {{end}}"),
        ('{{ define "x" }}{{ end }}', "not supported"),
        ("{{ }}", "missing value for command"),
    ],
)
def test_broken_templates_fail_to_parse_with_go_style_messages(text: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as e:
        parse_template(text, "__alert_T")
    assert str(e.value).startswith("template: __alert_T:")
    assert fragment in str(e.value)


def test_runtime_failure_becomes_prometheus_error_text() -> None:
    t = parse_template('{{ humanize "abc" }}', "__alert_T")
    out = expand_alert_template(t, TemplateData({}, {}, "", 0))
    assert out.startswith("<error expanding template: error executing template __alert_T:")
    assert "invalid syntax" in out


def test_comparing_int_with_float_is_an_error_as_in_go() -> None:
    t = parse_template("{{ if gt $value 1 }}x{{ end }}", "__alert_T")
    assert "incompatible types for comparison" in expand_alert_template(
        t, TemplateData({}, {}, "", 2.0)
    )


def test_query_function_uses_the_callback() -> None:
    t = parse_template(
        '{{ with query "up" }}{{ . | first | value }} {{ (first .).Labels.i }}{{ end }}',
        "__alert_T",
    )
    data = TemplateData({}, {}, "", 0, lambda q: [({"i": "a"}, 7.0)] if q == "up" else [])
    assert t.expand(data) == "7 a"
