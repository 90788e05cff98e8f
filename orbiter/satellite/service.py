"""Satellite's shell: scrape, evaluate rules, notify, and act through the policy.

Data flows one way: targets from the cluster → scrape → TSDB → rule groups
(recording rules, alerts with ALERTS series) → notifications and action
requests → the pure safety policy → maintenance calls on the master. Every
policy decision, taken, refused or dry-run, becomes an event: kept in memory
for the API and counted in metrics.

What a successor needs (the policy's memory, recent events, every alert's `for`
progress) is one document in a BlobStore (`durable_state` describes it), written
after every round that changed it, before a round's first action and after each
action. The write is conditional: when it fails with RegistryConflict another
Satellite (a new leader's) owns the state, and this one takes no further action.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import socket
import time
import urllib.parse
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from orbiter.alerts import silences
from orbiter.alerts.alertmanager import (
    RESOLVED_RETENTION,
    AlertmanagerClient,
    AlertmanagerSet,
    valid_until,
)
from orbiter.alerts.amconfig import load_notifier_config
from orbiter.alerts.builtin import BuiltinNotifier
from orbiter.alerts.deliver import deliver
from orbiter.alerts.notify import LogReceiver, Notifier, NotifyFailed, WebhookReceiver
from orbiter.alerts.payload import Notification, fingerprint, format_time
from orbiter.alerts.receiver_configs import ReceiverConfig
from orbiter.blobstore import BlobStore, FileBlobStore
from orbiter.errors import Code, OrbiterError, RegistryConflict
from orbiter.proto import master_pb2
from orbiter.satellite import external_alerts, rule_api
from orbiter.satellite.archive import Archive, ArchiveConfig, ArchiveEvent
from orbiter.satellite.durable_state import (
    EVENTS_KEPT,
    Event,
    ExternalAlert,
    SatelliteState,
    SavedGroup,
    StateDocumentInvalid,
    decode,
    encode,
    match_group,
    restore_group,
    saved_group,
)
from orbiter.satellite.policy import (
    Action,
    ActionRequest,
    AgentSnapshot,
    ClusterAlert,
    Decision,
    Outcome,
    PolicyConfig,
    PolicyState,
    decide,
)
from orbiter.satellite.policy import budget as policy_budget
from orbiter.satellite.promql import engine
from orbiter.satellite.remote_write import RemoteWriteConfig, RemoteWriter
from orbiter.satellite.rules import (
    AlertState,
    GroupState,
    RuleGroup,
    engine_query,
    evaluate_group,
    load_rule_files,
)
from orbiter.satellite.scrape import Scraper, Target
from orbiter.satellite.scrape_config import ScrapeJob
from orbiter.satellite.tsdb import TSDB

log = logging.getLogger("orbiter.satellite")

TARGET_SYNC_SECONDS = 1.0
LOOKBACK_MS = 300_000
CLAIM_ATTEMPTS = 3
STATE_HEARTBEAT_SECONDS = 60.0
"""The state document is rewritten at least this often, so that its groups' `evaluated_at`
tells a successor how long nobody watched (a failover, or a long outage)."""


GC_THRESHOLDS = (100_000, 50, 100)
"""Young collections every 100k allocations, not 700. Satellite's heap is millions of
long-lived label tuples and sample arrays that form no cycles; the default thresholds
make the collector walk them again and again, about a fifth of a round's CPU."""


