"""Silences: which alerts they mute, when they are active, and how they look on the wire.

A silence is Alertmanager's: label matchers (=, !=, =~, !~; regexes fully
anchored; a missing label is the empty string), a start, an end, who made it
and why. It mutes notifications of every alert all its matchers match while
`starts_at <= now < ends_at`. The master keeps them in its registry
(`master_pb2.Silence`) and serves them in Alertmanager's API v2 shape at
`/api/v2/silences`, so `amtool` and Grafana talk to Orbiter as to an
Alertmanager; Satellite's built-in notifier honours them and, when real
Alertmanagers are configured, mirrors them there (each mirrored copy carries
`[orbiter:<id>]` in its comment, so mirroring needs no memory of its own).

Everything here is pure: the master's state machine and Satellite call it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from orbiter.alerts.matchers import MatcherError, compile_regexp
from orbiter.alerts.payload import format_time
from orbiter.errors import Code, OrbiterError
from orbiter.proto import master_pb2

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_SILENCES = 1000
"""Silences kept in the registry; the longest-expired go first."""
EXPIRED_KEPT = 5 * 86400.0
"""Seconds an expired silence stays listed (Alertmanager keeps them 5 days too)."""
MIRROR_TAG = "[orbiter:{id}]"


class InvalidSilence(OrbiterError):
    code = Code.INVALID_ARGUMENT


@dataclass(frozen=True)
class MatcherSpec:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    @property
    def op(self) -> str:
        return {(False, True): "=", (False, False): "!=", (True, True): "=~",
                (True, False): "!~"}[(self.is_regex, self.is_equal)]  # fmt: skip

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


@lru_cache(maxsize=4096)
def _regex(value: str) -> re.Pattern[str]:
    """Go's (RE2) semantics, as Alertmanager matches: `matchers.compile_regexp`."""
    return compile_regexp(value)


def matcher_matches(m: MatcherSpec, labels: Mapping[str, str]) -> bool:
    value = labels.get(m.name, "")
    hit = _regex(m.value).fullmatch(value) is not None if m.is_regex else value == m.value
    return hit == m.is_equal


def check_matchers(matchers: Sequence[MatcherSpec]) -> None:
    """Alertmanager's rules: valid names, regexes that compile, and at least one matcher
    that does not match the empty string (else the silence would mute nearly everything)."""
    if not matchers:
        raise InvalidSilence("a silence needs at least one matcher, e.g. alertname=\"X\"")
    for m in matchers:
        if not LABEL_NAME.fullmatch(m.name):
            raise InvalidSilence(f"matcher {m}: {m.name!r} is not a valid label name")
        if m.is_regex:
            try:
                _regex(m.value)
            except MatcherError as e:
                raise InvalidSilence(f"matcher {m}: {e}") from None
    if all(matcher_matches(m, {}) for m in matchers):
        raise InvalidSilence(
            "at least one matcher must not match the empty string (the silence would mute "
            "almost every alert): add one such as alertname=\"X\""
        )


def specs(silence: master_pb2.Silence) -> list[MatcherSpec]:
    return [MatcherSpec(m.name, m.value, m.is_regex, m.is_equal) for m in silence.matchers]


def state(silence: master_pb2.Silence, now: float) -> str:
    """Alertmanager's silence states: pending, active or expired."""
    if now < silence.starts_at:
        return "pending"
    return "active" if now < silence.ends_at else "expired"


def mutes(silence: master_pb2.Silence, labels: Mapping[str, str], now: float) -> bool:
    return state(silence, now) == "active" and all(
        matcher_matches(m, labels) for m in specs(silence)
    )


def muted_by(
    silences: Iterable[master_pb2.Silence], labels: Mapping[str, str], now: float
) -> list[str]:
    """Ids of the silences that mute an alert with `labels` at `now`."""
    return [s.id for s in silences if mutes(s, labels, now)]


def new_silence(
    silence_id: str,
    matchers: Sequence[MatcherSpec],
    starts_at: float,
    ends_at: float,
    created_by: str,
    comment: str,
    now: float,
) -> master_pb2.Silence:
    """A checked silence; raises InvalidSilence saying what to change."""
    check_matchers(matchers)
    if ends_at <= now:
        raise InvalidSilence("a silence must end in the future")
    if not ends_at > starts_at:
        raise InvalidSilence("a silence must end after it starts")
    if not created_by.strip():
        raise InvalidSilence("say who creates the silence (createdBy / --author)")
    if not comment.strip():
        raise InvalidSilence("say why (comment / --comment): the next operator will ask")
    return master_pb2.Silence(
        id=silence_id,
        matchers=[
            master_pb2.SilenceMatcher(
                name=m.name, value=m.value, is_regex=m.is_regex, is_equal=m.is_equal
            )
            for m in matchers
        ],
        starts_at=max(starts_at, now),
        ends_at=ends_at,
        created_by=created_by,
        comment=comment,
        updated_at=now,
    )


def prune(silences: Mapping[str, master_pb2.Silence], now: float) -> dict[str, master_pb2.Silence]:
    """Drop silences expired longer than EXPIRED_KEPT, then the oldest beyond MAX_SILENCES."""
    kept = {k: s for k, s in silences.items() if now - s.ends_at < EXPIRED_KEPT}
    if len(kept) > MAX_SILENCES:
        newest = sorted(kept.values(), key=lambda s: s.ends_at)[-MAX_SILENCES:]
        kept = {s.id: s for s in newest}
    return kept


