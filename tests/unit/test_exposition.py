"""The exposition parser: agrees with prometheus-client, caches series, says what is wrong."""

from __future__ import annotations

import math
import re
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from orbiter.satellite.exposition import (
    ExpositionError,
    MetricMetadata,
    MetricType,
    ParsedSample,
    ScrapeCache,
    parse,
    parse_exposition,
)
from orbiter.satellite.series import labels_of

Flat = list[tuple[tuple[tuple[str, str], ...], object, int | None]]


def _value_key(v: float) -> object:
    return "NaN" if math.isnan(v) else float(v)


def client_flat(text: str) -> Flat:
    """prometheus-client's samples as (labels with __name__, value, timestamp ms).

    prometheus-client renames `foo` to `foo_total` inside a `# TYPE foo counter`
    family (OpenMetrics munging); the exposed name is what Prometheus stores,
    so that renaming is undone here. Empty label values are dropped, as
    Prometheus does.
    """
    plain_counters = set(re.findall(r"^\s*#\s+TYPE\s+(\S+)\s+counter\s*$", text, re.M))
    out: Flat = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name = s.name
            if (
                family.type == "counter"
                and family.name in plain_counters
                and name == family.name + "_total"
            ):
                name = family.name
            stamp = None if s.timestamp is None else round(float(s.timestamp) * 1000)
            out.append((labels_of({**s.labels, "__name__": name}), _value_key(s.value), stamp))
    return out


def our_flat(text: str) -> Flat:
    return [(s.labels, _value_key(s.value), s.timestamp_ms) for s in parse(text)]


def warm_parse_like_fresh(cache: ScrapeCache, text: str) -> list | None:
    """Parse `text` with a warm cache and check it reads as a fresh parse would, errors
    (line number and line) included; the rows, or None when both refused the text."""
    try:
        expected = our_flat(text)
    except ExpositionError as fresh:
        with pytest.raises(ExpositionError) as caught:
            cache.parse_into(text)
        assert (caught.value.line_number, caught.value.line) == (fresh.line_number, fresh.line)
        return None
    rows = cache.parse_into(text)
    assert [(e.labels, _value_key(v), t) for e, v, t in rows] == expected
    return rows


CORPUS = {
    "gauge without labels": "# HELP up Whether the target is up.\n# TYPE up gauge\nup 1\n",
    "escapes in label values": (
        'm{path="C:\\\\dir\\\\file",quote="say \\"hi\\"",nl="a\\nb",other="\\t kept"} 1\n'
    ),
    "braces, commas, spaces and hashes inside label values": (
        'm{a="}",b="{x,y}",c=" 1 2 ",d="# not a comment",e="=\\""} 7\n'
    ),
    "NaN and infinities": "a NaN\nb +Inf\nc -Inf\nd nan\ne Inf\n",
    "number formats": "a 1\nb -2.5\nc 1e10\nd 1.5E-3\ne .5\nf 5.\ng -0\nh 0x0\n".replace(
        "h 0x0\n", ""
    ),
    "timestamps": 'a 1 1700000000000\nb{x="y"} 2 -1000\nc 3 0\n',
    "comments and blank lines": "\n# just a comment\n#\n\na 1\n\n   \n# another # one\nb 2\n",
    "leading and trailing whitespace": '  a 1\nb{x="1"}   2   \n\tc 3\t\n',
    "tab separated": 'a\t1\nb{x="1"}\t2\t1000\n',
    "windows line endings": '# TYPE a gauge\r\na 1\r\nb{x="y"} 2\r\n',
    "empty label set and trailing comma": 'a{} 1\nb{x="1",} 2\n',
    "empty label value is no label": 'a{x="",y="1"} 1\n',
    "name inside braces": '{__name__="a",x="1"} 1\n',
    "quoted utf-8 names": '{"my.metric", "label.name"="v"} 1\n',
    "spaces around label tokens": 'a{ x = "1" , y="2" } 1\n',
    "untyped": "# TYPE u untyped\nu 3\nother 4\n",
    "counter with _total": (
        "# HELP requests_total Requests.\n# TYPE requests_total counter\n"
        'requests_total{code="200"} 1027\nrequests_total{code="400"} 3\n'
    ),
    "counter without _total": "# TYPE requests counter\nrequests 10\n",
    "histogram": (
        "# HELP rpc_seconds RPC latency.\n# TYPE rpc_seconds histogram\n"
        'rpc_seconds_bucket{le="0.05"} 24054\nrpc_seconds_bucket{le="0.1"} 33444\n'
        'rpc_seconds_bucket{le="0.2"} 100392\nrpc_seconds_bucket{le="+Inf"} 144320\n'
        "rpc_seconds_sum 53423\nrpc_seconds_count 144320\n"
    ),
    "summary": (
        "# HELP rpc_duration RPC duration.\n# TYPE rpc_duration summary\n"
        'rpc_duration{quantile="0.5"} 4773\nrpc_duration{quantile="0.9"} 9001\n'
        'rpc_duration{quantile="0.99"} NaN\nrpc_duration_sum 1.7560473e+07\n'
        "rpc_duration_count 2693\n"
    ),
    "help with escapes": "# HELP a line\\nnext \\\\ back \\t tab\n# TYPE a gauge\na 1\n",
    "same series twice": "a 1\na 2\n",
    "no final newline": "a 1\nb 2",
    "prometheus docs example": (
        "# HELP http_requests_total The total number of HTTP requests.\n"
        "# TYPE http_requests_total counter\n"
        'http_requests_total{method="post",code="200"} 1027 1395066363000\n'
        'http_requests_total{method="post",code="400"}    3 1395066363000\n'
        "\n"
        "# Escaping in label values:\n"
        'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find '
        'file:\\n\\"FILE.TXT\\""} 1.458255915e9\n'
        "\n"
        "# Minimalistic line:\n"
        "metric_without_timestamp_and_labels 12.47\n"
        "\n"
        "# A weird metric from before the epoch:\n"
        'something_weird{problem="division by zero"} +Inf -3982045\n'
    ),
}


