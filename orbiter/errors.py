"""Error types shared across Orbiter, each with a message a user can act on.

The shells turn them into gRPC statuses, HTTP 4xx bodies and CLI messages,
each in one place (`orbiter/master/grpc_api.py`, `orbiter/master/http_api.py`,
`orbiter/cli.py`).
"""

from __future__ import annotations

from enum import Enum


class Code(Enum):
    """What kind of mistake it was; maps onto gRPC codes and HTTP statuses."""

    INVALID_ARGUMENT = ("INVALID_ARGUMENT", 400)
    NOT_FOUND = ("NOT_FOUND", 404)
    ALREADY_EXISTS = ("ALREADY_EXISTS", 409)
    FAILED_PRECONDITION = ("FAILED_PRECONDITION", 409)
    PERMISSION_DENIED = ("PERMISSION_DENIED", 403)
    UNAVAILABLE = ("UNAVAILABLE", 503)
    UNAUTHENTICATED = ("UNAUTHENTICATED", 401)
    RESOURCE_EXHAUSTED = ("RESOURCE_EXHAUSTED", 429)

    @property
    def grpc_name(self) -> str:
        return self.value[0]

    @property
    def http_status(self) -> int:
        return self.value[1]


class OrbiterError(Exception):
    """A refused request: nothing was changed."""

    code: Code = Code.INVALID_ARGUMENT

    def __init__(self, message: str, code: Code | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class InvalidCall(OrbiterError):
    """A scheduler call that is malformed or does not fit the master's state."""


class UnknownOffer(OrbiterError):
    code = Code.FAILED_PRECONDITION


class StaleStream(OrbiterError):
    code = Code.FAILED_PRECONDITION


class UnknownFramework(OrbiterError):
    code = Code.NOT_FOUND


class UnknownAgent(OrbiterError):
    code = Code.NOT_FOUND


class RegistrationRefused(OrbiterError):
    code = Code.FAILED_PRECONDITION


class RegistryConflict(OrbiterError):
    """The registry changed under us: another master wrote it. Stop leading."""

    code = Code.UNAVAILABLE
