"""Our routing and config loader agree with the real amtool (Alertmanager 0.25).

For every corpus config (tests/amtool_corpus/*.yml) and every label set in
its `.labels` file, `amtool config routes test` and our `route_alert` must
name the same receivers in the same order. `amtool check-config` must accept
every corpus config and refuse every `bad/*.yml`, and so must our loader.
Group keys and webhook payloads, which amtool does not print, are compared
with what a real Alertmanager 0.25 posts for the same alerts.

amtool comes from Debian's `prometheus-alertmanager` package. Without it the
tests fail, never skip: a comparison that silently did not run proves nothing.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import random
import shlex
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from orbiter.alerts.amconfig import load_alertmanager_config
from orbiter.alerts.dispatch import Dispatcher, sort_alerts
from orbiter.alerts.matchers import MatcherError, MatchType, parse_matcher
from orbiter.alerts.payload import Notification, webhook_payload
from orbiter.alerts.payload import _quote_meta as quote_meta
from orbiter.alerts.routing import Route, receivers_for, route_alert
from orbiter.yamlreader import ConfigError

CORPUS = Path(__file__).resolve().parents[1] / "amtool_corpus"
CONFIGS = sorted(CORPUS.glob("*.yml"))
BAD = sorted((CORPUS / "bad").glob("*.yml"))


@pytest.fixture(scope="module")
def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        pytest.fail("amtool not found: install Debian's prometheus-alertmanager (`make deps`)")
    return path


def label_sets(config: Path) -> list[list[str]]:
    lines = config.with_suffix(".labels").read_text().splitlines()
    return [shlex.split(line) for line in lines if line.strip() and not line.startswith("#")]


def cases() -> list[pytest.ParameterSet]:
    return [
        pytest.param(config, args, id=f"{config.stem}:{' '.join(args)}")
        for config in CONFIGS
        for args in label_sets(config)
    ]


def parse_labels(args: list[str]) -> dict[str, str]:
    """amtool's reading of `key=value` arguments (its parseLabels)."""
    labels = {}
    for arg in args:
        m = parse_matcher(arg)
        if m.type is not MatchType.EQUAL:
            raise MatcherError(f"labels must be given as key=value, not {arg!r}")
        labels[m.name] = m.value
    return labels


def test_corpus_is_large_enough() -> None:
    assert len(CONFIGS) >= 8
    assert sum(len(label_sets(c)) for c in CONFIGS) >= 60
    assert len(BAD) >= 10


@pytest.mark.parametrize(("config", "args"), cases())
def test_routes_agree_with_amtool(amtool: str, config: Path, args: list[str]) -> None:
    run = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={config}", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if "Failed to parse labels" in run.stderr:  # a label set amtool refuses: so must we
        with pytest.raises(MatcherError):
            parse_labels(args)
        return
    assert run.returncode == 0, run.stderr
    expected = run.stdout.strip().split(",")
    ours = receivers_for(load_alertmanager_config(config).route, parse_labels(args))
    assert ours == expected


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_amtool_and_we_accept_corpus_configs(amtool: str, config: Path) -> None:
    run = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    load_alertmanager_config(config)


@pytest.mark.parametrize("config", BAD, ids=[c.name for c in BAD])
def test_amtool_and_we_refuse_bad_configs(amtool: str, config: Path) -> None:
    run = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert run.returncode != 0, f"amtool accepts {config.name}; it does not belong in bad/"
    with pytest.raises(ConfigError, match=rf"^{config}:\d+: "):
        load_alertmanager_config(config)


# ---------------------------------------------------------------------- a real Alertmanager