@pytest.mark.parametrize("text", CORPUS.values(), ids=list(CORPUS))
def test_parse_agrees_with_prometheus_client_on_corpus(text: str) -> None:
    assert our_flat(text) == client_flat(text)


@pytest.mark.parametrize("text", CORPUS.values(), ids=list(CORPUS))
def test_warm_cache_gives_the_same_samples_as_a_fresh_parse(text: str) -> None:
    cache = ScrapeCache()
    first = [(e.labels, _value_key(v), t) for e, v, t in cache.parse_into(text)]
    second = [(e.labels, _value_key(v), t) for e, v, t in cache.parse_into(text)]
    assert first == second == our_flat(text)


def test_parse_returns_labels_with_name_values_and_integer_timestamps() -> None:
    samples = parse('http_requests_total{method="post",code="200"} 1027 1395066363000\n')
    assert samples == [
        ParsedSample(
            (("__name__", "http_requests_total"), ("code", "200"), ("method", "post")),
            1027.0,
            1395066363000,
        )
    ]
    assert isinstance(samples[0].timestamp_ms, int)


def test_metadata_comes_from_type_and_help_lines() -> None:
    exposition = parse_exposition(CORPUS["histogram"] + CORPUS["help with escapes"])
    assert exposition.metadata == {
        "rpc_seconds": MetricMetadata("rpc_seconds", MetricType.HISTOGRAM, "RPC latency."),
        "a": MetricMetadata("a", MetricType.GAUGE, "line\nnext \\ back \\t tab"),
    }


# -- errors ----------------------------------------------------------------------

BAD_LINES = {
    "missing value": ('a{x="1"}', "missing sample value"),
    "value not a number": ("a one", "invalid sample value 'one'"),
    "underscore in value": ("a 1_000", "invalid sample value '1_000'"),
    "float timestamp": ("a 1 1.5", "invalid timestamp '1.5'"),
    "too many fields": ("a 1 2 3", "unexpected '3'"),
    "unclosed label set": ('a{x="1" 1', "label set not closed with '}'"),
    "junk between labels": ('a{x="1" y="2"} 1', "expected ',' or '}'"),
    "unclosed quote": ('a{x="1} 1', "missing closing quote"),
    "unquoted label value": ("a{x=1} 1", "value must be a double-quoted string"),
    "bad label name": ('a{1x="1"} 1', "invalid label name"),
    "duplicate label": ('a{x="1",x="2"} 1', "label 'x' given twice"),
    "reserved label name": ('a{__x="1"} 1', "reserved"),
    "bad metric name": ("1a 1", "expected a metric name"),
    "no metric name": ('{x="1"} 1', "missing metric name"),
    "name twice": ('a{__name__="b"} 1', "metric name given both"),
    "double comma": ('a{x="1",,y="2"} 1', "invalid label name"),
    "TYPE without type": ("# TYPE a", "TYPE line without a type"),
    "unknown type": ("# TYPE a gauges", "unknown metric type 'gauges'"),
    "bad name in TYPE": ("# TYPE 1a gauge", "invalid metric name '1a'"),
}


