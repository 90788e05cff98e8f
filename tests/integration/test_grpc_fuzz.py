"""Every gRPC method of every service, fed malformed requests by hypothesis: random bytes,
known fields sent with the wrong wire type, and well-formed messages with random, missing
or absurd values (NaN, negative, huge, unknown enum numbers). Each call ends with
INVALID_ARGUMENT or another deliberate refusal (NOT_FOUND, FAILED_PRECONDITION,
PERMISSION_DENIED...) carrying a message, or succeeds; never UNKNOWN or INTERNAL. The
operator API still writes strict JSON afterwards (nothing non-finite got into the state).

The master's services (Scheduler, AgentLink, Master) over TCP; the agent's Executor
service over its unix socket. Methods come from the .proto descriptors, so a new method
is fuzzed without editing this file. Case counts per method and status are printed
(pytest -s) at the end of the module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import struct
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from fuzzcluster import BackgroundCluster, background_cluster
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orbiter.agent.executors import Executors
from orbiter.proto import agent_pb2, executor_pb2, master_pb2, scheduler_pb2, scheduler_pb2_grpc
from orbiter.proto import messages_pb2 as pb

EXAMPLES_PER_METHOD = 150
TIMEOUT = 5.0

REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
"""Codes a refusal may carry; UNKNOWN and INTERNAL mean a handler crashed."""

MASTER_SERVICES = [
    scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"],
    agent_pb2.DESCRIPTOR.services_by_name["AgentLink"],
    master_pb2.DESCRIPTOR.services_by_name["Master"],
]
AGENT_SERVICES = [executor_pb2.DESCRIPTOR.services_by_name["Executor"]]
METHODS = [(m, "master") for s in MASTER_SERVICES for m in s.methods] + [
    (m, "agent") for s in AGENT_SERVICES for m in s.methods
]

COUNTS: Counter[tuple[str, str]] = Counter()

# ---------------------------------------------------------------------- strategies

_FIXED64 = {
    FieldDescriptor.TYPE_DOUBLE,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}
_FIXED32 = {FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32}
_DELIMITED = {FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_MESSAGE}


def _natural_wire_type(field: FieldDescriptor) -> int:
    if field.type in _DELIMITED:
        return 2
    if field.type in _FIXED64:
        return 1
    if field.type in _FIXED32:
        return 5
    return 0


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _payload(wire_type: int, data: bytes, number: int) -> bytes:
    if wire_type == 0:
        return _varint(number)
    if wire_type == 1:
        return (data * 8)[:8].ljust(8, b"\0")
    if wire_type == 5:
        return (data * 4)[:4].ljust(4, b"\0")
    if wire_type == 2:
        return _varint(len(data)) + data
    return data  # 3, 4 (groups), 6, 7 (no such wire type): whatever follows


def _accepted_wire_types(field: FieldDescriptor) -> set[int]:
    natural = _natural_wire_type(field)
    if field.is_repeated and natural != 2:
        return {natural, 2}  # packed or not, both parse
    return {natural}


@st.composite
def wrong_wire_types(draw: st.DrawFn, desc: Descriptor) -> bytes:
    """Known field numbers, each with a wire type that is not its own; sometimes cut
    short, never to nothing. (A message type without fields gets unknown numbers.)"""
    out = b""
    for _ in range(draw(st.integers(1, 4))):
        if desc.fields:
            field = draw(st.sampled_from(list(desc.fields)))
            number = field.number
            wire = draw(
                st.sampled_from([w for w in range(8) if w not in _accepted_wire_types(field)])
            )
        else:
            number, wire = draw(st.integers(1, 20)), draw(st.integers(0, 7))
        data = draw(st.binary(max_size=12))
        out += _varint(number << 3 | wire) + _payload(wire, data, draw(st.integers(0, 2**64)))
    if draw(st.booleans()):
        out = out[: draw(st.integers(1, len(out)))]  # cut short
    return out


_FLOATS = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), -1.0, 0.0, 1e300, -1e300]),
    st.floats(allow_nan=True, allow_infinity=True),
)
_TEXT = st.one_of(
    st.sampled_from(["", "\x00", "a" * 5000, "../../etc/passwd", "*", "cpus:-1"]),
    st.text(max_size=20),
)
_INTS = {
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: st.integers(0, 2**64 - 1),
}


def _value(draw: st.DrawFn, field: FieldDescriptor, depth: int) -> Any:
    t = field.type
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        v = draw(_FLOATS)
        if t == FieldDescriptor.TYPE_FLOAT and v == v and abs(v) > 3.4e38:
            v = struct.unpack("f", struct.pack("f", float("inf") if v > 0 else float("-inf")))[0]
        return v
    if t == FieldDescriptor.TYPE_BOOL:
        return draw(st.booleans())
    if t == FieldDescriptor.TYPE_STRING:
        return draw(_TEXT)
    if t == FieldDescriptor.TYPE_BYTES:
        return draw(st.binary(max_size=64))
    if t == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return draw(st.one_of(st.sampled_from(numbers), st.integers(-5, 1000)))
    if t in _INTS:
        return draw(st.one_of(st.sampled_from([0, -1, 1]), _INTS[t]).filter(lambda n: _fits(n, t)))
    raise AssertionError(f"no strategy for field type {t}")


def _fits(n: int, t: int) -> bool:
    unsigned = t in (
        FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64,
    )  # fmt: skip
    return n >= 0 or not unsigned


def _fill(draw: st.DrawFn, msg: Any, depth: int) -> None:
    """Set a random subset of `msg`'s fields (oneofs: the last one set wins)."""
    for field in msg.DESCRIPTOR.fields:
        if not draw(st.booleans()):
            continue
        repeated = field.is_repeated
        count = draw(st.integers(0, 3)) if repeated else 1
        for _ in range(count):
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if field.message_type.GetOptions().map_entry:
                    container = getattr(msg, field.name)
                    key_f = field.message_type.fields_by_name["key"]
                    value_f = field.message_type.fields_by_name["value"]
                    key = _value(draw, key_f, depth)
                    if value_f.type == FieldDescriptor.TYPE_MESSAGE:
                        if depth < 3:
                            _fill(draw, container[key], depth + 1)
                    else:
                        container[key] = _value(draw, value_f, depth)
                    continue
                if depth >= 3:
                    continue
                child = getattr(msg, field.name).add() if repeated else getattr(msg, field.name)
                if not repeated:
                    child.SetInParent()
                _fill(draw, child, depth + 1)
            elif repeated:
                getattr(msg, field.name).append(_value(draw, field, depth))
            else:
                setattr(msg, field.name, _value(draw, field, depth))


