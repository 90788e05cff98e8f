"""Mesos v1 scheduler messages to Orbiter's and back: pure functions over Mesos's JSON.

Mesos's JSON is the common form of both wires: application/json bodies are it, and
application/x-protobuf bodies become it through the messages in `proto/v1.proto`
(`protobuf_call`, `protobuf_event`). Conventions: ids are {"value": ...}, enums are
names, bytes are base64, resources are {"name", "type": "SCALAR", "scalar": {"value"}}
(or "ranges": {"range": [{"begin", "end"}]}, "set": {"item": [...]}), reserved ones with
"reservations" (or the older "role" plus "reservation"), and disk holding a persistent
volume with "disk": {"persistence", "volume"}: Orbiter keeps dynamic reservations and
volumes beside the resources (Offer.reservations and .volumes, TaskInfo.volumes).

A field Orbiter does not support is refused with `Unsupported`, naming it by its path
(`accept.operations[0].launch.task_infos[1].health_check`), never dropped.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from orbiter.errors import InvalidCall
from orbiter.mesos.proto import v1_pb2
from orbiter.proto import messages_pb2 as pb
from orbiter.proto import scheduler_pb2
from orbiter.resources import Resources

Json = dict[str, Any]

MESOS_API_VERSION = "1.11.0"
"""The Mesos release whose v1 APIs these follow (what /version says to Mesos clients)."""

DEFAULT_REFUSE_SECONDS = 5.0


class Unsupported(InvalidCall):
    """A Mesos field or value Orbiter does not support; the message names it."""


# ---------------------------------------------------------------------- reading


def _obj(value: Any, path: str, allowed: Iterable[str]) -> Json:
    """`value` as a JSON object whose keys are all in `allowed`."""
    if not isinstance(value, dict):
        raise InvalidCall(f"{path} must be a JSON object")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        names = ", ".join(f"{path}.{k}" if path else k for k in unknown)
        raise Unsupported(
            f"{names}: not supported by Orbiter's Mesos API (supported here: "
            f"{', '.join(sorted(allowed)) or 'nothing'})"
        )
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidCall(f"{path} must be a JSON array")
    return value


def _str(value: Any, path: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidCall(f"{path} must be a string")
    return value


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidCall(f"{path} must be a number")
    try:
        return float(value)
    except ValueError:
        raise InvalidCall(f"{path} must be a number, got {value!r}") from None


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidCall(f"{path} must be true or false")
    return value


def _id(value: Any, path: str) -> str:
    """An id object {"value": "..."}."""
    if value is None:
        return ""
    return _str(_obj(value, path, ("value",)).get("value"), f"{path}.value")


def _bytes(value: Any, path: str) -> bytes:
    if value is None:
        return b""
    try:
        return base64.b64decode(_str(value, path), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCall(f"{path} must be base64") from None


def _enum(value: Any, path: str, allowed: Iterable[str]) -> str:
    name = _str(value, path)
    if name not in allowed:
        raise Unsupported(
            f"{path} {name!r} is not supported by Orbiter's Mesos API (use one of "
            f"{', '.join(allowed)})"
        )
    return name


def _seconds(duration: Any, path: str) -> float:
    """A DurationInfo {"nanoseconds": n} in seconds."""
    d = _obj(duration, path, ("nanoseconds",))
    return _number(d.get("nanoseconds", 0), f"{path}.nanoseconds") / 1e9


# ---------------------------------------------------------------------- resources

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MesosResource:
    """One Mesos Resource read: Orbiter's resource plus what Orbiter keeps elsewhere.
    `dynamic` is set for a DYNAMIC reservation (its principal and labels); `volume` for
    disk holding a persistent volume (persistence id, role, size, container_path)."""

    resource: pb.Resource
    dynamic: tuple[str, Labels] | None = None
    volume: pb.Volume | None = None


def _labels(value: Any, path: str) -> Labels:
    """Mesos Labels {"labels": [{"key", "value"}]}; Orbiter keeps labels as a map."""
    out: dict[str, str] = {}
    for i, label in enumerate(_list(_obj(value, path, ("labels",)).get("labels"), path)):
        where = f"{path}.labels[{i}]"
        label = _obj(label, where, ("key", "value"))
        key = _str(label.get("key"), f"{where}.key")
        if key in out:
            raise Unsupported(
                f"{where}: key {key!r} is given twice; Orbiter keeps labels as a map (one "
                "value per key)"
            )
        out[key] = _str(label.get("value"), f"{where}.value")
    return tuple(sorted(out.items()))


def _labels_to_mesos(labels: Iterable[tuple[str, str]]) -> Json:
    return {"labels": [{"key": k, "value": v} for k, v in sorted(labels)]}


def _reservation(res: Any, path: str) -> tuple[str, str, str, Labels]:
    """A ReservationInfo as (type, role, principal, labels)."""
    res = _obj(res, path, ("type", "role", "principal", "labels"))
    kind = _enum(res.get("type", "STATIC"), f"{path}.type", ("STATIC", "DYNAMIC"))
    principal = _str(res.get("principal"), f"{path}.principal")
    labels = _labels(res["labels"], f"{path}.labels") if "labels" in res else ()
    if kind == "STATIC" and (principal or labels):
        raise InvalidCall(
            f"{path}: a STATIC reservation has no principal or labels (those are a DYNAMIC "
            "reservation's)"
        )
    return kind, _str(res.get("role"), f"{path}.role"), principal, labels


def _disk(d: Any, path: str, out: pb.Resource) -> pb.Volume | None:
    """DiskInfo: nothing (plain disk) or a persistent volume; other sources are refused."""
    d = _obj(d, path, ("persistence", "volume", "source"))
    if "source" in d:
        raise Unsupported(
            f"{path}.source: disk from a PATH, MOUNT, BLOCK or RAW source is not supported by "
            "Orbiter (its agents offer one root disk)"
        )
    if out.name != "disk" or out.type != pb.Resource.SCALAR:
        raise InvalidCall(f"{path}: only a SCALAR resource named disk has disk info")
    if "persistence" not in d:
        if "volume" in d:
            raise Unsupported(
                f"{path}.volume: a volume without persistence is not supported by Orbiter "
                "(only persistent volumes: give disk.persistence.id)"
            )
        return None
    p = _obj(d["persistence"], f"{path}.persistence", ("id", "principal"))
    pid = _str(p.get("id"), f"{path}.persistence.id")
    if not pid:
        raise InvalidCall(f"{path}.persistence.id is empty: name the persistent volume")
    if "volume" not in d:
        raise InvalidCall(f"{path}: a persistent volume needs disk.volume (its container_path)")
    v = _obj(d["volume"], f"{path}.volume", ("container_path", "mode", "host_path"))
    if "host_path" in v:
        raise Unsupported(
            f"{path}.volume.host_path: a persistent volume's data lives in the agent's work "
            "dir; Orbiter does not take a host path"
        )
    _enum(v.get("mode", "RW"), f"{path}.volume.mode", ("RW",))
    if not out.role:
        raise InvalidCall(
            f"{path}: persistent volume {pid!r} is on unreserved disk; a volume lives on disk "
            "reserved for a role (give its reservation)"
        )
    return pb.Volume(
        persistence_id=pid,
        role=out.role,
        size=out.scalar,
        container_path=_str(v.get("container_path"), f"{path}.volume.container_path"),
        principal=_str(p.get("principal"), f"{path}.persistence.principal"),
    )


def read_resource(
    r: Any, path: str, allocations: list[tuple[str, str]] | None = None
) -> MesosResource:
    """A Mesos Resource in either reservation format: Mesos 1.4+'s `reservations` (a stack
    of one: Orbiter does not refine reservations) or the older `role` plus `reservation`
    for a dynamic one. An `allocation_info` role is added to `allocations` (with where it
    was) for the caller to hold against the offers' role."""
    r = _obj(
        r,
        path,
        (
            "name",
            "type",
            "scalar",
            "ranges",
            "set",
            "role",
            "reservation",
            "reservations",
            "allocation_info",
            "disk",
            "shared",
        ),
    )
    out = pb.Resource(name=_str(r.get("name"), f"{path}.name"))
    kind = _enum(r.get("type", "SCALAR"), f"{path}.type", ("SCALAR", "RANGES", "SET"))
    if kind == "SCALAR":
        out.type = pb.Resource.SCALAR
        scalar = _obj(r.get("scalar", {}), f"{path}.scalar", ("value",))
        out.scalar = _number(scalar.get("value", 0), f"{path}.scalar.value")
    elif kind == "RANGES":
        out.type = pb.Resource.RANGES
        ranges = _obj(r.get("ranges", {}), f"{path}.ranges", ("range",))
        for i, rng in enumerate(_list(ranges.get("range"), f"{path}.ranges.range")):
            where = f"{path}.ranges.range[{i}]"
            rng = _obj(rng, where, ("begin", "end"))
            begin = _number(rng.get("begin", 0), f"{where}.begin")
            end = _number(rng.get("end", 0), f"{where}.end")
            if begin != int(begin) or end != int(end) or begin < 0 or end < 0:
                raise InvalidCall(f"{where}: begin and end must be whole numbers >= 0")
            out.ranges.add(begin=int(begin), end=int(end))
    else:
        out.type = pb.Resource.SET
        items = _obj(r.get("set", {}), f"{path}.set", ("item",))
        out.items.extend(_str(x, f"{path}.set.item") for x in _list(items.get("item"), path))
    if "shared" in r:
        raise Unsupported(
            f"{path}.shared: shared resources (shared persistent volumes) are not supported by "
            "Orbiter; one task at a time uses a volume"
        )
    role = _str(r.get("role"), f"{path}.role")
    role = "" if role == "*" else role
    dynamic: tuple[str, Labels] | None = None
    if "reservation" in r:  # pre-1.4: `role` is the reserved role
        where = f"{path}.reservation"
        given = _obj(r["reservation"], where, ("principal", "labels"))
        _, _, principal, labels = _reservation({"type": "DYNAMIC", **given}, where)
        if not role:
            raise InvalidCall(f"{path}.reservation: a dynamic reservation needs the role it is for")
        dynamic = (principal, labels)
    reservations = _list(r.get("reservations"), f"{path}.reservations")
    if len(reservations) > 1:
        raise Unsupported(
            f"{path}.reservations: refined (hierarchical) reservations are not supported by "
            "Orbiter; give at most one"
        )
    for i, res in enumerate(reservations):
        where = f"{path}.reservations[{i}]"
        kind, reserved, principal, labels = _reservation(res, where)
        if role and role != reserved:
            raise InvalidCall(f"{path}: role {role!r} and {where}.role {reserved!r} differ")
        if not reserved or reserved == "*":
            raise InvalidCall(f"{where}.role is empty: name the role the resource is reserved for")
        stacked = (principal, labels) if kind == "DYNAMIC" else None
        if "reservation" in r and stacked != dynamic:
            raise InvalidCall(f"{path}: reservation and {where} describe different reservations")
        role, dynamic = reserved, stacked
    out.role = role
    if "allocation_info" in r:
        where = f"{path}.allocation_info"
        allocated = _str(_obj(r["allocation_info"], where, ("role",)).get("role"), where)
        if allocations is not None:
            allocations.append((allocated, where))
    volume = _disk(r["disk"], f"{path}.disk", out) if "disk" in r else None
    return MesosResource(out, dynamic, volume)


