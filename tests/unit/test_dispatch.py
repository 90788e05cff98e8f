"""Aggregation groups send what Alertmanager would, when it would; the shell delivers it.

Scenarios are tables of (second, alert events) fed to a `Dispatcher` that is
ticked every second; the expected column is what each receiver gets and when.
Properties check the timing promises over random event sequences.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from orbiter.alerts import deliver as deliver_module
from orbiter.alerts.amconfig import parse_alertmanager_config
from orbiter.alerts.builtin import BuiltinNotifier, integrations
from orbiter.alerts.dispatch import Dispatcher, Message, sort_alerts
from orbiter.alerts.inhibit import InhibitRule
from orbiter.alerts.matchers import Matcher, MatchType
from orbiter.alerts.payload import Notification
from orbiter.alerts.receiver_configs import ReceiverConfig
from orbiter.alerts.routing import Route

CONFIG = """\
route:
  receiver: ops
  group_by: [team]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  routes:
    - matchers: [severity=page]
      receiver: pager
      continue: true
      group_wait: 10s
      group_interval: 1m
receivers:
  - name: ops
  - name: pager
"""


def tree(text: str = CONFIG) -> Route:
    return parse_alertmanager_config(text).route


def fire(name: str, t: float, **labels: str) -> Notification:
    return Notification(labels={"alertname": name, **labels}, status="firing", starts_at=t)


def resolve(name: str, t: float, start: float = 0.0, **labels: str) -> Notification:
    return Notification(
        labels={"alertname": name, **labels}, status="resolved", starts_at=start, ends_at=t
    )


Events = Mapping[int, Sequence[Notification]]


def run(
    d: Dispatcher, events: Events, until: int, start: int = 0
) -> list[tuple[int, Message]]:
    out: list[tuple[int, Message]] = []
    for now in range(start, until + 1):
        if now in events:
            d.receive(events[now], float(now))
        out.extend((now, m) for m in d.tick(float(now)))
    return out


def brief(sent: list[tuple[int, Message]]) -> list[tuple[int, str, str]]:
    """(second, receiver, 'A+ B-') with + firing, - resolved."""
    return [
        (t, m.receiver, " ".join(f"{a.alertname}{'+' if a.status == 'firing' else '-'}"
                                 for a in m.alerts))
        for t, m in sent
    ]


SCENARIOS: list[tuple[str, Events, int, list[tuple[int, str, str]]]] = [
    ("a new group waits group_wait, then nothing while nothing changes",
     {0: [fire("A", 0)]}, 1000, [(30, "ops", "A+")]),
    ("an alert joining a flushed group waits for the next group_interval",
     {0: [fire("A", 0)], 100: [fire("B", 100)]}, 1000, [(30, "ops", "A+"), (330, "ops", "A+ B+")]),
    ("alerts arriving during group_wait go out together",
     {0: [fire("A", 0)], 20: [fire("B", 20)]}, 1000, [(30, "ops", "A+ B+")]),
    ("a resolved alert is sent once as resolved, then the group is gone",
     {0: [fire("A", 0)], 100: [resolve("A", 100)]}, 2000, [(30, "ops", "A+"), (330, "ops", "A-")]),
    ("resolution goes out with the alerts still firing",
     {0: [fire("A", 0), fire("B", 0)], 100: [resolve("A", 100)]}, 700,
     [(30, "ops", "A+ B+"), (330, "ops", "A- B+")]),
    ("fired and resolved before group_wait: the receiver never hears of it",
     {0: [fire("A", 0)], 10: [resolve("A", 10)]}, 1000, []),
    ("an unchanged group is re-sent once repeat_interval passed, at a flush",
     {0: [fire("A", 0)]}, 8000, [(30, "ops", "A+"), (3930, "ops", "A+"), (7830, "ops", "A+")]),
    ("different group labels are different groups",
     {0: [fire("A", 0, team="x")], 5: [fire("B", 5, team="y")]}, 1000,
     [(30, "ops", "A+"), (35, "ops", "B+")]),
    ("a matching child takes the alert from the root; its own timers apply",
     {0: [fire("A", 0, severity="page")], 15: [fire("B", 15, severity="page")]}, 400,
     [(10, "pager", "A+"), (70, "pager", "A+ B+")]),
    ("an alert that started long before flushes the new group at once",
     {100: [fire("A", 0)]}, 200, [(100, "ops", "A+")]),
    ("an alert firing again after its resolution was sent is news",
     {0: [fire("A", 0)], 100: [resolve("A", 100)], 400: [fire("A", 400)]}, 1000,
     [(30, "ops", "A+"), (330, "ops", "A-"), (430, "ops", "A+")]),
    ("a refired alert the receiver still thinks firing is not news",
     {0: [fire("A", 0)], 100: [resolve("A", 100)], 200: [fire("A", 200)]}, 1000,
     [(30, "ops", "A+")]),
]


@pytest.mark.parametrize(("events", "until", "expected"),
                         [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_scenarios(events: Events, until: int, expected: list[tuple[int, str, str]]) -> None:
    assert brief(run(Dispatcher(tree(), resolve_timeout=None), events, until)) == expected


def test_messages_carry_group_key_labels_and_route_key() -> None:
    d = Dispatcher(tree(), resolve_timeout=None)
    d.receive([fire("A", 0, team="db", severity="page")], 0)
    (pager,) = d.tick(10)
    assert (pager.receiver, pager.integration) == ("pager", 0)
    assert pager.route_key == '{}/{severity="page"}'
    assert pager.group_labels == {"team": "db"}
    assert pager.group_key == '{}/{severity="page"}:{team="db"}'
    assert d.tick(30) == []  # the child matched, so the root does not get the alert
    d.receive([fire("B", 30, team="db")], 30)
    (ops,) = d.tick(60)
    assert ops.group_key == '{}:{team="db"}' and ops.alerts[0].ends_at is None


def test_firing_alerts_expire_after_resolve_timeout_unless_refreshed() -> None:
    d = Dispatcher(tree(), resolve_timeout=60)
    sent = brief(run(d, {0: [fire("A", 0)], 20: [fire("B", 20)], 320: [fire("B", 320)]}, 700))
    assert sent == [(30, "ops", "A+ B+"), (330, "ops", "A- B+"), (630, "ops", "B-")]
    d = Dispatcher(tree(), resolve_timeout=60)
    d.receive([fire("A", 0)], 0)
    d.tick(30)
    (m,) = d.tick(330)
    assert m.alerts[0].status == "resolved" and m.alerts[0].ends_at == 60


def test_silenced_alerts_are_not_sent_until_the_silence_ends() -> None:
    silenced = {"A"}
    d = Dispatcher(tree(), muted=lambda labels: labels["alertname"] in silenced,
                   resolve_timeout=None)
    d.receive([fire("A", 0), fire("B", 0)], 0)
    assert brief([(30, m) for m in d.tick(30)]) == [(30, "ops", "B+")]
    assert d.muted_count(30) == 1
    silenced.clear()
    assert brief([(330, m) for m in d.tick(330)]) == [(330, "ops", "A+ B+")]


def test_the_notification_log_outlives_the_group() -> None:
    """Alertmanager's behaviour: A was last reported firing (its resolution was silenced),
    so when it fires again in a new group that is not news until repeat_interval."""
    silenced = False
    d = Dispatcher(tree(), muted=lambda labels: silenced, resolve_timeout=None)
    d.receive([fire("A", 0)], 0)
    sent = [(t, m) for t in (30,) for m in d.tick(t)]
    silenced = True
    d.receive([resolve("A", 100)], 100)
    assert d.tick(330) == [] and d.groups() == []
    silenced = False
    sent += run(d, {400: [fire("A", 400)]}, 4000, start=331)
    assert brief(sent) == [(30, "ops", "A+"), (3730, "ops", "A+")]


def test_a_reload_reroutes_held_alerts_at_once_without_repeating_what_was_sent() -> None:
    d = Dispatcher(tree(), resolve_timeout=None)
    sent = run(d, {0: [fire("A", 0), fire("P", 0, severity="page")]}, 100)
    assert brief(sent) == [(10, "pager", "P+"), (30, "ops", "A+")]
    # the new tree sends pages to "oncall" instead; "ops" is unchanged
    new = Dispatcher(tree(CONFIG.replace("pager", "oncall")),
                     resolve_timeout=None)
    new.adopt(d, 200)
    assert brief([(200, m) for m in new.tick(200)]) == [(200, "oncall", "P+")]
    # repeats: ops was told at 30, oncall at 200; flushes every 5m and 1m from 200
    assert brief(run(new, {}, 4000, start=201)) == [(3800, "ops", "A+"), (3860, "oncall", "P+")]


def test_all_muted_sends_nothing() -> None:
    d = Dispatcher(tree(), muted=lambda labels: True, resolve_timeout=None)
    assert run(d, {0: [fire("A", 0)]}, 1000) == []


def test_inhibited_alerts_are_left_out_while_the_source_fires() -> None:
    rule = InhibitRule(source=(Matcher("severity", MatchType.EQUAL, "critical"),),
                       target=(Matcher("severity", MatchType.EQUAL, "warning"),),
                       equal=("team",))
    d = Dispatcher(tree(), inhibit_rules=[rule], resolve_timeout=None)
    events = {
        0: [fire("Crit", 0, severity="critical"), fire("Warn", 0, severity="warning"),
            fire("Other", 0, severity="warning", team="x")],
        100: [resolve("Crit", 100, severity="critical")],
    }
    sent = brief(run(d, events, 700))
    assert sent == [(30, "ops", "Crit+"), (30, "ops", "Other+"), (330, "ops", "Crit- Warn+")]


def test_integrations_without_send_resolved_get_only_firing_alerts() -> None:
    d = Dispatcher(tree(), resolve_timeout=None, send_resolved={"ops": (True, False)})
    sent = run(d, {0: [fire("A", 0), fire("B", 0)], 100: [resolve("A", 100)],
                   400: [resolve("B", 400)]}, 1000)
    got = [(t, m.integration, " ".join(f"{a.alertname}{a.status[0]}" for a in m.alerts))
           for t, m in sent]
    assert got == [
        (30, 0, "Af Bf"), (30, 1, "Af Bf"),
        (330, 0, "Ar Bf"),  # only a resolution: news for integration 0, not for 1
        (630, 0, "Br"),  # everything resolved: integration 1 is told too, but has nothing to send
    ]


def test_a_receiver_without_integrations_gets_nothing() -> None:
    d = Dispatcher(tree(), resolve_timeout=None, send_resolved={"ops": ()})
    assert run(d, {0: [fire("A", 0)]}, 100) == []


def test_sort_order_is_job_then_instance_then_labels() -> None:
    alerts = [fire("Z", 0), fire("B", 0, job="b"), fire("A", 0, job="b", instance="2"),
              fire("C", 0, job="b", instance="1"), fire("D", 0, job="a"), fire("A", 0)]
    assert [a.alertname for a in sort_alerts(alerts)] == ["D", "C", "A", "B", "A", "Z"]
    # then Prometheus's LabelSet.Before: fewer labels first; then, over the sorted names of
    # both, the first name only one set has puts the set that lacks it first
    alerts = [fire("A", 0, x="1"), fire("Z", 0), fire("A", 0, w="9"), fire("A", 0, x="0")]
    assert [a.labels for a in sort_alerts(alerts)] == [
        {"alertname": "Z"}, {"alertname": "A", "x": "0"}, {"alertname": "A", "x": "1"},
        {"alertname": "A", "w": "9"}]


# ---------------------------------------------------------------------- properties

NAMES = ["A", "B", "C", "D"]
steps = st.lists(
    st.tuples(st.integers(0, 400), st.sampled_from(NAMES), st.booleans()), max_size=12
)


def _events(raw: list[tuple[int, str, bool]]) -> dict[int, list[Notification]]:
    events: dict[int, list[Notification]] = {}
    t = 0
    for gap, name, firing in raw:
        t += gap
        team = "x" if name in "AB" else "y"
        n = fire(name, t, team=team) if firing else resolve(name, t, start=t, team=team)
        events.setdefault(t, []).append(n)
    return events


@settings(max_examples=60, deadline=None)
@given(steps)
def test_nothing_reaches_a_receiver_before_group_wait(raw: list[tuple[int, str, bool]]) -> None:
    events = _events(raw)
    sent = run(Dispatcher(tree(), resolve_timeout=None), events, max(events, default=0) + 700)
    first_seen: dict[str, int] = {}
    for t in sorted(events):
        for n in events[t]:
            first_seen.setdefault(n.labels["team"], t)
    for t, m in sent:
        assert t >= first_seen[m.group_labels["team"]] + 30
        assert m.alerts and len({a.fingerprint for a in m.alerts}) == len(m.alerts)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_a_firing_alert_is_known_firing_to_its_receiver_within_wait_plus_interval(
    raw: list[tuple[int, str, bool]],
) -> None:
    events = _events(raw)
    end = max(events, default=0) + 700
    sent = run(Dispatcher(tree(), resolve_timeout=None), events, end)
    state: dict[str, list[tuple[int, bool]]] = {}  # alertname -> [(t, firing)]
    for t in sorted(events):
        for n in events[t]:
            state.setdefault(n.alertname, []).append((t, n.status == "firing"))
    bound = 30 + 300
    for name, changes in state.items():
        for i, (t, firing) in enumerate(changes):
            later = [c for c in changes[i + 1:] if c[0] <= t + bound]
            if not firing or later or t + bound > end:
                continue
            # the receiver's latest view of the group by t + bound shows the alert firing
            team = "x" if name in "AB" else "y"
            views = [m for s, m in sent if s <= t + bound and m.group_labels["team"] == team]
            assert views, f"{name} fired at {t} and nothing was sent"
            assert any(a.alertname == name and a.status == "firing" for a in views[-1].alerts)


@settings(max_examples=60, deadline=None)
@given(steps, st.sets(st.sampled_from(NAMES)))
def test_silenced_alerts_never_reach_a_receiver(
    raw: list[tuple[int, str, bool]], silenced: set[str]
) -> None:
    events = _events(raw)
    d = Dispatcher(tree(), muted=lambda labels: labels["alertname"] in silenced,
                   resolve_timeout=None)
    for _, m in run(d, events, max(events, default=0) + 700):
        assert not {a.alertname for a in m.alerts} & silenced


@settings(max_examples=60, deadline=None)
@given(steps)
def test_an_alert_is_never_sent_while_a_firing_alert_inhibits_it(
    raw: list[tuple[int, str, bool]],
) -> None:
    """A (team x) mutes C (team y): no message holds C firing while A fires."""
    rule = InhibitRule(source=(Matcher("alertname", MatchType.EQUAL, "A"),),
                       target=(Matcher("alertname", MatchType.EQUAL, "C"),))
    events = _events(raw)
    d = Dispatcher(tree(), inhibit_rules=[rule], resolve_timeout=None)
    a_firing = False
    for now in range(max(events, default=0) + 701):
        for n in events.get(now, []):
            if n.alertname == "A":
                a_firing = n.status == "firing"
        d.receive(events.get(now, []), now)
        for m in d.tick(now):
            if a_firing:
                assert "C" not in {a.alertname for a in m.alerts}


# ---------------------------------------------------------------------- the shell

SHELL_CONFIG = """\
global:
  resolve_timeout: 5m