@pytest.mark.parametrize(("line", "problem"), BAD_LINES.values(), ids=list(BAD_LINES))
def test_invalid_line_is_reported_with_its_number_and_problem(line: str, problem: str) -> None:
    text = f"# TYPE ok gauge\nok 1\n{line}\nok 2\n"
    with pytest.raises(ExpositionError) as caught:
        parse(text)
    assert caught.value.line_number == 3
    assert caught.value.line == line
    assert problem in caught.value.problem
    assert str(caught.value).startswith("line 3: ")


@pytest.mark.parametrize(("line", "problem"), BAD_LINES.values(), ids=list(BAD_LINES))
def test_invalid_line_is_reported_also_when_the_cache_is_warm(line: str, problem: str) -> None:
    cache = ScrapeCache()
    cache.parse_into('a{x="1"} 5\nok 1\n')
    with pytest.raises(ExpositionError) as caught:
        cache.parse_into(f'a{{x="1"}} 5\nok 1\n{line}\n')
    assert caught.value.line_number == 3
    assert problem in caught.value.problem


CLIENT_REJECTS = [
    "a{x=1} 1\n",
    'a{x="1} 1\n',
    "1a 1\n",
    "a one\n",
    "a 1_000\n",
    "# TYPE a\n",
    'a{x="1",x="2"} 1\n',
    'a{__name__="b"} 1\n',
]


@pytest.mark.parametrize("text", CLIENT_REJECTS)
def test_what_prometheus_client_rejects_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        list(text_string_to_metric_families(text))
    with pytest.raises(ExpositionError):
        parse(text)


# -- the cache -------------------------------------------------------------------


def test_cache_reports_series_that_disappeared_since_the_previous_scrape() -> None:
    cache = ScrapeCache()
    cache.parse_into('a{x="1"} 1\na{x="2"} 1\nb 1\n')
    assert cache.disappeared == []
    cache.parse_into('a{x="1"} 2\n')
    assert cache.disappeared == [
        (("__name__", "a"), ("x", "2")),
        (("__name__", "b"),),
    ]
    cache.parse_into('a{x="1"} 3\n')
    assert cache.disappeared == []


def test_cache_forgets_a_series_two_scrapes_after_it_was_last_seen() -> None:
    cache = ScrapeCache()
    cache.parse_into("a 1\nb 1\n")
    cache.parse_into("a 1\n")
    assert len(cache) == 2
    cache.parse_into("a 1\n")
    assert len(cache) == 1


def test_cache_keeps_a_series_that_comes_back_within_two_scrapes() -> None:
    cache = ScrapeCache()
    first = cache.parse_into("a 1\nb 1\n")
    cache.parse_into("a 1\n")
    again = cache.parse_into("a 1\nb 2\n")
    assert again[1][0] is first[1][0]


def test_cache_maps_spellings_of_one_series_to_one_entry() -> None:
    cache = ScrapeCache()
    rows = cache.parse_into('a{x="1",y="2"} 1\na{y="2",x="1"} 2\n{__name__="a",x="1",y="2"} 3\n')
    assert rows[0][0] is rows[1][0] is rows[2][0]
    assert len(cache) == 1


def test_cache_learns_nothing_from_a_scrape_that_fails() -> None:
    cache = ScrapeCache()
    cache.parse_into("a 1\n")
    with pytest.raises(ExpositionError):
        cache.parse_into('a 1\nb{x="1"} 1\nc{x="2"} 1\nbroken{\n')
    assert len(cache) == 1
    cache.parse_into("a 2\n")
    assert cache.disappeared == []


def test_cache_entry_is_stable_across_scrapes_so_storage_can_keep_a_ref_on_it() -> None:
    cache = ScrapeCache()
    ((entry, _, _),) = cache.parse_into('a{x="1"} 1\n')
    entry.ref = "storage handle"
    ((again, value, _),) = cache.parse_into('a{x="1"} 2\n')
    assert again is entry and again.ref == "storage handle" and value == 2.0