def resource_from_mesos(
    r: Any, path: str, allocations: list[tuple[str, str]] | None = None
) -> pb.Resource:
    """A Mesos Resource as Orbiter's, where a persistent volume has no place (an executor's
    resources, a request): a reservation (static or dynamic) becomes the role."""
    read = read_resource(r, path, allocations)
    if read.volume is not None:
        raise InvalidCall(
            f"{path}.disk.persistence: a persistent volume goes in a task's resources, a CREATE "
            "or a DESTROY, not here"
        )
    return read.resource


def resources_from_mesos(
    rs: Any, path: str, allocations: list[tuple[str, str]] | None = None
) -> list[pb.Resource]:
    return [
        resource_from_mesos(r, f"{path}[{i}]", allocations) for i, r in enumerate(_list(rs, path))
    ]


def resource_to_mesos(
    r: pb.Resource,
    allocation_role: str | None = None,
    reservation: pb.Reservation | None = None,
    volume: pb.Volume | None = None,
) -> Json:
    """Orbiter's Resource in Mesos's JSON, both reservation formats at once (a framework
    reads whichever it knows): a role alone is a static reservation, with `reservation`
    a dynamic one; `volume` makes it the disk holding that persistent volume."""
    out: Json = {"name": r.name}
    if r.type == pb.Resource.SCALAR:
        out["type"] = "SCALAR"
        out["scalar"] = {"value": r.scalar}
    elif r.type == pb.Resource.RANGES:
        out["type"] = "RANGES"
        out["ranges"] = {"range": [{"begin": x.begin, "end": x.end} for x in r.ranges]}
    else:
        out["type"] = "SET"
        out["set"] = {"item": list(r.items)}
    out["role"] = r.role or "*"  # deprecated in Mesos, still read by older frameworks
    if r.role and reservation is None:
        out["reservations"] = [{"type": "STATIC", "role": r.role}]
    elif r.role and reservation is not None:
        info: Json = {}
        if reservation.principal:
            info["principal"] = reservation.principal
        if reservation.labels:
            info["labels"] = _labels_to_mesos(reservation.labels.items())
        out["reservation"] = info
        out["reservations"] = [{"type": "DYNAMIC", "role": r.role, **info}]
    if volume is not None:
        persistence: Json = {"id": volume.persistence_id}
        if volume.principal:
            persistence["principal"] = volume.principal
        out["disk"] = {
            "persistence": persistence,
            "volume": {"container_path": volume.container_path, "mode": "RW"},
        }
    if allocation_role is not None:
        out["allocation_info"] = {"role": allocation_role or "*"}
    return out


