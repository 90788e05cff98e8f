"""Mesos v1 executor JSON <-> Orbiter's executor messages: tables of cases."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from orbiter.mesos import executor_convert as convert
from orbiter.proto import executor_pb2
from orbiter.proto import messages_pb2 as pb

E = executor_pb2.ExecutorEvent
UUID = bytes(range(16))
B64 = base64.b64encode(UUID).decode()
IDS = {"framework_id": {"value": "fw"}, "executor_id": {"value": "ex"}}


def _status(**fields: Any) -> dict[str, Any]:
    return {"task_id": {"value": "t1"}, "state": "TASK_RUNNING", "uuid": B64, **fields}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"type": "SUBSCRIBE", **IDS},
            convert.Subscribe("fw", "ex"),
        ),
        (
            # What pymesos sends on a resubscription.
            {"type": "SUBSCRIBE", **IDS, "subscribe": {
                "unacknowledged_tasks": [{"task_id": {"value": "t1"}, "name": "t1"}],
                "unacknowledged_updates": [],
            }},
            convert.Subscribe("fw", "ex", ("t1",)),
        ),
        (
            # Mesos lists Call.Update messages; a bare status is taken too.
            {"type": "SUBSCRIBE", **IDS, "subscribe": {
                "unacknowledged_updates": [{"status": _status()}, _status(state="TASK_FINISHED")],
            }},
            convert.Subscribe("fw", "ex", (), (
                pb.TaskStatus(task_id="t1", state=pb.TASK_RUNNING, uuid=UUID),
                pb.TaskStatus(task_id="t1", state=pb.TASK_FINISHED, uuid=UUID),
            )),
        ),
        (
            {"type": "UPDATE", **IDS, "update": {"status": _status(
                message="progress 1/5", source="SOURCE_EXECUTOR", timestamp=1700000000.5,
                healthy=True, data="aWdub3JlZA==",
            )}},
            convert.Update("fw", "ex", pb.TaskStatus(
                task_id="t1", state=pb.TASK_RUNNING, uuid=UUID, message="progress 1/5",
                timestamp=1700000000.5, healthy=True,
            )),
        ),
        (
            # A reason Orbiter has is kept; one it lacks is left unspecified.
            {"type": "UPDATE", **IDS, "update": {"status": _status(
                state="TASK_FAILED", reason="REASON_COMMAND_EXITED",
            )}},
            convert.Update("fw", "ex", pb.TaskStatus(
                task_id="t1", state=pb.TASK_FAILED, uuid=UUID, reason=pb.REASON_COMMAND_EXITED,
            )),
        ),
        (
            {"type": "UPDATE", **IDS, "update": {"status": _status(
                state="TASK_FAILED", reason="REASON_IO_SWITCHBOARD_EXITED",
            )}},
            convert.Update("fw", "ex", pb.TaskStatus(
                task_id="t1", state=pb.TASK_FAILED, uuid=UUID,
            )),
        ),
        (
            {"type": "MESSAGE", **IDS, "message": {"data": base64.b64encode(b"pong").decode()}},
            convert.Message("fw", "ex", b"pong"),
        ),
    ],
)  # fmt: skip
def test_calls_parse_into_orbiters_messages(body: Any, expected: convert.Call) -> None:
    assert convert.parse_call(body) == expected


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ([], "the call must be a JSON object"),
        ({"type": "SUBSCRIBE"}, "framework_id"),
        ({"type": "SUBSCRIBE", "framework_id": {"value": ""}, "executor_id": {"value": "e"}},
         "framework_id.value must be a non-empty string"),
        ({"type": "SUBSCRIBE", "framework_id": "fw", "executor_id": {"value": "e"}},
         "framework_id"),
        ({"type": "LAUNCH", **IDS}, "SUBSCRIBE, UPDATE or MESSAGE"),
        ({"type": "UPDATE", **IDS}, "update must be a JSON object"),
        ({"type": "UPDATE", **IDS, "update": {"status": _status(state="RUNNING")}},
         "update.status.state must be a task state name"),
        ({"type": "UPDATE", **IDS, "update": {"status": _status(state="TASK_STATE_UNSPECIFIED")}},
         "update.status.state"),
        ({"type": "UPDATE", **IDS, "update": {"status": _status(uuid="not base64!")}},
         "update.status.uuid is not valid base64"),
        ({"type": "UPDATE", **IDS, "update": {"status": _status(uuid="AAAA")}},
         "16 bytes"),
        ({"type": "UPDATE", **IDS, "update": {"status": {"state": "TASK_RUNNING", "uuid": B64}}},
         "update.status.task_id"),
        ({"type": "UPDATE", **IDS, "update": {"status": _status(message=3)}},
         "update.status.message must be a string"),
        ({"type": "MESSAGE", **IDS, "message": {}}, "message.data must be a base64 string"),
        ({"type": "SUBSCRIBE", **IDS, "subscribe": {"unacknowledged_tasks": {}}},
         "must be arrays"),
    ],
)  # fmt: skip
def test_calls_it_cannot_read_say_what_is_wrong(body: Any, says: str) -> None:
    with pytest.raises(convert.InvalidCall, match=None) as e:
        convert.parse_call(body)
    assert says in str(e.value)


def _subscribed() -> E:
    event = E(type=E.SUBSCRIBED)
    s = event.subscribed
    s.executor_info.CopyFrom(pb.ExecutorInfo(
        executor_id="ex", name="counter",
        command=pb.CommandInfo(shell=True, value="python run.py", environment={"A": "1"}),
        resources=[pb.Resource(name="cpus", scalar=0.1)],
    ))  # fmt: skip
    s.framework_info.CopyFrom(pb.FrameworkInfo(
        name="fwname", user="alice", capabilities=[pb.PARTITION_AWARE],
    ))  # fmt: skip
    s.agent_info.CopyFrom(pb.AgentInfo(
        id="ag", hostname="h1", http_address="h1:5051",
        attributes=[pb.Attribute(name="rack", value="r1")],
    ))  # fmt: skip
    return event


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            _subscribed(),
            {"type": "SUBSCRIBED", "subscribed": {
                "executor_info": {
                    "executor_id": {"value": "ex"}, "framework_id": {"value": "fw"},
                    "type": "CUSTOM", "name": "counter",
                    "command": {"shell": True, "value": "python run.py", "environment": {
                        "variables": [{"name": "A", "value": "1"}]}},
                    "resources": [
                        {"name": "cpus", "role": "*", "type": "SCALAR", "scalar": {"value": 0.1}},
                    ],
                },
                "framework_info": {
                    "id": {"value": "fw"}, "name": "fwname", "user": "alice", "roles": ["*"],
                    "principal": "", "failover_timeout": 0.0, "hostname": "", "checkpoint": True,
                    "capabilities": [{"type": "PARTITION_AWARE"}],
                },
                "agent_info": {
                    "id": {"value": "ag"}, "hostname": "h1", "port": 5051, "resources": [],
                    "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}],
                },
            }},
        ),
        (
            E(type=E.LAUNCH, launch=E.Launch(task=pb.TaskInfo(
                task_id="t1", agent_id="ag", labels={"count": "3"}, kill_grace_period=2.5,
                resources=[
                    pb.Resource(name="ports", type=pb.Resource.RANGES,
                                ranges=[pb.Range(begin=31000, end=31001)]),
                    pb.Resource(name="disks", type=pb.Resource.SET, items=["a"], role="web"),
                ],
            ))),
            {"type": "LAUNCH", "launch": {"task": {
                "name": "t1", "task_id": {"value": "t1"}, "agent_id": {"value": "ag"},
                "resources": [
                    {"name": "ports", "role": "*", "type": "RANGES",
                     "ranges": {"range": [{"begin": 31000, "end": 31001}]}},
                    {"name": "disks", "role": "web", "type": "SET", "set": {"item": ["a"]}},
                ],
                "labels": {"labels": [{"key": "count", "value": "3"}]},
                "kill_policy": {"grace_period": {"nanoseconds": 2_500_000_000}},
            }}},
        ),
        (
            E(type=E.KILL, kill=E.Kill(task_id="t1", grace_period=1.0)),
            {"type": "KILL", "kill": {
                "task_id": {"value": "t1"},
                "kill_policy": {"grace_period": {"nanoseconds": 1_000_000_000}},
            }},
        ),
        (
            E(type=E.KILL, kill=E.Kill(task_id="t1")),
            {"type": "KILL", "kill": {"task_id": {"value": "t1"}}},
        ),
        (
            E(type=E.ACKNOWLEDGED, acknowledged=E.Acknowledged(task_id="t1", uuid=UUID)),
            {"type": "ACKNOWLEDGED", "acknowledged": {"task_id": {"value": "t1"}, "uuid": B64}},
        ),
        (
            E(type=E.MESSAGE, message=E.Message(data=b"ping")),
            {"type": "MESSAGE", "message": {"data": "cGluZw=="}},
        ),
        (E(type=E.SHUTDOWN, shutdown=E.Shutdown(grace_period=3)), {"type": "SHUTDOWN"}),
        (
            E(type=E.ERROR, error=E.Error(message="refused")),
            {"type": "ERROR", "error": {"message": "refused"}},
        ),
    ],
)  # fmt: skip
def test_events_are_written_as_mesos_events(event: E, expected: dict[str, Any]) -> None:
    written = convert.event_json(event, "fw")
    assert written == expected
    json.dumps(written)  # and they are JSON


def test_an_event_without_a_type_has_no_mesos_form() -> None:
    with pytest.raises(ValueError, match="no Mesos event"):
        convert.event_json(E(), "fw")


@pytest.mark.parametrize(
    ("record", "framed"),
    [(b"", b"0\n"), (b'{"type":"HEARTBEAT"}', b'20\n{"type":"HEARTBEAT"}'),
     ("é".encode(), b"2\n\xc3\xa9")],
)  # fmt: skip
def test_records_are_framed_by_their_byte_length(record: bytes, framed: bytes) -> None:
    assert convert.recordio(record) == framed


@pytest.mark.parametrize(
    ("known", "unacked", "expected"),
    [
        # pymesos forgets a task at its first acknowledgement: still the executor's.
        (["t1", "t2"], [], ["t1", "t2"]),
        (["t1"], ["t1"], ["t1"]),
        # One the executor names and the agent lost is passed on (the core decides).
        (["t1"], ["t9"], ["t1", "t9"]),
        ([], [], []),
    ],
)
def test_a_subscription_keeps_every_task_the_agent_gave(
    known: list[str], unacked: list[str], expected: list[str]
) -> None:
    call = convert.Subscribe("fw", "ex", tuple(unacked))
    request = convert.subscribe_request(call, [pb.TaskInfo(task_id=t) for t in known])
    assert [t.task_id for t in request.tasks] == expected
    assert (request.caller.framework_id, request.caller.executor_id) == ("fw", "ex")


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        ("127.0.0.1", "127.0.0.1:5051"),
        ("0.0.0.0", "127.0.0.1:5051"),
        ("::", "127.0.0.1:5051"),
        ("127.0.0.2", "127.0.0.2:5051"),
        ("::1", "[::1]:5051"),
        ("10.0.0.7", "10.0.0.7:5051"),
        ("agent1.example", "agent1.example:5051"),
    ],
)
def test_the_agent_endpoint_is_one_an_executor_on_the_host_can_dial(
    bind: str, expected: str
) -> None:
    assert convert.agent_endpoint(bind, 5051) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(3.0, "3secs"), (900.0, "900secs"), (2.5, "2500ms"), (0.1, "100ms")],
)
def test_durations_are_written_as_mesos_writes_them(seconds: float, text: str) -> None:
    assert convert.duration_text(seconds) == text


def test_the_environment_is_what_mesos_gives_an_executor() -> None:
    env = convert.environment(
        endpoint="127.0.0.1:5051", agent_id="ag", framework_id="fw", executor_id="ex",
        sandbox="/w/executors/fw/ex", token="tok", recovery_timeout=900,
        subscription_backoff_max=2, shutdown_grace_period=3,
    )  # fmt: skip
    assert env == {
        "MESOS_AGENT_ENDPOINT": "127.0.0.1:5051",
        "MESOS_FRAMEWORK_ID": "fw",
        "MESOS_EXECUTOR_ID": "ex",
        "MESOS_SLAVE_ID": "ag",
        "MESOS_AGENT_ID": "ag",
        "MESOS_DIRECTORY": "/w/executors/fw/ex",
        "MESOS_SANDBOX": "/w/executors/fw/ex",
        "MESOS_CHECKPOINT": "1",
        "MESOS_RECOVERY_TIMEOUT": "900secs",
        "MESOS_SUBSCRIPTION_BACKOFF_MAX": "2secs",
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "3secs",
        "MESOS_HTTP_COMMAND_EXECUTOR": "0",
        "MESOS_EXECUTOR_AUTHENTICATION_TOKEN": "tok",
    }


def test_pymesos_reads_the_durations_it_is_given() -> None:
    """pymesos parses MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD with its own parser."""
    from pymesos.utils import parse_duration

    for seconds in (3.0, 2.5, 900.0):
        assert parse_duration(convert.duration_text(seconds)) == pytest.approx(seconds)