route:
  receiver: hooks
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  routes:
    - matchers: [team=broken]
      receiver: broken
      continue: true
    - receiver: hooks
receivers:
  - name: hooks
    webhook_configs:
      - url: http://127.0.0.1:1/a
        max_alerts: 1
      - url: http://127.0.0.1:1/b
        send_resolved: false
  - name: broken
    webhook_configs:
      - url: http://127.0.0.1:1/c
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Refused(Exception):
    retryable = False


class Recorder:
    def __init__(self, fail: dict[str, int] | None = None, refuse: set[str] | None = None) -> None:
        self.calls: list[tuple[ReceiverConfig, dict[str, Any]]] = []
        self.fail = dict(fail or {})
        self.refuse = refuse or set()

    async def __call__(self, receiver: ReceiverConfig, payload: dict[str, Any]) -> None:
        self.calls.append((receiver, payload))
        url = receiver.webhook_configs[0].url
        if url in self.refuse:
            raise Refused(url)
        if self.fail.get(url, 0) > 0:
            self.fail[url] -= 1
            raise ConnectionError(url)

    def urls(self) -> list[str]:
        return [r.webhook_configs[0].url for r, _ in self.calls]


def notifier(deliver: Recorder, clock: Clock, registry: CollectorRegistry) -> BuiltinNotifier:
    return BuiltinNotifier(
        parse_alertmanager_config(SHELL_CONFIG), deliver, clock=clock, registry=registry,
        external_url="http://orbiter:5050", min_backoff=0.001, max_backoff=0.002,
        expire_unrefreshed=False,
    )


