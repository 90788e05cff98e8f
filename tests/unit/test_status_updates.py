"""The agent's status update manager: reliable, ordered delivery per task, sans I/O.

Per task, only the oldest unacknowledged update (the head) is ever sent; it is
resent with a doubling backoff until the master passes back its uuid; then the
next one goes at once. Time is passed in, never read.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbiter.agent.status_updates import StatusUpdateManager
from orbiter.proto import messages_pb2

pb = messages_pb2
TS = pb.TaskState


def status(task_id: str, state: int = TS.TASK_RUNNING, uuid: bytes = b"") -> pb.TaskStatus:
    return pb.TaskStatus(task_id=task_id, state=state, uuid=uuid, source=pb.SOURCE_AGENT)


def sent(updates) -> list[tuple[str, str, int]]:
    return sorted((u.framework_id, u.status.task_id, u.status.state) for u in updates)


def send_times(mgr: StatusUpdateManager, until: float, step: float = 1.0) -> list[float]:
    """The times at which the head is (re)sent, polling every `step` seconds."""
    times = []
    now = 0.0
    while now <= until:
        if mgr.due(now):
            times.append(now)
        now += step
    return times


# ================================================================ queueing


def test_add_gives_an_update_a_fresh_uuid_and_keeps_a_given_one():
    mgr = StatusUpdateManager()
    a = mgr.add("f", status("t1"))
    b = mgr.add("f", status("t2"))
    c = mgr.add("f", status("t3", uuid=b"\x01" * 16))
    assert len(a.uuid) == 16 and len(b.uuid) == 16 and a.uuid != b.uuid
    assert c.uuid == b"\x01" * 16


def test_only_the_head_of_a_tasks_queue_is_sent():
    mgr = StatusUpdateManager()
    mgr.add("f", status("t1", TS.TASK_RUNNING))
    mgr.add("f", status("t1", TS.TASK_FINISHED))
    assert sent(mgr.due(0.0)) == [("f", "t1", TS.TASK_RUNNING)]
    assert mgr.unacknowledged("f", "t1") == 2


def test_acknowledging_the_head_makes_the_next_update_due_at_once():
    mgr = StatusUpdateManager()
    running = mgr.add("f", status("t1", TS.TASK_RUNNING))
    mgr.add("f", status("t1", TS.TASK_FINISHED))
    mgr.due(0.0)

    assert mgr.acknowledge("f", "t1", running.uuid) is running

    assert mgr.has_due(1.0)
    assert sent(mgr.due(1.0)) == [("f", "t1", TS.TASK_FINISHED)]


def test_tasks_are_independent():
    mgr = StatusUpdateManager()
    mgr.add("f", status("t1", TS.TASK_RUNNING))
    mgr.add("f", status("t1", TS.TASK_FINISHED))
    mgr.add("g", status("t2", TS.TASK_FAILED))
    assert sent(mgr.due(0.0)) == [("f", "t1", TS.TASK_RUNNING), ("g", "t2", TS.TASK_FAILED)]


@pytest.mark.parametrize(
    "which",
    ["unknown-uuid", "second-in-queue", "unknown-task", "already-acked"],
)
def test_a_stale_acknowledgement_is_ignored(which):
    mgr = StatusUpdateManager()
    head = mgr.add("f", status("t1", TS.TASK_RUNNING))
    second = mgr.add("f", status("t1", TS.TASK_FINISHED))
    mgr.due(0.0)
    task_id, uuid = {
        "unknown-uuid": ("t1", b"\xff" * 16),
        "second-in-queue": ("t1", second.uuid),
        "unknown-task": ("t9", head.uuid),
        "already-acked": ("t1", head.uuid),
    }[which]
    if which == "already-acked":
        mgr.acknowledge("f", "t1", head.uuid)
        mgr.due(0.5)

    assert mgr.acknowledge("f", task_id, uuid) is None

    expected_head = second if which == "already-acked" else head
    assert next(s.uuid for _, s in mgr.pending()) == expected_head.uuid
    assert mgr.unacknowledged("f", "t1") == (1 if which == "already-acked" else 2)
    assert mgr.due(1.0) == [], "a stale ack does not make anything due early"


def test_the_last_acknowledgement_forgets_the_task():
    mgr = StatusUpdateManager()
    only = mgr.add("f", status("t1", TS.TASK_FINISHED))
    mgr.due(0.0)
    mgr.acknowledge("f", "t1", only.uuid)
    assert len(mgr) == 0
    assert mgr.unacknowledged("f", "t1") == 0
    assert list(mgr.pending()) == []
    assert mgr.next_retry() is None
    assert mgr.due(10_000.0) == []


def test_pending_lists_every_unacknowledged_update_in_order():
    mgr = StatusUpdateManager()
    a = mgr.add("f", status("t1", TS.TASK_RUNNING))
    b = mgr.add("f", status("t1", TS.TASK_FINISHED))
    c = mgr.add("g", status("t2", TS.TASK_RUNNING))
    assert [(fw, s.uuid) for fw, s in mgr.pending()] == [
        ("f", a.uuid),
        ("f", b.uuid),
        ("g", c.uuid),
    ]
    assert len(mgr) == 3


# ================================================================ retries


@pytest.mark.parametrize(
    ("retry_min", "retry_max", "gaps"),
    [
        (10.0, 600.0, [10, 20, 40, 80, 160, 320, 600, 600]),
        (1.0, 4.0, [1, 2, 4, 4, 4]),
        (5.0, 5.0, [5, 5, 5]),
        (3.0, 10.0, [3, 6, 10, 10]),  # the cap is not a power-of-two multiple
    ],
)
def test_retries_back_off_doubling_up_to_the_maximum(retry_min, retry_max, gaps):
    mgr = StatusUpdateManager(retry_min=retry_min, retry_max=retry_max)
    mgr.add("f", status("t1"))
    times = send_times(mgr, until=sum(gaps))
    assert times[0] == 0.0
    assert [b - a for a, b in itertools.pairwise(times)] == gaps


def test_the_head_is_not_resent_before_its_retry_time():
    mgr = StatusUpdateManager(retry_min=10.0)
    mgr.add("f", status("t1"))
    assert len(mgr.due(0.0)) == 1
    assert mgr.next_retry() == 10.0
    assert mgr.due(9.999) == []
    assert len(mgr.due(10.0)) == 1
    assert mgr.next_retry() == 30.0


def test_a_new_head_starts_again_from_the_minimum_backoff():
    mgr = StatusUpdateManager(retry_min=1.0, retry_max=100.0)
    head = mgr.add("f", status("t1", TS.TASK_RUNNING))
    mgr.add("f", status("t1", TS.TASK_FINISHED))
    for now in (0.0, 1.0, 3.0, 7.0):  # backoff is now 8
        assert mgr.due(now)
    mgr.acknowledge("f", "t1", head.uuid)
    assert mgr.due(7.5)
    assert mgr.next_retry() == 8.5


def test_has_due_reports_new_updates_until_they_are_sent():
    mgr = StatusUpdateManager()
    assert not mgr.has_due(0.0)
    mgr.add("f", status("t1"))
    assert mgr.has_due(0.0)
    mgr.due(0.0)
    assert not mgr.has_due(0.0)


def test_an_update_queued_behind_the_head_is_not_due():
    mgr = StatusUpdateManager()
    mgr.add("f", status("t1", TS.TASK_RUNNING))
    mgr.due(0.0)
    mgr.add("f", status("t1", TS.TASK_FINISHED))
    assert not mgr.has_due(0.0)
    assert mgr.due(1.0) == []


# ================================================================ reconnect


def test_resend_all_after_a_reconnect_makes_every_head_due_now():
    mgr = StatusUpdateManager(retry_min=10.0, retry_max=600.0)
    mgr.add("f", status("t1", TS.TASK_RUNNING))
    mgr.add("f", status("t1", TS.TASK_FINISHED))
    mgr.add("g", status("t2", TS.TASK_FAILED))
    for now in (0.0, 10.0, 30.0):
        mgr.due(now)
    assert mgr.due(31.0) == []

    mgr.resend_all()

    assert mgr.has_due(31.0)
    assert sent(mgr.due(31.0)) == [("f", "t1", TS.TASK_RUNNING), ("g", "t2", TS.TASK_FAILED)]
    assert mgr.next_retry() == 41.0, "the backoff starts again from the minimum"


def test_resend_all_with_nothing_pending_sends_nothing():
    mgr = StatusUpdateManager()
    mgr.resend_all()
    assert mgr.due(0.0) == []


# ================================================================ known bugs


def test_bug_same_task_id_in_two_frameworks_is_delivered_to_each_framework():
    """BUG (orbiter/agent/status_updates.py, StatusUpdateManager.add/acknowledge): streams
    are keyed by task id alone, but task ids are unique only within a framework (the master
    lets two frameworks both launch "web-1" on one agent). The second framework's update
    joins the first one's stream, is sent under the first framework's id, and waits behind
    it. Expected: one stream per (framework id, task id)."""
    mgr = StatusUpdateManager()
    mgr.add("fa", status("web-1", TS.TASK_RUNNING))
    mgr.add("fb", status("web-1", TS.TASK_FAILED))
    assert sent(mgr.due(0.0)) == [
        ("fa", "web-1", TS.TASK_RUNNING),
        ("fb", "web-1", TS.TASK_FAILED),
    ]


# ================================================================ property

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 2)),
        st.tuples(st.just("ack"), st.integers(0, 2), st.booleans()),
        st.tuples(st.just("due"), st.sampled_from([0.0, 1.0, 5.0, 100.0])),
        st.tuples(st.just("reconnect")),
    ),
    max_size=60,
)


@settings(max_examples=100, deadline=None)
@given(OPS)
def test_each_task_delivers_its_updates_in_order_one_at_a_time(ops):
    """Whatever the interleaving, only heads are sent, acks take them in order, and the
    framework sees each task's updates in the order they were added."""
    mgr = StatusUpdateManager(retry_min=1.0, retry_max=8.0)
    queued: dict[str, list[bytes]] = {}
    delivered: dict[str, list[bytes]] = {}
    added: dict[str, list[bytes]] = {}
    last_sent: dict[str, bytes] = {}
    now = 0.0
    for op in ops:
        if op[0] == "add":
            tid = f"t{op[1]}"
            s = mgr.add("f", status(tid))
            queued.setdefault(tid, []).append(s.uuid)
            added.setdefault(tid, []).append(s.uuid)
        elif op[0] == "ack":
            tid = f"t{op[1]}"
            uuid = last_sent.get(tid) if op[2] else b"\x00" * 16
            if uuid is None:
                continue
            acked = mgr.acknowledge("f", tid, uuid)
            head = queued.get(tid, [None])[0] if queued.get(tid) else None
            if uuid == head:
                assert acked is not None and acked.uuid == uuid
                queued[tid].pop(0)
                delivered.setdefault(tid, []).append(uuid)
            else:
                assert acked is None
        elif op[0] == "due":
            now += op[1]
            for u in mgr.due(now):
                tid = u.status.task_id
                assert u.status.uuid == queued[tid][0], "only the head is ever sent"
                last_sent[tid] = u.status.uuid
        else:
            mgr.resend_all()
        assert len(mgr) == sum(len(q) for q in queued.values())
        for tid, q in queued.items():
            assert mgr.unacknowledged("f", tid) == len(q)
    for tid, uuids in delivered.items():
        assert uuids == added[tid][: len(uuids)]