@st.composite
def odd_messages(draw: st.DrawFn, message_class: Any, fw: Framework) -> bytes:
    """A well-formed message: fields missing, empty, NaN, negative, huge, unknown enums;
    often with the live framework's header, offers and agent, to get past the first
    refusal."""
    msg = message_class()
    _fill(draw, msg, 0)
    fields = msg.DESCRIPTOR.fields_by_name
    # Not Teardown's: it would end the framework the other methods borrow.
    teardown = msg.DESCRIPTOR.name == "TeardownRequest"
    if "header" in fields and not teardown and draw(st.integers(0, 3)):
        msg.header.framework_id = fw.framework_id
        if draw(st.integers(0, 3)):
            msg.header.stream_id = fw.stream_id
    if "offer_ids" in fields and fw.offer_ids and draw(st.booleans()):
        del msg.offer_ids[:]
        msg.offer_ids.extend(fw.offer_ids)
    if "agent_id" in fields and fw.agent_ids and draw(st.booleans()):
        msg.agent_id = fw.agent_ids[0]
    return msg.SerializeToString()


def requests_for(method: MethodDescriptor, fw: Framework, kind: str) -> st.SearchStrategy[bytes]:
    if kind == "bytes":
        return st.binary(max_size=200)
    if kind == "wire types":
        return wrong_wire_types(method.input_type)
    return odd_messages(message_factory.GetMessageClass(method.input_type), fw)