def test_rows_read_as_a_list_of_series_value_timestamp_tuples() -> None:
    cache = ScrapeCache()
    for k in range(4):  # a first parse, a line-by-line one, then same-shaped ones
        stamp = " 1700000000000" if k == 0 else ""
        rows = cache.parse_into(f"a {k}\nb -{k}{stamp}\n")
        a, b = rows[0][0], rows[1][0]
        assert (a.labels, b.labels) == ((("__name__", "a"),), (("__name__", "b"),))
        expected = [(a, float(k), None), (b, -float(k), 1700000000000 if k == 0 else None)]
        assert len(rows) == 2 and rows == expected and list(rows) == expected
        assert (rows[-1], rows[1:]) == (expected[-1], expected[1:])
        assert [tuple(row) for row in rows] == expected
        assert rows != expected[:1]


def test_a_scrape_that_repeats_the_last_one_but_for_values_reuses_its_entries() -> None:
    cache = ScrapeCache()
    text = '# HELP a Help.\n# TYPE a gauge\na{x="1"} 1\na{x="2"} 2\n\nb 3\n'
    first = cache.parse_into(text)
    cache.parse_into(text)
    again = cache.parse_into(text.replace(" 1\n", " 1.5\n").replace(" 3\n", " NaN\n"))
    assert [e for e, _, _ in again] == [e for e, _, _ in first]
    assert [_value_key(v) for _, v, _ in again] == [1.5, 2.0, "NaN"]
    assert [t for _, _, t in again] == [None, None, None]
    assert cache.disappeared == []


SAME_SHAPE_CHANGES = {
    "a value gains a timestamp": ("a 1\nb 2\n", "a 1\nb 2 1700000000000\n"),
    "a line goes": ("a 1\nb 2\n", "a 1\n"),
    "a line comes": ("a 1\nb 2\n", "a 1\nb 2\nc 3\n"),
    "two lines swap": ("a 1\nb 2\n", "b 2\na 1\n"),
    "a series part changes": ('a{x="1"} 1\n', 'a{x="2"} 1\n'),
    "a comment changes": ("# HELP a One.\na 1\n", "# HELP a Two.\na 1\n"),
    "a value becomes a word": ("a 1\nb 2\n", "a 1\nb two\n"),
    "a value gets an underscore": ("a 1\nb 2\n", "a 1\nb 2_0\n"),
    "a value goes missing": ("a 1\nb 2\n", "a 1\nb \n"),
    "a line loses its end": ('a{x="1"} 1\n', 'a{x="1"}\n'),
    "a line loses its series part": ("a 1\nb 2\n", "a 1\n2\n"),
    "a comment loses its start": ("# HELP a One.\na 1\n", "One.\na 1\n"),
    "a line gains a tab": ("a 1\nb 2\n", "a 1\nb 2\t\n"),
    "a blank line comes": ("a 1\nb 2\n", "a 1\n\nb 2\n"),
    "no newline at the end": ("a 1\nb 2\n", "a 1\nb 2"),
}


@pytest.mark.parametrize(
    ("before", "after"), SAME_SHAPE_CHANGES.values(), ids=list(SAME_SHAPE_CHANGES)
)
def test_a_scrape_that_differs_from_the_last_in_more_than_values_reads_as_a_fresh_parse(
    before: str, after: str
) -> None:
    cache = ScrapeCache()
    cache.parse_into(before)
    cache.parse_into(before)
    if warm_parse_like_fresh(cache, after) is not None:
        assert cache.metadata == parse_exposition(after).metadata


def test_a_changed_help_line_between_same_shaped_scrapes_updates_the_metadata() -> None:
    cache = ScrapeCache()
    for _ in range(3):
        cache.parse_into("# HELP a One.\n# TYPE a gauge\na 1\n")
    cache.parse_into("# HELP a Two.\n# TYPE a gauge\na 2\n")
    assert cache.metadata["a"] == MetricMetadata("a", MetricType.GAUGE, "Two.")
    cache.parse_into("# HELP a One.\n# TYPE a gauge\na 3\n")
    assert cache.metadata["a"] == MetricMetadata("a", MetricType.GAUGE, "One.")


def test_a_failed_scrape_between_same_shaped_ones_changes_nothing_they_read() -> None:
    cache = ScrapeCache()
    for _ in range(3):
        cache.parse_into("# HELP a One.\na 1\n")
    with pytest.raises(ExpositionError):
        cache.parse_into("# HELP a Two.\na 1\nbroken{\n")
    rows = cache.parse_into("# HELP a One.\na 4\n")
    assert [(e.labels, v) for e, v, _ in rows] == [((("__name__", "a"),), 4.0)]
    assert cache.metadata["a"].help == "One."


# -- generated inputs ------------------------------------------------------------

