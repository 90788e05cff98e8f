from orbiter.proto import messages_pb2 as _messages_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MaintenanceMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTIVE: _ClassVar[MaintenanceMode]
    DEACTIVATED: _ClassVar[MaintenanceMode]
    DRAINING: _ClassVar[MaintenanceMode]
    DRAINED: _ClassVar[MaintenanceMode]
ACTIVE: MaintenanceMode
DEACTIVATED: MaintenanceMode
DRAINING: MaintenanceMode
DRAINED: MaintenanceMode

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Maintenance(_message.Message):
    __slots__ = ("mode", "by", "reason", "since", "drain_grace", "principal")
    MODE_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    DRAIN_GRACE_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    mode: MaintenanceMode
    by: str
    reason: str
    since: float
    drain_grace: float
    principal: str
    def __init__(self, mode: _Optional[_Union[MaintenanceMode, str]] = ..., by: _Optional[str] = ..., reason: _Optional[str] = ..., since: _Optional[float] = ..., drain_grace: _Optional[float] = ..., principal: _Optional[str] = ...) -> None: ...

class Pin(_message.Message):
    __slots__ = ("state", "until", "reason")
    STATE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    state: str
    until: float
    reason: str
    def __init__(self, state: _Optional[str] = ..., until: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class AgentRecord(_message.Message):
    __slots__ = ("info", "registered_time", "maintenance", "pin", "unreachable_since", "ended_by_master", "principal", "reservations", "volumes")
    INFO_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_TIME_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    UNREACHABLE_SINCE_FIELD_NUMBER: _ClassVar[int]
    ENDED_BY_MASTER_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    info: _messages_pb2.AgentInfo
    registered_time: float
    maintenance: Maintenance
    pin: Pin
    unreachable_since: float
    ended_by_master: _containers.RepeatedCompositeFieldContainer[TaskKey]
    principal: str
    reservations: _containers.RepeatedCompositeFieldContainer[_messages_pb2.Reservation]
    volumes: _containers.RepeatedCompositeFieldContainer[_messages_pb2.Volume]
    def __init__(self, info: _Optional[_Union[_messages_pb2.AgentInfo, _Mapping]] = ..., registered_time: _Optional[float] = ..., maintenance: _Optional[_Union[Maintenance, _Mapping]] = ..., pin: _Optional[_Union[Pin, _Mapping]] = ..., unreachable_since: _Optional[float] = ..., ended_by_master: _Optional[_Iterable[_Union[TaskKey, _Mapping]]] = ..., principal: _Optional[str] = ..., reservations: _Optional[_Iterable[_Union[_messages_pb2.Reservation, _Mapping]]] = ..., volumes: _Optional[_Iterable[_Union[_messages_pb2.Volume, _Mapping]]] = ...) -> None: ...

class TaskKey(_message.Message):
    __slots__ = ("framework_id", "task_id")
    FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    framework_id: str
    task_id: str
    def __init__(self, framework_id: _Optional[str] = ..., task_id: _Optional[str] = ...) -> None: ...

class GoneAgent(_message.Message):
    __slots__ = ("id", "removed_at", "by", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    REMOVED_AT_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    removed_at: float
    by: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., removed_at: _Optional[float] = ..., by: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class FrameworkRecord(_message.Message):
    __slots__ = ("info", "registered_time", "principal")
    INFO_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_TIME_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    info: _messages_pb2.FrameworkInfo
    registered_time: float
    principal: str
    def __init__(self, info: _Optional[_Union[_messages_pb2.FrameworkInfo, _Mapping]] = ..., registered_time: _Optional[float] = ..., principal: _Optional[str] = ...) -> None: ...

class Registry(_message.Message):
    __slots__ = ("version", "master_id", "agents", "frameworks", "format", "gone_agents", "silences", "weights", "quotas")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MASTER_ID_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORKS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    GONE_AGENTS_FIELD_NUMBER: _ClassVar[int]
    SILENCES_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    version: int
    master_id: str
    agents: _containers.RepeatedCompositeFieldContainer[AgentRecord]
    frameworks: _containers.RepeatedCompositeFieldContainer[FrameworkRecord]
    format: int
    gone_agents: _containers.RepeatedCompositeFieldContainer[GoneAgent]
    silences: _containers.RepeatedCompositeFieldContainer[Silence]
    weights: _containers.RepeatedCompositeFieldContainer[RoleWeight]
    quotas: _containers.RepeatedCompositeFieldContainer[RoleQuota]
    def __init__(self, version: _Optional[int] = ..., master_id: _Optional[str] = ..., agents: _Optional[_Iterable[_Union[AgentRecord, _Mapping]]] = ..., frameworks: _Optional[_Iterable[_Union[FrameworkRecord, _Mapping]]] = ..., format: _Optional[int] = ..., gone_agents: _Optional[_Iterable[_Union[GoneAgent, _Mapping]]] = ..., silences: _Optional[_Iterable[_Union[Silence, _Mapping]]] = ..., weights: _Optional[_Iterable[_Union[RoleWeight, _Mapping]]] = ..., quotas: _Optional[_Iterable[_Union[RoleQuota, _Mapping]]] = ...) -> None: ...

class RoleWeight(_message.Message):
    __slots__ = ("role", "weight")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    role: str
    weight: float
    def __init__(self, role: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class RoleQuota(_message.Message):
    __slots__ = ("role", "guarantees", "limits")
    class GuaranteesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class LimitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ROLE_FIELD_NUMBER: _ClassVar[int]
    GUARANTEES_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    role: str
    guarantees: _containers.ScalarMap[str, float]
    limits: _containers.ScalarMap[str, float]
    def __init__(self, role: _Optional[str] = ..., guarantees: _Optional[_Mapping[str, float]] = ..., limits: _Optional[_Mapping[str, float]] = ...) -> None: ...

class SilenceMatcher(_message.Message):
    __slots__ = ("name", "value", "is_regex", "is_equal")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    IS_REGEX_FIELD_NUMBER: _ClassVar[int]
    IS_EQUAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    is_regex: bool
    is_equal: bool
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., is_regex: _Optional[bool] = ..., is_equal: _Optional[bool] = ...) -> None: ...

class Silence(_message.Message):
    __slots__ = ("id", "matchers", "starts_at", "ends_at", "created_by", "comment", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    MATCHERS_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    matchers: _containers.RepeatedCompositeFieldContainer[SilenceMatcher]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float
    def __init__(self, id: _Optional[str] = ..., matchers: _Optional[_Iterable[_Union[SilenceMatcher, _Mapping]]] = ..., starts_at: _Optional[float] = ..., ends_at: _Optional[float] = ..., created_by: _Optional[str] = ..., comment: _Optional[str] = ..., updated_at: _Optional[float] = ...) -> None: ...
