"""The master's state in Mesos's operator API shapes (v1 GET_* responses, v0 /master/state).

Pure: plain dicts from the state machine's records, no I/O. The v0 shape is what
dashboards and mesos-dns-style tools read (frameworks with their tasks, slaves with a
`pid` whose host:port is the agent's HTTP address).
"""

from __future__ import annotations

from typing import Any

import orbiter
from orbiter.master.state import Agent, AgentStatus, Framework, FrameworkStatus, Master, Task
from orbiter.mesos.convert import (
    MESOS_API_VERSION,
    attribute_to_mesos,
    framework_info_to_mesos,
    reserved_resources_to_mesos,
    resource_to_mesos,
    resources_to_v0,
    status_to_mesos,
)
from orbiter.proto import master_pb2
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import Resources

Json = dict[str, Any]


def _ns(seconds: float) -> Json:
    return {"nanoseconds": int(seconds * 1e9)}


def _resources(r: Resources) -> list[Json]:
    return [resource_to_mesos(x) for x in r.to_proto()]


def _port(address: str) -> int:
    port = address.rpartition(":")[2]
    return int(port) if port.isdigit() else 0


def version_info() -> Json:
    return {
        "version": MESOS_API_VERSION,
        "build_user": "orbiter",
        "git_tag": f"orbiter-{orbiter.__version__}",
    }


def agent_to_mesos(agent: Agent) -> Json:
    info = agent.info
    # As Mesos shows an agent: dynamic reservations with who made them, volumes as disk.
    total = reserved_resources_to_mesos(
        agent.total.to_proto(),
        [r.to_proto() for r in agent.reservations],
        [v.to_proto() for v in agent.volumes.values()],
    )
    out: Json = {
        "agent_info": {
            "id": {"value": agent.id},
            "hostname": info.hostname,
            "port": _port(info.http_address),
            "resources": total,
            "attributes": [attribute_to_mesos(a) for a in info.attributes],
        },
        "active": agent.status is AgentStatus.CONNECTED,
        "deactivated": agent.mode != master_pb2.ACTIVE,
        "version": info.version,
        "pid": f"slave(1)@{info.http_address}",
        "registered_time": _ns(agent.registered_time),
        "total_resources": total,
        "allocated_resources": _resources(agent.used),
        "offered_resources": _resources(agent.offered),
    }
    if agent.mode in (master_pb2.DRAINING, master_pb2.DRAINED):
        out["drain_info"] = {
            "state": "DRAINING" if agent.mode == master_pb2.DRAINING else "DRAINED",
            "config": {"max_grace_period": _ns(agent.maintenance.drain_grace), "mark_gone": False},
        }
    return out


def framework_to_mesos(fw: Framework) -> Json:
    connected = fw.status is FrameworkStatus.CONNECTED
    return {
        "framework_info": framework_info_to_mesos(fw.info),
        "active": connected,
        "connected": connected,
        "recovered": False,
        "registered_time": _ns(fw.registered_time),
        "suppressed_roles": sorted(fw.suppressed_roles),
    }


def task_to_mesos(task: Task) -> Json:
    return {
        "name": task.info.name,
        "task_id": {"value": task.id},
        "framework_id": {"value": task.framework_id},
        "agent_id": {"value": task.agent_id},
        "state": pb.TaskState.Name(task.state),
        "resources": _resources(task.resources),
        "statuses": [status_to_mesos(s) for s in task.history],
        "role": task.role or "*",
    }


def get_agents(core: Master) -> Json:
    agents = [a for a in core.agents.values() if a.status is not AgentStatus.GONE]
    return {"agents": [agent_to_mesos(a) for a in agents], "recovered_agents": []}


def get_frameworks(core: Master) -> Json:
    live = [f for f in core.frameworks.values() if f.status is not FrameworkStatus.COMPLETED]
    done = [f for f in core.frameworks.values() if f.status is FrameworkStatus.COMPLETED]
    return {
        "frameworks": [framework_to_mesos(f) for f in live],
        "completed_frameworks": [framework_to_mesos(f) for f in done],
    }


def get_tasks(core: Master) -> Json:
    tasks, completed = [], []
    for fw in core.frameworks.values():
        tasks += [task_to_mesos(t) for t in fw.tasks.values()]
        completed += [task_to_mesos(t) for t in fw.completed]
    return {"tasks": tasks, "completed_tasks": completed}


def get_state(core: Master) -> Json:
    return {
        "get_tasks": get_tasks(core),
        "get_executors": {"executors": []},
        "get_frameworks": get_frameworks(core),
        "get_agents": get_agents(core),
    }


