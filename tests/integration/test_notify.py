"""Alerts reach webhooks, in order and exactly once, even when the webhook is down for a while.

The webhook is a real aiohttp server on a free port in the test's own event
loop (no fake: it is the kind of server a user points Orbiter at); the
receiver is the real `WebhookReceiver` with its real on-disk spool. Crash
safety is tested by `kill -9` of a real process writing to a spool.
Backoffs are shortened through the constructor; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from orbiter.alerts.notify import LogReceiver, Notifier, NotifyFailed, WebhookReceiver
from orbiter.alerts.payload import Notification
from orbiter.alerts.spool import Spool, SpoolLocked

Wait = Callable[..., Awaitable[Any]]
T0 = 1_700_000_000.0
DEADLINE = 10.0


def alert(name: str, status: str = "firing", **labels: str) -> Notification:
    return Notification(
        labels={"alertname": name, **labels},
        annotations={"summary": f"{name} happened"},
        status=status,  # type: ignore[arg-type]
        starts_at=T0,
        ends_at=T0 + 60 if status == "resolved" else None,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hook:
    """A webhook receiver: records every request, answers from `script` first, then 200.

    A script entry is an HTTP status, or "hang" to never answer (the client
    must time out).
    """

    def __init__(self, port: int, script: Sequence[int | str] = ()) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hook"
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._changed = asyncio.Condition()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        async with self._changed:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            self._changed.notify_all()
        answer = self.script.pop(0) if self.script else 200
        if answer == "hang":
            await self._release.wait()
        return web.json_response({}, status=int(answer))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_requests(self, n: int, timeout: float = DEADLINE) -> list[dict[str, Any]]:
        """Wait until `n` requests arrived; fail after `timeout` saying what did arrive."""
        try:
            async with self._changed:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(self.requests) >= n), timeout
                )
        except TimeoutError:
            raise AssertionError(
                f"waited {timeout}s for {n} webhook requests, got {len(self.requests)}: "
                f"{self.alertnames()}"
            ) from None
        return self.requests

    def alertnames(self) -> list[list[str]]:
        """Per request, the alertnames in it, in order."""
        return [[a["labels"]["alertname"] for a in r["alerts"]] for r in self.requests]


@pytest.fixture
async def hooks() -> AsyncIterator[Callable[..., Hook]]:
    made: list[Hook] = []

    def make(port: int | None = None, script: Sequence[int | str] = ()) -> Hook:
        hook = Hook(port or free_port(), script)
        made.append(hook)
        return hook

    yield make
    for hook in made:
        await hook.stop()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def receivers(
    tmp_path: Path, registry: CollectorRegistry
) -> AsyncIterator[Callable[..., WebhookReceiver]]:
    made: list[WebhookReceiver] = []

    def make(url: str, name: str = "hook", spool_dir: Path | None = None,
             **kwargs: Any) -> WebhookReceiver:
        kwargs.setdefault("min_backoff", 0.01)
        kwargs.setdefault("max_backoff", 0.05)
        kwargs.setdefault("timeout", 2.0)
        r = WebhookReceiver(name, url, spool_dir or tmp_path / "spool", registry=registry,
                            **kwargs)
        made.append(r)
        return r

    yield make
    for r in made:
        await r.stop()


def counter(registry: CollectorRegistry, what: str, receiver: str = "hook") -> float:
    return registry.get_sample_value(f"orbiter_alerts_{what}", {"receiver": receiver}) or 0.0


# ---------------------------------------------------------------------- delivery


async def test_alert_is_posted_as_alertmanager_webhook_json(hooks, receivers, registry,
                                                            async_wait_until: Wait):
    hook = hooks()
    await hook.start()
    receiver = receivers(hook.url, external_url="http://orbiter:5050")
    await receiver.start()

    await receiver.enqueue([alert("AgentDown", agent="a1"), alert("DiskFull", agent="a1")])

    [body] = await hook.wait_requests(1)
    assert body["version"] == "4"
    assert body["receiver"] == "hook"
    assert body["status"] == "firing"
    assert body["externalURL"] == "http://orbiter:5050"
    assert body["commonLabels"] == {"agent": "a1"}
    assert [a["labels"]["alertname"] for a in body["alerts"]] == ["AgentDown", "DiskFull"]
    assert body["alerts"][0]["startsAt"] == "2023-11-14T22:13:20Z"
    assert hook.headers[0]["Content-Type"] == "application/json"
    assert hook.headers[0]["User-Agent"].startswith("Orbiter/")
    await async_wait_until(lambda: counter(registry, "queue_length") == 0,
                           what="spool emptied after delivery")
    assert counter(registry, "notifications_sent_total") == 2
    assert counter(registry, "notifications_failed_total") == 0


async def test_webhook_down_for_a_while_gets_every_alert_once_in_order(
    hooks, receivers, registry, async_wait_until: Wait
):
    port = free_port()
    receiver = receivers(f"http://127.0.0.1:{port}/hook")
    await receiver.start()
    names = [f"Alert{i}" for i in range(6)]
    for name in names:
        await receiver.enqueue([alert(name)])
    await async_wait_until(lambda: counter(registry, "notifications_failed_total") >= 3,
                           what="several failed attempts while the webhook is down")
    assert counter(registry, "queue_length") == len(names)

    hook = hooks(port)
    await hook.start()
    await hook.wait_requests(len(names))
    await async_wait_until(lambda: counter(registry, "queue_length") == 0,
                           what="spool emptied after the webhook came back")

    # Nothing is left to send, so nothing more can arrive: this is the final tally.
    assert hook.alertnames() == [[n] for n in names]
    assert counter(registry, "notifications_sent_total") == len(names)


async def test_server_errors_are_retried_with_the_same_batch_until_accepted(
    hooks, receivers, registry, async_wait_until: Wait
):
    hook = hooks(script=[500, 503, 429])
    await hook.start()
    receiver = receivers(hook.url)
    await receiver.start()

    await receiver.enqueue([alert("First")])
    await receiver.enqueue([alert("Second")])

    requests = await hook.wait_requests(5)
    assert hook.alertnames() == [["First"]] * 4 + [["Second"]]
    assert all(r == requests[0] for r in requests[:4])
    await async_wait_until(lambda: counter(registry, "queue_length") == 0, what="spool empty")
    assert len(hook.requests) == 5
    assert counter(registry, "notifications_failed_total") == 3
    assert counter(registry, "notifications_sent_total") == 2


async def test_a_webhook_that_does_not_answer_in_time_is_retried(hooks, receivers, registry):
    hook = hooks(script=["hang"])
    await hook.start()
    receiver = receivers(hook.url, timeout=0.2)
    await receiver.start()

    await receiver.enqueue([alert("Slow")])

    await hook.wait_requests(2)
    assert hook.alertnames() == [["Slow"], ["Slow"]]  # at least once: the far end saw it twice
    assert counter(registry, "notifications_failed_total") == 1


async def test_client_error_drops_the_batch_and_the_next_one_still_goes(
    hooks, receivers, registry, caplog, async_wait_until: Wait
):
    caplog.set_level(logging.ERROR, logger="orbiter.alerts")
    hook = hooks(script=[400])
    await hook.start()
    receiver = receivers(hook.url)
    await receiver.start()

    await receiver.enqueue([alert("Refused"), alert("AlsoRefused")])
    await receiver.enqueue([alert("Accepted")])

    await hook.wait_requests(2)
    await async_wait_until(lambda: counter(registry, "queue_length") == 0, what="spool empty")
    assert hook.alertnames() == [["Refused", "AlsoRefused"], ["Accepted"]]
    assert counter(registry, "notifications_dropped_total") == 2
    assert counter(registry, "notifications_sent_total") == 1
    assert any("HTTP 400" in r.getMessage() and "Refused" in r.getMessage()
               for r in caplog.records)


# ---------------------------------------------------------------------- durability


async def test_restarted_receiver_resumes_undelivered_batches(hooks, receivers, tmp_path,
                                                              registry, async_wait_until: Wait):
    port = free_port()
    first = receivers(f"http://127.0.0.1:{port}/hook")
    await first.start()
    for name in ("A", "B", "C"):
        await first.enqueue([alert(name)])
    await async_wait_until(lambda: counter(registry, "notifications_failed_total") >= 1,
                           what="a failed attempt")
    await first.stop()

    second = receivers(f"http://127.0.0.1:{port}/hook")
    assert second.queue_length() == 3
    hook = hooks(port)
    await hook.start()
    await second.start()

    await hook.wait_requests(3)
    await async_wait_until(lambda: second.queue_length() == 0, what="spool empty")
    assert hook.alertnames() == [["A"], ["B"], ["C"]]


async def test_torn_last_line_is_ignored_and_the_rest_delivered(hooks, receivers, caplog,
                                                                async_wait_until: Wait):
    caplog.set_level(logging.WARNING, logger="orbiter.alerts")
    port = free_port()
    first = receivers(f"http://127.0.0.1:{port}/hook")
    await first.enqueue([alert("A")])
    await first.enqueue([alert("B")])
    await first.stop()
    path = first.spool.path
    intact = path.read_bytes()
    with path.open("ab") as f:  # what a crash in the middle of a write leaves
        f.write(b'{"seq":2,"data":[{"labels":{"alertname":"Tor')

    second = receivers(f"http://127.0.0.1:{port}/hook")
    assert second.queue_length() == 2
    assert path.read_bytes() == intact
    assert any("torn last line" in r.getMessage() for r in caplog.records)
    await second.enqueue([alert("C")])
    hook = hooks(port)
    await hook.start()
    await second.start()

    await hook.wait_requests(3)
    await async_wait_until(lambda: second.queue_length() == 0, what="spool empty")
    assert hook.alertnames() == [["A"], ["B"], ["C"]]
    assert path.read_bytes() == b""


def test_damaged_line_in_the_middle_is_skipped_and_the_rest_kept(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="orbiter.alerts")
    path = tmp_path / "q.jsonl"
    path.write_bytes(b'{"seq":0,"data":"a"}\n\x00\x00garbage\n{"seq":1,"data":"b"}\n'
                     b'{"ack":0}\n{"seq":2,"data":"c"}\n')
    spool = Spool(path)
    assert [e.data for e in spool.entries()] == ["b", "c"]
    assert any("damaged line" in r.getMessage() for r in caplog.records)
    assert spool.append("d") == 3
    spool.close()
    assert [e.data for e in Spool(path).entries()] == ["b", "c", "d"]


def test_spool_behaves_like_a_list_through_acks_compactions_and_reopens(tmp_path):
    """Mostly FIFO acks, some out of order; reopened now and then; checked against a list."""
    rnd = random.Random(7)
    path = tmp_path / "q.jsonl"
    spool = Spool(path, compact_bytes=1_000)
    model: list[tuple[int, int]] = []  # (seq, n)
    largest = 0
    for i in range(300):
        if model and rnd.random() < 0.45:
            seq, _ = model.pop(rnd.randrange(len(model)) if rnd.random() < 0.2 else 0)
            spool.ack(seq)
        else:
            model.append((spool.append({"n": i, "pad": "x" * 30}), i))
        if i % 60 == 59:
            spool.close()
            spool = Spool(path, compact_bytes=1_000)
        assert [(e.seq, e.data["n"]) for e in spool.entries()] == model
        live = sum(len(json.dumps({"seq": seq, "data": {"n": n, "pad": "x" * 30}},
                                  separators=(",", ":"))) + 1 for seq, n in model)
        largest = max(largest, path.stat().st_size - max(1_000, 2 * live))
    spool.close()
    assert [(e.seq, e.data["n"]) for e in Spool(path).entries()] == model
    assert largest <= 80  # compacted, never more than one line past the bound


def test_a_write_that_fails_half_way_leaves_no_half_line(tmp_path, monkeypatch):
    """Disk full in the middle of a line (simulated: the real os.write writes part of the
    line, then the call fails): the append fails and the next one is intact."""
    path = tmp_path / "q.jsonl"
    spool = Spool(path)
    spool.append("a")
    real_write = os.write

    def disk_full(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data)[:7])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError, match="No space"):
        spool.append("b")
    monkeypatch.undo()
    spool.append("c")
    spool.close()
    assert [e.data for e in Spool(path).entries()] == ["a", "c"]


async def test_two_receivers_cannot_share_one_spool(receivers, tmp_path):
    receivers("http://127.0.0.1:9/hook", name="ops")
    with pytest.raises(SpoolLocked, match="in use"):
        WebhookReceiver("ops", "http://127.0.0.1:9/other", tmp_path / "spool")
    receivers("http://127.0.0.1:9/hook", name="db")  # another name, another file


KILLED_WRITER = """
import sys
from pathlib import Path
from orbiter.alerts.spool import Spool
spool = Spool(Path(sys.argv[1]), compact_bytes=4096)
n = int(sys.argv[2])
while True:
    spool.append({"n": n, "pad": "x" * 64})
    print("A", n, flush=True)
    if len(spool) > 8:
        head = spool.head()
        print("k", head.data["n"], flush=True)
        spool.ack(head.seq)
        print("K", head.data["n"], flush=True)
    n += 1
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_at_any_moment_keeps_every_acknowledged_append_and_ack(tmp_path, seed):
    """A writer appends and acknowledges as fast as it can and is killed with SIGKILL at
    a random point (across compactions); what it reported done must be what the spool
    holds, and the spool must open cleanly and keep working."""
    path = tmp_path / "q.jsonl"
    kill_after = random.Random(seed).randrange(50, 400)
    appended: set[int] = set()
    acking: set[int] = set()
    acked: set[int] = set()
    seen = {"A": appended, "k": acking, "K": acked}
    start = 0
    for _round in range(2):  # a second writer resumes the killed one's spool
        proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path), str(start)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for count, line in enumerate(proc.stdout, start=1):
            kind, n = line.split()
            seen[kind].add(int(n))
            if count == kill_after:
                proc.send_signal(signal.SIGKILL)
                break
        for line in proc.stdout:  # reported before the kill landed
            kind, n = line.split()
            seen[kind].add(int(n))
        proc.wait(timeout=DEADLINE)
        assert proc.returncode == -signal.SIGKILL

        spool = Spool(path)
        present = [e.data["n"] for e in spool.entries()]
        spool.close()
        assert present == sorted(present)
        missing = (appended - acked) - set(present)
        # The one exception: an ack under way when the kill landed.
        assert missing <= acking - acked, "an acknowledged append was lost"
        acked |= missing
        assert not acked & set(present), "an acknowledged removal came back"
        assert set(present) <= appended | {max(appended) + 1}
        start = max(appended) + 2