async def test_shell_delivers_each_integration_its_payload() -> None:
    clock, deliver, registry = Clock(), Recorder(), CollectorRegistry()
    n = notifier(deliver, clock, registry)
    await n.send([fire("Disk", clock.now), fire("Disk", clock.now, instance="b")])
    assert await n.tick() == []
    clock.now += 10
    messages = await n.tick()
    await n.drain()
    assert [m.integration for m in messages] == [0, 1]
    assert sorted(deliver.urls()) == ["http://127.0.0.1:1/a", "http://127.0.0.1:1/b"]
    by_url = {r.webhook_configs[0].url: p for r, p in deliver.calls}
    a = by_url["http://127.0.0.1:1/a"]
    assert a["groupKey"] == '{}/{}:{alertname="Disk"}' and a["groupLabels"] == {"alertname": "Disk"}
    assert a["receiver"] == "hooks" and a["externalURL"] == "http://orbiter:5050"
    assert (len(a["alerts"]), a["truncatedAlerts"]) == (2, 0)  # max_alerts is deliver's job
    assert len(by_url["http://127.0.0.1:1/b"]["alerts"]) == 2

    deliver.calls.clear()
    await n.send([resolve("Disk", clock.now, instance="b")])
    clock.now += 60
    await n.tick()
    await n.drain()
    assert deliver.urls() == ["http://127.0.0.1:1/a"]  # b has send_resolved: false
    # sorted as Alertmanager sorts: alerts with `instance` first
    assert [x["status"] for x in deliver.calls[0][1]["alerts"]] == ["resolved", "firing"]


