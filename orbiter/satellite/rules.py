"""Rule files, groups, and the evaluation of recording and alerting rules.

The file format is Prometheus's (groups with name, interval, limit; rules with
record/alert, expr, for, keep_firing_for, labels, annotations), so one file passes
both `orbiter rules check` and `promtool check rules`. Loading validates everything
Prometheus validates, plus what our evaluator cannot do: an unsupported PromQL
construct or template function is refused at load, naming file, group, rule and line,
never discovered at 3 a.m. during evaluation.

Evaluation mirrors Prometheus's `rules/` package: `evaluate_rule` is pure (a query
function, the rule's previous alert state and `t_ms` in; samples and the new state
out); `evaluate_group` is the thin loop that runs a group's rules in order against a
storage and appends each rule's output before the next rule runs, with staleness
markers for series a rule stopped producing.
"""

from __future__ import annotations

import contextlib
import math
import re
import struct
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

import yaml

from orbiter.satellite.series import STALE_NAN_BITS, Labels, Matcher, Series
from orbiter.satellite.templates import (
    Template,
    TemplateData,
    TemplateError,
    expand_alert_template,
    parse_template,
)

STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
RESOLVED_RETENTION_MS = 15 * 60 * 1000
"""How long a resolved alert is kept (as Prometheus does, so it is re-sent as resolved)."""

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

# ---------------------------------------------------------------------------
# Durations


class DurationError(ValueError):
    """A duration that Prometheus would not accept (`5m`, `1h30m`, `1d`; not `1.5m`)."""


_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_UNIT_MS = (365 * 86400_000, 7 * 86400_000, 86400_000, 3600_000, 60_000, 1000, 1)
_UNIT_NAMES = ("y", "w", "d", "h", "m", "s", "ms")


def parse_duration(text: str) -> int:
    """Prometheus's model.ParseDuration, in milliseconds."""
    if text == "0":
        return 0
    m = _DURATION.match(text)
    if not text or m is None or not any(m.groups()):
        raise DurationError(f"not a valid duration string: {_quote(text)}")
    return sum(int(g) * u for g, u in zip(m.groups(), _UNIT_MS, strict=True) if g)


def format_duration(ms: int) -> str:
    """Prometheus's model.Duration.String: `1h30m`, `5m`, `0s`."""
    if ms == 0:
        return "0s"
    out = []
    for unit, name in zip(_UNIT_MS, _UNIT_NAMES, strict=True):
        if ms >= unit:
            out.append(f"{ms // unit}{name}")
            ms %= unit
    return "".join(out)


def format_go_duration(ms: int) -> str:
    """Go's time.Duration.String for whole milliseconds: `1m0s`, `1h0m30s`, `500ms`."""
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    h, rest = divmod(ms, 3600_000)
    m, rest = divmod(rest, 60_000)
    s = rest / 1000
    s_text = f"{s:.3f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{h}h{m}m{s_text}"
    if m:
        return f"{m}m{s_text}"
    return s_text


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------
# Rules and groups


class _LastOutput:
    """A recording rule's last input label sets and the output label sets made of them.

    A rule's query returns the same series round after round, in the same order
    (equal label sets, though often new tuple objects): when the inputs equal the
    last ones, a C-speed tuple comparison, the outputs are the last ones, already
    checked for duplicates, instead of a dict, a sort and a hash per sample. And
    being the same objects, the TSDB's bulk write and the staleness bookkeeping
    find them unchanged by identity. One pair, replaced whole.
    """

    __slots__ = ("pair",)

    def __init__(self) -> None:
        self.pair: tuple[tuple[Labels, ...], tuple[Labels, ...]] = ((), ())


@dataclass(frozen=True)
class RecordingRule:
    """`record: name` with `expr` and fixed `labels`."""

    name: str
    expr: str
    labels: tuple[tuple[str, str], ...] = ()
    line: int = 0
    query: Any = field(default=None, compare=False, repr=False)
    _last_output: _LastOutput = field(
        default_factory=_LastOutput, init=False, compare=False, repr=False
    )


