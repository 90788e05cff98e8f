"""Mesos's v1 executor API in JSON <-> Orbiter's Executor API messages, sans I/O.

The agent serves one executor core (orbiter/agent/executors.py) over two
wires: Orbiter's gRPC Executor API and Mesos's v1 executor HTTP API, which
executors written for Mesos (pymesos's MesosExecutorDriver, say) speak. This
module is the translation: Mesos calls (SUBSCRIBE, UPDATE, MESSAGE) parsed into
Orbiter's messages, Orbiter's executor events written as Mesos events, the
RecordIO framing of the event stream, and the environment Mesos gives an
executor. JSON follows Mesos's v1 protos: ids are `{"value": ...}`, bytes are
base64, enums are their names, durations are `{"nanoseconds": ...}`.

Where Orbiter has no such field (TaskStatus.data, TaskInfo.data), it is
dropped; Orbiter has no task groups, so no LAUNCH_GROUP event is ever sent.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orbiter.proto import executor_pb2
from orbiter.proto import messages_pb2 as pb

E = executor_pb2.ExecutorEvent
JSON = "application/json"
PROTOBUF = "application/x-protobuf"

EVENT_TYPES = {
    E.SUBSCRIBED: "SUBSCRIBED",
    E.LAUNCH: "LAUNCH",
    E.KILL: "KILL",
    E.ACKNOWLEDGED: "ACKNOWLEDGED",
    E.MESSAGE: "MESSAGE",
    E.SHUTDOWN: "SHUTDOWN",
    E.ERROR: "ERROR",
}


class InvalidCall(ValueError):
    """A Mesos executor call this agent cannot read; the message says what is wrong."""


# ---------------------------------------------------------------------- values


def _id(value: str) -> dict[str, str]:
    return {"value": value}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _nanoseconds(seconds: float) -> dict[str, int]:
    return {"nanoseconds": round(seconds * 1e9)}


def duration_text(seconds: float) -> str:
    """A duration as Mesos writes it in an executor's environment ('3secs', '150ms')."""
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}secs"
    return f"{round(seconds * 1000)}ms"


def resource_json(r: pb.Resource) -> dict[str, Any]:
    out: dict[str, Any] = {"name": r.name, "role": r.role or "*"}
    if r.type == pb.Resource.RANGES:
        out["type"] = "RANGES"
        out["ranges"] = {"range": [{"begin": x.begin, "end": x.end} for x in r.ranges]}
    elif r.type == pb.Resource.SET:
        out["type"] = "SET"
        out["set"] = {"item": list(r.items)}
    else:
        out["type"] = "SCALAR"
        out["scalar"] = {"value": r.scalar}
    return out


def command_json(c: pb.CommandInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"shell": c.shell, "value": c.value}
    if c.arguments:
        out["arguments"] = list(c.arguments)
    if c.environment:
        out["environment"] = {
            "variables": [{"name": k, "value": v} for k, v in sorted(c.environment.items())]
        }
    if c.user:
        out["user"] = c.user
    return out


def executor_info_json(info: pb.ExecutorInfo, framework_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "executor_id": _id(info.executor_id),
        "framework_id": _id(framework_id),
        "type": "CUSTOM",
        "command": command_json(info.command),
        "resources": [resource_json(r) for r in info.resources],
    }
    if info.name:
        out["name"] = info.name
    return out


def framework_info_json(info: pb.FrameworkInfo, framework_id: str) -> dict[str, Any]:
    roles = list(info.roles) or ["*"]
    return {
        "id": _id(framework_id),
        "name": info.name,
        "user": info.user,
        "roles": roles,
        "principal": info.principal,
        "failover_timeout": info.failover_timeout,
        "hostname": info.hostname,
        # Orbiter's agents always checkpoint: executors are taken back after a restart.
        "checkpoint": True,
        "capabilities": [
            {"type": pb.Capability.Name(c)}
            for c in info.capabilities
            if c != pb.CAPABILITY_UNSPECIFIED
        ],
    }


def agent_info_json(info: pb.AgentInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": _id(info.id),
        "hostname": info.hostname,
        "resources": [resource_json(r) for r in info.resources],
        "attributes": [
            {"name": a.name, "type": "TEXT", "text": {"value": a.value}} for a in info.attributes
        ],
    }
    _, _, port = info.http_address.rpartition(":")
    if port.isdigit():
        out["port"] = int(port)
    return out