# ---------------------------------------------------------------------- wire shapes


def api_view(silence: master_pb2.Silence, now: float) -> dict[str, Any]:
    """Alertmanager's API v2 `gettableSilence`."""
    return {
        "id": silence.id,
        "status": {"state": state(silence, now)},
        "updatedAt": format_time(silence.updated_at),
        "matchers": [
            {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}
            for m in silence.matchers
        ],
        "startsAt": format_time(silence.starts_at),
        "endsAt": format_time(silence.ends_at),
        "createdBy": silence.created_by,
        "comment": silence.comment,
    }


def parse_rfc3339(text: Any, field: str) -> float:
    """Unix seconds of an RFC 3339 time (Go's nanoseconds are cut to microseconds)."""
    if not isinstance(text, str):
        raise InvalidSilence(f"{field} must be an RFC 3339 time string")
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text.strip()).replace("Z", "+00:00")
    try:
        when = dt.datetime.fromisoformat(trimmed)
    except ValueError:
        raise InvalidSilence(
            f"{field}: {text!r} is not an RFC 3339 time like 2026-01-02T15:04:05Z"
        ) from None
    if when.tzinfo is None:
        raise InvalidSilence(f"{field}: {text!r} needs a time zone (Z or +hh:mm)")
    return when.timestamp()


def from_api(view: Mapping[str, Any]) -> master_pb2.Silence:
    """A silence back from its API v2 JSON (a standalone Satellite reads them so)."""
    return master_pb2.Silence(
        id=str(view["id"]),
        matchers=[
            master_pb2.SilenceMatcher(
                name=m.name, value=m.value, is_regex=m.is_regex, is_equal=m.is_equal
            )
            for m in parse_matchers_json(view["matchers"])
        ],
        starts_at=parse_rfc3339(view["startsAt"], "startsAt"),
        ends_at=parse_rfc3339(view["endsAt"], "endsAt"),
        created_by=str(view.get("createdBy", "")),
        comment=str(view.get("comment", "")),
        updated_at=parse_rfc3339(view["updatedAt"], "updatedAt") if view.get("updatedAt")
        else 0.0,
    )


def mirror_plan(
    mine: Iterable[master_pb2.Silence], theirs: Iterable[Mapping[str, Any]], now: float
) -> tuple[list[master_pb2.Silence], list[str]]:
    """What to do to one Alertmanager so it holds exactly our live silences:
    (ours to post there, ids of its mirrored copies to expire)."""
    live = {s.id: s for s in mine if state(s, now) != "expired"}
    mirrored: dict[str, str] = {}
    stale: list[str] = []
    for view in theirs:
        if view.get("status", {}).get("state") == "expired":
            continue
        ours = mirrored_id(str(view.get("comment", "")))
        if ours is None:
            continue  # not ours: never touch another's silence
        if ours in live and ours not in mirrored and _same(live[ours], view):
            mirrored[ours] = str(view["id"])
        else:
            stale.append(str(view["id"]))
    return [s for k, s in live.items() if k not in mirrored], stale


def _same(silence: master_pb2.Silence, view: Mapping[str, Any]) -> bool:
    body = mirror_body(silence)
    def key(matchers: Any) -> list[tuple[Any, ...]]:
        return sorted(
            (m["name"], m["value"], m.get("isRegex", False), m.get("isEqual", True))
            for m in matchers
        )

    try:
        ends = parse_rfc3339(view["endsAt"], "endsAt")
    except (InvalidSilence, KeyError):
        return False
    return key(body["matchers"]) == key(view.get("matchers", [])) and abs(
        ends - silence.ends_at
    ) < 1.0


def mirror_body(silence: master_pb2.Silence) -> dict[str, Any]:
    """The `postableSilence` that mirrors `silence` to an Alertmanager."""
    view = api_view(silence, silence.updated_at)
    tag = MIRROR_TAG.format(id=silence.id)
    return {
        "matchers": view["matchers"],
        "startsAt": view["startsAt"],
        "endsAt": view["endsAt"],
        "createdBy": silence.created_by,
        "comment": f"{silence.comment} {tag}",
    }


def mirrored_id(comment: str) -> str | None:
    """The Orbiter silence a mirrored copy stands for, from its comment's tag."""
    found = re.search(r"\[orbiter:([^\]]+)\]$", comment)
    return found.group(1) if found else None


def parse_matchers_json(items: Any, where: str = "matchers") -> list[MatcherSpec]:
    """Matchers in Alertmanager's JSON form: [{name, value, isRegex, isEqual?}]."""
    if not isinstance(items, list):
        raise InvalidSilence(f"{where} must be a list of {{name, value, isRegex, isEqual}}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidSilence(f"{where}[{i}] must be an object with name and value")
        name, value = item.get("name"), item.get("value")
        is_regex, is_equal = item.get("isRegex", False), item.get("isEqual", True)
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidSilence(f"{where}[{i}]: name and value must be strings")
        if not isinstance(is_regex, bool) or not isinstance(is_equal, bool):
            raise InvalidSilence(f"{where}[{i}]: isRegex and isEqual must be true or false")
        out.append(MatcherSpec(name, value, is_regex, is_equal))
    return out