# ---------------------------------------------------------------------- notifier


async def test_notifier_logs_at_once_and_queues_for_a_webhook_that_is_down(
    receivers, caplog
):
    caplog.set_level(logging.INFO, logger="orbiter.alerts")
    webhook = receivers(f"http://127.0.0.1:{free_port()}/hook")
    notifier = Notifier([LogReceiver(), webhook])
    await notifier.start()

    await notifier.notify([alert("AgentDown", agent="a1"), alert("AgentDown", agent="a2")])

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alert ")]
    assert len(lines) == 2
    assert lines[0].startswith('alert firing AgentDown {agent="a1", alertname="AgentDown"}')
    assert webhook.queue_length() == 2
    assert [n.labels["agent"] for n in notifier.active()] == ["a1", "a2"]

    await notifier.notify([alert("AgentDown", "resolved", agent="a1")])
    assert [n.labels["agent"] for n in notifier.active()] == ["a2"]
    assert any(r.getMessage().startswith("alert resolved AgentDown") for r in caplog.records)
    await notifier.stop()


class BrokenReceiver:
    name = "broken"

    async def send(self, batch: Sequence[Notification]) -> None:
        raise OSError(28, "No space left on device")


async def test_one_failing_receiver_does_not_keep_alerts_from_the_others(receivers):
    webhook = receivers("http://127.0.0.1:9/hook")
    notifier = Notifier([BrokenReceiver(), webhook])

    with pytest.raises(NotifyFailed, match=r"broken.*No space left"):
        await notifier.notify([alert("AgentDown")])

    assert webhook.queue_length() == 1


async def test_enqueue_returns_with_the_batch_on_disk(receivers):
    receiver = receivers("http://127.0.0.1:9/hook")
    await receiver.enqueue([alert("OnDisk", agent="a1")])
    [line] = receiver.spool.path.read_bytes().splitlines()
    record = json.loads(line)
    assert Notification.from_record(record["data"][0]) == alert("OnDisk", agent="a1")