# ---------------------------------------------------------------------- calls


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundCluster]:
    started = time.monotonic()
    with background_cluster(tmp_path_factory.mktemp("grpcfuzz")) as c:
        yield c
        _check_views_are_strict_json(c)
    total = sum(COUNTS.values())
    print(f"\ngRPC fuzz: {total} calls in {time.monotonic() - started:.1f}s")
    for method in sorted({m for m, _ in COUNTS}):
        codes = {code: n for (m, code), n in sorted(COUNTS.items()) if m == method}
        print(f"  {method}: {sum(codes.values())} {codes}")


@pytest.fixture(scope="module")
def executor_endpoint(
    cluster: BackgroundCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The Executor API as an agent serves it (the fuzz cluster's agent runs nothing, so
    it has none): callers without a running executor's token are refused before
    anything else, so a stand-in agent with only a work dir is enough."""
    work_dir = tmp_path_factory.mktemp("executors")
    executors = Executors(SimpleNamespace(settings=SimpleNamespace(work_dir=work_dir)))
    asyncio.run_coroutine_threadsafe(executors.start(), cluster.loop).result(10)
    yield executors.endpoint
    asyncio.run_coroutine_threadsafe(executors.stop(), cluster.loop).result(10)


@dataclass
class Framework:
    """A subscribed framework whose ids and offers the generated calls may borrow, so
    they reach the handlers' checks past "who are you"."""

    framework_id: str = ""
    stream_id: str = ""
    offer_ids: list[str] = dataclasses.field(default_factory=list)
    agent_ids: list[str] = dataclasses.field(default_factory=list)


@pytest.fixture(scope="module")
def framework(cluster: BackgroundCluster) -> Iterator[Framework]:
    channel = grpc.insecure_channel(cluster.master.info.grpc_address)
    stub = scheduler_pb2_grpc.SchedulerStub(channel)
    stream = stub.Subscribe(
        scheduler_pb2.SubscribeRequest(
            framework_info=pb.FrameworkInfo(name="fuzz", failover_timeout=0.0)
        )
    )
    fw = Framework()
    subscribed = threading.Event()

    def consume() -> None:
        try:
            for event in stream:
                if event.type == scheduler_pb2.Event.SUBSCRIBED:
                    fw.framework_id = event.subscribed.framework_id
                    fw.stream_id = event.subscribed.stream_id
                    subscribed.set()
                elif event.type == scheduler_pb2.Event.OFFERS:
                    fw.offer_ids = [o.id for o in event.offers.offers]
                    fw.agent_ids = [o.agent_id for o in event.offers.offers]
        except grpc.RpcError:
            subscribed.set()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    assert subscribed.wait(10) and fw.framework_id, "the fuzz framework did not subscribe"
    yield fw
    stream.cancel()
    reader.join(5)
    channel.close()


@pytest.fixture(scope="module")
def channels(
    cluster: BackgroundCluster, executor_endpoint: str
) -> Iterator[dict[str, grpc.Channel]]:
    master = grpc.insecure_channel(cluster.master.info.grpc_address)
    agent = grpc.insecure_channel(executor_endpoint)
    yield {"master": master, "agent": agent}
    master.close()
    agent.close()


def _raw(b: bytes) -> bytes:
    return b


def call(channel: grpc.Channel, method: MethodDescriptor, payload: bytes) -> tuple[Any, str]:
    """(status code, details) of one call; a stream that answers is OK and cancelled."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    try:
        if not method.client_streaming and not method.server_streaming:
            channel.unary_unary(path, request_serializer=_raw, response_deserializer=_raw)(
                payload, timeout=TIMEOUT
            )
            return grpc.StatusCode.OK, ""
        if method.client_streaming:
            stream = channel.stream_stream(
                path, request_serializer=_raw, response_deserializer=_raw
            )(iter([payload]), timeout=TIMEOUT)
        else:
            stream = channel.unary_stream(
                path, request_serializer=_raw, response_deserializer=_raw
            )(payload, timeout=TIMEOUT)
        for _ in stream:
            stream.cancel()  # it answered: the request was taken
            return grpc.StatusCode.OK, ""
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


@settings(
    max_examples=EXAMPLES_PER_METHOD,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(data=st.data())
@pytest.mark.parametrize(("method", "where"), METHODS, ids=[m.full_name for m, _ in METHODS])
def test_malformed_requests_are_refused_with_a_message_never_unknown(
    channels: dict[str, grpc.Channel],
    framework: Framework,
    method: MethodDescriptor,
    where: str,
    data: st.DataObject,
) -> None:
    kind = data.draw(st.sampled_from(["bytes", "wire types", "odd values"]), label="kind")
    payload = data.draw(requests_for(method, framework, kind), label="request")
    code, details = call(channels[where], method, payload)
    COUNTS[(method.full_name, code.name)] += 1
    if code == grpc.StatusCode.CANCELLED:
        return  # our own cancel of a stream that answered
    assert code == grpc.StatusCode.OK or code in REFUSALS, (code, details, payload)
    assert code == grpc.StatusCode.OK or details, f"{code.name} without a message"
    if kind == "wire types" and method.input_type.fields:
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details, payload)


def test_a_message_cut_short_names_its_type(channels: dict[str, grpc.Channel]) -> None:
    """The regression test for the UNKNOWN that invalid protobuf used to get."""
    method = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].methods_by_name["Accept"]
    code, details = call(channels["master"], method, b"\x0a\x05\xff")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "orbiter.v1.AcceptRequest" in details


def test_a_known_field_of_the_wrong_type_is_refused_not_ignored(
    channels: dict[str, grpc.Channel],
) -> None:
    """A number where AcceptRequest.header (a message) belongs: protobuf alone would drop
    it and the call would be refused as coming from nobody (NOT_FOUND)."""
    method = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].methods_by_name["Accept"]
    code, details = call(channels["master"], method, b"\x08\x01")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "orbiter.v1.AcceptRequest.header has the wrong type" in details


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_number_is_refused(channels: dict[str, grpc.Channel], value: float) -> None:
    """A Kill's grace period, a framework's failover timeout: never NaN or infinite."""
    kill = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].methods_by_name["Kill"]
    request = scheduler_pb2.KillRequest(task_id="t", grace_period=value)
    code, details = call(channels["master"], kill, request.SerializeToString())
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "orbiter.v1.KillRequest.grace_period" in details and "not a finite number" in details
    subscribe = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].methods_by_name["Subscribe"]
    request = scheduler_pb2.SubscribeRequest(
        framework_info=pb.FrameworkInfo(name="x", failover_timeout=value)
    )
    code, details = call(channels["master"], subscribe, request.SerializeToString())
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "orbiter.v1.FrameworkInfo.failover_timeout" in details


def _strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} in a JSON document")

    return json.loads(text, parse_constant=refuse)


def _check_views_are_strict_json(cluster: BackgroundCluster) -> None:
    for path in ("/state", "/api/v1/agents", "/api/v1/frameworks", "/api/v1/tasks"):
        with urllib.request.urlopen(cluster.url + path, timeout=10) as resp:
            _strict(resp.read().decode())


def test_no_state_the_fuzz_left_is_unreadable(cluster: BackgroundCluster) -> None:
    _check_views_are_strict_json(cluster)


def test_every_service_of_every_proto_file_is_fuzzed() -> None:
    import importlib
    import pkgutil

    import orbiter.proto

    services = set()
    for module in pkgutil.iter_modules(orbiter.proto.__path__):
        if module.name.endswith("_pb2"):
            pb2 = importlib.import_module(f"orbiter.proto.{module.name}")
            services |= {s.full_name for s in pb2.DESCRIPTOR.services_by_name.values()}
    assert services == {s.full_name for s in MASTER_SERVICES + AGENT_SERVICES}