def get_maintenance_status(core: Master) -> Json:
    """Mesos's machines in maintenance: deactivated and draining agents are draining,
    drained ones are down (Orbiter keeps maintenance per agent, not per schedule)."""
    draining, down = [], []
    for agent in core.agents.values():
        machine = {
            "hostname": agent.info.hostname,
            "ip": agent.info.http_address.rpartition(":")[0],
        }
        if agent.mode == master_pb2.DRAINED:
            down.append(machine)
        elif agent.mode != master_pb2.ACTIVE:
            draining.append({"id": machine, "statuses": []})
    return {"status": {"draining_machines": draining, "down_machines": down}}


# ---------------------------------------------------------------------- v0 /master/state


def _task_v0(task: Task) -> Json:
    return {
        "id": task.id,
        "name": task.info.name,
        "framework_id": task.framework_id,
        "executor_id": task.info.executor.executor_id,
        "slave_id": task.agent_id,
        "state": pb.TaskState.Name(task.state),
        "resources": resources_to_v0(task.resources.to_proto()),
        "role": task.role or "*",
        "statuses": [
            {"state": pb.TaskState.Name(s.state), "timestamp": s.timestamp} for s in task.history
        ],
        "labels": [{"key": k, "value": v} for k, v in sorted(task.info.labels.items())],
    }


def _framework_v0(core: Master, fw: Framework) -> Json:
    used: dict[str, float] = {}
    for held in fw.allocated.values():
        for k, v in held.items():
            used[k] = used.get(k, 0.0) + v
    connected = fw.status is FrameworkStatus.CONNECTED
    return {
        "id": fw.id,
        "name": fw.info.name,
        "user": fw.info.user,
        "hostname": fw.info.hostname,
        "principal": fw.info.principal,
        "roles": list(fw.roles),
        "role": fw.roles[0],
        "failover_timeout": fw.info.failover_timeout,
        "checkpoint": True,
        "active": connected,
        "connected": connected,
        "registered_time": fw.registered_time,
        "unregistered_time": 0,
        "resources": {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0, **used},
        "used_resources": {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0, **used},
        "offered_resources": resources_to_v0(
            r for o in fw.offers if o in core.offers for r in core.offers[o].resources.to_proto()
        ),
        "tasks": [_task_v0(t) for t in fw.tasks.values()],
        "completed_tasks": [_task_v0(t) for t in fw.completed],
        "offers": [],
        "executors": [],
    }


def _slave_v0(agent: Agent) -> Json:
    return {
        "id": agent.id,
        "pid": f"slave(1)@{agent.info.http_address}",
        "hostname": agent.info.hostname,
        "port": _port(agent.info.http_address),
        "active": agent.status is AgentStatus.CONNECTED,
        "deactivated": agent.mode != master_pb2.ACTIVE,
        "registered_time": agent.registered_time,
        "version": agent.info.version,
        "resources": resources_to_v0(agent.total.to_proto()),
        "used_resources": resources_to_v0(agent.used.to_proto()),
        "offered_resources": resources_to_v0(agent.offered.to_proto()),
        "unreserved_resources": resources_to_v0(agent.total.unreserved().to_proto()),
        "attributes": {a.name: a.value for a in agent.info.attributes},
    }


def state_v0(core: Master, leader_http: str) -> Json:
    info = core.info
    agents = [a for a in core.agents.values() if a.status is not AgentStatus.GONE]
    live = [f for f in core.frameworks.values() if f.status is not FrameworkStatus.COMPLETED]
    done = [f for f in core.frameworks.values() if f.status is FrameworkStatus.COMPLETED]
    return {
        "version": MESOS_API_VERSION,
        "orbiter_version": info.version,
        "id": info.id,
        "pid": f"master@{info.http_address}",
        "hostname": info.hostname,
        "leader": f"master@{leader_http}",
        "leader_info": {"id": info.id, "hostname": info.hostname, "port": _port(leader_http)},
        "start_time": info.start_time,
        "activated_slaves": sum(1 for a in agents if a.status is AgentStatus.CONNECTED),
        "deactivated_slaves": sum(1 for a in agents if a.mode != master_pb2.ACTIVE),
        "unreachable_slaves": sum(1 for a in agents if a.status is AgentStatus.UNREACHABLE),
        "slaves": [_slave_v0(a) for a in agents],
        "frameworks": [_framework_v0(core, f) for f in live],
        "completed_frameworks": [_framework_v0(core, f) for f in done],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    }