def offer_resources_to_mesos(o: pb.Offer) -> list[Json]:
    """An offer's resources as Mesos shows them (see `reserved_resources_to_mesos`)."""
    return reserved_resources_to_mesos(o.resources, o.reservations, o.volumes, o.role)


def reserved_resources_to_mesos(
    resources: Iterable[pb.Resource],
    reservations: Sequence[pb.Reservation],
    volumes: Iterable[pb.Volume],
    allocation_role: str | None = None,
) -> list[Json]:
    """Resources as Mesos shows them: reserved ones split by the dynamic reservation they
    belong to (the rest of a role's is static), then each volume as disk with its
    persistence and volume info. Orbiter does not record which reservation a task or
    volume took its share from, so `resources` are attributed to dynamic reservations
    first, in the order they were made; a volume to a reservation of its creator's
    principal first."""
    budgets = [Resources.from_proto(res.resources) for res in reservations]
    held: list[tuple[pb.Volume, pb.Reservation | None]] = []
    for v in volumes:
        disk = Resources({("disk", v.role): v.size})
        order = sorted(range(len(budgets)), key=lambda i: reservations[i].principal != v.principal)
        holder = next((i for i in order if budgets[i].contains(disk)), None)
        if holder is not None:
            budgets[holder] = budgets[holder] - disk
        held.append((v, None if holder is None else reservations[holder]))
    out: list[Json] = []
    for r in resources:
        if not r.role or not budgets:
            out.append(resource_to_mesos(r, allocation_role))
            continue
        left = Resources.from_proto([r])
        for i, budget in enumerate(budgets):
            part = budget.overlap(left)
            if part:
                budgets[i] = budget - part
                left = left - part
                out.extend(
                    resource_to_mesos(p, allocation_role, reservations[i]) for p in part.to_proto()
                )
        out.extend(resource_to_mesos(p, allocation_role) for p in left.to_proto())
    for v, holder in held:
        disk = pb.Resource(name="disk", type=pb.Resource.SCALAR, scalar=v.size, role=v.role)
        out.append(resource_to_mesos(disk, allocation_role, holder, v))
    return out


def resources_to_v0(resources: Iterable[pb.Resource]) -> Json:
    """Mesos's v0 /state shape: {"cpus": 1.0, "ports": "[31000-32000]", ...}, roles summed."""
    out: Json = {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}
    ranges: dict[str, list[str]] = {}
    for r in resources:
        if r.type == pb.Resource.SCALAR:
            out[r.name] = out.get(r.name, 0.0) + r.scalar
        elif r.type == pb.Resource.RANGES:
            ranges.setdefault(r.name, []).extend(f"{x.begin}-{x.end}" for x in r.ranges)
        else:
            out[r.name] = "{" + ",".join(r.items) + "}"
    for name, parts in ranges.items():
        out[name] = "[" + ", ".join(parts) + "]"
    return out


