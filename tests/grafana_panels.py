"""What Grafana would send for each panel of grafana/dashboards, without Grafana.

Grafana cannot be installed here, so the tests that run the dashboards' queries need what
Grafana does before a query leaves it: walk every panel, annotation and template variable,
expand `$agent`, `$__interval`, `$__rate_interval`, `$__range`, `$timeFilter`... the way its
Prometheus and InfluxDB data sources do, and, for the Elasticsearch panels, decide which
documents a Lucene query string selects (Elasticsearch cannot be installed either).
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orbiter.satellite.archive.events import KINDS, index_template

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
DATASOURCES = ROOT / "grafana" / "provisioning" / "datasources" / "orbiter.yml"


# ---------------------------------------------------------------------- dashboards


@dataclass(frozen=True)
class PanelQuery:
    """One query a dashboard makes: a panel target, an annotation or a template variable."""

    dashboard: str  # file name
    panel: str  # panel title, "annotation: NAME" or "variable: NAME"
    ref_id: str
    source_type: str  # prometheus | influxdb | elasticsearch
    source_uid: str
    text: str  # PromQL, InfluxQL or Lucene
    instant: bool = False
    target: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.panel}:{self.ref_id}"


def dashboards() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, json.loads(p.read_text())) for p in sorted(DASHBOARD_DIR.glob("*.json"))]


def panels(dash: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included; rows themselves are not panels."""
    for panel in dash.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def _text(source_type: str, target: Mapping[str, Any]) -> str:
    if source_type == "prometheus":
        return str(target["expr"])
    if source_type == "influxdb":
        return str(target["query"])
    return str(target.get("query") or "*")


def queries(name: str, dash: Mapping[str, Any]) -> Iterator[PanelQuery]:
    """Every query `dash` makes, with the data source it goes to."""
    for panel in panels(dash):
        panel_ds = panel.get("datasource") or {}
        for target in panel.get("targets", []):
            ds = target.get("datasource") or panel_ds
            kind = ds["type"]
            yield PanelQuery(
                name,
                panel["title"],
                target["refId"],
                kind,
                ds["uid"],
                _text(kind, target),
                instant=bool(target.get("instant")) and not target.get("range"),
                target=target,
            )
    for anno in dash.get("annotations", {}).get("list", []):
        if anno.get("builtIn"):
            continue
        ds = anno["datasource"]
        if ds["type"] == "prometheus":
            text = anno["expr"]
        elif ds["type"] == "elasticsearch":
            text = anno.get("target", {}).get("query") or "*"
        else:
            text = anno["query"]
        yield PanelQuery(
            name, f"annotation: {anno['name']}", "anno", ds["type"], ds["uid"], text, target=anno
        )
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        q = var["query"]
        text = q["query"] if isinstance(q, dict) else q
        ds = var["datasource"]
        yield PanelQuery(
            name, f"variable: {var['name']}", "var", ds["type"], ds["uid"], text, target=var
        )


def all_queries() -> list[PanelQuery]:
    return [q for name, dash in dashboards() for q in queries(name, dash)]


def provisioned_datasources() -> dict[str, dict[str, Any]]:
    """uid -> the provisioned data source."""
    doc = yaml.safe_load(DATASOURCES.read_text())
    return {ds["uid"]: ds for ds in doc["datasources"]}


# ---------------------------------------------------------------------- time and intervals

