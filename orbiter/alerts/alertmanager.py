"""Sending alerts to real Alertmanagers, the way Prometheus's notifier does.

Configured by `satellite.alertmanagers`, in the shape of Prometheus's
`alerting.alertmanagers` (the supported subset):

    satellite:
      resend_delay: 1m
      alertmanagers:
        - static_configs: [{targets: ["am1:9093", "am2:9093"]}]
          file_sd_configs: [{files: [/etc/orbiter/am/*.json], refresh_interval: 30s}]
          scheme: http            # or https
          path_prefix: /
          timeout: 10s
          api_version: v2         # the only one Alertmanager 0.25 serves
          basic_auth: {username: u, password: p}
          authorization: {credentials: token}   # "Bearer <token>"
          tls_config: {ca_file: ca.pem, insecure_skip_verify: false}

What is sent and when is Prometheus's rule (`rules/alerting.go` needsSending,
sendAlerts) and lives in the pure `due`: a firing alert is sent when it
starts firing and again every `resend_delay`, with `endsAt` four
intervals ahead (so Alertmanager keeps it active only while Satellite keeps
saying so); a resolved alert is sent at once and again every `resend_delay`
while it is kept (15 minutes), with `endsAt` its resolution time. Pending
alerts are never sent. `startsAt` is the time the alert started firing.

The shell (`AlertmanagerClient`) keeps a bounded queue (oldest dropped and
counted when full), posts batches of up to 64 alerts to every Alertmanager
it knows at once (`POST <prefix>/api/v2/alerts`), and re-reads discovery
files, and mirrors the registry's silences to every Alertmanager
(`sync_silences`). A failed post is counted, not retried: the next resend carries the
alert again, which is also how nothing is lost across a Satellite restart
(its alerts are restored from its state document and re-sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from orbiter import __version__
from orbiter.alerts import silences
from orbiter.alerts.payload import Notification, format_time
from orbiter.httpconfig import HTTPConfig, auth_headers, parse_http, ssl_context
from orbiter.proto import master_pb2
from orbiter.yamlreader import ConfigError, YamlReader

log = logging.getLogger("orbiter.alerts")

MAX_BATCH = 64
"""Alerts per POST, as Prometheus's notifier (maxBatchSize)."""
QUEUE_CAPACITY = 10_000
SILENCE_SYNC = 30.0
"""Seconds between checks that each Alertmanager still holds our silences."""
RESOLVED_RETENTION = 15 * 60.0
"""Seconds a resolved alert is kept and re-sent (Prometheus's resolvedRetention)."""


# ---------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class AlertmanagerSet:
    """One entry of `satellite.alertmanagers`: where they are and how to talk to them."""

    static_targets: tuple[str, ...] = ()
    sd_files: tuple[str, ...] = ()
    refresh_interval: float = 300.0
    scheme: str = "http"
    path_prefix: str = "/"
    timeout: float = 10.0
    http: HTTPConfig = field(default_factory=HTTPConfig)

    def url(self, target: str) -> str:
        prefix = "/" + self.path_prefix.strip("/")
        return f"{self.scheme}://{target}{prefix.rstrip('/')}/api/v2/alerts"


_SET_KEYS = {
    "static_configs", "file_sd_configs", "scheme", "path_prefix", "timeout", "api_version",
    "basic_auth", "authorization", "bearer_token", "tls_config",
}  # fmt: skip


def _target(r: YamlReader, node: yaml.Node, where: str) -> str:
    text = r.string(node, where)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or "/" in text:
        raise r.fail(node, f"{where}: {text!r} is not host:port (e.g. 127.0.0.1:9093)")
    return text