def attribute_to_mesos(a: pb.Attribute) -> Json:
    """Numbers are SCALAR, everything else TEXT (as a Mesos agent parses `--attributes`)."""
    try:
        value = float(a.value)
    except ValueError:
        return {"name": a.name, "type": "TEXT", "text": {"value": a.value}}
    return {"name": a.name, "type": "SCALAR", "scalar": {"value": value}}


# ---------------------------------------------------------------------- frameworks

CAPABILITIES = {
    "MULTI_ROLE": pb.MULTI_ROLE,
    "PARTITION_AWARE": pb.PARTITION_AWARE,
    # Orbiter offers gpus to every framework: the capability asks for what is given anyway.
    "GPU_RESOURCES": None,
}


def framework_info_from_mesos(
    info: Any, path: str = "subscribe.framework_info"
) -> pb.FrameworkInfo:
    """Mesos FrameworkInfo as Orbiter's. `checkpoint` is accepted: Orbiter's agents always
    checkpoint. A single (deprecated) `role` is the framework's one role."""
    f = _obj(
        info,
        path,
        (
            "user",
            "name",
            "id",
            "failover_timeout",
            "checkpoint",
            "role",
            "roles",
            "hostname",
            "principal",
            "capabilities",
        ),
    )
    out = pb.FrameworkInfo(
        id=_id(f.get("id"), f"{path}.id"),
        name=_str(f.get("name"), f"{path}.name"),
        user=_str(f.get("user"), f"{path}.user"),
        hostname=_str(f.get("hostname"), f"{path}.hostname"),
        principal=_str(f.get("principal"), f"{path}.principal"),
    )
    if "failover_timeout" in f:
        out.failover_timeout = _number(f["failover_timeout"], f"{path}.failover_timeout")
    if "checkpoint" in f:
        _bool(f["checkpoint"], f"{path}.checkpoint")
    roles = [_str(r, f"{path}.roles") for r in _list(f.get("roles"), f"{path}.roles")]
    role = _str(f.get("role"), f"{path}.role")
    if roles and role:
        raise InvalidCall(f"{path}: give roles or (deprecated) role, not both")
    if role and role != "*":
        roles = [role]
    out.roles.extend(roles)
    for i, cap in enumerate(_list(f.get("capabilities"), f"{path}.capabilities")):
        where = f"{path}.capabilities[{i}]"
        kind = _enum(_obj(cap, where, ("type",)).get("type"), f"{where}.type", CAPABILITIES)
        value = CAPABILITIES[kind]
        if value is not None and value not in out.capabilities:
            out.capabilities.append(value)
    return out


def framework_info_to_mesos(info: pb.FrameworkInfo) -> Json:
    out: Json = {
        "user": info.user,
        "name": info.name,
        "id": {"value": info.id},
        "failover_timeout": info.failover_timeout,
        "checkpoint": True,
        "roles": list(info.roles) or ["*"],
        "capabilities": [{"type": pb.Capability.Name(c)} for c in info.capabilities],
    }
    if info.hostname:
        out["hostname"] = info.hostname
    if info.principal:
        out["principal"] = info.principal
    return out


# ---------------------------------------------------------------------- tasks


def _command(c: Any, path: str) -> pb.CommandInfo:
    c = _obj(c, path, ("value", "shell", "arguments", "environment", "user", "uris"))
    if _list(c.get("uris"), f"{path}.uris"):
        raise Unsupported(f"{path}.uris: fetching URIs is not supported by Orbiter")
    out = pb.CommandInfo(
        value=_str(c.get("value"), f"{path}.value"),
        shell=_bool(c.get("shell", True), f"{path}.shell"),
        user=_str(c.get("user"), f"{path}.user"),
    )
    out.arguments.extend(_str(a, f"{path}.arguments") for a in _list(c.get("arguments"), path))
    env = _obj(c.get("environment", {}), f"{path}.environment", ("variables",))
    for i, v in enumerate(_list(env.get("variables"), f"{path}.environment.variables")):
        where = f"{path}.environment.variables[{i}]"
        v = _obj(v, where, ("name", "value", "type"))
        _enum(v.get("type", "VALUE"), f"{where}.type", ("VALUE",))
        out.environment[_str(v.get("name"), f"{where}.name")] = _str(v.get("value"), where)
    return out


def _container(c: Any, path: str) -> pb.ContainerInfo:
    c = _obj(c, path, ("type", "docker"))
    kind = _enum(c.get("type", "MESOS"), f"{path}.type", ("MESOS", "DOCKER"))
    if kind == "MESOS":
        if "docker" in c:
            raise InvalidCall(f"{path}.docker is for type DOCKER")
        return pb.ContainerInfo(type=pb.ContainerInfo.MESOS)
    where = f"{path}.docker"
    d = _obj(c.get("docker"), where, ("image", "network", "port_mappings", "force_pull_image"))
    if "network" in d:
        _enum(
            d["network"],
            f"{where}.network",
            ("BRIDGE",) if d.get("port_mappings") else ("HOST", "BRIDGE"),
        )
    out = pb.ContainerInfo(type=pb.ContainerInfo.DOCKER)
    out.docker.image = _str(d.get("image"), f"{where}.image")
    out.docker.force_pull_image = _bool(d.get("force_pull_image", False), where)
    for i, m in enumerate(_list(d.get("port_mappings"), f"{where}.port_mappings")):
        m = _obj(m, f"{where}.port_mappings[{i}]", ("host_port", "container_port", "protocol"))
        out.docker.port_mappings.add(
            host_port=int(_number(m.get("host_port", 0), where)),
            container_port=int(_number(m.get("container_port", 0), where)),
            protocol=_str(m.get("protocol"), where),
        )
    return out