@dataclass(frozen=True)
class AlertingRule:
    """`alert: name` with `expr`, `for`, `keep_firing_for`, templated labels and annotations."""

    name: str
    expr: str
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    line: int = 0
    query: Any = field(default=None, compare=False, repr=False)
    label_templates: tuple[tuple[str, Template], ...] = field(default=(), compare=False, repr=False)
    annotation_templates: tuple[tuple[str, Template], ...] = field(
        default=(), compare=False, repr=False
    )


Rule = RecordingRule | AlertingRule


@dataclass(frozen=True)
class RuleGroup:
    """A named list of rules evaluated in order, every `interval_ms` (None: the global default)."""

    name: str
    file: str
    rules: tuple[Rule, ...]
    interval_ms: int | None = None
    limit: int = 0
    line: int = 0


@dataclass(frozen=True)
class RuleError:
    """One problem in a rule file, located as precisely as the file allows."""

    file: str
    message: str
    line: int | None = None
    column: int | None = None
    group: str | None = None
    rule_index: int | None = None
    rule_name: str | None = None

    def __str__(self) -> str:
        parts = [f"{self.file}:"]
        if self.line is not None:
            parts.append(f" {self.line}:{self.column or 0}:")
        if self.group is not None and self.rule_index is not None:
            parts.append(
                f" group {_quote(self.group)}, rule {self.rule_index}, "
                f"{_quote(self.rule_name or '')}:"
            )
        elif self.group is not None:
            parts.append(f" group {_quote(self.group)}:")
        return "".join(parts) + " " + self.message


