"""Mesos's RESERVE, UNRESERVE, CREATE and DESTROY, reserved resources and persistent
volumes in the v1 scheduler API (orbiter/mesos/convert.py): tables.

What goes in is Mesos's JSON in either reservation format (1.4+'s `reservations` stack,
or the older `role` plus `reservation`); what comes out in offers is what Mesos shows a
framework, and reads back as the same thing.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from google.protobuf import json_format

from orbiter.errors import InvalidCall
from orbiter.mesos import convert
from orbiter.mesos.proto import v1_pb2
from orbiter.proto import messages_pb2 as pb
from orbiter.proto import scheduler_pb2
from orbiter.resources import Resources

Op = scheduler_pb2.Operation


def scalar(name: str, value: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}, **extra}


def dynamic(role: str, principal: str = "", **labels: str) -> dict[str, Any]:
    """A 1.4+ reservation stack of one DYNAMIC entry."""
    entry: dict[str, Any] = {"type": "DYNAMIC", "role": role}
    if principal:
        entry["principal"] = principal
    if labels:
        entry["labels"] = {"labels": [{"key": k, "value": v} for k, v in labels.items()]}
    return {"reservations": [entry]}


def volume(pid: str, path: str = "data", principal: str = "", **mode: str) -> dict[str, Any]:
    persistence = {"id": pid, **({"principal": principal} if principal else {})}
    return {"disk": {"persistence": persistence, "volume": {"container_path": path, **mode}}}


def accept(*operations: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "ACCEPT",
        "framework_id": {"value": "F1"},
        "accept": {"offer_ids": [{"value": "O1"}], "operations": list(operations)},
    }


def reserve(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"type": "RESERVE", "reserve": {"resources": list(resources)}}


def create(*volumes: dict[str, Any]) -> dict[str, Any]:
    return {"type": "CREATE", "create": {"volumes": list(volumes)}}


TASK = {
    "name": "db",
    "task_id": {"value": "db-1"},
    "agent_id": {"value": "A1"},
    "command": {"value": "run-db"},
    "resources": [
        scalar("cpus", 1, role="db", **dynamic("db", "fw")),
        scalar("disk", 100, role="db", **dynamic("db", "fw"), **volume("pg", "data")),
    ],
}


# ---------------------------------------------------------------------- reading


@pytest.mark.parametrize(
    ("mesos", "text", "reservation", "volume_id"),
    [
        # 1.4+ format
        (scalar("cpus", 1, **dynamic("db", "fw", k="v")), "cpus(db):1", ("fw", (("k", "v"),)), ""),
        (scalar("cpus", 1, **dynamic("db")), "cpus(db):1", ("", ()), ""),
        (
            scalar("cpus", 1, reservations=[{"type": "STATIC", "role": "db"}]),
            "cpus(db):1",
            None,
            "",
        ),
        # pre-1.4: role plus reservation is a dynamic reservation, role alone a static one
        (
            scalar("cpus", 1, role="db", reservation={"principal": "fw"}),
            "cpus(db):1",
            ("fw", ()),
            "",
        ),
        (scalar("cpus", 1, role="db"), "cpus(db):1", None, ""),
        # both at once, as offers carry them
        (
            scalar("cpus", 1, role="db", reservation={"principal": "fw"}, **dynamic("db", "fw")),
            "cpus(db):1",
            ("fw", ()),
            "",
        ),
        # a persistent volume on dynamically reserved disk
        (
            scalar("disk", 64, **dynamic("db", "fw"), **volume("pg", mode="RW")),
            "disk(db):64",
            ("fw", ()),
            "pg",
        ),
        (scalar("disk", 64, disk={}), "disk:64", None, ""),  # plain disk
    ],
)
def test_reserved_resources_and_volumes_read_in_either_format(
    mesos: dict, text: str, reservation: tuple | None, volume_id: str
) -> None:
    read = convert.read_resource(mesos, "r")
    assert Resources.from_proto([read.resource]) == Resources.parse(text)
    assert read.dynamic == reservation
    assert (read.volume.persistence_id if read.volume else "") == volume_id


def test_a_volume_reads_with_its_role_size_path_and_principal() -> None:
    read = convert.read_resource(
        scalar("disk", 64, **dynamic("db"), **volume("pg", "d/x", "fw")), "r"
    )
    assert read.volume == pb.Volume(
        persistence_id="pg", role="db", size=64, container_path="d/x", principal="fw"
    )


@pytest.mark.parametrize(
    ("mesos", "error", "named"),
    [
        (
            scalar("cpus", 1, reservations=[{"type": "DYNAMIC", "role": "a"}] * 2),
            convert.Unsupported,
            "r.reservations: refined (hierarchical) reservations",
        ),
        (
            scalar("disk", 1, **dynamic("db"), **volume("v"), shared={}),
            convert.Unsupported,
            "r.shared: shared resources (shared persistent volumes)",
        ),
        (
            scalar("disk", 1, **dynamic("db"), **volume("v", mode="RO")),
            convert.Unsupported,
            "r.disk.volume.mode 'RO'",
        ),
        (
            scalar("disk", 1, disk={"source": {"type": "MOUNT", "mount": {"root": "/m"}}}),
            convert.Unsupported,
            "r.disk.source: disk from a PATH, MOUNT",
        ),
        (
            scalar(
                "disk",
                1,
                **dynamic("db"),
                disk={
                    "persistence": {"id": "v"},
                    "volume": {"container_path": "d", "host_path": "/h"},
                },
            ),
            convert.Unsupported,
            "r.disk.volume.host_path",
        ),
        (
            scalar("disk", 1, disk={"volume": {"container_path": "d"}}),
            convert.Unsupported,
            "r.disk.volume: a volume without persistence",
        ),
        (
            scalar("disk", 1, disk={"persistence": {"id": "v"}}),
            InvalidCall,
            "r.disk: a persistent volume needs disk.volume",
        ),
        (
            scalar("disk", 1, **volume("v")),
            InvalidCall,
            "r.disk: persistent volume 'v' is on unreserved",
        ),
        (
            scalar("cpus", 1, **volume("v")),
            InvalidCall,
            "r.disk: only a SCALAR resource named disk",
        ),
        (
            scalar("cpus", 1, role="db", reservation={"principal": "a"}, **dynamic("db", "b")),
            InvalidCall,
            "reservation and r.reservations[0] describe different reservations",
        ),
        (
            scalar("cpus", 1, reservations=[{"type": "STATIC", "role": "db", "principal": "p"}]),
            InvalidCall,
            "a STATIC reservation has no principal or labels",
        ),
        (
            scalar(
                "cpus",
                1,
                reservations=[
                    {
                        "type": "DYNAMIC",
                        "role": "db",
                        "labels": {
                            "labels": [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]
                        },
                    }
                ],
            ),
            convert.Unsupported,
            "key 'k' is given twice",
        ),
        (
            scalar("cpus", 1, reservation={"principal": "p"}),
            InvalidCall,
            "needs the role it is for",
        ),
        (
            scalar("cpus", 1, role="a", **dynamic("b")),
            InvalidCall,
            "role 'a' and r.reservations[0]",
        ),
    ],
)
def test_unsupported_reservations_and_volumes_are_refused_naming_them(
    mesos: dict, error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=re.escape(named)):
        convert.read_resource(mesos, "r")


def test_a_volume_where_none_belongs_is_refused() -> None:
    executor_task = {
        **TASK,
        "command": None,
        "resources": [scalar("cpus", 1)],
        "executor": {
            "executor_id": {"value": "e"},
            "command": {"value": "x"},
            "resources": [scalar("disk", 1, **dynamic("db"), **volume("v"))],
        },
    }
    del executor_task["command"]
    with pytest.raises(InvalidCall, match=r"executor\.resources\[0\]\.disk\.persistence"):
        convert.call_from_mesos(
            accept({"type": "LAUNCH", "launch": {"task_infos": [executor_task]}})
        )


# ---------------------------------------------------------------------- operations


def test_reserve_maps_to_orbiters_reserve_one_per_run_of_equal_labels() -> None:
    call = convert.call_from_mesos(
        accept(
            reserve(
                scalar("cpus", 1, **dynamic("db", "fw", team="a")),
                scalar(
                    "mem",
                    256,
                    role="db",
                    reservation={
                        "principal": "fw",
                        "labels": {"labels": [{"key": "team", "value": "a"}]},
                    },
                ),
                scalar("disk", 500, **dynamic("db", "fw")),
            )
        )
    )
    assert [op.type for op in call.operations] == [Op.RESERVE, Op.RESERVE]
    first, second = call.operations
    assert Resources.from_proto(first.reserve.resources) == Resources.parse(
        "cpus(db):1;mem(db):256"
    )
    assert dict(first.reserve.labels) == {"team": "a"}
    assert Resources.from_proto(second.reserve.resources) == Resources.parse("disk(db):500")
    assert dict(second.reserve.labels) == {}
    assert call.principals == [
        ("fw", "accept.operations[0].reserve.resources[0].reservations[0].principal"),
        ("fw", "accept.operations[0].reserve.resources[1].reservations[0].principal"),
        ("fw", "accept.operations[0].reserve.resources[2].reservations[0].principal"),
    ]


def test_create_launch_destroy_and_unreserve_map_onto_orbiters_operations() -> None:
    call = convert.call_from_mesos(
        accept(
            create(scalar("disk", 100, **dynamic("db", "fw"), **volume("pg", "data", "fw"))),
            {"type": "LAUNCH", "launch": {"task_infos": [TASK]}},
            {
                "type": "DESTROY",
                "destroy": {"volumes": [scalar("disk", 10, **dynamic("db"), **volume("old"))]},
            },
            {
                "type": "UNRESERVE",
                "unreserve": {
                    "resources": [
                        scalar("disk", 10, **dynamic("db")),
                        scalar("cpus", 1, **dynamic("db")),
                    ]
                },
            },
        )
    )
    made, launch, destroy, unreserve = call.operations
    assert made.type == Op.CREATE
    assert list(made.create.volumes) == [
        pb.Volume(persistence_id="pg", role="db", size=100, container_path="data")
    ]
    assert launch.type == Op.LAUNCH
    (task,) = launch.launch.task_infos
    assert Resources.from_proto(task.resources) == Resources.parse("cpus(db):1")
    assert [(v.persistence_id, v.container_path, v.size) for v in task.volumes] == [
        ("pg", "data", 100)
    ]
    assert destroy.type == Op.DESTROY
    assert [v.persistence_id for v in destroy.destroy.volumes] == ["old"]
    assert unreserve.type == Op.UNRESERVE
    assert Resources.from_proto(unreserve.unreserve.resources) == Resources.parse(
        "cpus(db):1;disk(db):10"
    )
    assert call.principals == [
        ("fw", "accept.operations[0].create.volumes[0].disk.persistence.principal")
    ]


@pytest.mark.parametrize(
    ("operation", "named"),
    [
        (
            reserve(scalar("cpus", 1)),
            "reserve.resources[0]: RESERVE needs each resource with a DYNAMIC",
        ),
        (
            reserve(scalar("cpus", 1, role="db")),
            "reserve.resources[0]: RESERVE needs each resource with a DYNAMIC",
        ),
        (reserve(), "reserve.resources is empty"),
        (
            {
                "type": "UNRESERVE",
                "unreserve": {"resources": [scalar("disk", 1, **dynamic("db"), **volume("v"))]},
            },
            "UNRESERVE takes resources, not persistent volumes (DESTROY the volume first)",
        ),
        (create(scalar("disk", 1, **dynamic("db"))), "CREATE needs disk with disk.persistence"),
        (
            {"type": "DESTROY", "destroy": {"volumes": [scalar("cpus", 1)]}},
            "DESTROY needs disk with disk.persistence",
        ),
        (
            {"type": "RESERVE", "reserve": {"resources": [], "source": []}},
            "accept.operations[0].reserve.source",
        ),
        (
            {"type": "CREATE", "create": {"volumes": []}, "id": {"value": "op"}},
            "accept.operations[0].id",
        ),
    ],
)
def test_bad_offer_operations_are_refused_saying_what_is_wrong(operation: dict, named: str) -> None:
    with pytest.raises(InvalidCall, match=re.escape(named)):
        convert.call_from_mesos(accept(operation))


def test_operations_read_the_same_from_the_protobuf_wire() -> None:
    body = accept(
        reserve(scalar("cpus", 1, role="db", **dynamic("db", "fw", k="v"))),
        create(scalar("disk", 100, role="db", **dynamic("db", "fw"), **volume("pg", "data", "fw"))),
        {"type": "LAUNCH", "launch": {"task_infos": [TASK]}},
    )
    wire = json_format.ParseDict(body, v1_pb2.Call()).SerializeToString()
    assert convert.call_from_mesos(convert.protobuf_call(wire)) == convert.call_from_mesos(body)


# ---------------------------------------------------------------------- offers


def _offer(
    resources: str, reservations: list[pb.Reservation], volumes: list[pb.Volume]
) -> pb.Offer:
    return pb.Offer(
        id="O1",
        framework_id="F1",
        agent_id="A1",
        hostname="h",
        role="db",
        resources=Resources.parse(resources).to_proto(),
        reservations=reservations,
        volumes=volumes,
    )


def _reservation(text: str, principal: str = "", **labels: str) -> pb.Reservation:
    return pb.Reservation(
        role="db", principal=principal, labels=labels, resources=Resources.parse(text).to_proto()
    )


ALLOC = {"allocation_info": {"role": "db"}}


@pytest.mark.parametrize(
    ("offer", "shown"),
    [
        (  # nothing reserved: as before
            _offer("cpus:1", [], []),
            [scalar("cpus", 1.0, role="*", **ALLOC)],
        ),
        (  # a role's resources split between its dynamic reservation and the static rest
            _offer("cpus(db):3;mem:64", [_reservation("cpus(db):1", "fw", team="a")], []),
            [
                scalar(
                    "cpus",
                    1.0,
                    role="db",
                    reservation={
                        "principal": "fw",
                        "labels": {"labels": [{"key": "team", "value": "a"}]},
                    },
                    **dynamic("db", "fw", team="a"),
                    **ALLOC,
                ),
                scalar(
                    "cpus", 2.0, role="db", reservations=[{"type": "STATIC", "role": "db"}], **ALLOC
                ),
                scalar("mem", 64.0, role="*", **ALLOC),
            ],
        ),
        (  # two reservations, offered less than both hold: the oldest first
            _offer(
                "cpus(db):1.5",
                [_reservation("cpus(db):1", "a"), _reservation("cpus(db):1", "b")],
                [],
            ),
            [
                scalar(
                    "cpus",
                    1.0,
                    role="db",
                    reservation={"principal": "a"},
                    **dynamic("db", "a"),
                    **ALLOC,
                ),
                scalar(
                    "cpus",
                    0.5,
                    role="db",
                    reservation={"principal": "b"},
                    **dynamic("db", "b"),
                    **ALLOC,
                ),
            ],
        ),
        (  # a volume on the reserved disk: disk with persistence and volume, after the rest
            _offer(
                "disk(db):400",
                [_reservation("disk(db):500", "fw")],
                [
                    pb.Volume(
                        persistence_id="pg",
                        role="db",
                        size=100,
                        container_path="data",
                        principal="fw",
                    )
                ],
            ),
            [
                scalar(
                    "disk",
                    400.0,
                    role="db",
                    reservation={"principal": "fw"},
                    **dynamic("db", "fw"),
                    **ALLOC,
                ),
                scalar(
                    "disk",
                    100.0,
                    role="db",
                    reservation={"principal": "fw"},
                    **dynamic("db", "fw"),
                    **volume("pg", "data", "fw", mode="RW"),
                    **ALLOC,
                ),
            ],
        ),
        (  # a volume on statically reserved disk
            _offer("", [], [pb.Volume(persistence_id="v", role="db", size=5, container_path="d")]),
            [
                scalar(
                    "disk",
                    5.0,
                    role="db",
                    reservations=[{"type": "STATIC", "role": "db"}],
                    **volume("v", "d", mode="RW"),
                    **ALLOC,
                ),
            ],
        ),
    ],
)
def test_offers_show_reservations_and_volumes_as_mesos_does(
    offer: pb.Offer, shown: list[dict]
) -> None:
    assert convert.offer_resources_to_mesos(offer) == shown
    event = scheduler_pb2.Event(type=scheduler_pb2.Event.OFFERS)
    event.offers.offers.append(offer)
    (mesos,) = convert.events_to_mesos(event)
    decoded = v1_pb2.Event.FromString(convert.protobuf_event(mesos))
    (wire,) = json_format.MessageToDict(decoded, preserving_proto_field_name=True)["offers"][
        "offers"
    ]
    assert wire["resources"] == shown


def test_what_an_offer_shows_reads_back_as_the_same_reservations_and_volumes() -> None:
    offer = _offer(
        "cpus(db):1;disk(db):400",
        [_reservation("cpus(db):1;disk(db):500", "fw", team="a")],
        [
            pb.Volume(
                persistence_id="pg", role="db", size=100, container_path="data", principal="fw"
            )
        ],
    )
    shown = convert.offer_resources_to_mesos(offer)
    read = [convert.read_resource(r, f"r[{i}]") for i, r in enumerate(shown)]
    assert {r.dynamic for r in read} == {("fw", (("team", "a"),))}
    assert [r.volume.persistence_id for r in read if r.volume] == ["pg"]
    plain = [r.resource for r in read if r.volume is None]
    assert Resources.from_proto(plain) == Resources.parse("cpus(db):1;disk(db):400")


def test_an_agents_total_shows_reservations_and_volumes_without_an_allocation() -> None:
    """The operator API's view of an agent (GET_AGENTS): every role's, no allocation_info."""
    shown = convert.reserved_resources_to_mesos(
        Resources.parse("cpus:2;cpus(db):1;disk(db):10").to_proto(),
        [_reservation("cpus(db):1;disk(db):20", "fw")],
        [pb.Volume(persistence_id="pg", role="db", size=10, container_path="data")],
    )
    assert shown == [
        scalar("cpus", 2.0, role="*"),
        scalar("cpus", 1.0, role="db", reservation={"principal": "fw"}, **dynamic("db", "fw")),
        scalar("disk", 10.0, role="db", reservation={"principal": "fw"}, **dynamic("db", "fw")),
        scalar(
            "disk",
            10.0,
            role="db",
            reservation={"principal": "fw"},
            **dynamic("db", "fw"),
            **volume("pg", "data", mode="RW"),
        ),
    ]