# Grafana's interval rounding (its `roundInterval`): a raw interval in ms rounds to the
# "nice" interval of the first bound it is under.
_NICE = [
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (27_000_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
]


def round_interval(ms: float) -> int:
    for bound, nice in _NICE:
        if ms <= bound:
            return nice
    return 31_536_000_000


def format_duration(ms: int) -> str:
    """1000 -> "1s", 60000 -> "1m", 1500 -> "1500ms": a duration PromQL and InfluxQL read."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


@dataclass(frozen=True)
class TimeRange:
    """A dashboard's time range and what Grafana derives from it for one panel."""

    from_ms: int
    to_ms: int
    min_interval_ms: int  # the data source's timeInterval (the scrape interval)
    max_data_points: int = 1000

    @property
    def interval_ms(self) -> int:
        raw = (self.to_ms - self.from_ms) / self.max_data_points
        return max(round_interval(raw), self.min_interval_ms)

    @property
    def rate_interval_ms(self) -> int:
        """Grafana's $__rate_interval: at least four scrapes, and one more than the step."""
        return max(self.interval_ms + self.min_interval_ms, 4 * self.min_interval_ms)

    @property
    def range_ms(self) -> int:
        return self.to_ms - self.from_ms

    def builtins(self) -> dict[str, str]:
        range_s = self.range_ms // 1000
        return {
            "__interval_ms": str(self.interval_ms),
            "__interval": format_duration(self.interval_ms),
            "__rate_interval_ms": str(self.rate_interval_ms),
            "__rate_interval": format_duration(self.rate_interval_ms),
            "__range_ms": str(self.range_ms),
            "__range_s": str(range_s),
            "__range": f"{range_s}s",
            "timeFilter": f"time >= {self.from_ms}ms and time <= {self.to_ms}ms",
        }


def regex_escape(value: str) -> str:
    """How Grafana escapes a variable's value that lands in a regex (=~ "...", /.../)."""
    return re.sub(r"([\\^$*+?.()|{}\[\]/])", r"\\\1", value)


def _substitute(text: str, values: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {text!r}")
        return values[name]

    # \w+ takes the whole name: $__interval_ms is not $__interval followed by "_ms".
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, text)


def expand(text: str, tr: TimeRange, variables: Mapping[str, Sequence[str]]) -> str:
    """`text` with Grafana's built-in and template variables replaced.

    A template variable with several values (or "All") becomes `(a|b)`, each escaped for a
    regex, as Grafana's Prometheus and InfluxDB data sources write it; one value is
    escaped alone.
    """
    values = dict(tr.builtins())
    for name, chosen in variables.items():
        escaped = [regex_escape(v) for v in chosen]
        values[name] = escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    return _substitute(text, values)


def prometheus_request(
    q: PanelQuery, tr: TimeRange, variables: Mapping[str, Sequence[str]]
) -> tuple[str, dict[str, str]]:
    """(API path, form) of the request Grafana's Prometheus data source makes for `q`."""
    if q.panel.startswith("variable: "):
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q.text.strip())
        assert m, f"{q.id}: only label_values(selector, label) variables are expected"
        return f"/api/v1/label/{m.group(2)}/values", {
            "match[]": m.group(1),
            "start": str(tr.from_ms // 1000),
            "end": str(tr.to_ms // 1000),
        }
    expr = expand(q.text, tr, variables)
    if q.instant:
        return "/api/v1/query", {"query": expr, "time": f"{tr.to_ms / 1000:.3f}"}
    step_s = max(tr.interval_ms // 1000, 1)
    if q.panel.startswith("annotation: ") and q.target.get("step"):
        step_s = int(q.target["step"].rstrip("s"))
    start = tr.from_ms // 1000 // step_s * step_s  # Grafana aligns the range to the step
    end = tr.to_ms // 1000 // step_s * step_s
    return "/api/v1/query_range", {
        "query": expr,
        "start": str(start),
        "end": str(end),
        "step": str(step_s),
    }


def has_data(data: Mapping[str, Any]) -> bool:
    """A Prometheus API `data` Grafana would draw something from: a non-NaN sample."""
    if isinstance(data, list):  # label values
        return bool(data)
    kind, result = data["resultType"], data["result"]
    if kind in ("scalar", "string"):
        return not math.isnan(float(result[1])) if kind == "scalar" else True
    points = [
        v
        for series in result
        for _, v in (series["values"] if kind == "matrix" else [series["value"]])
    ]
    return any(not math.isnan(float(v)) for v in points)


def max_value(data: Mapping[str, Any]) -> float:
    kind, result = data["resultType"], data["result"]
    points = [
        float(v)
        for series in result
        for _, v in (series["values"] if kind == "matrix" else [series["value"]])
    ]
    return max((v for v in points if not math.isnan(v)), default=math.nan)


# ---------------------------------------------------------------------- Elasticsearch

# The archive's event documents (orbiter.satellite.archive.events): keyword fields that
# Lucene matches exactly and terms aggregations group by, `message` text, `labels` an
# object of keywords, `@timestamp` a date.
_MAPPING = index_template("orbiter-events")["template"]["mappings"]["properties"]
EVENT_KEYWORDS = frozenset(k for k, v in _MAPPING.items() if v.get("type") == "keyword")
EVENT_FIELDS = frozenset(_MAPPING)
EVENT_KINDS = KINDS


class LuceneError(ValueError):
    pass


_TOKEN = re.compile(r'\s*(\(|\)|"(?:[^"\\]|\\.)*"|[^\s()"]+)')


def _tokens(query: str) -> list[str]:
    out, pos = [], 0
    query = query.strip()
    while pos < len(query):
        m = _TOKEN.match(query, pos)
        if not m:
            raise LuceneError(f"cannot read {query[pos:]!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


class _Parser:
    """The part of Lucene's query_string syntax the dashboards use.

    `field:value`, `field:"phrase"`, `field:(a OR b)`, `field:*`, wildcards in values,
    AND / OR / NOT / `-`, parentheses and a lone `*`. Juxtaposed terms are OR'ed, as
    Elasticsearch's query_string does by default. A field not in the archive's schema is
    an error rather than a silent "matches nothing".
    """

    def __init__(self, query: str) -> None:
        self.toks = _tokens(query)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise LuceneError("unexpected end of query")
        self.i += 1
        return tok

    def parse(self) -> Any:
        node = self.or_()
        if self.peek() is not None:
            raise LuceneError(f"unexpected {self.peek()!r}")
        return node

    def or_(self) -> Any:
        nodes = [self.and_()]
        while self.peek() not in (None, ")"):
            if self.peek() == "OR":
                self.take()
            nodes.append(self.and_())
        return ("or", nodes) if len(nodes) > 1 else nodes[0]

    def and_(self) -> Any:
        nodes = [self.unary()]
        while self.peek() == "AND":
            self.take()
            nodes.append(self.unary())
        return ("and", nodes) if len(nodes) > 1 else nodes[0]

    def unary(self) -> Any:
        tok = self.peek()
        if tok == "NOT":
            self.take()
            return ("not", self.unary())
        if tok is not None and tok.startswith("-") and len(tok) > 1:
            self.toks[self.i] = tok[1:]
            return ("not", self.unary())
        return self.primary()

    def primary(self) -> Any:
        tok = self.take()
        if tok == "(":
            node = self.or_()
            if self.take() != ")":
                raise LuceneError("missing )")
            return node
        if tok == "*":
            return ("all",)
        if ":" not in tok:
            return ("field", "message", [_unquote(tok)])
        name, _, value = tok.partition(":")
        name = name.replace("\\", "")
        if name.split(".")[0] not in EVENT_FIELDS:
            raise LuceneError(f"field {name!r} is not in the archive's event documents")
        if value == "":
            if self.peek() == "(":
                self.take()
                values = []
                while self.peek() != ")":
                    v = self.take()
                    if v != "OR":
                        values.append(_unquote(v))
                self.take()
                return ("field", name, values)
            value = _unquote(self.take())
        return ("field", name, [_unquote(value)])


def _unquote(tok: str) -> str:
    if len(tok) >= 2 and tok[0] == tok[-1] == '"':
        return re.sub(r"\\(.)", r"\1", tok[1:-1])
    return tok


def _lookup(doc: Mapping[str, Any], name: str) -> Any:
    value: Any = doc
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _matches(node: Any, doc: Mapping[str, Any]) -> bool:
    kind = node[0]
    if kind == "all":
        return True
    if kind == "not":
        return not _matches(node[1], doc)
    if kind == "and":
        return all(_matches(n, doc) for n in node[1])
    if kind == "or":
        return any(_matches(n, doc) for n in node[1])
    _, name, values = node
    have = _lookup(doc, name)
    if have is None:
        return False
    if name == "message":  # analysed text: any word
        words = re.findall(r"\w+", str(have).lower())
        return any(fnmatch.fnmatchcase(w, v.lower()) for v in values for w in words)
    return any(fnmatch.fnmatchcase(str(have), v) for v in values)


def lucene_filter(query: str, docs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The documents Elasticsearch's query_string `query` selects from `docs`."""
    node = _Parser(query or "*").parse()
    return [d for d in docs if _matches(node, d)]