def _executor(e: Any, path: str, framework_id: str, allocations: list) -> pb.ExecutorInfo:
    e = _obj(e, path, ("executor_id", "name", "command", "resources", "framework_id", "type"))
    _enum(e.get("type", "CUSTOM"), f"{path}.type", ("CUSTOM",))
    given = _id(e.get("framework_id"), f"{path}.framework_id")
    if given and framework_id and given != framework_id:
        raise InvalidCall(f"{path}.framework_id {given} is not the calling framework's")
    out = pb.ExecutorInfo(
        executor_id=_id(e.get("executor_id"), f"{path}.executor_id"),
        name=_str(e.get("name"), f"{path}.name"),
    )
    if "command" in e:
        out.command.CopyFrom(_command(e["command"], f"{path}.command"))
    out.resources.extend(resources_from_mesos(e.get("resources"), f"{path}.resources", allocations))
    return out


def task_info_from_mesos(
    t: Any, path: str, framework_id: str = "", allocations: list | None = None
) -> pb.TaskInfo:
    """A Mesos TaskInfo as Orbiter's: a `command` task runs in the agent's built-in
    command executor, an `executor` task in the framework's executor. A persistent volume
    among its resources becomes an entry of TaskInfo.volumes."""
    t = _obj(
        t,
        path,
        (
            "name",
            "task_id",
            "agent_id",
            "resources",
            "command",
            "container",
            "executor",
            "kill_policy",
            "labels",
        ),
    )
    out = pb.TaskInfo(
        name=_str(t.get("name"), f"{path}.name"),
        task_id=_id(t.get("task_id"), f"{path}.task_id"),
        agent_id=_id(t.get("agent_id"), f"{path}.agent_id"),
    )
    allocations = [] if allocations is None else allocations
    for i, r in enumerate(_list(t.get("resources"), f"{path}.resources")):
        read = read_resource(r, f"{path}.resources[{i}]", allocations)
        if read.volume is None:
            out.resources.append(read.resource)
        else:  # Orbiter names the volumes a task uses apart from the resources it uses
            out.volumes.append(read.volume)
    if "command" in t:
        out.command.CopyFrom(_command(t["command"], f"{path}.command"))
    if "container" in t:
        out.container.CopyFrom(_container(t["container"], f"{path}.container"))
    if "executor" in t:
        out.executor.CopyFrom(
            _executor(t["executor"], f"{path}.executor", framework_id, allocations)
        )
    if "kill_policy" in t:
        policy = _obj(t["kill_policy"], f"{path}.kill_policy", ("grace_period",))
        if "grace_period" in policy:
            out.kill_grace_period = _seconds(policy["grace_period"], f"{path}.kill_policy")
    labels = _obj(t.get("labels", {}), f"{path}.labels", ("labels",))
    for i, label in enumerate(_list(labels.get("labels"), f"{path}.labels.labels")):
        label = _obj(label, f"{path}.labels.labels[{i}]", ("key", "value"))
        out.labels[_str(label.get("key"), path)] = _str(label.get("value"), path)
    return out


# ---------------------------------------------------------------------- calls

OPERATION_TYPES = (
    "LAUNCH",
    "LAUNCH_GROUP",
    "RESERVE",
    "UNRESERVE",
    "CREATE",
    "DESTROY",
    "GROW_VOLUME",
    "SHRINK_VOLUME",
    "CREATE_DISK",
    "DESTROY_DISK",
)


def operations_from_mesos(
    ops: Any,
    path: str,
    framework_id: str = "",
    allocations: list | None = None,
    principals: list[tuple[str, str]] | None = None,
) -> list[scheduler_pb2.Operation]:
    """LAUNCH, RESERVE, UNRESERVE, CREATE and DESTROY as Orbiter's operations; the other
    Mesos operation types are refused by name. A RESERVE whose resources carry different
    labels becomes one Orbiter RESERVE per run of equal labels (Orbiter labels a whole
    reservation). Principals named in reservations and volumes are added to `principals`
    (with where) for the caller to hold against the framework's."""
    allocations = [] if allocations is None else allocations
    principals = [] if principals is None else principals
    out: list[scheduler_pb2.Operation] = []
    Op = scheduler_pb2.Operation
    for i, op in enumerate(_list(ops, path)):
        where = f"{path}[{i}]"
        if not isinstance(op, dict):
            raise InvalidCall(f"{where} must be a JSON object")
        kind = _str(op.get("type"), f"{where}.type")
        if kind in OPERATION_TYPES and kind not in _OPERATION_BODY:
            raise Unsupported(
                f"{where}.type {kind}: Orbiter's Mesos API supports the operations "
                f"{', '.join(_OPERATION_BODY)}"
            )
        _enum(kind, f"{where}.type", tuple(_OPERATION_BODY))
        key, field_name = _OPERATION_BODY[kind]
        body = _obj(_obj(op, where, ("type", key)).get(key, {}), f"{where}.{key}", (field_name,))
        items = _list(body.get(field_name), f"{where}.{key}.{field_name}")
        here = f"{where}.{key}.{field_name}"
        if kind == "LAUNCH":
            converted = Op(type=Op.LAUNCH)
            converted.launch.task_infos.extend(
                task_info_from_mesos(t, f"{here}[{j}]", framework_id, allocations)
                for j, t in enumerate(items)
            )
            out.append(converted)
            continue
        if not items:
            raise InvalidCall(f"{here} is empty: give the resources to {kind.lower()}")
        read = [read_resource(r, f"{here}[{j}]", allocations) for j, r in enumerate(items)]
        for j, res in enumerate(read):
            at = f"{here}[{j}]"
            if kind in ("RESERVE", "UNRESERVE"):
                if res.volume is not None:
                    raise InvalidCall(
                        f"{at}.disk.persistence: {kind} takes resources, not persistent volumes"
                        + (" (DESTROY the volume first)" if kind == "UNRESERVE" else "")
                    )
                if res.dynamic is None:
                    raise InvalidCall(
                        f"{at}: {kind} needs each resource with a DYNAMIC reservation for "
                        "the offer's role (reservations: [{type: DYNAMIC, role, principal}])"
                    )
            elif res.volume is None:
                raise InvalidCall(
                    f"{at}: {kind} needs disk with disk.persistence (id) and disk.volume "
                    "(container_path)"
                )
            if kind == "RESERVE" and res.dynamic and res.dynamic[0]:
                principals.append((res.dynamic[0], f"{at}.reservations[0].principal"))
            if kind == "CREATE" and res.volume and res.volume.principal:
                principals.append((res.volume.principal, f"{at}.disk.persistence.principal"))
        if kind == "RESERVE":
            last: Labels | None = None
            for res in read:
                assert res.dynamic is not None
                labels = res.dynamic[1]
                if labels != last:
                    out.append(Op(type=Op.RESERVE))
                    out[-1].reserve.labels.update(dict(labels))
                    last = labels
                out[-1].reserve.resources.append(res.resource)
        elif kind == "UNRESERVE":
            out.append(Op(type=Op.UNRESERVE))
            out[-1].unreserve.resources.extend(res.resource for res in read)
        elif kind == "CREATE":
            out.append(Op(type=Op.CREATE))
            for res in read:
                assert res.volume is not None
                volume = pb.Volume()
                volume.CopyFrom(res.volume)
                volume.principal = ""  # the master records the framework's principal
                out[-1].create.volumes.append(volume)
        else:
            out.append(Op(type=Op.DESTROY))
            out[-1].destroy.volumes.extend(
                pb.Volume(persistence_id=res.volume.persistence_id)
                for res in read
                if res.volume is not None
            )
    return out


