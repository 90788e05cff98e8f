"""JSON views of the master's state for the operator API: plain dicts, no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from orbiter.master.state import Agent, ClusterEvent, Framework, Master, Task
from orbiter.proto import master_pb2, messages_pb2
from orbiter.resources import Resources


def resources_view(r: Resources) -> dict[str, Any]:
    return {"text": r.format(), "quantities": r.quantities()}


def agent_view(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "hostname": agent.info.hostname,
        "http_address": agent.info.http_address,
        "status": agent.status.value,
        "resources": resources_view(agent.total),
        "used": resources_view(agent.used),
        "offered": resources_view(agent.offered),
        "attributes": {a.name: a.value for a in agent.info.attributes},
        "tasks": len(agent.tasks),
        "executors": [
            {"framework_id": fw_id, "executor_id": eid, "resources": resources_view(e.resources)}
            for (fw_id, eid), e in agent.executors.items()
        ],
        "registered_time": agent.registered_time,
        "last_seen": agent.last_seen,
        "unreachable_since": agent.unreachable_since or None,
        "version": agent.info.version,
        "principal": agent.principal,
        "maintenance": maintenance_view(agent),
        "pin": (
            {"state": agent.pin.state, "until": agent.pin.until, "reason": agent.pin.reason}
            if agent.pin is not None
            else None
        ),
        "reservations": [
            {
                "role": r.role,
                "principal": r.principal,
                "labels": dict(r.labels),
                "resources": r.resources.format(),
            }
            for r in agent.reservations
        ],
        "volumes": [
            {
                "persistence_id": v.persistence_id,
                "role": v.role,
                "size": v.size,
                "container_path": v.container_path,
                "principal": v.principal,
                "labels": dict(v.labels),
                "used_by": (
                    {"framework_id": user[0], "task_id": user[1]}
                    if (user := agent.volume_users.get(v.persistence_id))
                    else None
                ),
            }
            for v in agent.volumes.values()
        ],
    }


def http_sd_view(master_http: str, agents: Iterable[Agent]) -> list[dict[str, Any]]:
    """Prometheus's http_sd format: the master and every agent not gone, one group each.

    `job` and `agent` are target labels exactly as Satellite sets them (Prometheus keeps
    a discovered `job` over its job_name), so both store the same series; the
    `__meta_orbiter_*` ones are for relabelling (hostname, status, maintenance, attributes).
    """
    groups: list[dict[str, Any]] = [{"targets": [master_http], "labels": {"job": "master"}}]
    for agent in agents:
        if agent.status.value == "gone":
            continue
        labels = {
            "job": "agent",
            "agent": agent.id,
            "__meta_orbiter_hostname": agent.info.hostname,
            "__meta_orbiter_status": agent.status.value,
            "__meta_orbiter_maintenance": master_pb2.MaintenanceMode.Name(
                agent.maintenance.mode
            ).lower(),
        }
        for a in agent.info.attributes:
            labels[f"__meta_orbiter_attribute_{_label_name(a.name)}"] = a.value
        groups.append({"targets": [agent.info.http_address], "labels": labels})
    return groups


def _label_name(name: str) -> str:
    """An attribute name as a Prometheus label name: anything else than [a-zA-Z0-9_] -> _."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def maintenance_view(agent: Agent) -> dict[str, Any]:
    m = agent.maintenance
    return {
        "mode": master_pb2.MaintenanceMode.Name(m.mode).lower(),
        "by": m.by,
        "reason": m.reason,
        "since": m.since or None,
        "drain_grace": m.drain_grace,
        "principal": m.principal,
    }


def framework_view(fw: Framework) -> dict[str, Any]:
    return {
        "id": fw.id,
        "name": fw.info.name,
        "roles": list(fw.roles),
        "principal": fw.info.principal,
        "status": fw.status.value,
        "failover_timeout": fw.info.failover_timeout,
        "capabilities": [_name(messages_pb2.Capability, c) for c in fw.info.capabilities],
        "tasks": len(fw.tasks),
        "offers": len(fw.offers),
        "allocated": {
            role: {k: v for k, v in held.items() if v} for role, held in fw.allocated.items()
        },
        "suppressed_roles": sorted(fw.suppressed_roles),
        "registered_time": fw.registered_time,
    }


def _name(enum: Any, value: int) -> str:
    """An enum value's name, or its number if an agent sent one we do not know."""
    try:
        return enum.Name(value)
    except ValueError:
        return str(value)


def status_view(status: messages_pb2.TaskStatus) -> dict[str, Any]:
    """One update in a task's history."""
    return {
        "state": _name(messages_pb2.TaskState, status.state),
        "reason": _name(messages_pb2.TaskReason, status.reason) if status.reason else "",
        "message": status.message,
        "source": _name(messages_pb2.TaskSource, status.source).removeprefix("SOURCE_").lower()
        if status.source
        else "",
        "time": status.timestamp or None,
    }