async def test_shell_retries_failures_and_a_failing_receiver_blocks_no_other() -> None:
    clock, registry = Clock(), CollectorRegistry()
    deliver = Recorder(fail={"http://127.0.0.1:1/a": 3}, refuse={"http://127.0.0.1:1/c"})
    n = notifier(deliver, clock, registry)
    await n.send([fire("Disk", clock.now, team="broken")])
    clock.now += 10
    await n.tick()
    await n.drain()
    assert sorted(deliver.urls()) == ["http://127.0.0.1:1/a"] * 4 + [
        "http://127.0.0.1:1/b", "http://127.0.0.1:1/c"]
    body = generate_latest(registry).decode()
    assert 'orbiter_notifier_notifications_total{receiver="hooks"} 5.0' in body
    assert 'orbiter_notifier_notifications_failed_total{receiver="hooks"} 3.0' in body
    assert 'orbiter_notifier_notifications_total{receiver="broken"} 1.0' in body
    assert 'orbiter_notifier_notifications_failed_total{receiver="broken"} 1.0' in body
    assert "orbiter_notifier_aggregation_groups 2.0" in body
    assert "orbiter_notifier_alerts_muted 0.0" in body


async def test_shell_tick_loop_runs_until_stopped() -> None:
    clock, deliver, registry = Clock(), Recorder(), CollectorRegistry()
    n = BuiltinNotifier(parse_alertmanager_config(SHELL_CONFIG), deliver, clock=clock,
                        registry=registry, tick_interval=0.01, muted=lambda labels: False)
    await n.start()
    try:
        await n.send([fire("Disk", clock.now - 3600)])  # long started: flushes at once
        for _ in range(200):
            if len(deliver.calls) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(deliver.calls) == 2
    finally:
        await n.stop()
    assert n._task is None