_NAME = st.from_regex(r"\A[a-z][a-z0-9_]{0,8}\Z")
_LABEL_NAME = st.from_regex(r"\A[a-z][a-z0-9_]{0,6}\Z").filter(
    lambda n: n not in ("le", "quantile")
)
_LABEL_VALUE = st.one_of(
    st.text(max_size=12),
    st.text(alphabet='\\"\n{}=, #a', max_size=8),
)
_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
_FINITE = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
_TIMESTAMP_MS = st.integers(min_value=-(10**12), max_value=4 * 10**12)


@st.composite
def registries(draw: st.DrawFn) -> CollectorRegistry:
    """A registry with random metrics of every kind, label values full of escapes."""
    registry = CollectorRegistry()
    for i in range(draw(st.integers(1, 4))):
        name = f"m{i}_{draw(_NAME)}"
        kind = draw(
            st.sampled_from(
                ["counter", "gauge", "histogram", "summary", "info", "enum", "timestamped"]
            )
        )
        labelnames = draw(st.lists(_LABEL_NAME, max_size=3, unique=True))
        children = draw(
            st.lists(
                st.tuples(*[_LABEL_VALUE for _ in labelnames]), min_size=1, max_size=3, unique=True
            )
        )
        if kind == "timestamped":
            family = draw(st.sampled_from([GaugeMetricFamily, CounterMetricFamily]))(
                name, draw(st.text(max_size=10)), labels=labelnames
            )
            for values in children:
                value = draw(_FLOAT if family.type == "gauge" else _FINITE.map(abs))
                stamp = draw(_TIMESTAMP_MS)
                family.add_metric(list(values), value, timestamp=stamp / 1000)

            class Fixed:
                def __init__(self, family: object) -> None:
                    self.family = family

                def collect(self) -> list[object]:
                    return [self.family]

            registry.register(Fixed(family))
            continue
        doc = draw(st.text(max_size=10))
        if kind == "counter":
            metric = Counter(name, doc, labelnames, registry=registry)
            for values in children:
                child = metric.labels(*values) if labelnames else metric
                child.inc(draw(_FINITE.map(abs)))
        elif kind == "gauge":
            metric = Gauge(name, doc, labelnames, registry=registry)
            for values in children:
                (metric.labels(*values) if labelnames else metric).set(draw(_FLOAT))
        elif kind == "histogram":
            buckets = sorted(set(draw(st.lists(_FINITE, min_size=1, max_size=4))))
            metric = Histogram(name, doc, labelnames, buckets=buckets, registry=registry)
            for values in children:
                child = metric.labels(*values) if labelnames else metric
                for x in draw(st.lists(_FINITE, max_size=3)):
                    child.observe(x)
        elif kind == "summary":
            metric = Summary(name, doc, labelnames, registry=registry)
            for values in children:
                child = metric.labels(*values) if labelnames else metric
                for x in draw(st.lists(_FINITE, max_size=3)):
                    child.observe(x)
        elif kind == "info":
            metric = Info(name, doc, labelnames, registry=registry)
            for values in children:
                child = metric.labels(*values) if labelnames else metric
                keys = _LABEL_NAME.filter(lambda n, taken=labelnames: n not in taken)
                child.info(draw(st.dictionaries(keys, _LABEL_VALUE, max_size=2)))
        else:
            states = draw(st.lists(_LABEL_NAME, min_size=1, max_size=3, unique=True))
            labelnames = [n for n in labelnames if n != name]
            metric = Enum(name, doc, labelnames, states=states, registry=registry)
            for values in children:
                child = metric.labels(*values[: len(labelnames)]) if labelnames else metric
                child.state(draw(st.sampled_from(states)))
    return registry


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries())
def test_parse_agrees_with_prometheus_client_on_generate_latest_output(
    registry: CollectorRegistry,
) -> None:
    text = generate_latest(registry).decode()
    assert our_flat(text) == client_flat(text)


_LINE_PARTS = st.sampled_from(
    [
        "a",
        "b_c",
        ":x",
        "{",
        "}",
        '"',
        "\\",
        "=",
        ",",
        " ",
        "\t",
        "1",
        "-2.5",
        "NaN",
        "+Inf",
        "x",
        'x="v"',
        'y="w\\"z"',
        "#",
        "# TYPE",
        "# HELP",
        "gauge",
        "counter",
        "__name__",
        "1700000000000",
        "e3",
        ".",
        "_",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(_LINE_PARTS, max_size=8).map("".join), min_size=1, max_size=4))