def task_view(task: Task, hostnames: dict[str, str], history: bool = False) -> dict[str, Any]:
    status = task.status
    view = {
        "id": task.id,
        "name": task.info.name,
        "framework_id": task.framework_id,
        "agent_id": task.agent_id,
        "hostname": hostnames.get(task.agent_id, ""),
        "state": _name(messages_pb2.TaskState, task.state),
        "resources": resources_view(task.resources),
        "role": task.role,
        "message": status.message if status is not None else "",
        "reason": _name(messages_pb2.TaskReason, status.reason) if status is not None else "",
        "exit_code": status.exit_code
        if status is not None and status.HasField("exit_code")
        else None,
        "updated": status.timestamp if status is not None else None,
    }
    if history:
        view["history"] = [status_view(s) for s in task.history]
    return view


def tasks_view(
    core: Master,
    framework_id: str = "",
    agent_id: str = "",
    state: str = "",
    include_completed: bool = True,
    task_id: str = "",
) -> list[dict[str, Any]]:
    """Tasks matching every filter given; with `task_id`, each with its state history."""
    hostnames = {a.id: a.info.hostname for a in core.agents.values()}
    out = []
    for fw in core.frameworks.values():
        if framework_id and fw.id != framework_id:
            continue
        tasks = list(fw.tasks.values())
        if include_completed:
            tasks += list(fw.completed)
        for task in tasks:
            if agent_id and task.agent_id != agent_id:
                continue
            if task_id and task.id != task_id:
                continue
            if state and _name(messages_pb2.TaskState, task.state) != state:
                continue
            out.append(task_view(task, hostnames, history=bool(task_id)))
    return out


def master_view(core: Master) -> dict[str, Any]:
    """Which master answers: the head of /state and /summary."""
    info = core.info
    return {
        "id": info.id,
        "hostname": info.hostname,
        "grpc_address": info.grpc_address,
        "http_address": info.http_address,
        "version": info.version,
        "start_time": info.start_time,
    }


def state_view(core: Master) -> dict[str, Any]:
    return {
        "master": master_view(core),
        "agents": [agent_view(a) for a in core.agents.values()],
        "frameworks": [framework_view(f) for f in core.frameworks.values()],
        "tasks": tasks_view(core),
        "offers": len(core.offers),
    }


AGENT_STATES = ("active", "deactivated", "draining", "drained", "unreachable", "gone")
"""What the overview counts agents by: gone and unreachable first, else maintenance."""


def agent_state(agent: Agent) -> str:
    if agent.status.value in ("gone", "unreachable"):
        return agent.status.value
    return master_pb2.MaintenanceMode.Name(agent.maintenance.mode).lower()


def summary_view(core: Master) -> dict[str, Any]:
    """The overview page's numbers: resources by kind, agents, tasks and frameworks by state."""
    total: dict[str, float] = {}
    used: dict[str, float] = {}
    offered: dict[str, float] = {}
    agents = dict.fromkeys(AGENT_STATES, 0)
    links: dict[str, int] = {}
    for a in core.agents.values():
        state = agent_state(a)
        agents[state] = agents.get(state, 0) + 1
        links[a.status.value] = links.get(a.status.value, 0) + 1
        if state == "gone":
            continue
        for into, r in ((total, a.total), (used, a.used), (offered, a.offered)):
            for kind, q in r.quantities().items():
                into[kind] = into.get(kind, 0.0) + q
    resources = {
        kind: {
            "total": t,
            "used": used.get(kind, 0.0),
            "offered": offered.get(kind, 0.0),
            "idle": max(0.0, t - used.get(kind, 0.0) - offered.get(kind, 0.0)),
        }
        for kind, t in sorted(total.items())
    }
    tasks: dict[str, int] = {}
    frameworks: dict[str, int] = {}
    for fw in core.frameworks.values():
        frameworks[fw.status.value] = frameworks.get(fw.status.value, 0) + 1
        for task in [*fw.tasks.values(), *fw.completed]:
            name = _name(messages_pb2.TaskState, task.state)
            tasks[name] = tasks.get(name, 0) + 1
    return {
        "master": master_view(core),
        "resources": resources,
        "agents": agents,
        "agent_links": links,
        "tasks": dict(sorted(tasks.items())),
        "frameworks": frameworks,
        "offers": len(core.offers),
    }


def event_view(event: ClusterEvent) -> dict[str, Any]:
    return {
        "time": event.time,
        "kind": event.kind,
        "agent_id": event.agent_id,
        "message": event.message,
        "by": event.by,
        "action": event.action,
        "principal": event.principal,
    }
