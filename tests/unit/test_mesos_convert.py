"""Mesos v1 scheduler messages to Orbiter's and back (orbiter/mesos/convert.py): tables.

Every event the converter writes must also be a valid Mesos v1 Event on the protobuf
wire (it goes through orbiter/mesos/proto/v1.proto), and every field Orbiter does not
support must be refused naming it, on both wires.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from orbiter.errors import InvalidCall
from orbiter.mesos import convert
from orbiter.mesos.proto import v1_pb2
from orbiter.proto import messages_pb2 as pb
from orbiter.proto import scheduler_pb2
from orbiter.resources import Resources


def scalar(name: str, value: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}, **extra}


RESOURCES_BOTH_WAYS = [
    # (Orbiter text, Mesos JSON as the converter writes it)
    ("cpus:0.5", [scalar("cpus", 0.5, role="*")]),
    (
        "ports:[31000-31005,31010-31010]",
        [
            {
                "name": "ports",
                "type": "RANGES",
                "role": "*",
                "ranges": {
                    "range": [{"begin": 31000, "end": 31005}, {"begin": 31010, "end": 31010}]
                },
            }
        ],
    ),
    ("zones:{a,b}", [{"name": "zones", "type": "SET", "set": {"item": ["a", "b"]}, "role": "*"}]),
    (
        "mem(web):64",
        [scalar("mem", 64.0, role="web", reservations=[{"type": "STATIC", "role": "web"}])],
    ),
]


@pytest.mark.parametrize(("text", "mesos"), RESOURCES_BOTH_WAYS)
def test_resources_map_both_ways(text: str, mesos: list[dict[str, Any]]) -> None:
    resources = Resources.parse(text)
    assert [convert.resource_to_mesos(r) for r in resources.to_proto()] == mesos
    back = convert.resources_from_mesos(mesos, "resources")
    assert Resources.from_proto(back) == resources


@pytest.mark.parametrize(
    ("mesos", "text"),
    [
        ([scalar("cpus", 1)], "cpus:1"),  # no role: unreserved
        ([scalar("cpus", 1, role="*")], "cpus:1"),
        ([scalar("cpus", 1, reservations=[{"type": "DYNAMIC", "role": "db"}])], "cpus(db):1"),
        ([scalar("cpus", 1, allocation_info={"role": "*"})], "cpus:1"),
        ([scalar("cpus", 0.25), scalar("cpus", 0.25)], "cpus:0.5"),  # summed, as in Mesos
    ],
)
def test_mesos_resources_read_as_orbiter_resources(mesos: list[dict], text: str) -> None:
    assert Resources.from_proto(convert.resources_from_mesos(mesos, "r")) == Resources.parse(text)


@pytest.mark.parametrize(
    ("mesos", "named"),
    [
        (scalar("disk", 1, disk={"source": {"type": "MOUNT"}}), "r[0].disk.source"),
        (scalar("cpus", 1, revocable={}), "r[0].revocable"),
        (scalar("cpus", 1, shared={}), "r[0].shared"),
        ({"name": "x", "type": "TEXT", "text": {"value": "a"}}, "r[0].text"),
        ({"name": "x", "type": "TEXT"}, "r[0].type 'TEXT'"),
        (
            scalar("cpus", 1, reservations=[{"role": "a"}, {"role": "a/b"}]),
            "r[0].reservations: refined",
        ),
        (
            scalar("cpus", 1, reservations=[{"role": "a", "flavor": "x"}]),
            "r[0].reservations[0].flavor",
        ),
    ],
)
def test_unsupported_resource_fields_are_refused_by_name(mesos: dict, named: str) -> None:
    with pytest.raises(convert.Unsupported, match=re.escape(named)):
        convert.resources_from_mesos([mesos], "r")


def test_attributes_are_scalars_when_numbers_and_text_otherwise() -> None:
    assert convert.attribute_to_mesos(pb.Attribute(name="rack", value="r1")) == {
        "name": "rack",
        "type": "TEXT",
        "text": {"value": "r1"},
    }
    assert convert.attribute_to_mesos(pb.Attribute(name="level", value="3")) == {
        "name": "level",
        "type": "SCALAR",
        "scalar": {"value": 3.0},
    }


def test_v0_resources_are_flat_numbers_and_range_strings() -> None:
    r = Resources.parse("cpus:1;mem:256;ports:[31000-31001]").to_proto()
    assert convert.resources_to_v0(r) == {
        "cpus": 1.0,
        "mem": 256.0,
        "disk": 0.0,
        "gpus": 0.0,
        "ports": "[31000-31001]",
    }


# ---------------------------------------------------------------------- frameworks


def test_framework_info_maps_roles_capabilities_and_failover() -> None:
    info = convert.framework_info_from_mesos(
        {
            "user": "alice",
            "name": "fw",
            "id": {"value": "F1"},
            "failover_timeout": 60,
            "checkpoint": True,
            "roles": ["web"],
            "principal": "alice",
            "capabilities": [
                {"type": "MULTI_ROLE"},
                {"type": "PARTITION_AWARE"},
                {"type": "GPU_RESOURCES"},
            ],
        }
    )
    assert info == pb.FrameworkInfo(
        id="F1",
        name="fw",
        user="alice",
        principal="alice",
        failover_timeout=60,
        roles=["web"],
        capabilities=[pb.MULTI_ROLE, pb.PARTITION_AWARE],
    )


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"webui_url": "http://x"}, "subscribe.framework_info.webui_url"),
        ({"labels": {"labels": []}}, "subscribe.framework_info.labels"),
        ({"offer_filters": {}}, "subscribe.framework_info.offer_filters"),
        ({"capabilities": [{"type": "REVOCABLE_RESOURCES"}]}, "REVOCABLE_RESOURCES"),
    ],
)
def test_unsupported_framework_fields_are_refused_by_name(extra: dict, named: str) -> None:
    with pytest.raises(convert.Unsupported, match=named):
        convert.framework_info_from_mesos({"user": "u", "name": "fw", **extra})


def test_the_deprecated_single_role_is_the_frameworks_role() -> None:
    assert list(convert.framework_info_from_mesos({"name": "f", "role": "web"}).roles) == ["web"]
    assert list(convert.framework_info_from_mesos({"name": "f", "role": "*"}).roles) == []


# ---------------------------------------------------------------------- calls

TASK = {
    "name": "t",
    "task_id": {"value": "t1"},
    "agent_id": {"value": "A1"},
    "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
    "command": {"value": "echo hi", "environment": {"variables": [{"name": "X", "value": "1"}]}},
    "kill_policy": {"grace_period": {"nanoseconds": 2_500_000_000}},
    "labels": {"labels": [{"key": "k", "value": "v"}]},
}


def accept(*tasks: dict, op_type: str = "LAUNCH") -> dict[str, Any]:
    return {
        "type": "ACCEPT",
        "framework_id": {"value": "F1"},
        "accept": {
            "offer_ids": [{"value": "O1"}],
            "operations": [{"type": op_type, "launch": {"task_infos": list(tasks)}}],
            "filters": {"refuse_seconds": 1.5},
        },
    }


def test_accept_launches_a_command_task_in_the_builtin_command_executor() -> None:
    call = convert.call_from_mesos(accept(TASK))
    assert (call.type, call.framework_id, call.offer_ids) == ("ACCEPT", "F1", ["O1"])
    assert call.filters.refuse_seconds == 1.5
    (op,) = call.operations
    assert op.type == scheduler_pb2.Operation.LAUNCH
    (task,) = op.launch.task_infos
    assert task.task_id == "t1" and task.agent_id == "A1" and task.name == "t"
    assert task.command == pb.CommandInfo(shell=True, value="echo hi", environment={"X": "1"})
    assert not task.HasField("executor")
    assert task.kill_grace_period == 2.5
    assert dict(task.labels) == {"k": "v"}


@pytest.mark.parametrize(
    "op", ["LAUNCH_GROUP", "GROW_VOLUME", "SHRINK_VOLUME", "CREATE_DISK", "DESTROY_DISK"]
)
def test_operations_orbiter_does_not_map_are_refused_by_name(op: str) -> None:
    with pytest.raises(convert.Unsupported, match=f"accept.operations\\[0\\].type {op}"):
        convert.call_from_mesos(accept(op_type=op))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("health_check", {}),
        ("check", {}),
        ("data", "aGk="),
        ("discovery", {}),
        ("max_completion_time", {"nanoseconds": 1}),
        ("limits", {}),
    ],
)
def test_unsupported_task_fields_are_refused_by_name(field: str, value: Any) -> None:
    with pytest.raises(
        convert.Unsupported, match=rf"accept.operations\[0\].launch.task_infos\[0\].{field}"
    ):
        convert.call_from_mesos(accept({**TASK, field: value}))


def test_command_uris_and_secrets_are_refused() -> None:
    with pytest.raises(convert.Unsupported, match=r"command\.uris"):
        convert.call_from_mesos(
            accept({**TASK, "command": {"value": "x", "uris": [{"value": "u"}]}})
        )
    secret = {"value": "x", "environment": {"variables": [{"name": "S", "type": "SECRET"}]}}
    with pytest.raises(convert.Unsupported, match="SECRET"):
        convert.call_from_mesos(accept({**TASK, "command": secret}))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"type": "DECLINE", "decline": {"offer_ids": [{"value": "O1"}]}}, {"offer_ids": ["O1"]}),
        ({"type": "REVIVE", "revive": {"roles": ["web"]}}, {"roles": ["web"]}),
        ({"type": "REVIVE"}, {"roles": []}),
        ({"type": "SUPPRESS", "suppress": {"roles": ["web"]}}, {"roles": ["web"]}),
        (
            {"type": "KILL", "kill": {"task_id": {"value": "t1"}}},
            {"task_id": "t1", "agent_id": "", "grace_period": None},
        ),
        (
            {
                "type": "KILL",
                "kill": {
                    "task_id": {"value": "t1"},
                    "agent_id": {"value": "A"},
                    "kill_policy": {"grace_period": {"nanoseconds": "1000000000"}},
                },
            },
            {"task_id": "t1", "agent_id": "A", "grace_period": 1.0},
        ),
        (
            {"type": "RECONCILE", "reconcile": {"tasks": [{"task_id": {"value": "t1"}}]}},
            {"reconcile": [scheduler_pb2.ReconcileRequest.Task(task_id="t1")]},
        ),
        ({"type": "RECONCILE", "reconcile": {}}, {"reconcile": []}),
        (
            {
                "type": "MESSAGE",
                "message": {
                    "agent_id": {"value": "A"},
                    "executor_id": {"value": "E"},
                    "data": base64.b64encode(b"hi").decode(),
                },
            },
            {"agent_id": "A", "executor_id": "E", "data": b"hi"},
        ),
        (
            {
                "type": "ACKNOWLEDGE",
                "acknowledge": {
                    "agent_id": {"value": "A"},
                    "task_id": {"value": "t1"},
                    "uuid": base64.b64encode(b"u" * 16).decode(),
                },
            },
            {
                "acknowledgements": [
                    scheduler_pb2.Acknowledgement(agent_id="A", task_id="t1", uuid=b"u" * 16)
                ]
            },
        ),
        ({"type": "TEARDOWN"}, {}),
        ({"type": "REQUEST", "request": {"requests": [{"resources": [scalar("cpus", 1)]}]}}, {}),
    ],
)
def test_calls_map_onto_the_state_machines_arguments(body: dict, expected: dict) -> None:
    call = convert.call_from_mesos({**body, "framework_id": {"value": "F1"}})
    assert call.type == body["type"] and call.framework_id == "F1"
    for name, value in expected.items():
        assert getattr(call, name) == value, name


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "FOO"}, "call type 'FOO' is not one"),
        ({"type": "UPDATE_FRAMEWORK"}, "UPDATE_FRAMEWORK"),
        ({"type": "ACKNOWLEDGE_OPERATION_STATUS"}, "ACKNOWLEDGE_OPERATION_STATUS"),
        ({"type": "KILL", "kill": {"task_id": {"value": "t"}}}, "needs framework_id"),
        ({"type": "SHUTDOWN", "framework_id": {"value": "F"}, "shutdown": {}}, "SHUTDOWN"),
        ({"type": "DECLINE", "framework_id": {"value": "F"}, "accept": {}}, "accept"),
        (
            {
                "type": "ACCEPT",
                "framework_id": {"value": "F"},
                "accept": {
                    "offer_ids": [{"value": "O"}],
                    "operations": [{"type": "LAUNCH", "id": {"value": "op"}}],
                },
            },
            r"accept.operations\[0\].id",
        ),
    ],
)
def test_bad_calls_are_refused_saying_what_is_wrong(body: dict, message: str) -> None:
    with pytest.raises(InvalidCall, match=message):
        convert.call_from_mesos(body)


def test_subscribe_takes_the_framework_id_of_the_call_for_failover() -> None:
    call = convert.call_from_mesos(
        {
            "type": "SUBSCRIBE",
            "framework_id": {"value": "F1"},
            "subscribe": {"framework_info": {"name": "f"}},
        }
    )
    assert call.info is not None and call.info.id == "F1"
    with pytest.raises(InvalidCall, match="differ"):
        convert.call_from_mesos(
            {
                "type": "SUBSCRIBE",
                "framework_id": {"value": "F1"},
                "subscribe": {"framework_info": {"name": "f", "id": {"value": "F2"}}},
            }
        )


# ---------------------------------------------------------------------- events

E = scheduler_pb2.Event


def _event(**kw: Any) -> scheduler_pb2.Event:
    return scheduler_pb2.Event(**kw)


STATUS = pb.TaskStatus(
    task_id="t1",
    state=pb.TASK_FAILED,
    message="exited with 3",
    source=pb.SOURCE_EXECUTOR,
    reason=pb.REASON_COMMAND_EXITED,
    agent_id="A1",
    uuid=b"u" * 16,
    timestamp=12.5,
    exit_code=3,
)

EVENTS = [
    (
        _event(
            type=E.SUBSCRIBED,
            subscribed=E.Subscribed(
                framework_id="F1",
                stream_id="s",
                heartbeat_interval_seconds=15,
                master_info=pb.MasterInfo(id="M", hostname="h", http_address="h:5051"),
            ),
        ),
        [
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": {"value": "F1"},
                    "heartbeat_interval_seconds": 15,
                    "master_info": {
                        "id": "M",
                        "ip": 0,
                        "port": 5051,
                        "hostname": "h",
                        "version": convert.MESOS_API_VERSION,
                        "address": {"hostname": "h", "port": 5051},
                    },
                },
            }
        ],
    ),
    (
        _event(
            type=E.OFFERS,
            offers=E.Offers(
                offers=[
                    pb.Offer(
                        id="O1",
                        framework_id="F1",
                        agent_id="A1",
                        hostname="h",
                        role="web",
                        resources=Resources.parse("cpus:1").to_proto(),
                        attributes=[pb.Attribute(name="rack", value="r1")],
                    )
                ]
            ),
        ),
        [
            {
                "type": "OFFERS",
                "offers": {
                    "offers": [
                        {
                            "id": {"value": "O1"},
                            "framework_id": {"value": "F1"},
                            "agent_id": {"value": "A1"},
                            "hostname": "h",
                            "resources": [
                                scalar("cpus", 1.0, role="*", allocation_info={"role": "web"})
                            ],
                            "attributes": [
                                {"name": "rack", "type": "TEXT", "text": {"value": "r1"}}
                            ],
                            "allocation_info": {"role": "web"},
                        }
                    ]
                },
            }
        ],
    ),
    (
        _event(type=E.RESCIND, rescind=E.Rescind(offer_id="O1")),
        [{"type": "RESCIND", "rescind": {"offer_id": {"value": "O1"}}}],
    ),
    (
        _event(
            type=E.UPDATE,
            update=E.Update(
                statuses=[
                    STATUS,
                    pb.TaskStatus(
                        task_id="t2",
                        state=pb.TASK_LOST,
                        reason=pb.REASON_RECONCILIATION,
                        source=pb.SOURCE_MASTER,
                        timestamp=1.0,
                    ),
                ]
            ),
        ),
        [
            {
                "type": "UPDATE",
                "update": {
                    "status": {
                        "task_id": {"value": "t1"},
                        "state": "TASK_FAILED",
                        "source": "SOURCE_EXECUTOR",
                        "timestamp": 12.5,
                        "message": "exited with 3",
                        "agent_id": {"value": "A1"},
                        "uuid": base64.b64encode(b"u" * 16).decode(),
                    }
                },
            },
            {
                "type": "UPDATE",
                "update": {
                    "status": {
                        "task_id": {"value": "t2"},
                        "state": "TASK_LOST",
                        "source": "SOURCE_MASTER",
                        "timestamp": 1.0,
                        "reason": "REASON_RECONCILIATION",
                    }
                },
            },
        ],
    ),
    (
        _event(type=E.FAILURE, failure=E.Failure(agent_id="A1", executor_id="E1", status=3)),
        [
            {
                "type": "FAILURE",
                "failure": {
                    "agent_id": {"value": "A1"},
                    "executor_id": {"value": "E1"},
                    "status": 3,
                },
            }
        ],
    ),
    (
        _event(type=E.FAILURE, failure=E.Failure(agent_id="A1")),
        [{"type": "FAILURE", "failure": {"agent_id": {"value": "A1"}}}],
    ),
    (
        _event(type=E.ERROR, error=E.Error(message="bye")),
        [{"type": "ERROR", "error": {"message": "bye"}}],
    ),
    (
        _event(type=E.MESSAGE, message=E.Message(agent_id="A1", executor_id="E1", data=b"hi")),
        [
            {
                "type": "MESSAGE",
                "message": {
                    "agent_id": {"value": "A1"},
                    "executor_id": {"value": "E1"},
                    "data": base64.b64encode(b"hi").decode(),
                },
            }
        ],
    ),
    (_event(type=E.HEARTBEAT), [{"type": "HEARTBEAT"}]),
]


@pytest.mark.parametrize(("event", "mesos"), EVENTS)
def test_events_in_mesos_json_and_on_the_protobuf_wire(event: Any, mesos: list[dict]) -> None:
    converted = convert.events_to_mesos(event)
    assert converted == mesos
    for m in converted:
        decoded = v1_pb2.Event.FromString(convert.protobuf_event(m))
        assert (
            json_format.MessageToDict(decoded, preserving_proto_field_name=True)["type"]
            == (m["type"])
        )


def test_recordio_frames_a_record_with_its_length() -> None:
    assert convert.recordio(b'{"type":"HEARTBEAT"}') == b'20\n{"type":"HEARTBEAT"}'


# ---------------------------------------------------------------------- protobuf wire


def test_a_protobuf_call_reads_as_its_json_form() -> None:
    wire = json_format.ParseDict(accept(TASK), v1_pb2.Call()).SerializeToString()
    call = convert.call_from_mesos(convert.protobuf_call(wire))
    assert call.operations == convert.call_from_mesos(accept(TASK)).operations


def test_fields_unknown_to_orbiters_messages_are_refused_by_number_and_place() -> None:
    msg = json_format.ParseDict(accept(TASK), v1_pb2.Call())
    task = msg.accept.operations[0].launch.task_infos[0]
    # TaskInfo field 8 is Mesos's health_check: Orbiter's messages do not know it.
    task.MergeFromString(b"\x42\x00")
    with pytest.raises(convert.Unsupported, match=r"launch.task_infos\[0\] field number 8"):
        convert.protobuf_call(msg.SerializeToString())


def test_a_body_that_is_not_a_call_is_refused() -> None:
    with pytest.raises(InvalidCall, match=r"not a mesos\.v1\.scheduler\.Call"):
        convert.protobuf_call(b"\xff\xff\xff")


@pytest.mark.parametrize("suffix", ["_pb2.py", "_pb2.pyi"])
def test_the_generated_mesos_messages_match_their_proto_file(tmp_path: Path, suffix: str) -> None:
    root = Path(__file__).resolve().parents[2]
    proto = Path("orbiter/mesos/proto/v1.proto")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{root}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(proto),
        ],
        cwd=root,
        check=True,
    )
    fresh = (tmp_path / proto.parent / f"v1{suffix}").read_text()
    assert (root / proto.parent / f"v1{suffix}").read_text() == fresh, "run `make proto`"


def test_allocation_roles_are_collected_for_the_shell_to_hold_against_the_offers() -> None:
    task = {**TASK, "resources": [scalar("cpus", 0.1, allocation_info={"role": "web"})]}
    call = convert.call_from_mesos(accept(task))
    assert call.allocations == [
        ("web", "accept.operations[0].launch.task_infos[0].resources[0].allocation_info")
    ]


def test_an_executor_of_another_framework_is_refused() -> None:
    executor = {
        "executor_id": {"value": "E"},
        "framework_id": {"value": "F2"},
        "command": {"value": "run-executor"},
    }
    task = {k: v for k, v in TASK.items() if k != "command"}
    with pytest.raises(InvalidCall, match=r"executor.framework_id F2 is not the calling"):
        convert.call_from_mesos(accept({**task, "executor": executor}))
    executor["framework_id"] = {"value": "F1"}
    (op,) = convert.call_from_mesos(accept({**task, "executor": executor})).operations
    assert op.launch.task_infos[0].executor.executor_id == "E"