_OPERATION_BODY = {
    "LAUNCH": ("launch", "task_infos"),
    "RESERVE": ("reserve", "resources"),
    "UNRESERVE": ("unreserve", "resources"),
    "CREATE": ("create", "volumes"),
    "DESTROY": ("destroy", "volumes"),
}
"""The Mesos operations Orbiter maps: their body's key and its list's key."""


def filters_from_mesos(f: Any, path: str) -> scheduler_pb2.Filters:
    if f is None:
        return scheduler_pb2.Filters()
    f = _obj(f, path, ("refuse_seconds",))
    out = scheduler_pb2.Filters()
    if "refuse_seconds" in f:
        out.refuse_seconds = _number(f["refuse_seconds"], f"{path}.refuse_seconds")
    return out


def _roles(body: Any, path: str) -> list[str]:
    if body is None:
        return []
    b = _obj(body, path, ("roles",))
    return [_str(r, f"{path}.roles") for r in _list(b.get("roles"), f"{path}.roles")]


CALL_TYPES = (
    "SUBSCRIBE",
    "TEARDOWN",
    "ACCEPT",
    "DECLINE",
    "REVIVE",
    "SUPPRESS",
    "KILL",
    "SHUTDOWN",
    "ACKNOWLEDGE",
    "RECONCILE",
    "MESSAGE",
    "REQUEST",
    "ACCEPT_INVERSE_OFFERS",
    "DECLINE_INVERSE_OFFERS",
)
"""Call types this API answers; SHUTDOWN is refused there (Orbiter shuts an executor
down when it has no tasks left), the inverse offer calls are no-ops (none are sent)."""

_BODY = {
    "SUBSCRIBE": "subscribe",
    "ACCEPT": "accept",
    "DECLINE": "decline",
    "REVIVE": "revive",
    "SUPPRESS": "suppress",
    "KILL": "kill",
    "SHUTDOWN": "shutdown",
    "ACKNOWLEDGE": "acknowledge",
    "RECONCILE": "reconcile",
    "MESSAGE": "message",
    "REQUEST": "request",
    "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
    "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
    "TEARDOWN": "",
}


@dataclass(frozen=True)
class Call:
    """A Mesos call in Orbiter's terms: what the master's state machine takes."""

    type: str
    framework_id: str
    info: pb.FrameworkInfo | None = None  # SUBSCRIBE
    suppressed_roles: list[str] = field(default_factory=list)
    offer_ids: list[str] = field(default_factory=list)
    operations: list[scheduler_pb2.Operation] = field(default_factory=list)
    filters: scheduler_pb2.Filters = field(default_factory=scheduler_pb2.Filters)
    roles: list[str] = field(default_factory=list)
    task_id: str = ""
    agent_id: str = ""
    executor_id: str = ""
    grace_period: float | None = None
    acknowledgements: list[scheduler_pb2.Acknowledgement] = field(default_factory=list)
    reconcile: list[scheduler_pb2.ReconcileRequest.Task] = field(default_factory=list)
    data: bytes = b""
    # ACCEPT: each resource's allocation_info role and where it was, to be the offers' role.
    allocations: list[tuple[str, str]] = field(default_factory=list)
    # ACCEPT: principals RESERVE and CREATE name, and where: to be the framework's.
    principals: list[tuple[str, str]] = field(default_factory=list)