class RuleFileInvalid(ValueError):
    """A rule file that does not load; `errors` lists every problem found."""

    def __init__(self, errors: Sequence[RuleError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


# ---------------------------------------------------------------------------
# PromQL hooks (the evaluator lives in orbiter.satellite.promql)


def _engine() -> Any:
    from orbiter.satellite.promql import engine

    return engine


def _check_expr(text: str) -> tuple[Any, str | None]:
    """Parse and check an expression: (parsed, None) or (None, why it is refused)."""
    eng = _engine()
    try:
        parsed = eng.parse(text)
    except eng.UnsupportedQuery as e:
        return None, f"unsupported PromQL construct: {e}"
    except (eng.QueryError, ValueError) as e:
        return None, f"could not parse expression: {e}"
    return parsed, None


# ---------------------------------------------------------------------------
# Loading


_GROUP_FIELDS = {"name", "interval", "limit", "rules"}
_RULE_FIELDS = {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


class _Collector:
    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[RuleError] = []

    def add(self, message: str, node: yaml.Node | None = None, **where: Any) -> None:
        line = col = None
        if node is not None:
            line, col = node.start_mark.line + 1, node.start_mark.column + 1
        self.errors.append(RuleError(self.file, message, line, col, **where))


def _mapping(
    node: yaml.Node, what: str, c: _Collector, **where: Any
) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
    if not isinstance(node, yaml.MappingNode):
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return {}
        c.add(f"cannot unmarshal {_kind(node)} into {what}", node, **where)
        return None
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for k, v in node.value:
        key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
        if key in out:
            c.add(
                f'mapping key "{key}" already defined at line {out[key][0].start_mark.line + 1}',
                k,
                **where,
            )
            continue
        out[key] = (k, v)
    return out


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "!!map"
    if isinstance(node, yaml.SequenceNode):
        return "!!seq"
    return node.tag.replace("tag:yaml.org,2002:", "!!")


def _scalar(node: yaml.Node, what: str, c: _Collector, **where: Any) -> str | None:
    if isinstance(node, yaml.ScalarNode):
        return "" if node.tag.endswith(":null") else node.value
    c.add(f"cannot unmarshal {_kind(node)} into {what}", node, **where)
    return None


def _string_map(
    node: yaml.Node, what: str, c: _Collector, **where: Any
) -> tuple[tuple[str, str], ...]:
    m = _mapping(node, what, c, **where)
    if m is None:
        return ()
    out = []
    for key, (_, v) in m.items():
        s = _scalar(v, f"{what} value", c, **where)
        if s is not None:
            out.append((key, s))
    return tuple(sorted(out))


def parse_rule_file(text: str, filename: str) -> list[RuleGroup]:
    """Parse and validate a rule file's text; raises RuleFileInvalid listing every problem."""
    c = _Collector(filename)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        raise RuleFileInvalid(
            [RuleError(filename, f"yaml: {getattr(e, 'problem', e)}", line, col)]
        ) from None
    if root is None:
        return []
    top = _mapping(root, "rulefmt.RuleGroups", c)
    groups: list[RuleGroup] = []
    if top is not None:
        for key, (k, _) in top.items():
            if key != "groups":
                c.add(f"field {key} not found in type rulefmt.RuleGroups", k)
        gnode = top.get("groups", (None, None))[1]
        if gnode is not None and not (
            isinstance(gnode, yaml.ScalarNode) and gnode.tag.endswith(":null")
        ):
            if not isinstance(gnode, yaml.SequenceNode):
                c.add(f"cannot unmarshal {_kind(gnode)} into []rulefmt.RuleGroup", gnode)
            else:
                seen: set[str] = set()
                for gn in gnode.value:
                    g = _load_group(gn, c, seen)
                    if g is not None:
                        groups.append(g)
    if c.errors:
        raise RuleFileInvalid(c.errors)
    return groups


def _load_group(node: yaml.Node, c: _Collector, seen: set[str]) -> RuleGroup | None:
    m = _mapping(node, "rulefmt.RuleGroup", c)
    if m is None:
        return None
    for key, (k, _) in m.items():
        if key not in _GROUP_FIELDS:
            c.add(f"field {key} not found in type rulefmt.RuleGroup", k)
    name = ""
    if "name" in m:
        name = _scalar(m["name"][1], "string", c) or ""
    if not name:
        c.add("Groupname must not be empty", node)
    elif name in seen:
        c.add(f'groupname: "{name}" is repeated in the same file', node)
    seen.add(name)
    interval = None
    if "interval" in m:
        text = _scalar(m["interval"][1], "model.Duration", c, group=name)
        if text:
            try:
                interval = parse_duration(text)
            except DurationError as e:
                c.add(str(e), m["interval"][1], group=name)
    limit = 0
    if "limit" in m:
        text = _scalar(m["limit"][1], "int", c, group=name)
        if text:
            try:
                limit = int(text)
            except ValueError:
                c.add(f"cannot unmarshal !!str `{text}` into int", m["limit"][1], group=name)
    rules: list[Rule] = []
    if "rules" in m:
        rnode = m["rules"][1]
        if isinstance(rnode, yaml.SequenceNode):
            for i, rn in enumerate(rnode.value, start=1):
                r = _load_rule(rn, c, name, i)
                if r is not None:
                    rules.append(r)
        elif not (isinstance(rnode, yaml.ScalarNode) and rnode.tag.endswith(":null")):
            c.add(f"cannot unmarshal {_kind(rnode)} into []rulefmt.RuleNode", rnode, group=name)
    return RuleGroup(name, c.file, tuple(rules), interval, limit, node.start_mark.line + 1)


def _load_rule(node: yaml.Node, c: _Collector, group: str, index: int) -> Rule | None:
    m = _mapping(node, "rulefmt.RuleNode", c, group=group, rule_index=index)
    if m is None:
        return None
    record = _scalar(m["record"][1], "string", c) if "record" in m else ""
    alert = _scalar(m["alert"][1], "string", c) if "alert" in m else ""
    rule_name = alert or record or ""
    where = {"group": group, "rule_index": index, "rule_name": rule_name}

    def add(msg: str, n: yaml.Node | None = None) -> None:
        c.add(msg, n, **where)

    for key, (k, _) in m.items():
        if key not in _RULE_FIELDS:
            add(f"field {key} not found in type rulefmt.RuleNode", k)
    record_node = m.get("record", (None, None))[1]
    alert_node = m.get("alert", (None, None))[1]
    if record and alert:
        add("only one of 'record' and 'alert' must be set", record_node)
    if not record and not alert:
        add("one of 'record' or 'alert' must be set", record_node or alert_node or node)

    expr = _scalar(m["expr"][1], "string", c, **where) if "expr" in m else ""
    expr_node = m.get("expr", (None, node))[1]
    parsed = None
    if not expr:
        add("field 'expr' must be set in rule", expr_node)
    else:
        parsed, why = _check_expr(expr)
        if why:
            add(why, expr_node)

    durations: dict[str, int] = {}
    for key in ("for", "keep_firing_for"):
        durations[key] = 0
        if key in m:
            text = _scalar(m[key][1], "model.Duration", c, **where)
            if text:
                try:
                    durations[key] = parse_duration(text)
                except DurationError as e:
                    add(str(e), m[key][1])

    labels = _string_map(m["labels"][1], "labels", c, **where) if "labels" in m else ()
    annotations = (
        _string_map(m["annotations"][1], "annotations", c, **where) if "annotations" in m else ()
    )
    labels_node = m.get("labels", (None, None))[1]
    for k, v in labels:
        if not _LABEL_NAME.match(k) or k == "__name__":
            add(f"invalid label name: {k}", labels_node)
        if "\ufffd" in v:
            add(f"invalid label value: {v}", labels_node)
    for k, _ in annotations:
        if not _LABEL_NAME.match(k):
            add(f"invalid annotation name: {k}", m["annotations"][1])

    if record:
        if annotations:
            add("invalid field 'annotations' in recording rule", record_node)
        if durations["for"]:
            add("invalid field 'for' in recording rule", record_node)
        if durations["keep_firing_for"]:
            add("invalid field 'keep_firing_for' in recording rule", record_node)
        if not _METRIC_NAME.match(record):
            add(f"invalid recording rule name: {record}", record_node)
        if record and alert:
            return None
        return RecordingRule(record, expr or "", labels, node.start_mark.line + 1, parsed)
    if not alert:
        return None

    name = f"__alert_{alert}"
    label_t, annot_t = [], []
    for kind, items, out in (("label", labels, label_t), ("annotation", annotations, annot_t)):
        for k, v in items:
            try:
                out.append((k, parse_template(v, name)))
            except TemplateError as e:
                add(f"{kind} {_quote(k)}: {e}")
    return AlertingRule(
        alert,
        expr or "",
        durations["for"],
        durations["keep_firing_for"],
        labels,
        annotations,
        node.start_mark.line + 1,
        parsed,
        tuple(label_t),
        tuple(annot_t),
    )


def load_rule_file(path: str | Path) -> list[RuleGroup]:
    """Read and validate one rule file; the file name in errors is `path` as given."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise RuleFileInvalid([RuleError(str(path), f"cannot read file: {e.strerror}")]) from None
    except UnicodeDecodeError:
        raise RuleFileInvalid([RuleError(str(path), "file is not valid UTF-8")]) from None
    return parse_rule_file(text, str(path))


def load_rule_files(paths: Sequence[str | Path]) -> list[RuleGroup]:
    """Load several files; every problem of every file is reported at once."""
    groups: list[RuleGroup] = []
    errors: list[RuleError] = []
    for p in paths:
        try:
            groups.extend(load_rule_file(p))
        except RuleFileInvalid as e:
            errors.extend(e.errors)
    if errors:
        raise RuleFileInvalid(errors)
    return groups


# ---------------------------------------------------------------------------
# Alert state machine


class AlertState(Enum):
    """Prometheus's alert states; a resolved alert is INACTIVE with `resolved_at_ms` set."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True)
class Alert:
    """One alert instance of a rule: a label set and where it is in its lifecycle."""

    labels: Labels
    annotations: tuple[tuple[str, str], ...]
    state: AlertState
    value: float
    active_at_ms: int
    fired_at_ms: int | None = None
    resolved_at_ms: int | None = None
    keep_firing_since_ms: int | None = None

    @property
    def resolved(self) -> bool:
        return self.state is AlertState.INACTIVE and self.resolved_at_ms is not None


@dataclass(frozen=True)
class Found:
    """One element of an alerting rule's result: the alert's labels, annotations and value."""

    labels: Labels
    annotations: tuple[tuple[str, str], ...]
    value: float


def step_alerts(
    active: Mapping[Labels, Alert],
    found: Sequence[Found],
    t_ms: int,
    for_ms: int,
    keep_firing_for_ms: int = 0,
) -> dict[Labels, Alert]:
    """Advance one rule's alerts to `t_ms` given what its expression returned now.

    inactive -> pending when the expression returns the label set; pending -> firing
    once it has been active for `for_ms`; pending -> gone when it stops returning it;
    firing -> resolved (inactive) when it stops, unless `keep_firing_for_ms` has not
    yet passed since it stopped; resolved alerts are forgotten after 15 minutes.
    """
    nxt: dict[Labels, Alert] = dict(active)
    found_keys = set()
    for f in found:
        found_keys.add(f.labels)
        old = nxt.get(f.labels)
        if old is not None and old.state is not AlertState.INACTIVE:
            nxt[f.labels] = replace(old, value=f.value, annotations=f.annotations)
        else:
            nxt[f.labels] = Alert(f.labels, f.annotations, AlertState.PENDING, f.value, t_ms)
    for key, a in list(nxt.items()):
        if key not in found_keys:
            keep = False
            if a.state is AlertState.FIRING and keep_firing_for_ms > 0:
                since = a.keep_firing_since_ms if a.keep_firing_since_ms is not None else t_ms
                a = replace(a, keep_firing_since_ms=since)
                keep = t_ms - since < keep_firing_for_ms
            if a.state is AlertState.PENDING or (
                a.resolved_at_ms is not None and t_ms - a.resolved_at_ms > RESOLVED_RETENTION_MS
            ):
                del nxt[key]
                continue
            if a.state is not AlertState.INACTIVE and not keep:
                a = replace(a, state=AlertState.INACTIVE, resolved_at_ms=t_ms)
            nxt[key] = a
            if not keep:
                continue
        elif a.keep_firing_since_ms is not None:
            a = replace(a, keep_firing_since_ms=None)
        if a.state is AlertState.PENDING and t_ms - a.active_at_ms >= for_ms:
            a = replace(a, state=AlertState.FIRING, fired_at_ms=t_ms)
        nxt[key] = a
    return nxt


def active_alerts(alerts: Mapping[Labels, Alert]) -> list[Alert]:
    """Pending and firing alerts (what Prometheus calls ActiveAlerts), sorted by labels."""
    return sorted(
        (a for a in alerts.values() if a.state is not AlertState.INACTIVE), key=lambda a: a.labels
    )


# ---------------------------------------------------------------------------
# Evaluation


class RuleEvalError(ValueError):
    """A rule that failed at one evaluation (query error, duplicate label sets, limit)."""


OutSample = tuple[Labels, int, float]
"""A sample a rule produced: labels, timestamp (ms), value."""

QueryFn = Callable[[Any, int], list[tuple[Labels, float]]]
"""Runs a parsed (or text) expression at t_ms and returns (labels, value) pairs."""


@dataclass(frozen=True)
class RuleResult:
    """What one rule produced at one evaluation, and the rule's alerts afterwards.

    The samples are all at `t_ms`, so they are kept as two parallel tuples, the
    shape the storage's bulk write takes.
    """

    labels: tuple[Labels, ...]
    values: tuple[float, ...]
    t_ms: int
    alerts: Mapping[Labels, Alert]

    @property
    def samples(self) -> tuple[OutSample, ...]:
        return tuple(zip(self.labels, repeat(self.t_ms), self.values))


def _set_label(lbls: dict[str, str], k: str, v: str) -> None:
    if v == "":
        lbls.pop(k, None)
    else:
        lbls[k] = v


def evaluate_rule(
    rule: Rule,
    alerts: Mapping[Labels, Alert],
    query: QueryFn,
    t_ms: int,
    *,
    limit: int = 0,
    external_labels: Mapping[str, str] | None = None,
    external_url: str = "",
) -> RuleResult:
    """Evaluate one rule at `t_ms`; raises RuleEvalError as Prometheus's Rule.Eval would fail."""
    try:
        result = query(rule.query if rule.query is not None else rule.expr, t_ms)
    except RuleEvalError:
        raise
    except Exception as e:
        raise RuleEvalError(str(e)) from None
    if isinstance(rule, RecordingRule):
        out = _recorded_labels(rule, tuple(map(itemgetter(0), result)))
        if limit > 0 and len(out) > limit:
            raise RuleEvalError(f"exceeded limit of {limit} with {len(out)} series")
        return RuleResult(out, tuple(map(itemgetter(1), result)), t_ms, {})

    ext = dict(external_labels or {})

    def template_query(q: str) -> list[tuple[Mapping[str, str], float]]:
        return [(dict(lbls), v) for lbls, v in query(q, t_ms)]

    found: list[Found] = []
    keys: set[Labels] = set()
    for lbls, v in result:
        data = TemplateData(dict(lbls), ext, external_url, v, template_query)
        d = {k: lv for k, lv in lbls if k != "__name__"}
        for k, tmpl in rule.label_templates:
            _set_label(d, k, expand_alert_template(tmpl, data))
        d["alertname"] = rule.name
        key = tuple(sorted(d.items()))
        annotations = tuple(
            sorted((k, expand_alert_template(tmpl, data)) for k, tmpl in rule.annotation_templates)
        )
        if key in keys:
            raise RuleEvalError(
                "vector contains metrics with the same labelset after applying alert labels"
            )
        keys.add(key)
        found.append(Found(key, annotations, v))
    nxt = step_alerts(alerts, found, t_ms, rule.for_ms, rule.keep_firing_for_ms)
    live = active_alerts(nxt)
    if limit > 0 and len(live) > limit:
        raise RuleEvalError(f"exceeded limit of {limit} with {len(live)} alerts")
    labels: list[Labels] = []
    values: list[float] = []
    for a in live:
        base = dict(rule.labels)
        base.update(a.labels)
        base["alertname"] = rule.name
        alerts_lbls = dict(base, __name__="ALERTS", alertstate=a.state.value)
        for_state = dict(base, __name__="ALERTS_FOR_STATE")
        labels += (tuple(sorted(alerts_lbls.items())), tuple(sorted(for_state.items())))
        values += (1.0, float(a.active_at_ms // 1000))
    return RuleResult(tuple(labels), tuple(values), t_ms, nxt)


def _recorded_labels(rule: RecordingRule, inputs: tuple[Labels, ...]) -> tuple[Labels, ...]:
    """The recording rule's output label sets for its query's, in order (`__name__` set,
    rule labels applied); raises RuleEvalError if two come out the same."""
    last_inputs, last_outputs = rule._last_output.pair
    if inputs == last_inputs:
        return last_outputs
    # Series came or went. Those still here may be the very objects of last round (the
    # engine keeps label sets per series): their outputs are found by id(), safe while
    # last_inputs holds them, so no other object can have their id.
    known = dict(zip(map(id, last_inputs), last_outputs, strict=True))
    out: list[Labels] = []
    for lbls in inputs:
        key = known.get(id(lbls))
        if key is None:
            d = dict(lbls)
            d["__name__"] = rule.name
            for k, lv in rule.labels:
                _set_label(d, k, lv)
            key = tuple(sorted(d.items()))
        out.append(key)
    if len(set(out)) != len(out):
        raise RuleEvalError(
            "vector contains metrics with the same labelset after applying rule labels"
        )
    rule._last_output.pair = (inputs, tuple(out))
    return rule._last_output.pair[1]


class AppendError(ValueError):
    """A sample the storage refused (out of order, or a different value at the same time)."""


class WritableStorage(Protocol):
    """What rule evaluation reads from and writes its results to.

    One that also has `append_batch` (a BatchWritableStorage, as the TSDB is)
    gets each rule's output through it, in one call.
    """

    def select(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> Iterator[Series]: ...

    def append(self, labels: Labels, t_ms: int, value: float) -> None:
        """Store one sample; raises a ValueError (e.g. AppendError) if the series refuses it."""
        ...


class BatchWritableStorage(WritableStorage, Protocol):
    """A storage that also takes a rule's whole output at once (the TSDB does)."""

    def append_batch(
        self, writer: Hashable, labels: Sequence[Labels], values: Sequence[float], t_ms: int
    ) -> Sequence[tuple[int, ValueError]]:
        """`append(labels[i], t_ms, values[i])` for every i, the refused as (i, error).

        `writer` names the rule, whose output is the same series round after round.
        """
        ...


def _append_batch(
    storage: WritableStorage,
    writer: Hashable,
    labels: Sequence[Labels],
    values: Sequence[float],
    t_ms: int,
) -> Sequence[tuple[int, ValueError]]:
    """The storage's `append_batch` if it has one, else `append` sample by sample."""
    bulk = getattr(storage, "append_batch", None)
    if bulk is not None:
        return bulk(writer, labels, values, t_ms)  # type: ignore[no-any-return]
    refused: list[tuple[int, ValueError]] = []
    for i, (lbls, v) in enumerate(zip(labels, values, strict=True)):
        try:
            storage.append(lbls, t_ms, v)
        except ValueError as e:  # AppendError, or the TSDB's OutOfOrderSample
            refused.append((i, e))
    return refused


class _Written(frozenset[Labels]):
    """The series a rule wrote, remembering them in the order written.

    So the next round tells that its rule wrote the same series again with one
    tuple comparison (by identity, for a recording rule's remembered outputs)
    instead of hashing every label set into a new set.
    """

    __slots__ = ("order",)

    def __new__(cls, order: tuple[Labels, ...]) -> _Written:
        self = super().__new__(cls, order)
        self.order = order
        return self


@dataclass(frozen=True)
class GroupState:
    """Per rule of a group: its alerts, and the series it wrote last time (for staleness)."""

    alerts: tuple[Mapping[Labels, Alert], ...]
    previous: tuple[frozenset[Labels], ...]

    @staticmethod
    def initial(group: RuleGroup) -> GroupState:
        n = len(group.rules)
        return GroupState(tuple({} for _ in range(n)), tuple(frozenset() for _ in range(n)))


@dataclass(frozen=True)
class RuleFailure:
    """A rule whose evaluation failed at `t_ms`, with Prometheus's error text."""

    rule: Rule
    t_ms: int
    error: str


@dataclass(frozen=True)
class GroupEvaluation:
    state: GroupState
    failures: tuple[RuleFailure, ...]
    seconds: tuple[float, ...] = ()
    """Each rule's evaluation time (wall), for /api/v1/rules' `evaluationTime`."""


def engine_query(
    storage: Any, lookback_ms: int = 300_000, subquery_step_ms: int = 60_000
) -> QueryFn:
    """A QueryFn over our PromQL evaluator: vectors as is, scalars as one unlabelled sample."""
    eng = _engine()

    def run(expr: Any, t_ms: int) -> list[tuple[Labels, float]]:
        return eng.rule_query(expr, storage, t_ms, lookback_ms, subquery_step_ms=subquery_step_ms)

    return run


def evaluate_group(
    group: RuleGroup,
    state: GroupState,
    storage: WritableStorage,
    t_ms: int,
    query: QueryFn,
    *,
    external_labels: Mapping[str, str] | None = None,
    external_url: str = "",
) -> GroupEvaluation:
    """Run every rule of `group` at `t_ms` in order, writing each rule's output before the next.

    Series a rule wrote last time but not now get a staleness marker, as in Prometheus,
    so a recorded series or an ALERTS series disappears at once rather than after 5m.
    """
    alerts = list(state.alerts)
    previous = list(state.previous)
    failures: list[RuleFailure] = []
    seconds: list[float] = []
    for i, rule in enumerate(group.rules):
        started = time.perf_counter()
        try:
            res = evaluate_rule(
                rule,
                alerts[i],
                query,
                t_ms,
                limit=group.limit,
                external_labels=external_labels,
                external_url=external_url,
            )
        except RuleEvalError as e:
            if isinstance(rule, AlertingRule) and "exceeded limit" in str(e):
                alerts[i] = {}
            failures.append(RuleFailure(rule, t_ms, str(e)))
            seconds.append(time.perf_counter() - started)
            continue
        alerts[i] = res.alerts
        refused = _append_batch(storage, (group.file, group.name, i), res.labels, res.values, t_ms)
        kept = res.labels
        if refused:
            failures += (RuleFailure(rule, t_ms, str(e)) for _, e in refused)
            gone = {j for j, _ in refused}
            kept = tuple(lbls for j, lbls in enumerate(kept) if j not in gone)
        last = previous[i]
        if not (isinstance(last, _Written) and last.order == kept):  # else none vanished
            written = _Written(kept)
            for lbls in last - written:
                with contextlib.suppress(ValueError):
                    storage.append(lbls, t_ms, STALE_NAN)
            previous[i] = written
        seconds.append(time.perf_counter() - started)
    return GroupEvaluation(
        GroupState(tuple(alerts), tuple(previous)), tuple(failures), tuple(seconds)
    )


def is_stale(v: float) -> bool:
    """True for Prometheus's staleness marker (a NaN with one exact bit pattern)."""
    return math.isnan(v) and struct.unpack("<Q", struct.pack("<d", v))[0] == STALE_NAN_BITS