def parse_alertmanagers(r: YamlReader, node: yaml.Node, base: Path) -> list[AlertmanagerSet]:
    """`satellite.alertmanagers`; every mistake is refused with its file and line."""
    if not isinstance(node, yaml.SequenceNode):
        raise r.fail(node, "satellite.alertmanagers must be a list of alertmanager configs")
    out = []
    for i, item in enumerate(node.value):
        where = f"satellite.alertmanagers[{i}]"
        m = r.mapping(item, where, _SET_KEYS)
        values: dict[str, Any] = {}
        if "api_version" in m and r.string(m["api_version"], f"{where}.api_version") != "v2":
            raise r.fail(m["api_version"], f"{where}.api_version: only v2 is supported")
        if "scheme" in m:
            values["scheme"] = r.string(m["scheme"], f"{where}.scheme")
            if values["scheme"] not in ("http", "https"):
                raise r.fail(m["scheme"], f"{where}.scheme must be http or https")
        if "path_prefix" in m:
            values["path_prefix"] = r.string(m["path_prefix"], f"{where}.path_prefix")
        if "timeout" in m:
            values["timeout"] = r.duration(m["timeout"], f"{where}.timeout")
        targets: list[str] = []
        if "static_configs" in m:
            seq = m["static_configs"]
            if not isinstance(seq, yaml.SequenceNode):
                raise r.fail(seq, f"{where}.static_configs must be a list of {{targets: [...]}}")
            for j, sc in enumerate(seq.value):
                w = f"{where}.static_configs[{j}]"
                s = r.mapping(sc, w, {"targets", "labels"})
                if "targets" not in s or not isinstance(s["targets"], yaml.SequenceNode):
                    raise r.fail(sc, f"{w} needs targets: a list of host:port")
                targets += [
                    _target(r, t, f"{w}.targets[{k}]") for k, t in enumerate(s["targets"].value)
                ]
        files: list[str] = []
        if "file_sd_configs" in m:
            seq = m["file_sd_configs"]
            if not isinstance(seq, yaml.SequenceNode):
                raise r.fail(seq, f"{where}.file_sd_configs must be a list of {{files: [...]}}")
            for j, fc in enumerate(seq.value):
                w = f"{where}.file_sd_configs[{j}]"
                f = r.mapping(fc, w, {"files", "refresh_interval"})
                if "files" not in f:
                    raise r.fail(fc, f"{w} needs files: a list of paths (globs allowed)")
                for k, name in enumerate(r.strings(f["files"], f"{w}.files")):
                    if not name.endswith((".json", ".yml", ".yaml")):
                        raise r.fail(f["files"], f"{w}.files[{k}]: {name!r} must end in "
                                     ".json, .yml or .yaml")  # fmt: skip
                    files.append(str(base / name))
                if "refresh_interval" in f:
                    values["refresh_interval"] = r.duration(
                        f["refresh_interval"], f"{w}.refresh_interval"
                    )
        if not targets and not files:
            raise r.fail(item, f"{where} names no Alertmanager: give static_configs or "
                         "file_sd_configs")  # fmt: skip
        values["http"] = parse_http(r, m, where, base)
        out.append(AlertmanagerSet(tuple(targets), tuple(files), **values))
    return out


def read_sd_files(patterns: Iterable[str]) -> list[str]:
    """host:port targets in file_sd files (Prometheus's format: a list of {targets, labels}).

    A file that cannot be read or parsed is logged and skipped: discovery must not stop
    alerts going to the Alertmanagers it still knows.
    """
    targets: list[str] = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                text = Path(path).read_text()
                groups = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
                if not isinstance(groups, list):
                    raise ValueError("not a list of target groups")
                for g in groups:
                    if not isinstance(g, dict) or not isinstance(g.get("targets"), list):
                        raise ValueError("each target group needs a targets list")
                    targets += [str(t) for t in g["targets"]]
            except (OSError, ValueError, yaml.YAMLError) as e:
                log.error("alertmanager discovery: cannot use %s (%s); skipped", path, e)
    return targets


# ---------------------------------------------------------------------- pure decisions


def with_external_labels(labels: Mapping[str, str], external: Mapping[str, str]) -> dict[str, str]:
    """External labels are added where the alert has no label of that name (Prometheus)."""
    return {**external, **labels}


def api_alert(n: Notification) -> dict[str, Any]:
    """One alert of `POST /api/v2/alerts` (Alertmanager's postableAlert)."""
    out: dict[str, Any] = {
        "labels": dict(n.labels),
        "annotations": dict(n.annotations),
        "startsAt": format_time(n.starts_at),
        "generatorURL": n.generator_url,
    }
    if n.ends_at is not None:
        out["endsAt"] = format_time(n.ends_at)
    return out


def due(
    alerts: Sequence[Notification],
    last_sent: Mapping[str, float],
    now: float,
    resend_delay: float,
) -> tuple[list[Notification], dict[str, float]]:
    """Which of this round's alerts go out now, and the new last-sent times by fingerprint.

    `alerts` are every firing alert and every resolved one still kept; an alert is sent
    when it was never sent, when it resolved after it was last sent, or when
    `resend_delay` has passed. Alerts no longer given are forgotten.
    """
    out: list[Notification] = []
    sent: dict[str, float] = {}
    for n in alerts:
        fp = n.fingerprint
        last = last_sent.get(fp)
        resolved_since = n.status == "resolved" and n.ends_at is not None and (
            last is None or n.ends_at > last
        )
        if last is None or resolved_since or last + resend_delay <= now:
            out.append(n)
            sent[fp] = now
        else:
            sent[fp] = last
    return out, sent


