"""Rule unit tests in promtool's format (`promtool test rules`), run on our evaluator.

A test file names rule files and lists test groups; each group gives input series in
the expanding notation (`1+2x3`, `_`, `stale`), alert checks at eval times and PromQL
expression checks. The runner follows promtool 2.42 step by step so both tools pass and
fail the same files: rules run every `evaluation_interval` from 0 up to the largest
eval_time, input samples are added lazily up to each evaluation, an alert check at
`eval_time` looks at the evaluation at or just before it, and expression checks run
after all evaluations. Failures are reported in promtool's words.
"""

from __future__ import annotations

import bisect
import contextlib
import glob
import math
import re
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orbiter.satellite.rules import (
    STALE_NAN,
    AlertingRule,
    AlertState,
    AppendError,
    DurationError,
    GroupState,
    RuleFileInvalid,
    RuleGroup,
    engine_query,
    evaluate_group,
    format_duration,
    format_go_duration,
    load_rule_files,
    parse_duration,
)
from orbiter.satellite.series import Labels, Matcher, MatchOp, Series, labels_of
from orbiter.satellite.templates import _go_quote, _unquote_go, go_float

# ---------------------------------------------------------------------------
# In-memory storage


def _bits(v: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def _matches(m: Matcher, value: str) -> bool:
    if m.op is MatchOp.EQUAL:
        return value == m.value
    if m.op is MatchOp.NOT_EQUAL:
        return value != m.value
    hit = re.fullmatch(m.value, value, re.DOTALL) is not None
    return hit if m.op is MatchOp.REGEX else not hit


@dataclass
class InMemoryStorage:
    """A tiny append-only TSDB for unit tests: per series, sorted timestamps and values.

    `append` refuses samples like Prometheus's head does for rule output (older than the
    newest sample, or a different value at the same time); `load` silently drops them, as
    promtool's loader does within one batch.
    """

    series: dict[Labels, tuple[list[int], list[float]]] = field(default_factory=dict)

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> Iterator[Series]:
        for lbls, (ts, vs) in self.series.items():
            d = dict(lbls)
            if all(_matches(m, d.get(m.name, "")) for m in matchers):
                lo = bisect.bisect_left(ts, start_ms)
                hi = bisect.bisect_right(ts, end_ms)
                if hi > lo:
                    yield Series(lbls, ts[lo:hi], vs[lo:hi])

    def append(self, labels: Labels, t_ms: int, value: float) -> None:
        ts, vs = self.series.setdefault(labels, ([], []))
        if ts:
            if t_ms < ts[-1]:
                raise AppendError("out of order sample")
            if t_ms == ts[-1]:
                if _bits(vs[-1]) != _bits(value):
                    raise AppendError("duplicate sample for timestamp")
                return
        ts.append(t_ms)
        vs.append(value)

    def load(self, labels: Labels, t_ms: int, value: float) -> None:
        with contextlib.suppress(AppendError):
            self.append(labels, t_ms, value)


# ---------------------------------------------------------------------------
# Series notation


class SeriesError(ValueError):
    """An input series whose labels or values do not parse."""


_NUM = r"(?:[+-]?(?:inf|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?))"
_ITEM = re.compile(
    rf"^(?:(?P<blank>_)(?:x(?P<bn>\d+))?"
    rf"|(?P<stale>stale)"
    rf"|(?P<v>{_NUM})(?:(?P<delta>[+-](?:inf|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?))?"
    rf"x(?P<n>\d+))?)$",
    re.IGNORECASE,
)


def _num(text: str) -> float:
    t = text.lower()
    sign = -1.0 if t.startswith("-") else 1.0
    t = t.lstrip("+-")
    if t == "inf":
        return sign * math.inf
    if t == "nan":
        return math.nan
    return sign * float(t)


def expand_values(text: str) -> list[float | None]:
    """Expand promtool's value notation; None is an omitted sample (`_`).

    `a+bxn` is n+1 values starting at a; `axn` is a repeated n+1 times; `_xn` is n
    omitted samples; `stale` is a staleness marker.
    """
    out: list[float | None] = []
    for item in text.split():
        m = _ITEM.match(item)
        if m is None:
            raise SeriesError(f"unexpected {item!r} in series values")
        if m.group("blank"):
            out.extend([None] * (int(m.group("bn")) if m.group("bn") else 1))
        elif m.group("stale"):
            out.append(STALE_NAN)
        else:
            v = _num(m.group("v"))
            if m.group("n") is None:
                out.append(v)
                continue
            d = _num(m.group("delta")) if m.group("delta") else 0.0
            for _ in range(int(m.group("n")) + 1):
                out.append(v)
                v += d
    return out


_LABEL_PAIR = re.compile(
    r"""\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*(,)?"""
)


def parse_metric(text: str) -> Labels:
    """`name{a="b"}`, `{a="b"}` or `name` as a label set, like Prometheus's ParseMetric."""
    s = text.strip()
    m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", s)
    d: dict[str, str] = {}
    if m:
        d["__name__"] = m.group()
        s = s[m.end() :].strip()
    if s:
        if not (s.startswith("{") and s.endswith("}")):
            raise SeriesError(f"could not parse metric {text!r}")
        body = s[1:-1]
        pos = 0
        while pos < len(body.rstrip()):
            pm = _LABEL_PAIR.match(body, pos)
            if pm is None:
                raise SeriesError(f"could not parse labels in {text!r}")
            raw = pm.group(3)
            value = raw[1:-1] if raw[0] == "`" else _unquote(raw)
            if pm.group(1) in d:
                raise SeriesError(f"duplicate label {pm.group(1)!r} in {text!r}")
            d[pm.group(1)] = value
            pos = pm.end()
            if pm.group(4) is None and body[pos:].strip():
                raise SeriesError(f"expected ',' in {text!r}")
    elif not m:
        raise SeriesError(f"could not parse metric {text!r}")
    return labels_of(d)


def _unquote(raw: str) -> str:
    return (
        _unquote_go('"' + raw[1:-1].replace("\\'", "'") + '"')
        if raw[0] == "'"
        else _unquote_go(raw)
    )


# ---------------------------------------------------------------------------
# Test file


class TestFileInvalid(ValueError):
    """A test file that does not load (YAML, unknown field, bad duration)."""

    __test__ = False


@dataclass(frozen=True)
class InputSeries:
    series: str
    values: str


@dataclass(frozen=True)
class ExpAlert:
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class AlertTest:
    eval_time_ms: int
    alertname: str
    exp_alerts: tuple[ExpAlert, ...]


@dataclass(frozen=True)
class ExpSample:
    labels: str
    value: float


@dataclass(frozen=True)
class ExprTest:
    expr: str
    eval_time_ms: int
    exp_samples: tuple[ExpSample, ...]


@dataclass(frozen=True)
class TestGroup:
    __test__ = False
    interval_ms: int
    input_series: tuple[InputSeries, ...]
    alert_tests: tuple[AlertTest, ...]
    expr_tests: tuple[ExprTest, ...]
    external_labels: tuple[tuple[str, str], ...] = ()
    external_url: str = ""
    name: str = ""


@dataclass(frozen=True)
class TestFile:
    __test__ = False
    path: str
    rule_files: tuple[str, ...]
    evaluation_interval_ms: int
    group_eval_order: tuple[str, ...]
    tests: tuple[TestGroup, ...]
    warnings: tuple[str, ...] = ()


class _Strict:
    """Decode composed YAML the way yaml.v2's UnmarshalStrict does, with line numbers."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, node: yaml.Node, msg: str) -> None:
        self.errors.append(f"line {node.start_mark.line + 1}: {msg}")

    def null(self, node: yaml.Node | None) -> bool:
        return node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"))

    def struct(self, node: yaml.Node | None, typ: str, fields: set[str]) -> dict[str, yaml.Node]:
        if self.null(node):
            return {}
        assert node is not None
        if not isinstance(node, yaml.MappingNode):
            self.err(node, f"cannot unmarshal {_tag(node)} into {typ}")
            return {}
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            key = k.value
            if key in out:
                self.err(k, f"field {key} already set in type {typ}")
            elif key not in fields:
                self.err(k, f"field {key} not found in type {typ}")
            else:
                out[key] = v
        return out

    def seq(self, node: yaml.Node | None, typ: str) -> list[yaml.Node]:
        if self.null(node):
            return []
        assert node is not None
        if not isinstance(node, yaml.SequenceNode):
            self.err(node, f"cannot unmarshal {_tag(node)} into {typ}")
            return []
        return list(node.value)

    def string(self, node: yaml.Node | None) -> str:
        if self.null(node):
            return ""
        assert node is not None
        if not isinstance(node, yaml.ScalarNode):
            self.err(node, f"cannot unmarshal {_tag(node)} into string")
            return ""
        return node.value

    def duration(self, node: yaml.Node | None) -> int:
        text = self.string(node)
        if not text:
            return 0
        try:
            return parse_duration(text)
        except DurationError as e:
            assert node is not None
            self.err(node, str(e))
            return 0

    def float_(self, node: yaml.Node | None) -> float:
        text = self.string(node)
        if not text:
            return 0.0
        low = text.lower()
        special = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
        if low in special:
            return special[low]
        try:
            return (
                float(_num(text))
                if re.fullmatch(_NUM, text, re.I) and "nan" not in low and "inf" not in low
                else float(text.replace("_", ""))
            )
        except ValueError:
            assert node is not None
            self.err(node, f"cannot unmarshal !!str `{text}` into float64")
            return 0.0

    def string_map(self, node: yaml.Node | None) -> tuple[tuple[str, str], ...]:
        if self.null(node):
            return ()
        assert node is not None
        if not isinstance(node, yaml.MappingNode):
            self.err(node, f"cannot unmarshal {_tag(node)} into map[string]string")
            return ()
        return tuple(sorted((k.value, self.string(v)) for k, v in node.value))


def _tag(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "!!map"
    if isinstance(node, yaml.SequenceNode):
        return "!!seq"
    return node.tag.replace("tag:yaml.org,2002:", "!!") + f" `{node.value}`"


def parse_test_file(text: str, path: str) -> TestFile:
    """Parse a promtool unit-test file; rule_files are resolved against its directory."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise TestFileInvalid(f"yaml: {e}") from None
    d = _Strict()
    top = d.struct(
        root,
        "main.unitTestFile",
        {"rule_files", "evaluation_interval", "group_eval_order", "tests"},
    )
    rule_files = [d.string(n) for n in d.seq(top.get("rule_files"), "[]string")]
    interval = d.duration(top.get("evaluation_interval")) or 60_000
    order = tuple(d.string(n) for n in d.seq(top.get("group_eval_order"), "[]string"))
    groups = []
    for gn in d.seq(top.get("tests"), "[]main.testGroup"):
        g = d.struct(
            gn,
            "main.testGroup",
            {
                "interval",
                "input_series",
                "alert_rule_test",
                "promql_expr_test",
                "external_labels",
                "external_url",
                "name",
            },
        )
        series = []
        for sn in d.seq(g.get("input_series"), "[]main.series"):
            s = d.struct(sn, "main.series", {"series", "values"})
            series.append(InputSeries(d.string(s.get("series")), d.string(s.get("values"))))
        alerts = []
        for an in d.seq(g.get("alert_rule_test"), "[]main.alertTestCase"):
            a = d.struct(an, "main.alertTestCase", {"eval_time", "alertname", "exp_alerts"})
            exp = []
            for en in d.seq(a.get("exp_alerts"), "[]main.alert"):
                e = d.struct(en, "main.alert", {"exp_labels", "exp_annotations"})
                exp.append(
                    ExpAlert(
                        d.string_map(e.get("exp_labels")), d.string_map(e.get("exp_annotations"))
                    )
                )
            alerts.append(
                AlertTest(d.duration(a.get("eval_time")), d.string(a.get("alertname")), tuple(exp))
            )
        exprs = []
        for pn in d.seq(g.get("promql_expr_test"), "[]main.promqlTestCase"):
            p = d.struct(pn, "main.promqlTestCase", {"expr", "eval_time", "exp_samples"})
            samples = []
            for sn in d.seq(p.get("exp_samples"), "[]main.sample"):
                s = d.struct(sn, "main.sample", {"labels", "value"})
                samples.append(ExpSample(d.string(s.get("labels")), d.float_(s.get("value"))))
            exprs.append(
                ExprTest(d.string(p.get("expr")), d.duration(p.get("eval_time")), tuple(samples))
            )
        groups.append(
            TestGroup(
                d.duration(g.get("interval")),
                tuple(series),
                tuple(alerts),
                tuple(exprs),
                d.string_map(g.get("external_labels")),
                d.string(g.get("external_url")),
                d.string(g.get("name")),
            )
        )
    if d.errors:
        raise TestFileInvalid("yaml: unmarshal errors:\n  " + "\n  ".join(d.errors))
    base = Path(path).parent
    resolved: list[str] = []
    warnings: list[str] = []
    for rf in rule_files:
        full = rf if (not rf or Path(rf).is_absolute()) else str(base / rf)
        matches = sorted(glob.glob(full))
        if not matches:
            warnings.append(f"  WARNING: no file match pattern {full}")
        resolved.extend(matches)
    return TestFile(path, tuple(resolved), interval, order, tuple(groups), tuple(warnings))


# ---------------------------------------------------------------------------
# Running


def _labels_str(lbls: Sequence[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{k}={_go_quote(v)}" for k, v in lbls) + "}"


def _indent(text: str, indent: str) -> str:
    lines = text.split("\n")
    return lines[0] + "".join("\n" + indent + ln for ln in lines[1:])


def _alerts_str(
    items: Sequence[tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]],
) -> str:
    if not items:
        return "[]"
    parts = []
    for i, (lbls, ann) in enumerate(items):
        body = _indent("\nLabels:" + _labels_str(lbls) + "\nAnnotations:" + _labels_str(ann), "  ")
        parts.append(f"{i}:{body}")
    return "[\n" + ",\n".join(parts) + "\n]"


def _samples_str(samples: Sequence[tuple[Labels, float]]) -> str:
    if not samples:
        return "nil"
    return ", ".join(_labels_str(lbls) + " " + go_float(v, "E") for lbls, v in samples)


def _order_groups(groups: list[RuleGroup], order: Sequence[str]) -> list[RuleGroup]:
    pos = {name: i for i, name in enumerate(order)}
    return sorted(groups, key=lambda g: pos.get(g.name, 0))


def run_test_group(tf: TestFile, tg: TestGroup, groups: list[RuleGroup]) -> list[str]:
    """Run one test group; the errors promtool would print for it (empty when it passes)."""
    storage = InMemoryStorage()
    pending: dict[Labels, list[tuple[int, float]]] = {}
    for s in tg.input_series:
        try:
            lbls = parse_metric(s.series)
            values = expand_values(s.values)
        except SeriesError as e:
            return [f"parse error: {e}"]
        pending[lbls] = [(i * tg.interval_ms, v) for i, v in enumerate(values) if v is not None]
    query = engine_query(storage, subquery_step_ms=tf.evaluation_interval_ms)
    ext = dict(tg.external_labels)
    states = {id(g): GroupState.initial(g) for g in groups}

    for a in tg.alert_tests:
        if not a.alertname:
            where = f" (in TestGroup {tg.name})" if tg.name else ""
            return [
                f"an item under alert_rule_test misses required attribute alertname at "
                f"eval_time {format_duration(a.eval_time_ms)}{where}"
            ]
    max_t = max(
        [a.eval_time_ms for a in tg.alert_tests] + [e.eval_time_ms for e in tg.expr_tests] + [0]
    )
    by_time: dict[int, list[Any]] = {}
    for a in tg.alert_tests:
        by_time.setdefault(a.eval_time_ms, []).append(a)
    alert_times = sorted(by_time)
    curr = 0
    errs: list[str] = []
    step = tf.evaluation_interval_ms
    ts = 0
    while ts <= max_t:
        for lbls, samples in pending.items():
            k = 0
            while k < len(samples) and samples[k][0] <= ts:
                storage.load(lbls, *samples[k])
                k += 1
            del samples[:k]
        eval_errs = []
        for g in groups:
            res = evaluate_group(
                g,
                states[id(g)],
                storage,
                ts,
                query,
                external_labels=ext,
                external_url=tg.external_url,
            )
            states[id(g)] = res.state
            for f in res.failures:
                eval_errs.append(
                    f"    rule: {f.rule.name}, time: {format_go_duration(ts)}, err: {f.error}"
                )
        errs.extend(eval_errs)
        if eval_errs:
            return errs
        while curr < len(alert_times) and ts <= alert_times[curr] < ts + step:
            t = alert_times[curr]
            wanted = {a.alertname for a in by_time[t]}
            got: dict[str, list[Any]] = {}
            for g in groups:
                for i, r in enumerate(g.rules):
                    if isinstance(r, AlertingRule) and r.name in wanted:
                        got.setdefault(r.name, []).extend(
                            (a.labels, a.annotations)
                            for a in states[id(g)].alerts[i].values()
                            if a.state is AlertState.FIRING
                        )
            for case in by_time[t]:
                got_alerts = sorted(got.get(case.alertname, []))
                exp_alerts = sorted(
                    (tuple(sorted(dict(e.labels, alertname=case.alertname).items())), e.annotations)
                    for e in case.exp_alerts
                )
                if got_alerts != exp_alerts:
                    name = f"    name: {tg.name},\n" if tg.name else ""
                    errs.append(
                        f"{name}    alertname: {case.alertname}, "
                        f"time: {format_duration(case.eval_time_ms)}, \n"
                        f"        exp:{_indent(_alerts_str(exp_alerts), ' ' * 12)}, \n"
                        f"        got:{_indent(_alerts_str(got_alerts), ' ' * 12)}"
                    )
            curr += 1
        ts += step

    for case in tg.expr_tests:
        head = f"    expr: {_go_quote(case.expr)}, time: {format_duration(case.eval_time_ms)}"
        try:
            got_s = query(case.expr, case.eval_time_ms)
        except Exception as e:
            errs.append(f"{head}, err: {e}")
            continue
        exp_s = []
        try:
            for s in case.exp_samples:
                exp_s.append((parse_metric(s.labels) if s.labels.strip() else (), s.value))
        except SeriesError as e:
            errs.append(f"{head}, err: labels: {e}")
            continue
        got_s = sorted(got_s, key=lambda s: s[0])
        exp_s.sort(key=lambda s: s[0])
        same = len(got_s) == len(exp_s) and all(
            gl == el and gv == ev for (gl, gv), (el, ev) in zip(got_s, exp_s, strict=True)
        )
        if not same:
            errs.append(
                f"{head},\n        exp: {_samples_str(exp_s)}\n        got: {_samples_str(got_s)}"
            )
    return errs


@dataclass(frozen=True)
class FileResult:
    """The outcome of one test file: its warnings and the errors promtool would print."""

    path: str
    errors: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.errors


def run_test_file(path: str) -> FileResult:
    """Run every test group of one unit-test file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        return FileResult(path, (f"open {path}: {e.strerror.lower() if e.strerror else e}",))
    try:
        tf = parse_test_file(text, path)
    except TestFileInvalid as e:
        return FileResult(path, (str(e),))
    seen: set[str] = set()
    for name in tf.group_eval_order:
        if name in seen:
            return FileResult(
                path, (f"group name repeated in evaluation order: {name}",), tf.warnings
            )
        seen.add(name)
    errs: list[str] = []
    for tg in tf.tests:
        try:
            groups = _order_groups(load_rule_files(tf.rule_files), tf.group_eval_order)
        except RuleFileInvalid as e:
            errs.extend(str(x) for x in e.errors)
            continue
        errs.extend(run_test_group(tf, tg, groups))
    return FileResult(path, tuple(errs), tf.warnings)