def test_on_arbitrary_lines_we_reject_what_the_client_rejects_and_agree_on_the_rest(
    lines: list[str],
) -> None:
    text = "\n".join(lines) + "\n"
    try:
        expected = client_flat(text)
    except Exception:
        with pytest.raises(ExpositionError):
            parse(text)
        return
    try:
        ours = our_flat(text)
    except ExpositionError:
        # Stricter than prometheus-client (it takes `a 1 2 3`, `a 1 1.5`, ...); Prometheus
        # rejects these too. Only lines the client itself reads loosely may land here.
        assume(False)
        return
    assert ours == expected


_SCRAPED_SERIES = ["a", 'a{x="1"}', 'a{x="2"}', '{__name__="a",x="1"}', 'b{y="v w"}', "c_total"]
_SCRAPED_COMMENTS = ["# HELP a Some help.", "# TYPE a gauge", "# TYPE a counter", "# hi", "", "#"]
_SCRAPED_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["+Inf", "-Inf", "NaN", "1e3", "1_0", "x", "", "3 1700000000000", "4 1.5"]),
    st.sampled_from([" 5", "6\t", "7 ", "8\r"]),
)


@st.composite
def scrape_sequences(draw: st.DrawFn) -> list[str]:
    """Scrapes of one target: mostly the same lines with new values, now and then a change."""
    line = st.one_of(
        st.sampled_from(_SCRAPED_SERIES).map(lambda s: (True, s)),
        st.sampled_from(_SCRAPED_COMMENTS).map(lambda c: (False, c)),
    )
    lines = draw(st.lists(line, min_size=1, max_size=8))
    texts = []
    for _ in range(draw(st.integers(2, 6))):
        if draw(st.integers(0, 3)) == 0:
            lines = list(lines)
            i = draw(st.integers(0, len(lines)))
            if draw(st.booleans()) or not lines:
                lines.insert(i, draw(line))
            else:
                del lines[min(i, len(lines) - 1)]
        body = [f"{s} {draw(_SCRAPED_VALUES)}" if is_sample else s for is_sample, s in lines]
        texts.append("\n".join(body) + draw(st.sampled_from(["\n", ""])))
    return texts


@settings(max_examples=400, deadline=None)
@given(scrape_sequences())
def test_a_warm_cache_reads_every_scrape_as_a_fresh_parse_would(texts: list[str]) -> None:
    cache = ScrapeCache()
    previous: set[tuple[tuple[str, str], ...]] = set()
    for text in texts:
        rows = warm_parse_like_fresh(cache, text)
        if rows is None:
            continue
        current = {e.labels for e, _, _ in rows}
        assert cache.disappeared == sorted(previous - current)
        previous = current


def test_label_value_escapes_round_trip_through_generate_latest() -> None:
    registry = CollectorRegistry()
    tricky = 'back\\slash "quoted" new\nline } { , = #' + string.whitespace
    Gauge("g", "doc", ["v"], registry=registry).labels(tricky).set(1)
    (sample,) = parse(generate_latest(registry).decode())
    assert dict(sample.labels)["v"] == tricky


def test_targets_exposing_the_same_pairs_share_them() -> None:
    """1,000 agents expose the same names and values: one pair object each, not one a target."""
    text = 'http_requests_total{path="/api",code="200"} 3\n'
    first = ScrapeCache().parse_into(text).series[0].labels
    second = ScrapeCache().parse_into(text.replace("200", "500")).series[0].labels
    assert first == (("__name__", "http_requests_total"), ("code", "200"), ("path", "/api"))
    shared = [a is b for a, b in zip(first, second, strict=True)]
    assert shared == [True, False, True]


@pytest.mark.parametrize(
    "text",
    [
        'a{x="1"} 1\nb2\n',  # the value glued to the series part
        'a{x="1"}  1 2\nb 2\n',  # two spaces, then a timestamp-looking extra field
        'a{x="1"}  1\nb2\n',  # one space too many here, one missing there
    ],
)
def test_a_same_shaped_scrape_with_a_broken_line_is_not_taken_by_the_fast_path(text: str) -> None:
    cache = ScrapeCache()
    for value in ("1", "2", "3"):  # warm: the layout fast path is built
        cache.parse_into(f'a{{x="1"}} {value}\nb {value}\n')
    try:
        rows = cache.parse_into(text)
    except ExpositionError:
        return  # refused like a fresh parse refuses it
    fresh = ScrapeCache().parse_into(text)
    assert [(s.labels, v) for s, v, _ in rows] == [(s.labels, v) for s, v, _ in fresh]
