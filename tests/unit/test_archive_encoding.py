"""Pure parts of the archive: line protocol, selection, downsampling, event documents."""

from __future__ import annotations

import json
import struct

import pytest

from orbiter.satellite.archive.config import parse_selector
from orbiter.satellite.archive.elastic import EventEncoder, judge_items
from orbiter.satellite.archive.events import (
    ArchiveEvent,
    InvalidEvent,
    document,
    index_name,
    index_template,
    rfc3339,
)
from orbiter.satellite.archive.influx import LineEncoder, classify, series_key
from orbiter.satellite.series import STALE_NAN_BITS

T = 1_764_489_600_000  # 2025-11-30T08:00:00Z in ms


def L(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


@pytest.mark.parametrize(
    ("labels", "key"),
    [
        (L(__name__="up", job="agent"), b"up,job=agent value="),
        (L(__name__="up"), b"up value="),
        (L(__name__="a b,c", path="/x y", k="a=b,c"), rb"a\ b\,c,k=a\=b\,c,path=/x\ y value="),
        (L(job="x"), None),
    ],
)
def test_a_series_becomes_measurement_and_tags(labels, key) -> None:  # type: ignore[no-untyped-def]
    assert series_key(labels) == key


def test_samples_become_lines_with_ms_timestamps_and_non_finite_values_are_counted() -> None:
    drops: list[tuple[str, int]] = []
    enc = LineEncoder(batch_size=2, on_drop=lambda reason, n: drops.append((reason, n)))
    batches = enc(
        [
            ([(L(__name__="up", job="a"), 1.0), (L(__name__="x"), float("nan"))], T),
            ([(L(__name__="temp"), -0.25), (L(__name__="big"), 1e300)], T + 15_000),
            ([(L(__name__="inf"), float("inf"))], T + 30_000),
        ],
        first_seq=0,
    )
    assert batches == [
        (b"up,job=a value=1.0 %d\ntemp value=-0.25 %d\n" % (T, T + 15_000), 2),
        (b"big value=1e+300 %d\n" % (T + 15_000), 1),
    ]
    assert drops == [("not_finite", 1), ("not_finite", 1)]


def test_select_keeps_only_matching_series() -> None:
    enc = LineEncoder(select=[parse_selector("up"), parse_selector('{__name__=~"orbiter_.*"}')])
    lines = enc.lines(
        [(L(__name__="up"), 1), (L(__name__="orbiter_x"), 2), (L(__name__="node_load1"), 3)], T
    )
    assert [line.split(b" ")[0] for line in lines] == [b"up", b"orbiter_x"]


def test_downsampling_keeps_one_sample_per_series_per_interval() -> None:
    enc = LineEncoder(downsample_s=60)
    kept = []
    for i in range(8):  # every 15s for 2 minutes
        t = T + i * 15_000
        kept += [
            (t, line.split(b" ")[0])
            for line in enc.lines([(L(__name__="a"), i), (L(__name__="b"), i)], t)
        ]
    assert kept == [(T, b"a"), (T, b"b"), (T + 60_000, b"a"), (T + 60_000, b"b")]


@pytest.mark.parametrize(
    ("status", "retry"),
    [(204, None), (500, True), (503, True), (429, True), (404, True), (401, True), (400, False)],
)
def test_influx_answers_are_delivered_retried_or_dropped(status: int, retry: bool | None) -> None:
    outcome = classify(status, "body")
    assert (outcome.retry if outcome else None) is retry


def test_an_event_becomes_a_document_in_its_daily_index() -> None:
    event = ArchiveEvent(
        time=T / 1000 + 0.5,
        kind="alert",
        message="OrbiterAgentDown firing",
        agent_id="a1",
        alertname="OrbiterAgentDown",
        severity="critical",
        labels={"instance": "h:5051"},
    )
    assert document(event) == {
        "@timestamp": "2025-11-30T08:00:00.500Z",
        "kind": "alert",
        "message": "OrbiterAgentDown firing",
        "agent_id": "a1",
        "alertname": "OrbiterAgentDown",
        "severity": "critical",
        "labels": {"instance": "h:5051"},
    }
    assert index_name("orbiter-events", T / 1000 - 1) == "orbiter-events-2025.11.30"
    assert index_name("orbiter-events", T / 1000 - 8 * 3600 - 1) == "orbiter-events-2025.11.29"
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"


def test_unknown_event_kinds_are_refused() -> None:
    with pytest.raises(InvalidEvent, match="not one of agent, alert"):
        ArchiveEvent(time=1.0, kind="gossip", message="x")


def test_document_ids_are_fixed_by_content_and_spool_position() -> None:
    enc = EventEncoder("ev", batch_size=2)
    e = ArchiveEvent(time=1.0, kind="operator", message="drain a1", principal="ops")
    first = enc([e, e, e], first_seq=7)
    again = enc([e, e, e], first_seq=7)
    assert first == again  # a re-encoded replay gets the same ids
    ids = [json.loads(line)["_id"] for payload, _ in first for line in payload.splitlines()]
    assert len(set(ids)) == 3  # equal events at different positions are different documents
    assert [count for _, count in first] == [2, 1]
    assert enc([e], first_seq=8)[0] != first[0]


def test_bulk_item_results_decide_the_batch() -> None:
    ok = (True, {"create": {"status": 201}})
    dup = (False, {"create": {"status": 409, "error": {"type": "version_conflict"}}})
    bad = (False, {"create": {"status": 400, "error": {"type": "mapper_parsing_exception"}}})
    busy = (False, {"create": {"status": 429, "error": {"type": "es_rejected"}}})
    assert judge_items([ok, dup, bad]) == judge_items([ok, dup, bad])
    d = judge_items([ok, dup, bad])
    assert (d.retry, d.delivered, d.dropped) == (False, 2, 1)
    assert judge_items([ok, busy]).retry


def test_the_index_template_maps_ids_as_keywords_and_time_as_a_date() -> None:
    t = index_template("orbiter-events")
    assert t["index_patterns"] == ["orbiter-events-*"]
    props = t["template"]["mappings"]["properties"]
    assert props["@timestamp"] == {"type": "date"}
    assert props["message"] == {"type": "text"}
    assert props["agent_id"]["type"] == props["kind"]["type"] == "keyword"


def test_staleness_markers_end_nothing_in_influxdb_and_are_not_counted_as_drops() -> None:
    drops: list[tuple[str, int]] = []
    enc = LineEncoder(on_drop=lambda reason, n: drops.append((reason, n)))
    stale = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
    assert enc.lines([(L(__name__="gone"), stale), (L(__name__="x"), float("nan"))], T) == []
    assert drops == [("not_finite", 1)]
