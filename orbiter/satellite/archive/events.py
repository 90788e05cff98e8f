"""Cluster events as the archive stores them, and their Elasticsearch documents.

Pure: an `ArchiveEvent` in, a JSON document, its daily index and a
deterministic `_id` out. The `_id` hashes the document with the spool
sequence and position it was given when it was first written to the spool,
so a batch re-sent after a crash or a lost answer lands on the same
documents instead of duplicating them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

KINDS = frozenset({"task_status", "agent", "maintenance", "alert", "decision", "operator"})
FIELDS = (
    "agent_id",
    "framework_id",
    "task_id",
    "state",
    "alertname",
    "severity",
    "action",
    "outcome",
    "principal",
    "rule",
)


class InvalidEvent(ValueError):
    """An event the archive cannot store (unknown kind, time not a finite number)."""


@dataclass(frozen=True)
class ArchiveEvent:
    """Something that happened in the cluster, for the event archive (and Grafana annotations)."""

    time: float  # unix seconds
    kind: str  # one of KINDS
    message: str
    agent_id: str = ""
    framework_id: str = ""
    task_id: str = ""
    state: str = ""
    alertname: str = ""
    severity: str = ""
    action: str = ""
    outcome: str = ""
    principal: str = ""
    rule: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidEvent(f"event kind {self.kind!r} is not one of {', '.join(sorted(KINDS))}")
        if not isinstance(self.time, int | float) or self.time != self.time:
            raise InvalidEvent(f"event time must be unix seconds, got {self.time!r}")


def rfc3339(t: float) -> str:
    """`2026-11-30T08:01:02.345Z` (UTC, milliseconds), as Elasticsearch's date type reads it."""
    moment = dt.datetime.fromtimestamp(t, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def index_name(prefix: str, t: float) -> str:
    """The daily index an event at `t` goes to: `<prefix>-YYYY.MM.DD` by its UTC date."""
    return f"{prefix}-{dt.datetime.fromtimestamp(t, dt.UTC):%Y.%m.%d}"


def document(event: ArchiveEvent) -> dict[str, Any]:
    """The stored document: @timestamp, kind, message, the non-empty fields, labels."""
    doc: dict[str, Any] = {
        "@timestamp": rfc3339(event.time),
        "kind": event.kind,
        "message": event.message,
    }
    for name in FIELDS:
        value = getattr(event, name)
        if value:
            doc[name] = value
    doc["labels"] = dict(event.labels)
    return doc


def document_id(doc: Mapping[str, Any], seq: int, position: int) -> str:
    """Deterministic `_id`: the same spooled document always gets the same one."""
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(f"{seq}.{position}.{canonical}".encode(), digest_size=16).hexdigest()


def index_template(prefix: str) -> dict[str, Any]:
    """The index template for `<prefix>-*`: which fields are keywords, text and dates.

    keyword: kind and every id/name field (exact filters and terms aggregations, e.g.
    Grafana annotations by `kind:alert AND severity:critical`); text: message; date:
    @timestamp; labels: an object whose values are keywords.
    """
    keyword = {"type": "keyword", "ignore_above": 1024}
    return {
        "index_patterns": [f"{prefix}-*"],
        "template": {
            "settings": {"number_of_shards": 1},
            "mappings": {
                "dynamic_templates": [
                    {"labels_as_keywords": {"path_match": "labels.*", "mapping": keyword}},
                ],
                "properties": {
                    "@timestamp": {"type": "date"},
                    "kind": keyword,
                    "message": {"type": "text"},
                    **{name: keyword for name in FIELDS},
                    "labels": {"type": "object", "dynamic": True},
                },
            },
        },
        "_meta": {"description": "Orbiter's event archive (orbiter.satellite.archive)"},
    }