def test_integrations_split_a_receiver_one_config_each() -> None:
    cfg = parse_alertmanager_config(SHELL_CONFIG)
    parts = integrations(cfg.receiver("hooks"))
    assert [p.webhook_configs[0].url for p in parts] == ["http://127.0.0.1:1/a",
                                                         "http://127.0.0.1:1/b"]
    assert all(p.name == "hooks" and not p.email_configs for p in parts)


async def test_shell_metrics_pass_promtool_check_metrics(promtool: str) -> None:
    clock, registry = Clock(), CollectorRegistry()
    deliver = Recorder(fail={"http://127.0.0.1:1/b": 1})
    n = notifier(deliver, clock, registry)
    await n.send([fire("Disk", clock.now)])
    clock.now += 10
    await n.tick()
    await n.drain()
    body = generate_latest(registry).decode()
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, text=True, check=False
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, ""), body


async def test_a_newer_message_replaces_one_still_being_retried() -> None:
    clock, registry = Clock(), CollectorRegistry()
    deliver = Recorder(fail={"http://127.0.0.1:1/a": 10**9})
    n = BuiltinNotifier(
        parse_alertmanager_config(SHELL_CONFIG), deliver, clock=clock, registry=registry,
        min_backoff=0.01, max_backoff=0.01, expire_unrefreshed=False,
    )
    await n.send([fire("Disk", clock.now)])
    clock.now += 10
    await n.tick()
    await asyncio.sleep(0.05)  # a few failed attempts at /a
    await n.send([fire("Disk", clock.now, instance="b")])
    clock.now += 60
    before = len(deliver.calls)
    await n.tick()
    deliver.fail.clear()
    await n.drain()

    def to_a(calls: list[tuple[ReceiverConfig, dict[str, Any]]]) -> list[int]:
        return [len(p["alerts"]) for r, p in calls if r.webhook_configs[0].url.endswith("/a")]

    assert len(to_a(deliver.calls[:before])) > 2  # the first message was being retried
    assert to_a(deliver.calls[before:]) == [2]  # after the second flush only the new one goes
    await n.stop()