def call_from_mesos(body: Any) -> Call:
    """Check and convert a Mesos scheduler Call (JSON form)."""
    if not isinstance(body, dict):
        raise InvalidCall("the call must be a JSON object")
    kind = _str(body.get("type"), "type")
    if kind not in CALL_TYPES:
        raise InvalidCall(
            f"call type {kind or '(none)'!r} is not one Orbiter's Mesos API answers; use one "
            f"of {', '.join(CALL_TYPES)}"
        )
    key = _BODY[kind]
    b = _obj(body, "", ("type", "framework_id", *([key] if key else [])))
    framework_id = _id(b.get("framework_id"), "framework_id")
    inner: Any = b.get(key) if key else None
    if kind == "SUBSCRIBE":
        s = _obj(inner, "subscribe", ("framework_info", "suppressed_roles"))
        info = framework_info_from_mesos(s.get("framework_info"))
        if framework_id and info.id and framework_id != info.id:
            raise InvalidCall(
                f"framework_id {framework_id} and subscribe.framework_info.id {info.id} differ"
            )
        info.id = info.id or framework_id
        suppressed = [
            _str(r, "subscribe.suppressed_roles")
            for r in _list(s.get("suppressed_roles"), "subscribe.suppressed_roles")
        ]
        return Call(kind, info.id, info=info, suppressed_roles=suppressed)
    if not framework_id:
        raise InvalidCall(f"a {kind} call needs framework_id: the id SUBSCRIBED gave")
    if kind == "TEARDOWN":
        return Call(kind, framework_id)
    if kind in ("ACCEPT", "DECLINE"):
        allowed = (
            ("offer_ids", "operations", "filters") if kind == "ACCEPT" else ("offer_ids", "filters")
        )
        a = _obj(inner, key, allowed)
        offer_ids = [
            _id(o, f"{key}.offer_ids[{i}]")
            for i, o in enumerate(_list(a.get("offer_ids"), f"{key}.offer_ids"))
        ]
        allocations: list[tuple[str, str]] = []
        principals: list[tuple[str, str]] = []
        return Call(
            kind,
            framework_id,
            offer_ids=offer_ids,
            operations=operations_from_mesos(
                a.get("operations"), f"{key}.operations", framework_id, allocations, principals
            ),
            filters=filters_from_mesos(a.get("filters"), f"{key}.filters"),
            allocations=allocations,
            principals=principals,
        )
    if kind in ("REVIVE", "SUPPRESS"):
        return Call(kind, framework_id, roles=_roles(inner, key))
    if kind == "KILL":
        k = _obj(inner, "kill", ("task_id", "agent_id", "kill_policy"))
        grace = None
        if "kill_policy" in k:
            policy = _obj(k["kill_policy"], "kill.kill_policy", ("grace_period",))
            if "grace_period" in policy:
                grace = _seconds(policy["grace_period"], "kill.kill_policy.grace_period")
        return Call(
            kind,
            framework_id,
            task_id=_id(k.get("task_id"), "kill.task_id"),
            agent_id=_id(k.get("agent_id"), "kill.agent_id"),
            grace_period=grace,
        )
    if kind == "SHUTDOWN":
        raise Unsupported(
            "SHUTDOWN: Orbiter does not shut executors down on a framework's call; an "
            "executor is shut down when it has no tasks left (kill its tasks)"
        )
    if kind == "ACKNOWLEDGE":
        a = _obj(inner, "acknowledge", ("agent_id", "task_id", "uuid"))
        ack = scheduler_pb2.Acknowledgement(
            agent_id=_id(a.get("agent_id"), "acknowledge.agent_id"),
            task_id=_id(a.get("task_id"), "acknowledge.task_id"),
            uuid=_bytes(a.get("uuid"), "acknowledge.uuid"),
        )
        return Call(kind, framework_id, acknowledgements=[ack])
    if kind == "RECONCILE":
        r = _obj(inner if inner is not None else {}, "reconcile", ("tasks",))
        tasks = []
        for i, t in enumerate(_list(r.get("tasks"), "reconcile.tasks")):
            t = _obj(t, f"reconcile.tasks[{i}]", ("task_id", "agent_id"))
            tasks.append(
                scheduler_pb2.ReconcileRequest.Task(
                    task_id=_id(t.get("task_id"), f"reconcile.tasks[{i}].task_id"),
                    agent_id=_id(t.get("agent_id"), f"reconcile.tasks[{i}].agent_id"),
                )
            )
        return Call(kind, framework_id, reconcile=tasks)
    if kind == "MESSAGE":
        m = _obj(inner, "message", ("agent_id", "executor_id", "data"))
        return Call(
            kind,
            framework_id,
            agent_id=_id(m.get("agent_id"), "message.agent_id"),
            executor_id=_id(m.get("executor_id"), "message.executor_id"),
            data=_bytes(m.get("data"), "message.data"),
        )
    if kind == "REQUEST":
        # As in Mesos, whose allocator takes no notice of requests: accepted, no effect.
        r = _obj(inner if inner is not None else {}, "request", ("requests",))
        for i, req in enumerate(_list(r.get("requests"), "request.requests")):
            req = _obj(req, f"request.requests[{i}]", ("agent_id", "resources"))
            resources_from_mesos(req.get("resources"), f"request.requests[{i}].resources")
        return Call(kind, framework_id)
    # ACCEPT_INVERSE_OFFERS / DECLINE_INVERSE_OFFERS: Orbiter sends no inverse offers, so
    # every id named is unknown; Mesos ignores unknown inverse offers too.
    _obj(inner if inner is not None else {}, key, ("inverse_offer_ids", "filters"))
    return Call(kind, framework_id)


# ---------------------------------------------------------------------- events

_TASK_STATES = frozenset(v1_pb2.TaskState.keys())
_REASONS = frozenset(v1_pb2.TaskStatus.Reason.keys())