def valid_until(now: float, resend_delay: float, interval: float) -> float:
    """A firing alert's endsAt: four resend (or evaluation) intervals ahead, as Prometheus."""
    return now + 4 * max(resend_delay, interval)


# ---------------------------------------------------------------------- the shell


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "orbiter_alertmanager_notifications_sent",
            "Alerts an Alertmanager accepted",
            ["alertmanager"],
            registry=registry,
        )
        self.errors = Counter(
            "orbiter_alertmanager_notifications_errors",
            "Alerts that could not be posted to an Alertmanager (the next resend carries them)",
            ["alertmanager"],
            registry=registry,
        )
        self.dropped = Counter(
            "orbiter_alertmanager_notifications_dropped",
            "Alerts dropped because the queue was full",
            registry=registry,
        )
        self.queue_length = Gauge(
            "orbiter_alertmanager_notifications_queue_length",
            "Alerts waiting to be posted",
            registry=registry,
        )
        self.capacity = Gauge(
            "orbiter_alertmanager_notifications_queue_capacity",
            "How many alerts the queue holds before it drops the oldest",
            registry=registry,
        )
        self.latency = Histogram(
            "orbiter_alertmanager_notifications_latency_seconds",
            "Time one POST of a batch to an Alertmanager took",
            ["alertmanager"],
            registry=registry,
        )
        self.discovered = Gauge(
            "orbiter_alertmanager_discovered",
            "Alertmanagers alerts are sent to",
            registry=registry,
        )