async def test_shell_with_the_real_deliver_posts_alertmanagers_webhook_body() -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=200 if len(received) > 1 else 503)  # first POST fails

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        config = parse_alertmanager_config(
            "route: {receiver: r, group_by: [alertname], group_wait: 5s}\nreceivers:\n"
            f"  - name: r\n    webhook_configs: [{{url: 'http://127.0.0.1:{port}/hook', "
            "max_alerts: 1}]\n")
        clock = Clock()
        n = BuiltinNotifier(config, deliver_module.deliver, clock=clock, min_backoff=0.01,
                            max_backoff=0.01, expire_unrefreshed=False)
        await n.send([fire("Disk", clock.now, instance="b"), fire("Disk", clock.now, instance="a")])
        clock.now += 5
        await n.tick()
        await n.drain()
    finally:
        await runner.cleanup()
    assert len(received) == 2 and received[0] == received[1]  # retried after the 503
    body = received[1]
    assert body["groupKey"] == '{}:{alertname="Disk"}' and body["truncatedAlerts"] == 1
    assert [a["labels"]["instance"] for a in body["alerts"]] == ["a"]
    assert body["commonLabels"] == {"alertname": "Disk", "instance": "a"}


async def test_shell_reload_routes_held_alerts_by_the_new_tree() -> None:
    clock, deliver, registry = Clock(), Recorder(), CollectorRegistry()
    n = notifier(deliver, clock, registry)
    await n.send([fire("Disk", clock.now)])
    clock.now += 10
    await n.tick()
    await n.drain()
    assert sorted(deliver.urls()) == ["http://127.0.0.1:1/a", "http://127.0.0.1:1/b"]
    deliver.calls.clear()
    clock.now += 5  # the alert started more than the new route's group_wait ago
    n.reload(parse_alertmanager_config(SHELL_CONFIG.replace("receiver: hooks\n  group_by",
                                                            "receiver: broken\n  group_by")
                                       .replace("    - receiver: hooks\n", "")))
    clock.now += 1
    await n.tick()
    await n.drain()
    assert deliver.urls() == ["http://127.0.0.1:1/c"]
    assert 'orbiter_notifier_notifications_total{receiver="broken"} 1.0' in generate_latest(
        registry).decode()


def test_two_notifiers_can_share_a_registry() -> None:
    registry = CollectorRegistry()
    first = notifier(Recorder(), Clock(), registry)
    second = notifier(Recorder(), Clock(), registry)
    assert first.metrics is second.metrics