AM_CONFIG = """\
route:
  receiver: team.default
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['severity=~"critical|page"', 'team="db"']
      receiver: db-pager
      group_by: [cluster, alertname]
      continue: true
    - match: {team: db}
      receiver: db
      routes:
        - match_re: {env: prod.*}
          receiver: db-prod
          group_by: ['...']
    - matchers: ['team=web', 'env!=dev']
      receiver: web
      group_by: [service]
receivers:
"""
AM_RECEIVERS = ["team.default", "db-pager", "db", "db-prod", "web"]
AM_ALERTS = [
    {"alertname": "Disk", "team": "db", "severity": "page", "cluster": "c1", "job": "node",
     "instance": "b:9100"},
    {"alertname": "Disk", "team": "db", "severity": "page", "cluster": "c1", "job": "node",
     "instance": "a:9100"},
    {"alertname": "Disk", "team": "db", "severity": "critical", "cluster": "c2"},
    {"alertname": "Slow", "team": "db", "env": "prod-eu", "instance": "x"},
    {"alertname": "Slow", "team": "db", "env": "staging"},
    {"alertname": "Errors", "team": "web", "env": "prod", "service": 'say "hi" ☕'},
    {"alertname": "Errors", "team": "web", "env": "dev", "service": "api"},
    {"alertname": "Errors", "team": "web", "service": "api", "job": "a"},
    {"alertname": "Watchdog"},
    {"alertname": "Watchdog", "x": "1"},
    {"alertname": "Watchdog", "w": "9"},
    {"alertname": "Watchdog", "x": "0"},
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Hooks(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.bodies.append(json.loads(body))
                server.paths.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_group_keys_and_payloads_agree_with_a_real_alertmanager(
    tmp_path: Path, processes, wait_until  # type: ignore[no-untyped-def]
) -> None:
    hooks = _Hooks()
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{hooks.server_address[1]}/"
        port = _start_alertmanager(processes, tmp_path, AM_CONFIG + "".join(
            f"  - name: {name}\n    webhook_configs: [{{url: '{url}{name}'}}]\n"
            for name in AM_RECEIVERS), "--web.external-url=http://am.example:9093")
        config = tmp_path / "am.yml"
        alerts = [{"labels": labels} for labels in AM_ALERTS]
        wait_until(lambda: _post_alerts(port, alerts), timeout=20,
                   what="Alertmanager to take the alerts")

        root = load_alertmanager_config(config).route
        expected: dict[tuple[str, str], tuple[Route, list[Notification]]] = {}
        for labels in AM_ALERTS:
            n = Notification(labels=labels, status="firing", starts_at=0)
            for route in route_alert(root, labels):
                key = (route.receiver, route.group_key(labels))
                expected.setdefault(key, (route, []))[1].append(n)

        def latest() -> dict[tuple[str, str], dict]:
            out = {}
            for b in list(hooks.bodies):
                out[(b["receiver"], b["groupKey"])] = b
            return out

        want = {(quote_meta(k[0]), k[1]): len(v[1]) for k, v in expected.items()}

        def counts() -> dict[tuple[str, str], int]:
            return {k: len(v["alerts"]) for k, v in latest().items()}

        with contextlib.suppress(AssertionError):
            wait_until(lambda: counts() == want, timeout=20, what="Alertmanager's webhooks")
        assert counts() == want
        got = latest()
        for (receiver, key), (route, alerts) in expected.items():
            theirs = got[(quote_meta(receiver), key)]
            ours = webhook_payload(
                receiver, sort_alerts(alerts),
                group_labels=route.group_labels(alerts[0].labels),
                route_key=route.key,
                external_url="http://am.example:9093",
            )
            for field in ("receiver", "status", "groupLabels", "commonLabels", "groupKey",
                          "externalURL", "version", "truncatedAlerts"):
                assert ours[field] == theirs[field], (field, receiver, key)
            assert [a["labels"] for a in ours["alerts"]] == [a["labels"] for a in theirs["alerts"]]
            assert [a["fingerprint"] for a in ours["alerts"]] == [
                a["fingerprint"] for a in theirs["alerts"]]
    finally:
        hooks.shutdown()


# ---------------------------------------------------------------------- random trees

_NAMES = ["a", "b", "c"]
_VALUES = ["x", "y", "", "x|y", ".*", "x.*", "[xy]+", "x y", 'q"t']


def _random_matchers(rng: random.Random) -> dict[str, object]:
    out: dict[str, object] = {}
    if rng.random() < 0.6:
        items = []
        for _ in range(rng.randint(1, 2)):
            value = rng.choice(_VALUES).replace('"', '\\"')
            op = rng.choice(["=", "!=", "=~", "!~"])
            quoted = f'"{value}"' if rng.random() < 0.7 or not value.isalnum() else value
            items.append(f"{rng.choice(_NAMES)}{op}{quoted}")
        out["matchers"] = [", ".join(items)] if rng.random() < 0.3 else items
    if rng.random() < 0.25:
        out["match"] = {rng.choice(_NAMES): rng.choice(["x", "y"])}
    if rng.random() < 0.25:
        out["match_re"] = {rng.choice(_NAMES): rng.choice(["x|y", "x.*", ".+"])}
    return out


def _random_routes(rng: random.Random, depth: int, receivers: list[str]) -> list[dict]:
    routes = []
    for _ in range(rng.randint(1 if depth == 3 else 0, 3) if depth else 0):
        name = f"r{len(receivers)}"
        receivers.append(name)
        route: dict[str, object] = {"receiver": name, **_random_matchers(rng)}
        if rng.random() < 0.4:
            route["continue"] = True
        children = _random_routes(rng, depth - 1, receivers)
        if children:
            route["routes"] = children
        if rng.random() < 0.2:
            del route["receiver"]  # inherits the parent's
        routes.append(route)
    return routes


@pytest.mark.parametrize("seed", range(12))
def test_random_route_trees_agree_with_amtool(amtool: str, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    receivers = ["root"]
    config = {"route": {"receiver": "root", "routes": _random_routes(rng, 3, receivers)},
              "receivers": [{"name": n} for n in receivers]}
    path = tmp_path / "random.yml"
    path.write_text(yaml.safe_dump(config))
    root = load_alertmanager_config(path).route
    for _ in range(15):
        labels = {n: rng.choice(["x", "y", "xy", "x y", 'q"t']) for n in _NAMES
                  if rng.random() < 0.6}
        args = [f"{k}={json.dumps(v)}" for k, v in labels.items()]
        run = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={path}", *args],
            capture_output=True, text=True, check=False,
        )
        assert run.returncode == 0, run.stderr
        assert receivers_for(root, labels) == run.stdout.strip().split(","), (
            path.read_text(), labels)


def _start_alertmanager(  # type: ignore[no-untyped-def]
    processes, tmp_path: Path, config: str, *flags: str
) -> int:
    alertmanager = shutil.which("prometheus-alertmanager")
    if alertmanager is None:
        pytest.fail("prometheus-alertmanager not found: install Debian's prometheus-alertmanager")
    path = tmp_path / "am.yml"
    path.write_text(config)
    port = _free_port()
    processes.start([alertmanager, f"--config.file={path}", f"--storage.path={tmp_path / 'data'}",
                     f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                     *flags], tmp_path / "am.log")
    return port


def _post_alerts(port: int, alerts: list[dict]) -> bool:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v2/alerts", data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=2) as resp:
        return resp.status == 200


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_flush_sequence_agrees_with_a_real_alertmanager(
    tmp_path: Path, processes, wait_until  # type: ignore[no-untyped-def]
) -> None:
    """Fire A and B, resolve A, then B: the messages each integration gets, in order."""
    hooks = _Hooks()
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{hooks.server_address[1]}"
        config = f"""\
route:
  receiver: r
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: r
    webhook_configs:
      - url: {url}/resolved
      - url: {url}/firing-only
        send_resolved: false
"""
        port = _start_alertmanager(processes, tmp_path, config)
        wait_until(lambda: _post_alerts(port, []), timeout=20, what="Alertmanager to start")
        a = {"alertname": "Disk", "instance": "a"}
        b = {"alertname": "Disk", "instance": "b"}
        t0 = time.time()
        steps = [(0.0, [(a, None), (b, None)]), (2.0, [(a, 2.0)]), (6.0, [(b, 6.0)])]
        for at, alerts in steps:
            time.sleep(max(0.0, t0 + at - time.time()))
            body = [{"labels": labels, "startsAt": _rfc3339(t0),
                     **({"endsAt": _rfc3339(t0 + end)} if end is not None else {})}
                    for labels, end in alerts]
            assert _post_alerts(port, body)
        time.sleep(max(0.0, t0 + 9.5 - time.time()))

        def seen(path: str) -> list[str]:
            return [" ".join(f"{x['labels']['instance']}{'+' if x['status'] == 'firing' else '-'}"
                             for x in body["alerts"])
                    for p, body in zip(list(hooks.paths), list(hooks.bodies), strict=True)
                    if p == path]

        d = Dispatcher(load_alertmanager_config(tmp_path / "am.yml").route,
                       resolve_timeout=None, send_resolved={"r": (True, False)})
        ours: dict[int, list[str]] = {0: [], 1: []}
        for tenth in range(95):
            now = tenth / 10
            for at, alerts in steps:
                if at == now:
                    d.receive([Notification(labels=labels, starts_at=0.0,
                                            status="resolved" if end is not None else "firing",
                                            ends_at=end) for labels, end in alerts], now)
            for m in d.tick(now):
                ours[m.integration].append(" ".join(
                    f"{x.labels['instance']}{'+' if x.status == 'firing' else '-'}"
                    for x in m.alerts))
        assert ours == {0: ["a+ b+", "a- b+", "b-"], 1: ["a+ b+"]}
        assert (seen("/resolved"), seen("/firing-only")) == (ours[0], ours[1])
    finally:
        hooks.shutdown()


def test_inhibition_agrees_with_a_real_alertmanager(
    tmp_path: Path, processes, wait_until  # type: ignore[no-untyped-def]
) -> None:
    hooks = _Hooks()
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{hooks.server_address[1]}/"
        config = f"""\
route:
  receiver: r
  group_wait: 2s
  group_interval: 1h
receivers:
  - name: r
    webhook_configs: [{{url: '{url}'}}]
inhibit_rules:
  - source_matchers: [severity=critical]
    target_matchers: [severity=warning]
    equal: [cluster]
  - source_match_re: {{alertname: Down|Unreachable}}
    target_match_re: {{alertname: Down|Unreachable|Slow}}
"""
        alerts = [
            {"alertname": "Crit", "severity": "critical", "cluster": "a"},
            {"alertname": "Warn", "severity": "warning", "cluster": "a"},
            {"alertname": "Warn", "severity": "warning", "cluster": "b"},
            {"alertname": "Warn", "severity": "warning"},
            {"alertname": "Down", "host": "h1"},
            {"alertname": "Unreachable", "host": "h1"},
            {"alertname": "Slow", "host": "h1"},
        ]
        port = _start_alertmanager(processes, tmp_path, config)
        wait_until(lambda: _post_alerts(port, [{"labels": a} for a in alerts]), timeout=20,
                   what="Alertmanager to take the alerts")
        wait_until(lambda: hooks.bodies, timeout=20, what="Alertmanager's webhook")

        cfg = load_alertmanager_config(tmp_path / "am.yml")
        d = Dispatcher(cfg.route, inhibit_rules=cfg.inhibit_rules, resolve_timeout=None)
        d.receive([Notification(labels=a, status="firing", starts_at=0) for a in alerts], 0)
        (ours,) = d.tick(2)
        assert [a.labels for a in ours.alerts] == [a["labels"] for a in hooks.bodies[0]["alerts"]]
        assert {a.labels["alertname"] for a in ours.alerts} == {"Crit", "Warn", "Down",
                                                               "Unreachable"}
    finally:
        hooks.shutdown()
