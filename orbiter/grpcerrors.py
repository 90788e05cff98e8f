"""Malformed gRPC requests answered INVALID_ARGUMENT with a message, never UNKNOWN.

gRPC parses a request before any handler runs; bytes that are not the method's
message (a truncated varint, a wrong wire type where protobuf cannot skip it)
make `FromString` raise, which grpcio answers UNKNOWN ("Unexpected <class
DecodeError>..."). `add_checked` registers a service whose parsing never raises:
a malformed request becomes a `Malformed` value, and the method is refused with
INVALID_ARGUMENT naming the message type before the handler sees it. A known
field sent with the wrong wire type (which protobuf would silently drop) and a
NaN or infinite double are malformed too. For a stream of requests each message
read is checked the same way.

Used as the generated `add_XServicer_to_server` would be:
`add_checked(scheduler_pb2_grpc.add_SchedulerServicer_to_server, servicer, server)`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet


@dataclass(frozen=True)
class Malformed:
    """A request that did not parse as its message type; `message` says why."""

    message: str


_FLOATING = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


def malformed_field(message: Message) -> str | None:
    """What is wrong with the first bad field, or None. Two kinds:

    - a known field that came with another wire type than its own: protobuf keeps it
      as an unknown field and leaves the field unset, so a client that sent a number
      where a message belongs would be answered as if it had sent nothing. (Unknown
      field numbers, a newer client's fields, are not refused.)
    - NaN or an infinity in a double: no Orbiter quantity, time or timeout is one, and
      JSON (the operator API) cannot carry them.

    About 10 us for a one-task AcceptRequest."""
    name = message.DESCRIPTOR.full_name
    unknown = UnknownFieldSet(message)
    if len(unknown):
        known = message.DESCRIPTOR.fields_by_number
        for item in unknown:
            field = known.get(item.field_number)
            if field is not None:
                return (
                    f"field {name}.{field.name} has the wrong type (another wire type than "
                    "the .proto declares)"
                )
    for field, value in message.ListFields():
        if field.type in _FLOATING:
            for number in value if field.is_repeated else (value,):
                if not math.isfinite(number):
                    return f"field {name}.{field.name} is {number}, not a finite number"
            continue
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            entry_value = field.message_type.fields_by_name["value"]
            children = value.values() if entry_value.type == FieldDescriptor.TYPE_MESSAGE else ()
        elif field.is_repeated:
            children = value
        else:
            children = (value,)
        for child in children:
            found = malformed_field(child)
            if found is not None:
                return found
    return None


def _tolerant(parse: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if parse is None:
        return None
    descriptor = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)
    name = descriptor.full_name if descriptor is not None else "the request"

    def parse_or_malformed(data: bytes) -> Any:
        try:
            message = parse(data)
        except (DecodeError, ValueError, TypeError) as e:
            return Malformed(f"the request is not a valid {name} message: {e}")
        wrong = malformed_field(message) if isinstance(message, Message) else None
        if wrong is not None:
            return Malformed(f"the request is not a valid {name} message: {wrong}")
        return message

    return parse_or_malformed


async def _refuse(context: grpc.aio.ServicerContext, bad: Malformed) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, bad.message)


class _CheckedReads:
    """The servicer context, whose `read()` refuses a malformed message in the stream."""

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def read(self) -> Any:
        message = await self._context.read()
        if isinstance(message, Malformed):
            await _refuse(self._context, message)
        return message


async def _checked_iterator(requests: Any, context: grpc.aio.ServicerContext) -> Any:
    async for message in requests:
        if isinstance(message, Malformed):
            await _refuse(context, message)
        yield message


def _checked(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    parse = _tolerant(handler.request_deserializer)
    if handler.unary_unary is not None:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, Malformed):
                await _refuse(context, request)
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, parse, handler.response_serializer)
    if handler.unary_stream is not None:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, Malformed):
                await _refuse(context, request)
            async for response in inner_us(request, context):
                yield response

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, parse, handler.response_serializer
        )
    if handler.stream_unary is not None:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            return await inner_su(_checked_iterator(requests, context), _CheckedReads(context))

        return grpc.stream_unary_rpc_method_handler(
            stream_unary, parse, handler.response_serializer
        )
    inner_ss = handler.stream_stream
    if inspect.isasyncgenfunction(inner_ss):

        async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            checked = _CheckedReads(context)
            async for response in inner_ss(_checked_iterator(requests, context), checked):
                yield response

    else:  # it writes its responses with context.write

        async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            checked = _CheckedReads(context)
            return await inner_ss(_checked_iterator(requests, context), checked)

    return grpc.stream_stream_rpc_method_handler(stream_stream, parse, handler.response_serializer)


class _Registrar:
    """Stands in for the server while a generated `add_..._to_server` registers a service;
    hands the real server the same methods with checked parsing."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self.server = server

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """Ignored: the generated code registers the same methods by name too, below."""

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        checked = {name: _checked(h) for name, h in handlers.items()}
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, checked),)
        )
        self.server.add_registered_method_handlers(service, checked)


def add_checked(
    add_to_server: Callable[[Any, Any], None], servicer: Any, server: grpc.aio.Server
) -> None:
    """Register `servicer` as `add_to_server` would, malformed requests refused."""
    add_to_server(servicer, _Registrar(server))