def task_info_json(task: pb.TaskInfo, framework_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": task.name or task.task_id,
        "task_id": _id(task.task_id),
        "agent_id": _id(task.agent_id),
        "resources": [resource_json(r) for r in task.resources],
    }
    if task.HasField("executor"):
        out["executor"] = executor_info_json(task.executor, framework_id)
    if task.HasField("command"):
        out["command"] = command_json(task.command)
    if task.HasField("container"):
        c = task.container
        container: dict[str, Any] = {"type": pb.ContainerInfo.Type.Name(c.type)}
        if c.type == pb.ContainerInfo.DOCKER:
            container["docker"] = {"image": c.docker.image}
        out["container"] = container
    if task.labels:
        out["labels"] = {"labels": [{"key": k, "value": v} for k, v in sorted(task.labels.items())]}
    if task.kill_grace_period:
        out["kill_policy"] = {"grace_period": _nanoseconds(task.kill_grace_period)}
    return out


# ---------------------------------------------------------------------- events


def event_json(event: executor_pb2.ExecutorEvent, framework_id: str) -> dict[str, Any]:
    """One of Orbiter's executor events as the Mesos v1 event it stands for."""
    kind = EVENT_TYPES.get(event.type)
    if kind is None:
        raise ValueError(f"no Mesos event for executor event type {event.type}")
    out: dict[str, Any] = {"type": kind}
    if event.type == E.SUBSCRIBED:
        s = event.subscribed
        out["subscribed"] = {
            "executor_info": executor_info_json(s.executor_info, framework_id),
            "framework_info": framework_info_json(s.framework_info, framework_id),
            "agent_info": agent_info_json(s.agent_info),
        }
    elif event.type == E.LAUNCH:
        out["launch"] = {"task": task_info_json(event.launch.task, framework_id)}
    elif event.type == E.KILL:
        kill: dict[str, Any] = {"task_id": _id(event.kill.task_id)}
        if event.kill.grace_period:
            kill["kill_policy"] = {"grace_period": _nanoseconds(event.kill.grace_period)}
        out["kill"] = kill
    elif event.type == E.ACKNOWLEDGED:
        a = event.acknowledged
        out["acknowledged"] = {"task_id": _id(a.task_id), "uuid": _b64(a.uuid)}
    elif event.type == E.MESSAGE:
        out["message"] = {"data": _b64(event.message.data)}
    elif event.type == E.ERROR:
        out["error"] = {"message": event.error.message}
    # SHUTDOWN carries nothing in Mesos: the grace is in the environment.
    return out


HEARTBEAT: dict[str, Any] = {"type": "HEARTBEAT"}


def recordio(record: bytes) -> bytes:
    """One RecordIO record: the length in decimal, a newline, the bytes."""
    return b"%d\n%s" % (len(record), record)


# ---------------------------------------------------------------------- calls


@dataclass(frozen=True)
class Subscribe:
    framework_id: str
    executor_id: str
    # Ids of the tasks it was given and has had no update acknowledged for.
    unacknowledged_tasks: tuple[str, ...] = ()
    unacknowledged_updates: tuple[pb.TaskStatus, ...] = field(default=())


@dataclass(frozen=True)
class Update:
    framework_id: str
    executor_id: str
    status: pb.TaskStatus


@dataclass(frozen=True)
class Message:
    framework_id: str
    executor_id: str
    data: bytes


Call = Subscribe | Update | Message


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidCall(f"{where} must be a JSON object")
    return value


def _id_value(body: Mapping[str, Any], name: str, where: str = "") -> str:
    place = f"{where}.{name}" if where else name
    value = _object(body.get(name), f'{place} ({{"value": ...}})').get("value")
    if not isinstance(value, str) or not value:
        raise InvalidCall(f"{place}.value must be a non-empty string")
    return value