def status_to_mesos(s: pb.TaskStatus) -> Json:
    """A TaskStatus in Mesos's JSON. Orbiter reasons Mesos has no name for (COMMAND_EXITED,
    TASK_KILLED, ...) are left out; the message says what happened."""
    out: Json = {
        "task_id": {"value": s.task_id},
        "state": pb.TaskState.Name(s.state) if s.state in pb.TaskState.values() else "",
        "source": pb.TaskSource.Name(s.source) if s.source else "SOURCE_MASTER",
        "timestamp": s.timestamp,
    }
    if out["state"] not in _TASK_STATES:
        out["state"] = "TASK_UNKNOWN"
    if s.message:
        out["message"] = s.message
    if s.agent_id:
        out["agent_id"] = {"value": s.agent_id}
    if s.reason:
        reason = pb.TaskReason.Name(s.reason) if s.reason in pb.TaskReason.values() else ""
        if reason in _REASONS:
            out["reason"] = reason
    if s.uuid:
        out["uuid"] = base64.b64encode(s.uuid).decode()
    if s.HasField("healthy"):
        out["healthy"] = s.healthy
    return out


def offer_to_mesos(o: pb.Offer) -> Json:
    return {
        "id": {"value": o.id},
        "framework_id": {"value": o.framework_id},
        "agent_id": {"value": o.agent_id},
        "hostname": o.hostname,
        "resources": offer_resources_to_mesos(o),
        "attributes": [attribute_to_mesos(a) for a in o.attributes],
        "allocation_info": {"role": o.role or "*"},
    }


def master_info_to_mesos(m: pb.MasterInfo) -> Json:
    host, _, port = m.http_address.rpartition(":")
    return {
        "id": m.id,
        "ip": 0,
        "port": int(port) if port.isdigit() else 0,
        "hostname": m.hostname or host,
        "version": MESOS_API_VERSION,
        "address": {"hostname": host, "port": int(port) if port.isdigit() else 0},
    }


def events_to_mesos(e: scheduler_pb2.Event) -> list[Json]:
    """One Orbiter event as Mesos events: a batched UPDATE is one Mesos UPDATE per status."""
    E = scheduler_pb2.Event
    if e.type == E.SUBSCRIBED:
        s = e.subscribed
        return [
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": {"value": s.framework_id},
                    "heartbeat_interval_seconds": s.heartbeat_interval_seconds,
                    "master_info": master_info_to_mesos(s.master_info),
                },
            }
        ]
    if e.type == E.OFFERS:
        return [
            {"type": "OFFERS", "offers": {"offers": [offer_to_mesos(o) for o in e.offers.offers]}}
        ]
    if e.type == E.RESCIND:
        return [{"type": "RESCIND", "rescind": {"offer_id": {"value": e.rescind.offer_id}}}]
    if e.type == E.UPDATE:
        return [
            {"type": "UPDATE", "update": {"status": status_to_mesos(s)}} for s in e.update.statuses
        ]
    if e.type == E.FAILURE:
        f = e.failure
        failure: Json = {"agent_id": {"value": f.agent_id}}
        if f.executor_id:
            failure["executor_id"] = {"value": f.executor_id}
        if f.HasField("status"):
            failure["status"] = f.status
        return [{"type": "FAILURE", "failure": failure}]
    if e.type == E.ERROR:
        return [{"type": "ERROR", "error": {"message": e.error.message}}]
    if e.type == E.MESSAGE:
        m = e.message
        return [
            {
                "type": "MESSAGE",
                "message": {
                    "agent_id": {"value": m.agent_id},
                    "executor_id": {"value": m.executor_id},
                    "data": base64.b64encode(m.data).decode(),
                },
            }
        ]
    if e.type == E.HEARTBEAT:
        return [{"type": "HEARTBEAT"}]
    return []


# ---------------------------------------------------------------------- protobuf wire


def _unknown_fields(msg: Message, path: str) -> list[str]:
    found = [
        f"{path or msg.DESCRIPTOR.name} field number {f.field_number}" for f in UnknownFieldSet(msg)
    ]
    for fd, value in msg.ListFields():
        if fd.type != fd.TYPE_MESSAGE:
            continue
        where = f"{path}.{fd.name}" if path else fd.name
        if fd.is_repeated:
            for i, item in enumerate(value):
                found += _unknown_fields(item, f"{where}[{i}]")
        else:
            found += _unknown_fields(value, where)
    return found


def protobuf_call(data: bytes) -> Json:
    """A binary Mesos Call in its JSON form; fields Orbiter's messages do not know (they
    arrive as unknown fields) are refused by number, with where they were."""
    msg = v1_pb2.Call()
    try:
        msg.ParseFromString(data)
    except DecodeError as e:
        raise InvalidCall(f"the body is not a mesos.v1.scheduler.Call: {e}") from None
    body = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    unknown = _unknown_fields(msg, "")
    if unknown:
        # Convert first: a known-but-unsupported field gets its name in the message.
        call_from_mesos(body)
        raise Unsupported(
            f"{', '.join(unknown)}: not supported by Orbiter's Mesos API (fields it does not know)"
        )
    return body


def protobuf_event(event: Json) -> bytes:
    msg = v1_pb2.Event()
    json_format.ParseDict(event, msg)
    return msg.SerializeToString()


def recordio(record: bytes) -> bytes:
    """One RecordIO record: the length in decimal, a newline, the bytes."""
    return b"%d\n%s" % (len(record), record)


__all__ = [
    "CALL_TYPES",
    "MESOS_API_VERSION",
    "Call",
    "Unsupported",
    "call_from_mesos",
    "events_to_mesos",
    "framework_info_from_mesos",
    "offer_resources_to_mesos",
    "operations_from_mesos",
    "protobuf_call",
    "protobuf_event",
    "read_resource",
    "recordio",
    "reserved_resources_to_mesos",
    "resource_from_mesos",
    "resource_to_mesos",
    "resources_to_v0",
    "status_to_mesos",
    "task_info_from_mesos",
]