def tune_gc() -> None:
    """Set GC_THRESHOLDS; for a process that runs Satellite on its own (the master's
    child, `orbiter satellite`), so the master's own collector is left alone."""
    gc.set_threshold(*GC_THRESHOLDS)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection while a group evaluates (synchronous, no await inside).

    A round allocates millions of short-lived objects that reference counting
    frees at once; collections in between only walk them (~6-10% of a round at
    1,000 targets). Whatever survives is looked at by the next collection.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class SatelliteConfig:
    rule_files: list[str] = field(default_factory=list)
    scrape_interval: float = 15.0
    scrape_timeout: float = 10.0
    evaluation_interval: float = 15.0
    retention: float = 3600.0
    """Seconds of history the TSDB keeps (for queries and templates); the rules' own need,
    their longest range plus the lookback, is kept whatever this says."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    webhooks: list[str] = field(default_factory=list)
    external_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    """Where users reach Orbiter (alerts' generatorURL); the master's HTTP URL if unset."""
    alertmanagers: list[AlertmanagerSet] = field(default_factory=list)
    resend_delay: float = 60.0
    """Firing (and, for 15m, resolved) alerts are sent to Alertmanagers again this often."""
    remote_write: list[RemoteWriteConfig] = field(default_factory=list)
    scrape_jobs: list[ScrapeJob] = field(default_factory=list)
    archive: ArchiveConfig | None = None
    """Samples to InfluxDB and events to Elasticsearch (`satellite.archive`)."""
    notifier_config: str = ""
    """The built-in notifier's routes and receivers: a file in Alertmanager's format."""
    """Static scrape jobs (`scrape_configs`) beside the cluster's own targets."""
    # Restoring `for` progress after a failover; see orbiter/satellite/durable_state.py.
    for_grace_period: float = 600.0
    for_outage_tolerance: float = 3600.0
    external_alert_ttl: float = external_alerts.DEFAULT_TTL
    """An alert from an Alertmanager webhook is dropped after this long without news."""


class Cluster(Protocol):
    """How Satellite sees and acts on the cluster: in the master, or over its HTTP API."""

    async def targets(self) -> list[Target]: ...

    async def agents(self) -> list[AgentSnapshot]: ...

    async def act(self, agent_id: str, action: Action, reason: str) -> None: ...

    async def silences(self) -> list[master_pb2.Silence]: ...

    async def operator_actions(self) -> list[Event]: ...


class Satellite:
    def __init__(
        self,
        config: SatelliteConfig,
        cluster: Cluster,
        work_dir: Path,
        registry: CollectorRegistry | None = None,
        store: BlobStore | None = None,
    ) -> None:
        self.config = config
        self.cluster = cluster
        self.work_dir = work_dir
        self.store: BlobStore = store or FileBlobStore(work_dir / "state.json")
        self.fenced = ""  # set when another Satellite wrote the state: this one must not act
        self._writer = f"{socket.gethostname()}:{os.getpid()}"
        # The predecessor's alerts, merged in at the first round with data (see _data_ready).
        self._unrestored: list[SavedGroup] | None = None
        self._evaluated_at: dict[tuple[str, str], int] = {}
        self._saved_progress: tuple[object, ...] | None = None
        self._saved_at = -math.inf
        self._store_lock = asyncio.Lock()
        self._started: float | None = None
        self.tsdb = TSDB()
        self.groups: list[RuleGroup] = []
        self.group_states: dict[tuple[str, str], GroupState] = {}
        self.policy_state = PolicyState()
        self.events: deque[Event] = deque(maxlen=EVENTS_KEPT)
        self.cluster_alerts: dict[str, ClusterAlert] = {}
        self.cluster_alerts_since: dict[str, float] = {}
        self.group_runs: dict[tuple[str, str], rule_api.GroupRun] = {}
        self._next_due: dict[tuple[str, str], float] = {}
        # Notifications made outside a round (rules removed by a reload), sent with the next.
        self._pending: list[Notification] = []
        self.scraper = Scraper(self.tsdb, config.scrape_interval, config.scrape_timeout)
        reg = registry or CollectorRegistry()
        self.registry = reg
        receivers: list[Any] = [LogReceiver()]
        for i, url in enumerate(config.webhooks):
            receivers.append(
                WebhookReceiver(
                    f"webhook-{i}",
                    url,
                    work_dir / "spool",
                    registry=reg,
                    external_url=config.external_url,
                )
            )
        self.notifier = Notifier(receivers)
        self.builtin: BuiltinNotifier | None = None
        if config.notifier_config:
            self.builtin = BuiltinNotifier(
                load_notifier_config(config.notifier_config),
                self._deliver,
                registry=reg,
                external_url=config.external_url,
                muted=self.muted,
            )
        self._http: aiohttp.ClientSession | None = None  # the notifier's, one for every send
        self.alertmanager: AlertmanagerClient | None = None
        if config.alertmanagers:
            self.alertmanager = AlertmanagerClient(
                config.alertmanagers,
                external_labels=config.external_labels,
                resend_delay=config.resend_delay,
                registry=reg,
            )
        self.archive: Archive | None = None
        if config.archive is not None:
            self.archive = Archive(config.archive, work_dir, reg)
            self.scraper.sinks.append(self.archive)
        self.remote_writers = [RemoteWriter(c, registry=reg) for c in config.remote_write]
        self.scraper.sinks.extend(self.remote_writers)
        self.silences: list[master_pb2.Silence] = []
        self.static_targets = [t for job in config.scrape_jobs for t in job.scrape_targets()]
        self.external_alerts: dict[str, ExternalAlert] = {}
        # Satellite's own cluster alerts that resolved, kept (and re-sent) like rules' ones.
        self.cluster_resolved: dict[str, Notification] = {}
        self._task: asyncio.Task[None] | None = None
        self.last_evaluation = 0.0
        self.evaluated = asyncio.Event()
        self.m_decisions = Counter(
            "orbiter_satellite_decisions",
            "Policy decisions by action and outcome",
            ["action", "outcome"],
            registry=reg,
        )
        self.m_eval_seconds = Histogram(
            "orbiter_satellite_evaluation_duration_seconds",
            "Time one evaluation round of every rule group takes",
            registry=reg,
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.m_rule_failures = Counter(
            "orbiter_satellite_rule_evaluation_failures",
            "Rule evaluations that failed",
            registry=reg,
        )
        self.m_series = Gauge(
            "orbiter_satellite_series", "Series held in Satellite's TSDB", registry=reg
        )
        self.m_alerts = Gauge(
            "orbiter_satellite_alerts", "Active alerts by state", ["state"], registry=reg
        )
        self.m_state_writes = Counter(
            "orbiter_satellite_state_writes",
            "Writes of Satellite's state document by result (ok, failed, conflict)",
            ["result"],
            registry=reg,
        )
        self.m_fenced = Gauge(
            "orbiter_satellite_fenced",
            "1 when another Satellite owns the state and this one takes no action",
            registry=reg,
        )

    # ------------------------------------------------------------------ rules

    def load_rules(self) -> list[RuleGroup]:
        """Load every rule file; raises RuleFileInvalid and keeps the old rules if any is bad.

        A rule that stays (same group, same name) keeps its alerts; the firing
        alerts of rules that went away are sent out resolved at the next round,
        so receivers do not show them firing forever.
        """
        groups = load_rule_files(self.config.rule_files)
        longest = max((engine.max_range_ms(r.expr) for g in groups for r in g.rules), default=0)
        self.tsdb.retention_ms = max(longest + LOOKBACK_MS, round(self.config.retention * 1000))
        old_rules = {
            (key, rule.name, type(rule).__name__): (alerts, previous)
            for g in self.groups
            for key in [(g.file, g.name)]
            if key in self.group_states
            for rule, alerts, previous in zip(
                g.rules,
                self.group_states[key].alerts,
                self.group_states[key].previous,
                strict=True,
            )
        }
        states: dict[tuple[str, str], GroupState] = {}
        kept: set[tuple[tuple[str, str], str, str]] = set()
        for g in groups:
            key = (g.file, g.name)
            alerts, previous = [], []
            for rule in g.rules:
                rule_key = (key, rule.name, type(rule).__name__)
                old = old_rules.get(rule_key) if rule_key not in kept else None
                kept.add(rule_key)
                alerts.append(old[0] if old else {})
                previous.append(old[1] if old else frozenset())
            states[key] = GroupState(tuple(alerts), tuple(previous))
        now = time.time()
        for rule_key, (alerts, _) in old_rules.items():
            if rule_key in kept:
                continue
            for alert in alerts.values():
                if alert.state is AlertState.FIRING:
                    self._pending.append(self._notification(alert, "resolved", ends_at=now))
        self.group_states = states
        self._next_due = {k: t for k, t in self._next_due.items() if k in states}
        self.group_runs = {k: r for k, r in self.group_runs.items() if k in states}
        self._evaluated_at = {k: t for k, t in self._evaluated_at.items() if k in states}
        self.groups = groups
        log.info(
            "loaded %d rule group(s), %d rule(s) from %d file(s)",
            len(groups),
            sum(len(g.rules) for g in groups),
            len(self.config.rule_files),
        )
        return groups

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._started = time.monotonic()
        await self.restore()
        self.load_rules()
        await self.scraper.start()
        await self.notifier.start()
        if self.alertmanager is not None:
            await self.alertmanager.start()
        if self.builtin is not None:
            self.builtin.external_url = self.config.external_url  # set once the master is known
            self._http = aiohttp.ClientSession()
            await self.builtin.start()
        for writer in self.remote_writers:
            await writer.start()
        if self.archive is not None:
            await self.archive.start()
        self._task = asyncio.create_task(self._run(), name="satellite")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.scraper.stop()
        await self.notifier.stop()
        if self.alertmanager is not None:
            await self.alertmanager.stop()
        if self.builtin is not None:
            await self.builtin.stop()
        if self._http is not None:
            await self._http.close()
        for writer in self.remote_writers:
            await writer.stop()
        if self.archive is not None:
            await self.archive.stop()

    def _interval(self, group: RuleGroup) -> float:
        return group.interval_ms / 1000 if group.interval_ms else self.config.evaluation_interval

    async def _run(self) -> None:
        unreachable = ""  # the last "cannot read the cluster" said, so it is said once
        while True:
            try:
                try:
                    targets = await self.cluster.targets()
                except aiohttp.ClientError as e:
                    # A master that is down, restarting or has a certificate not valid for
                    # the address Satellite uses: one line when it starts, not a traceback
                    # a second. Rules still evaluate on what was scraped.
                    if str(e) != unreachable:
                        log.error("Satellite cannot read the cluster's targets from the "
                                  "master: %s; retrying every second", e)  # fmt: skip
                    unreachable = str(e)
                else:
                    if unreachable:
                        log.info("Satellite reads the cluster's targets from the master again")
                    unreachable = ""
                    self.scraper.sync([*targets, *self.static_targets])
                now = time.time()
                due = any(t <= now for t in self._next_due.values()) or len(self._next_due) < len(
                    self.groups
                )
                if due or now - self.last_evaluation >= self.config.evaluation_interval:
                    await self.evaluate(now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("satellite round failed")
            now = time.time()
            wake = min(self._next_due.values(), default=now + self.config.evaluation_interval)
            # Wake at least every second to follow agents as they come and go.
            await asyncio.sleep(min(max(0.05, wake - now), TARGET_SYNC_SECONDS))

    # ------------------------------------------------------------------ one round

    async def evaluate(self, now: float, every_group: bool = False) -> None:
        """Evaluate the groups due at `now` (each on its own interval), notify, act."""
        t_ms = int(now * 1000)
        started = time.perf_counter()
        if self._unrestored is not None and self._data_ready():
            self._restore_alerts(t_ms)
        transitions, self._pending = self._pending, []
        requests: list[ActionRequest] = []
        counts = {"pending": 0, "firing": 0}
        for group in self.groups:
            key = (group.file, group.name)
            interval = self._interval(group)
            if not every_group and self._next_due.get(key, 0.0) > now:
                self._collect(group, self.group_states[key], t_ms, counts, requests, None)
                continue
            self._next_due[key] = now + interval
            self._evaluated_at[key] = t_ms
            # Prometheus's default subquery step is the group's evaluation interval.
            query = engine_query(self.tsdb, LOOKBACK_MS, subquery_step_ms=int(interval * 1000))
            before = self.group_states[key]
            with gc_paused():
                result = evaluate_group(
                    group,
                    before,
                    self.tsdb,
                    t_ms,
                    query,
                    external_labels=self.config.external_labels,
                    external_url=self.config.external_url,
                )
            errors: dict[int, str] = {}
            index = {id(rule): i for i, rule in enumerate(group.rules)}
            for failure in result.failures:
                self.m_rule_failures.inc()
                log.warning("rule %s in %s: %s", failure.rule.name, group.name, failure.error)
                errors.setdefault(index[id(failure.rule)], failure.error)
            self.group_runs[key] = rule_api.GroupRun(
                t_ms, sum(result.seconds), result.seconds, errors
            )
            self.group_states[key] = result.state
            self._collect(group, result.state, t_ms, counts, requests, transitions)
        self.external_alerts = external_alerts.prune(
            self.external_alerts, now, self.config.external_alert_ttl
        )
        for ext in self.external_alerts.values():
            request = _action_request(ext.labels, ext.annotations)
            if request is not None:
                requests.append(request)
        for state, n in counts.items():
            self.m_alerts.labels(state).set(n)
        self.m_series.set(len(self.tsdb))
        await self._read_silences(now)
        # Alerts go out first: a policy step that fails (master away) must not lose them.
        await self._notify(transitions)
        try:
            await self._notify(await self._apply_policy(requests, now))
        except Exception:
            log.exception("the safety policy step failed; it runs again next round")
        if self.alertmanager is not None or self.builtin is not None:
            outgoing = self.outgoing_alerts(now)
            if self.alertmanager is not None:
                self.alertmanager.offer_round(outgoing, now)
            if self.builtin is not None:
                # The whole state every round, as Prometheus gives Alertmanager: the notifier
                # groups, waits, repeats and resolves as Alertmanager does (silences applied).
                await self.builtin.send(outgoing)
        await self._persist(now)
        self.tsdb.gc(t_ms)
        self.m_eval_seconds.observe(time.perf_counter() - started)
        self.last_evaluation = now
        self.evaluated.set()
        self.evaluated = asyncio.Event()

    def _collect(
        self,
        group: RuleGroup,
        state: GroupState,
        t_ms: int,
        counts: dict[str, int],
        requests: list[ActionRequest],
        transitions: list[Notification] | None,
    ) -> None:
        """Count a group's alerts, gather its action requests and (if just evaluated) changes."""
        for rule, alerts in zip(group.rules, state.alerts, strict=True):
            for alert in alerts.values():
                if alert.state is AlertState.PENDING:
                    counts["pending"] += 1
                elif alert.state is AlertState.FIRING:
                    counts["firing"] += 1
                    request = _action_request(alert.labels, alert.annotations)
                    if request is not None:
                        requests.append(request)
                    if transitions is not None and alert.fired_at_ms == t_ms:
                        transitions.append(self._notification(alert, "firing", rule.expr))
                elif (
                    transitions is not None
                    and alert.resolved_at_ms == t_ms
                    and alert.fired_at_ms is not None
                ):
                    transitions.append(self._notification(alert, "resolved", rule.expr))

    async def _read_silences(self, now: float) -> None:
        """The registry's silences; the last ones known stay in force while the master is away."""
        try:
            self.silences = await self.cluster.silences()
        except Exception as e:
            log.warning("could not read silences from the master (%s); keeping the last ones", e)
        if self.alertmanager is not None:
            self.alertmanager.set_silences(self.silences)

    async def _deliver(self, receiver: ReceiverConfig, payload: dict[str, Any]) -> None:
        # One HTTP session for every message: a new one per send costs ~6x the throughput.
        await deliver(receiver, payload, session=self._http)

    def reload_notifier(self) -> bool:
        """Read the notifier's file again; raises ConfigError (the old one stays) if bad."""
        if self.builtin is None or not self.config.notifier_config:
            return False
        self.builtin.reload(load_notifier_config(self.config.notifier_config))
        log.info("reloaded the notifier's routes from %s", self.config.notifier_config)
        return True

    def muted(self, labels: Mapping[str, str], now: float | None = None) -> bool:
        """Whether a silence mutes notifications of an alert with `labels` now."""
        when = time.time() if now is None else now
        return any(silences.mutes(s, labels, when) for s in self.silences)

    def _archive_alerts(self, notifications: Sequence[Notification]) -> None:
        if self.archive is None:
            return
        for n in notifications:
            summary = n.annotations.get("summary") or n.annotations.get("description") or ""
            self.archive.offer_event(
                ArchiveEvent(
                    n.starts_at if n.status == "firing" else (n.ends_at or time.time()),
                    "alert",
                    f"{n.alertname} {n.status}" + (f": {summary}" if summary else ""),
                    agent_id=n.labels.get("agent", ""),
                    alertname=n.alertname,
                    severity=n.labels.get("severity", ""),
                    state=n.status,
                    action=n.labels.get("action", ""),
                    labels=dict(n.labels),
                )
            )

    async def _notify(self, notifications: list[Notification]) -> None:
        self._archive_alerts(notifications)
        now = time.time()
        quiet = [n for n in notifications if self.muted(n.labels, now)]
        for n in quiet:
            log.info("alert %s %s is silenced: not notified", n.alertname, n.status)
        notifications = [n for n in notifications if n not in quiet]
        if not notifications:
            return
        try:
            await self.notifier.notify(notifications)
        except NotifyFailed as e:  # the other receivers got them; this one is logged
            log.error("%s", e)

    async def _apply_policy(self, requests: list[ActionRequest], now: float) -> list[Notification]:
        if self.fenced:
            return []
        agents = await self.cluster.agents()
        result = decide(self.config.policy, self.policy_state, agents, requests, now)
        acting = any(d.outcome is Outcome.TAKEN for d in result.decisions)
        if acting and not await self._persist(now, force=True):
            # The write is the fence: a Satellite that cannot write first (deposed, or its
            # store is away) does not act. The same question is asked again next round.
            log.error("Satellite takes no action this round: its state could not be saved")
            return []
        failed = stopped = False
        for decision in result.decisions:
            if decision.outcome is not Outcome.TAKEN:
                self._record(decision)
                continue
            if stopped:
                break
            try:
                await self.cluster.act(decision.agent_id, decision.action, decision.reason)
            except Exception as e:  # the master refused or is away: record it, go on
                log.error("could not %s agent %s: %s", decision.action.value, decision.agent_id, e)
                failed = True
                decision = Decision(
                    decision.time,
                    decision.agent_id,
                    decision.action,
                    decision.rule,
                    Outcome.REFUSED,
                    f"{decision.reason}; the master refused: {e}",
                )
            self._record(decision)
            # Each action is on record before the next: a successor that takes over in
            # between knows it happened (rate and flap history included).
            if not await self._persist(
                now, force=True, policy=self.policy_state if failed else result.state
            ):
                failed = stopped = True  # not on record: no further action this round
        if not failed:
            # The policy's memory (history, cool-downs) only moves on when what it decided
            # happened; after a refusal the same question is asked again next round.
            self.policy_state = result.state
        notifications: list[Notification] = []
        current = {f"{a.name}/{a.agent_id}": a for a in result.alerts}
        for name, alert in current.items():
            if name not in self.cluster_alerts:
                self.cluster_alerts_since[name] = now
                notifications.append(self._cluster_notification(alert, "firing", now, now))
        for name, alert in self.cluster_alerts.items():
            if name not in current:
                since = self.cluster_alerts_since.pop(name, now)
                resolved = self._cluster_notification(alert, "resolved", since, now)
                self.cluster_resolved[name] = resolved
                notifications.append(resolved)
        self.cluster_alerts = current
        return notifications

    # ------------------------------------------------------------------ durable state

    async def restore(self) -> None:
        """Take over the state the previous Satellite left: policy memory, events, alerts.

        The policy's memory and the events apply at once; the alerts wait for the first
        round with data (`_data_ready`). The document is then written back at once, which
        claims it: from here on a predecessor that is still running (deposed, not yet
        stopped) gets RegistryConflict and stops acting. A write that lands between our
        read and our claim is the predecessor's last: read again. With no document but
        the files of an older Orbiter (policy.json, events.jsonl), those are read once,
        written as the document and renamed `*.migrated`.
        """
        for _ in range(CLAIM_ATTEMPTS):
            # Off the loop: a file read, or a ZooKeeper round trip.
            state, legacy = await asyncio.to_thread(self._load_state)
            if state is not None:
                self.policy_state = state.policy
                self.events.clear()
                self.events.extend(state.events)
                self._unrestored = list(state.groups) or None
                self.external_alerts = {fingerprint(dict(e.labels)): e for e in state.external}
            now = time.time()
            claim = self._document(now, None)
            try:
                await asyncio.to_thread(self.store.store, encode(claim))
            except RegistryConflict as e:
                log.warning("Satellite's state changed while it was taken over (%s); again", e)
                continue
            except Exception as e:  # the store is away: the first round writes it again
                log.error("could not claim Satellite's state: %s; trying again next round", e)
                break
            self._saved_progress, self._saved_at = claim.progress(), now
            self.m_state_writes.labels("ok").inc()
            if legacy:
                await asyncio.to_thread(_rename_migrated, legacy)
            break
        else:
            self._fence("the state kept changing while this Satellite took it over")
            return
        if state is not None:
            log.info(
                "resumed Satellite's state%s: %d event(s), %d action(s) in history, %d alert(s)",
                f" saved by {state.writer}" if state.writer else "",
                len(state.events),
                len(state.policy.history),
                sum(len(a) for g in state.groups for a in g.rules.values()),
            )

    def _load_state(self) -> tuple[SatelliteState | None, list[Path]]:
        data = self.store.load()
        if data is not None:
            try:
                return decode(data), []
            except StateDocumentInvalid as e:
                log.warning("ignoring Satellite's state document (%s); starting with no history", e)
                return None, []
        return self._legacy_state()

    def _legacy_state(self) -> tuple[SatelliteState | None, list[Path]]:
        """What an older Orbiter kept in policy.json and events.jsonl, if anything."""
        policy_path, events_path = self.work_dir / "policy.json", self.work_dir / "events.jsonl"
        found = [p for p in (policy_path, events_path) if p.exists()]
        if not found:
            return None, []
        policy = PolicyState()
        if policy_path.exists():
            try:
                policy = PolicyState.from_dict(json.loads(policy_path.read_text()))
            except (ValueError, KeyError, TypeError) as e:
                log.warning("ignoring unreadable %s (%s); starting with no history", policy_path, e)
        events: list[Event] = []
        if events_path.exists():
            for line in events_path.read_text().splitlines()[-EVENTS_KEPT:]:
                with contextlib.suppress(ValueError, TypeError):
                    events.append(Event(**json.loads(line)))
        return SatelliteState(policy, tuple(events)), found

    def _data_ready(self) -> bool:
        """Whether every target has been scraped since start, so restored alerts are judged
        on data, not on an empty TSDB (Prometheus waits one more evaluation for the same
        reason). A target that never answers holds this back for a few intervals at most."""
        if all(t.last_scrape for t in self.scraper.targets.values()):
            return True
        waited = math.inf if self._started is None else time.monotonic() - self._started
        return waited > 2 * self.config.scrape_interval + self.config.scrape_timeout

    def _restore_alerts(self, t_ms: int) -> None:
        saved, self._unrestored = self._unrestored or [], None
        grace = round(self.config.for_grace_period * 1000)
        tolerance = round(self.config.for_outage_tolerance * 1000)
        for group in self.groups:
            i = match_group(group, self.groups, saved)
            if i < 0:
                continue
            found = saved.pop(i)
            key = (group.file, group.name)
            self.group_states[key] = restore_group(
                group, self.group_states[key], found, t_ms, grace_ms=grace, tolerance_ms=tolerance
            )
            self._evaluated_at[key] = min(
                self._evaluated_at.get(key, found.evaluated_at_ms), found.evaluated_at_ms
            )
        for group in saved:
            log.info(
                "no rule group %s in %s any more: its saved alerts are dropped",
                group.name,
                group.file,
            )

    def _document(self, now: float, policy: PolicyState | None) -> SatelliteState:
        if self._unrestored is not None:
            groups = tuple(self._unrestored)  # not merged yet: hand on what was saved
        else:
            groups = tuple(
                g
                for group in self.groups
                if (key := (group.file, group.name)) in self._evaluated_at
                for g in [saved_group(group, self.group_states[key], self._evaluated_at[key])]
                if g.rules
            )
        return SatelliteState(
            policy if policy is not None else self.policy_state,
            tuple(self.events),
            groups,
            now,
            self._writer,
            tuple(self.external_alerts[k] for k in sorted(self.external_alerts)),
        )

    async def receive_webhook(self, body: Any) -> int:
        """An Alertmanager webhook message: its firing alerts kept (and on record before
        this returns), its resolved ones dropped. Returns how many alerts it held; raises
        InvalidWebhook for a body that is not one, and changes nothing then."""
        alerts = external_alerts.parse_webhook(body)
        now = time.time()
        before = self.external_alerts
        self.external_alerts = external_alerts.apply_webhook(before, alerts, now)
        if not await self._persist(now, force=True):
            self.external_alerts = before
            raise OrbiterError(
                "Satellite could not save the alerts (its state store is away, or another "
                "Satellite owns it); Alertmanager will send them again",
                Code.UNAVAILABLE,
            )
        for n in alerts:
            log.info("alert %s %s received from Alertmanager", n.alertname, n.status)
        return len(alerts)

    async def _persist(
        self, now: float, *, force: bool = False, policy: PolicyState | None = None
    ) -> bool:
        """Write the state document if it changed (or if `force`, or the heartbeat is due).

        False when it was not written; after a RegistryConflict, also sets `fenced`.
        """
        if self.fenced:
            return False
        async with self._store_lock:
            state = self._document(now, policy)
            progress = state.progress()
            if (
                not force
                and progress == self._saved_progress
                and now - self._saved_at < STATE_HEARTBEAT_SECONDS
            ):
                return True
            data = encode(state)
            try:
                # Off the loop: an fsync, or a ZooKeeper round trip.
                await asyncio.to_thread(self.store.store, data)
            except RegistryConflict as e:
                self._fence(str(e))
                return False
            except Exception as e:  # the store is away: keep going, write again next round
                self.m_state_writes.labels("failed").inc()
                log.error("could not save Satellite's state: %s; trying again next round", e)
                return False
            self.m_state_writes.labels("ok").inc()
            self._saved_progress, self._saved_at = progress, now
            return True

    def _fence(self, why: str) -> None:
        self.fenced = why
        self.m_fenced.set(1)
        self.m_state_writes.labels("conflict").inc()
        log.critical(
            "another Satellite wrote the state (%s): this one takes no further action", why
        )

    # ------------------------------------------------------------------ events

    def _record(self, d: Decision) -> None:
        event = Event(d.time, d.rule, d.agent_id, d.action.value, d.outcome.value, d.reason)
        self.events.append(event)
        if self.archive is not None:
            self.archive.offer_event(
                ArchiveEvent(
                    d.time,
                    "decision",
                    f"{event.outcome} {event.action} agent {event.agent}: {event.reason}",
                    agent_id=event.agent,
                    action=event.action,
                    outcome=event.outcome,
                    rule=event.rule,
                    principal="satellite",
                )
            )
        self.m_decisions.labels(event.action, event.outcome).inc()
        log.info(
            "decision: %s %s agent %s (rule %s): %s",
            event.outcome,
            event.action,
            event.agent,
            event.rule,
            event.reason,
        )

    # ------------------------------------------------------------------ views

    def _notification(
        self, alert: Any, status: str, expr: str = "", ends_at: float | None = None
    ) -> Notification:
        """An alert as receivers get it: external labels added (the alert's own win, as in
        Prometheus, so fingerprints agree), starting when it started firing."""
        labels = {**self.config.external_labels, **dict(alert.labels)}
        if ends_at is None and alert.resolved_at_ms:
            ends_at = alert.resolved_at_ms / 1000
        started = alert.fired_at_ms if alert.fired_at_ms is not None else alert.active_at_ms
        return Notification(
            labels=labels,
            annotations=dict(alert.annotations),
            status=status,
            starts_at=started / 1000,
            ends_at=ends_at,
            generator_url=generator_url(self.config.external_url, expr) if expr else
            self.config.external_url,
        )

    def outgoing_alerts(self, now: float) -> list[Notification]:
        """Every firing alert (endsAt ahead) and every resolved one still kept: what
        Prometheus hands its notifier each round (`due` picks which go out)."""
        ahead = valid_until(now, self.config.resend_delay, self.config.evaluation_interval)
        out: list[Notification] = []
        for group in self.groups:
            state = self.group_states[(group.file, group.name)]
            for rule, alerts in zip(group.rules, state.alerts, strict=True):
                for alert in alerts.values():
                    if alert.state is AlertState.FIRING:
                        out.append(self._notification(alert, "firing", rule.expr, ends_at=ahead))
                    elif alert.resolved and alert.fired_at_ms is not None:
                        out.append(self._notification(alert, "resolved", rule.expr))
        for name, alert in self.cluster_alerts.items():
            since = self.cluster_alerts_since.get(name, now)
            firing = self._cluster_notification(alert, "firing", since, now)
            out.append(replace(firing, ends_at=ahead))
        self.cluster_resolved = {
            k: n for k, n in self.cluster_resolved.items()
            if n.ends_at is not None and now - n.ends_at <= RESOLVED_RETENTION
        }  # fmt: skip
        out.extend(self.cluster_resolved.values())
        return out

    def _cluster_notification(
        self, alert: ClusterAlert, status: str, since: float, now: float
    ) -> Notification:
        return Notification(
            labels={**self.config.external_labels, **_cluster_labels(alert)},
            annotations={"summary": alert.summary},
            status=status,
            starts_at=since,
            ends_at=now if status == "resolved" else None,
            generator_url=self.config.external_url,
        )

    def active_alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts, rules' and the policy's, in /api/v1/alerts' shape."""
        out = [
            rule_api.alert_view(alert)
            for state in self.group_states.values()
            for alerts in state.alerts
            for alert in rule_api.live(alerts.values())
        ]
        for ext in self.external_alerts.values():
            out.append(
                {
                    "labels": dict(ext.labels),
                    "annotations": dict(ext.annotations),
                    "state": "firing",
                    "activeAt": format_time(ext.starts_at),
                    "value": rule_api.format_value(1.0),
                }
            )
        for name, alert in self.cluster_alerts.items():
            since = self.cluster_alerts_since.get(name)
            out.append(
                {
                    "labels": _cluster_labels(alert),
                    "annotations": {"summary": alert.summary},
                    "state": "firing",
                    "activeAt": format_time(since),
                    "value": rule_api.format_value(1.0),
                }
            )
        return out

    async def policy_view(self, now: float) -> dict[str, Any]:
        """The safety policy's budget now, counted over the master's agents."""
        b = policy_budget(self.config.policy, self.policy_state, await self.cluster.agents(), now)
        return {**asdict(b), "room": b.room, "fenced": bool(self.fenced)}

    def record_operator(self, action: str, outcome: str, reason: str, principal: str) -> None:
        """An operator's action on Satellite itself (rules reload), in its decision log."""
        event = Event(time.time(), "", "", action, outcome, reason, "operator", principal)
        self.events.append(event)
        log.info("operator action %s by %s: %s: %s", action,
                 principal or "(unauthenticated, local)", outcome, reason)  # fmt: skip

    async def decision_log(self, limit: int = 100) -> list[dict[str, Any]]:
        """Satellite's decisions and operators' actions on the master, oldest first.

        The master's part is best effort: when it cannot be read, Satellite's own
        decisions are still shown, with a line saying what is missing."""
        merged = list(self.events)
        try:
            merged += await self.cluster.operator_actions()
        except Exception as e:  # the master is away or failing over: show what we have
            why = f"the master's log of operator actions could not be read: {e}"
            merged.append(Event(time.time(), "", "", "read master log", "failed", why))
        merged.sort(key=lambda e: e.time)
        return [asdict(e) for e in merged[-limit:]]

    def rule_views(self, kind: type | None = None) -> list[dict[str, Any]]:
        """Every group with its rules' health, in /api/v1/rules' shape (`kind` filters)."""
        return [
            rule_api.group_view(
                g,
                self.group_states[key].alerts,
                self.group_runs.get(key),
                self.config.evaluation_interval,
                kind,
            )
            for g in self.groups
            for key in [(g.file, g.name)]
        ]


def generator_url(external_url: str, expr: str) -> str:
    """Where an alert's expression opens (the master's /graph), as Prometheus links it."""
    base = external_url.rstrip("/")
    return f"{base}/graph?g0.expr={urllib.parse.quote_plus(expr)}&g0.tab=1"


def _cluster_labels(alert: ClusterAlert) -> dict[str, str]:
    return {
        "alertname": alert.name,
        "severity": "critical",
        "source": "satellite",
        **({"agent": alert.agent_id} if alert.agent_id else {}),
    }


def _action_request(
    labels: Sequence[tuple[str, str]], annotations: Sequence[tuple[str, str]]
) -> ActionRequest | None:
    """The action a firing alert asks for: labels `action` (deactivate|drain) and `agent`."""
    lab = dict(labels)
    action = lab.get("action")
    agent = lab.get("agent")
    if not agent or action not in ("deactivate", "drain"):
        return None
    ann = dict(annotations)
    reason = ann.get("summary") or ann.get("description") or lab.get("alertname", "")
    return ActionRequest(agent, Action(action), lab.get("alertname", ""), reason)


def _rename_migrated(paths: Sequence[Path]) -> None:
    for p in paths:
        p.replace(p.with_name(p.name + ".migrated"))
