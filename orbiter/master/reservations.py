"""Dynamic reservations and persistent volumes of one agent: plain values, no I/O.

An agent advertises its static resources (`cpus:4;disk:1000;cpus(db):1`, the
last one a static reservation). The master keeps, per agent, the dynamic
reservations made since (RESERVE, the operator's /reserve) and the persistent
volumes created on reserved disk (CREATE), and derives the total it offers:

    static - unreserved(reservations) + reservations - disk of the volumes

so the allocator sees a dynamic reservation exactly as it sees a static one,
`(name, role)` keys, and offers it only to frameworks in that role.

Simplification of Mesos: one reservation per resource (a role, the principal
that made it and labels), not a stack of refined reservations; unreserving
takes from the newest reservations of the role first.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orbiter.errors import InvalidCall
from orbiter.proto import messages_pb2 as pb
from orbiter.resources import InvalidResources, Resources

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Reservation:
    role: str
    principal: str
    labels: Labels
    resources: Resources  # every entry under `role`

    def to_proto(self) -> pb.Reservation:
        msg = pb.Reservation(role=self.role, principal=self.principal, labels=dict(self.labels))
        msg.resources.extend(self.resources.to_proto())
        return msg

    @staticmethod
    def from_proto(msg: pb.Reservation) -> Reservation:
        return Reservation(
            msg.role, msg.principal, labels(msg.labels), Resources.from_proto(msg.resources)
        )


@dataclass(frozen=True, slots=True)
class Volume:
    persistence_id: str
    role: str
    size: float
    container_path: str
    principal: str
    labels: Labels = ()

    @property
    def disk(self) -> Resources:
        """The reserved disk the volume holds."""
        return Resources({("disk", self.role): self.size})

    def to_proto(self) -> pb.Volume:
        return pb.Volume(
            persistence_id=self.persistence_id,
            role=self.role,
            size=self.size,
            container_path=self.container_path,
            principal=self.principal,
            labels=dict(self.labels),
        )

    @staticmethod
    def from_proto(msg: pb.Volume) -> Volume:
        return Volume(
            msg.persistence_id,
            msg.role,
            msg.size,
            msg.container_path,
            msg.principal,
            labels(msg.labels),
        )


def labels(mapping: Mapping[str, str]) -> Labels:
    return tuple(sorted(mapping.items()))


def effective_total(
    static: Resources, reservations: Iterable[Reservation], volumes: Iterable[Volume]
) -> Resources:
    """What the master offers of an agent; a reservation or volume that no longer
    fits (the agent came back smaller) is kept on record but left out until it fits."""
    total = static
    for r in reservations:
        unreserved = r.resources.reassigned("")
        if total.contains(unreserved):
            total = total - unreserved + r.resources
    for v in volumes:
        if total.contains(v.disk):
            total = total - v.disk
    return total


def reserved_by_role(reservations: Iterable[Reservation], role: str) -> Resources:
    out = Resources.empty()
    for r in reservations:
        if r.role == role:
            out = out + r.resources
    return out


def take(
    reservations: Sequence[Reservation], wanted: Resources, where: str
) -> tuple[list[Reservation], set[str]]:
    """The reservations left after unreserving `wanted` (newest first) and the
    principals whose reservations it touched; raises if `wanted` is not all
    dynamically reserved (static reservations cannot be undone at run time)."""
    for role in wanted.roles():
        if not role:
            raise InvalidCall(
                f"{where}: {wanted.format()} holds unreserved resources: "
                "name the role each resource is reserved for, like cpus(db):1"
            )
        mine = wanted.reserved(role)
        if not reserved_by_role(reservations, role).contains(mine):
            raise InvalidCall(
                f"{where}: {mine.format()} is not dynamically reserved on this agent (reserved "
                f"for {role!r}: {reserved_by_role(reservations, role).format() or 'nothing'}); "
                "static reservations (the agent's --resources) cannot be unreserved"
            )
    left = wanted
    out: list[Reservation] = []
    touched: set[str] = set()
    for r in reversed(reservations):
        part = r.resources.overlap(left)
        if part:
            touched.add(r.principal)
            left = left - part
            rest = r.resources - part
            if rest:
                out.append(Reservation(r.role, r.principal, r.labels, rest))
        else:
            out.append(r)
    out.reverse()
    return out, touched


def parse_reserved(resources: Iterable[pb.Resource], where: str) -> Resources:
    """Resources from the wire that must all carry a role."""
    try:
        parsed = Resources.from_proto(resources)
    except InvalidResources as e:
        raise InvalidCall(f"{where}: {e}") from None
    if not parsed:
        raise InvalidCall(f"{where}: no resources given")
    if "" in parsed.roles():
        raise InvalidCall(
            f"{where}: {parsed.unreserved().format()} names no role: set each resource's role "
            "(like cpus(db):1)"
        )
    return parsed


def check_container_path(path: str, where: str) -> str:
    """A volume's path inside the task: relative to the sandbox (any containerizer)
    or absolute (Docker only), never climbing out with '..'."""
    if not path:
        raise InvalidCall(f"{where}: container_path is empty: give where tasks see the volume")
    if path.strip() != path:
        raise InvalidCall(f"{where}: container_path {path!r} starts or ends with white space")
    if "\x00" in path or ".." in path.split("/"):
        raise InvalidCall(f"{where}: container_path {path!r} must not contain '..'")
    normal = posixpath.normpath(path)
    if normal in (".", "/"):
        raise InvalidCall(f"{where}: container_path {path!r} names the sandbox or root itself")
    return normal