class AlertmanagerClient:
    """Queue and post alerts to every configured Alertmanager (see the module docstring)."""

    name = "alertmanager"

    def __init__(
        self,
        sets: Sequence[AlertmanagerSet],
        *,
        external_labels: Mapping[str, str] | None = None,
        resend_delay: float = 60.0,
        capacity: int = QUEUE_CAPACITY,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.sets = list(sets)
        self.external_labels = dict(external_labels or {})
        self.resend_delay = resend_delay
        self.capacity = capacity
        self.queue: deque[Notification] = deque()
        self.last_sent: dict[str, float] = {}
        self.metrics = _Metrics(registry or CollectorRegistry())
        self.metrics.capacity.set(capacity)
        self._targets: list[list[str]] = [list(s.static_targets) for s in self.sets]
        self._refreshed = [-1e18 for _ in self.sets]
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sessions: list[aiohttp.ClientSession] = []
        self.silences: list[master_pb2.Silence] = []
        self._silences_synced: tuple[object, ...] | None = None
        self._silences_at = -1e18

    # -- fed by Satellite every round

    def offer_round(self, alerts: Sequence[Notification], now: float) -> None:
        """This round's firing and kept resolved alerts; queues the ones due (never blocks)."""
        batch, self.last_sent = due(alerts, self.last_sent, now, self.resend_delay)
        self.enqueue(batch)

    def enqueue(self, alerts: Sequence[Notification]) -> None:
        for n in alerts:
            labels = with_external_labels(n.labels, self.external_labels)
            self.queue.append(replace(n, labels=labels) if labels != n.labels else n)
        overflow = len(self.queue) - self.capacity
        if overflow > 0:
            for _ in range(overflow):
                self.queue.popleft()
            self.metrics.dropped.inc(overflow)
            log.warning("alertmanager queue full: dropped the %d oldest alert(s)", overflow)
        self.metrics.queue_length.set(len(self.queue))
        if alerts:
            self._wakeup.set()

    def set_silences(self, current: Sequence[master_pb2.Silence]) -> None:
        """The registry's silences, to mirror to every Alertmanager (see `sync_silences`)."""
        self.silences = list(current)
        if self._key() != self._silences_synced:
            self._wakeup.set()

    def _key(self) -> tuple[object, ...]:
        return tuple(sorted((s.id, s.ends_at, s.updated_at) for s in self.silences))

    async def sync_silences(self) -> None:
        """Make each Alertmanager hold exactly our live silences (tagged copies; others'
        silences are never touched). Runs when they change and every SILENCE_SYNC seconds."""
        now = time.time()
        key = self._key()
        if key == self._silences_synced and time.monotonic() - self._silences_at < SILENCE_SYNC:
            return
        ok = True
        for s, session, targets in zip(self.sets, self._sessions, self._targets, strict=True):
            for target in targets:
                base = s.url(target).removesuffix("/alerts")
                try:
                    async with session.get(f"{base}/silences") as resp:
                        resp.raise_for_status()
                        theirs = await resp.json()
                    post, expire = silences.mirror_plan(self.silences, theirs, now)
                    for silence in post:
                        async with session.post(
                            f"{base}/silences", json=silences.mirror_body(silence)
                        ) as resp:
                            if resp.status // 100 != 2:
                                raise ConnectionError(f"HTTP {resp.status}: {await resp.text()}")
                    for their_id in expire:
                        async with session.delete(f"{base}/silence/{their_id}") as resp:
                            if resp.status // 100 != 2 and resp.status != 404:
                                raise ConnectionError(f"HTTP {resp.status}")
                except (aiohttp.ClientError, TimeoutError, OSError, ConnectionError) as e:
                    ok = False
                    log.warning("could not mirror silences to %s: %s; trying again", base, e)
        self._silences_at = time.monotonic()
        if ok:
            self._silences_synced = key

    # -- lifecycle

    async def start(self) -> None:
        if self._task is not None:
            return
        for s in self.sets:
            self._sessions.append(
                aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=s.timeout),
                    headers={"User-Agent": f"Orbiter/{__version__}", **auth_headers(s.http)},
                    connector=aiohttp.TCPConnector(ssl=ssl_context(s.http.tls_config) or True),
                )
            )
        self._task = asyncio.create_task(self._run(), name="alertmanager client")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for session in self._sessions:
            await session.close()
        self._sessions.clear()

    def alertmanagers(self) -> list[str]:
        """The URLs alerts go to now (static and discovered)."""
        self._refresh()
        return [s.url(t) for s, targets in zip(self.sets, self._targets, strict=True)
                for t in targets]  # fmt: skip

    def _refresh(self) -> None:
        now = time.monotonic()
        for i, s in enumerate(self.sets):
            if s.sd_files and now - self._refreshed[i] >= s.refresh_interval:
                self._refreshed[i] = now
                self._targets[i] = list(dict.fromkeys([*s.static_targets,
                                                       *read_sd_files(s.sd_files)]))  # fmt: skip
        self.metrics.discovered.set(sum(len(t) for t in self._targets))

    async def _run(self) -> None:
        while True:
            if not self.queue:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    # Wake now and then to follow discovery files even with nothing to send.
                    await asyncio.wait_for(self._wakeup.wait(), 5.0)
                self._refresh()
                try:
                    await self.sync_silences()
                except Exception:
                    log.exception("alertmanager client: mirroring silences failed")
                continue
            batch = [self.queue.popleft() for _ in range(min(MAX_BATCH, len(self.queue)))]
            self.metrics.queue_length.set(len(self.queue))
            try:
                await self._post_everywhere(batch)
            except Exception:  # a bug must not end the loop: the alerts come again
                log.exception("alertmanager client: posting a batch failed")

    async def _post_everywhere(self, batch: list[Notification]) -> None:
        self._refresh()
        body = json.dumps([api_alert(n) for n in batch]).encode()
        posts = [
            self._post(session, s.url(t), body, len(batch))
            for s, session, targets in zip(self.sets, self._sessions, self._targets, strict=True)
            for t in targets
        ]
        await asyncio.gather(*posts)

    async def _post(self, session: aiohttp.ClientSession, url: str, body: bytes, n: int) -> None:
        started = time.perf_counter()
        try:
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                detail = (await resp.text())[:200]
                if resp.status // 100 != 2:
                    raise ConnectionError(f"HTTP {resp.status}: {detail}")
        except (aiohttp.ClientError, TimeoutError, OSError, ConnectionError) as e:
            self.metrics.errors.labels(url).inc(n)
            log.warning("alertmanager %s refused %d alert(s): %s; the next resend carries "
                        "them again", url, n, e)  # fmt: skip
            return
        finally:
            self.metrics.latency.labels(url).observe(time.perf_counter() - started)
        self.metrics.sent.labels(url).inc(n)


__all__ = [
    "AlertmanagerClient",
    "AlertmanagerSet",
    "ConfigError",
    "api_alert",
    "due",
    "parse_alertmanagers",
    "read_sd_files",
    "valid_until",
]