def _bytes(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidCall(f"{where} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise InvalidCall(f"{where} is not valid base64") from None


_STATES = frozenset(pb.TaskState.keys()) - {"TASK_STATE_UNSPECIFIED"}
_REASONS = frozenset(pb.TaskReason.keys())


def status_from_json(body: Any, where: str = "update.status") -> pb.TaskStatus:
    """A Mesos TaskStatus as Orbiter's (the agent sets agent_id and source itself)."""
    s = _object(body, where)
    status = pb.TaskStatus(task_id=_id_value(s, "task_id", where))
    state = s.get("state")
    if not isinstance(state, str) or state not in _STATES:
        raise InvalidCall(f"{where}.state must be a task state name such as TASK_RUNNING")
    status.state = pb.TaskState.Value(state)
    message = s.get("message", "")
    if not isinstance(message, str):
        raise InvalidCall(f"{where}.message must be a string")
    status.message = message
    if "uuid" in s:
        status.uuid = _bytes(s["uuid"], f"{where}.uuid")
    reason = s.get("reason")
    if isinstance(reason, str) and reason in _REASONS:
        status.reason = pb.TaskReason.Value(reason)  # Mesos reasons Orbiter lacks: unspecified
    healthy = s.get("healthy")
    if isinstance(healthy, bool):
        status.healthy = healthy
    timestamp = s.get("timestamp")
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        status.timestamp = float(timestamp)
    return status


def parse_call(body: Any) -> Call:
    """A decoded JSON body of POST /api/v1/executor as the call it is."""
    call = _object(body, "the call")
    kind = call.get("type")
    framework_id = _id_value(call, "framework_id")
    executor_id = _id_value(call, "executor_id")
    if kind == "SUBSCRIBE":
        sub = _object(call.get("subscribe", {}), "subscribe")
        tasks = sub.get("unacknowledged_tasks", [])
        updates = sub.get("unacknowledged_updates", [])
        if not isinstance(tasks, list) or not isinstance(updates, list):
            raise InvalidCall("subscribe.unacknowledged_tasks and _updates must be arrays")
        task_ids = tuple(
            _id_value(_object(t, "subscribe.unacknowledged_tasks[]"), "task_id") for t in tasks
        )
        statuses = tuple(
            # Mesos lists Call.Update messages ({"status": ...}); take a bare status too.
            status_from_json(
                u.get("status", u) if isinstance(u, Mapping) else u,
                "subscribe.unacknowledged_updates[].status",
            )
            for u in updates
        )
        return Subscribe(framework_id, executor_id, task_ids, statuses)
    if kind == "UPDATE":
        update = _object(call.get("update"), "update")
        status = status_from_json(update.get("status"))
        if len(status.uuid) != 16:
            raise InvalidCall("update.status.uuid must be 16 bytes (a UUID), base64")
        return Update(framework_id, executor_id, status)
    if kind == "MESSAGE":
        message = _object(call.get("message"), "message")
        return Message(framework_id, executor_id, _bytes(message.get("data"), "message.data"))
    raise InvalidCall(
        f"type {kind!r} is not an executor call this agent takes: SUBSCRIBE, UPDATE or MESSAGE"
    )


def subscribe_request(
    call: Subscribe, known_tasks: Iterable[pb.TaskInfo]
) -> executor_pb2.ExecutorSubscribe:
    """Orbiter's subscription for a Mesos one.

    A Mesos executor lists only the tasks it has had no acknowledgement for
    (pymesos forgets a task at its first one), not every task it runs, so every
    task the agent gave it counts as still running: it reports their ends itself.
    """
    request = executor_pb2.ExecutorSubscribe(unacknowledged=call.unacknowledged_updates)
    request.caller.framework_id = call.framework_id
    request.caller.executor_id = call.executor_id
    seen: set[str] = set()
    for task in known_tasks:
        seen.add(task.task_id)
        request.tasks.append(task)
    request.tasks.extend(pb.TaskInfo(task_id=t) for t in call.unacknowledged_tasks if t not in seen)
    return request


# ---------------------------------------------------------------------- environment


def agent_endpoint(bind_host: str, port: int) -> str:
    """host:port an executor on this host dials: the bind address, loopback for a wildcard.

    pymesos splits the endpoint at ':', so it cannot dial an IPv6 address; a
    wildcard bind (`::` too, dual-stack) is reached on 127.0.0.1.
    """
    try:
        address = ipaddress.ip_address(bind_host)
    except ValueError:
        return f"{bind_host}:{port}"  # a host name
    if address.is_unspecified:
        return f"127.0.0.1:{port}"
    return f"{bind_host}:{port}" if address.version == 4 else f"[{bind_host}]:{port}"


def environment(
    *,
    endpoint: str,
    agent_id: str,
    framework_id: str,
    executor_id: str,
    sandbox: str,
    token: str,
    recovery_timeout: float,
    subscription_backoff_max: float,
    shutdown_grace_period: float,
) -> dict[str, str]:
    """The variables Mesos sets for a framework's executor (what MesosExecutorDriver reads).

    MESOS_CHECKPOINT is set to 1: Orbiter's agents always take executors back after a
    restart (pymesos reads any non-empty value as true, so it is never set to 0).
    """
    return {
        "MESOS_AGENT_ENDPOINT": endpoint,
        "MESOS_FRAMEWORK_ID": framework_id,
        "MESOS_EXECUTOR_ID": executor_id,
        "MESOS_SLAVE_ID": agent_id,
        "MESOS_AGENT_ID": agent_id,
        "MESOS_DIRECTORY": sandbox,
        "MESOS_SANDBOX": sandbox,
        "MESOS_CHECKPOINT": "1",
        "MESOS_RECOVERY_TIMEOUT": duration_text(recovery_timeout),
        "MESOS_SUBSCRIPTION_BACKOFF_MAX": duration_text(subscription_backoff_max),
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": duration_text(shutdown_grace_period),
        "MESOS_HTTP_COMMAND_EXECUTOR": "0",
        "MESOS_EXECUTOR_AUTHENTICATION_TOKEN": token,
    }
