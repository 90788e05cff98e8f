from orbiter.proto import messages_pb2 as _messages_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CallHeader(_message.Message):
    __slots__ = ("framework_id", "stream_id")
    FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    framework_id: str
    stream_id: str
    def __init__(self, framework_id: _Optional[str] = ..., stream_id: _Optional[str] = ...) -> None: ...

class CallResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("framework_info",)
    FRAMEWORK_INFO_FIELD_NUMBER: _ClassVar[int]
    framework_info: _messages_pb2.FrameworkInfo
    def __init__(self, framework_info: _Optional[_Union[_messages_pb2.FrameworkInfo, _Mapping]] = ...) -> None: ...

class Filters(_message.Message):
    __slots__ = ("refuse_seconds",)
    REFUSE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    refuse_seconds: float
    def __init__(self, refuse_seconds: _Optional[float] = ...) -> None: ...

class Operation(_message.Message):
    __slots__ = ("type", "launch", "reserve", "unreserve", "create", "destroy")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[Operation.Type]
        LAUNCH: _ClassVar[Operation.Type]
        RESERVE: _ClassVar[Operation.Type]
        UNRESERVE: _ClassVar[Operation.Type]
        CREATE: _ClassVar[Operation.Type]
        DESTROY: _ClassVar[Operation.Type]
    TYPE_UNSPECIFIED: Operation.Type
    LAUNCH: Operation.Type
    RESERVE: Operation.Type
    UNRESERVE: Operation.Type
    CREATE: Operation.Type
    DESTROY: Operation.Type
    class Launch(_message.Message):
        __slots__ = ("task_infos",)
        TASK_INFOS_FIELD_NUMBER: _ClassVar[int]
        task_infos: _containers.RepeatedCompositeFieldContainer[_messages_pb2.TaskInfo]
        def __init__(self, task_infos: _Optional[_Iterable[_Union[_messages_pb2.TaskInfo, _Mapping]]] = ...) -> None: ...
    class Reserve(_message.Message):
        __slots__ = ("resources", "labels")
        class LabelsEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: str
            def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
        RESOURCES_FIELD_NUMBER: _ClassVar[int]
        LABELS_FIELD_NUMBER: _ClassVar[int]
        resources: _containers.RepeatedCompositeFieldContainer[_messages_pb2.Resource]
        labels: _containers.ScalarMap[str, str]
        def __init__(self, resources: _Optional[_Iterable[_Union[_messages_pb2.Resource, _Mapping]]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...
    class Unreserve(_message.Message):
        __slots__ = ("resources",)
        RESOURCES_FIELD_NUMBER: _ClassVar[int]
        resources: _containers.RepeatedCompositeFieldContainer[_messages_pb2.Resource]
        def __init__(self, resources: _Optional[_Iterable[_Union[_messages_pb2.Resource, _Mapping]]] = ...) -> None: ...
    class Create(_message.Message):
        __slots__ = ("volumes",)
        VOLUMES_FIELD_NUMBER: _ClassVar[int]
        volumes: _containers.RepeatedCompositeFieldContainer[_messages_pb2.Volume]
        def __init__(self, volumes: _Optional[_Iterable[_Union[_messages_pb2.Volume, _Mapping]]] = ...) -> None: ...
    class Destroy(_message.Message):
        __slots__ = ("volumes",)
        VOLUMES_FIELD_NUMBER: _ClassVar[int]
        volumes: _containers.RepeatedCompositeFieldContainer[_messages_pb2.Volume]
        def __init__(self, volumes: _Optional[_Iterable[_Union[_messages_pb2.Volume, _Mapping]]] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    LAUNCH_FIELD_NUMBER: _ClassVar[int]
    RESERVE_FIELD_NUMBER: _ClassVar[int]
    UNRESERVE_FIELD_NUMBER: _ClassVar[int]
    CREATE_FIELD_NUMBER: _ClassVar[int]
    DESTROY_FIELD_NUMBER: _ClassVar[int]
    type: Operation.Type
    launch: Operation.Launch
    reserve: Operation.Reserve
    unreserve: Operation.Unreserve
    create: Operation.Create
    destroy: Operation.Destroy
    def __init__(self, type: _Optional[_Union[Operation.Type, str]] = ..., launch: _Optional[_Union[Operation.Launch, _Mapping]] = ..., reserve: _Optional[_Union[Operation.Reserve, _Mapping]] = ..., unreserve: _Optional[_Union[Operation.Unreserve, _Mapping]] = ..., create: _Optional[_Union[Operation.Create, _Mapping]] = ..., destroy: _Optional[_Union[Operation.Destroy, _Mapping]] = ...) -> None: ...

class AcceptRequest(_message.Message):
    __slots__ = ("header", "offer_ids", "operations", "filters")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    OFFER_IDS_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    header: CallHeader
    offer_ids: _containers.RepeatedScalarFieldContainer[str]
    operations: _containers.RepeatedCompositeFieldContainer[Operation]
    filters: Filters
    def __init__(self, header: _Optional[_Union[CallHeader, _Mapping]] = ..., offer_ids: _Optional[_Iterable[str]] = ..., operations: _Optional[_Iterable[_Union[Operation, _Mapping]]] = ..., filters: _Optional[_Union[Filters, _Mapping]] = ...) -> None: ...

class DeclineRequest(_message.Message):
    __slots__ = ("header", "offer_ids", "filters")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    OFFER_IDS_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    header: CallHeader
    offer_ids: _containers.RepeatedScalarFieldContainer[str]
    filters: Filters
    def __init__(self, header: _Optional[_Union[CallHeader, _Mapping]] = ..., offer_ids: _Optional[_Iterable[str]] = ..., filters: _Optional[_Union[Filters, _Mapping]] = ...) -> None: ...

class ReviveRequest(_message.Message):
    __slots__ = ("header", "roles")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    header: CallHeader
    roles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, header: _Optional[_Union[CallHeader, _Mapping]] = ..., roles: _Optional[_Iterable[str]] = ...) -> None: ...

class SuppressRequest(_message.Message):
    __slots__ = ("header", "roles")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    header: CallHeader
    roles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, header: _Optional[_Union[CallHeader, _Mapping]] = ..., roles: _Optional[_Iterable[str]] = ...) -> None: ...

class KillRequest(_message.Message):
    __slots__ = ("header", "task_id", "agent_id", "grace_period")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    header: CallHeader
    task_id: str
    agent_id: str
    grace_period: float
    def __init__(self, header: _Optional[_Union[CallHeader, _Mapping]] = ..., task_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., grace_period: _Optional[float] = ...) -> None: ...

class Acknowledgement(_message.Message):
    __slots__ = ("agent_id", "task_id", "uuid")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    task_id: str
    uuid: bytes
    def __init__(self, agent_id: _Optional[str] = ..., task_id: _Optional[str] = ..., uuid: _Optional[bytes] = ...) -> None: ...

class AcknowledgeRequest(_message.Message):
    __slots__ = ("header", "acknowledgements")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGEMENTS_FIELD_NUMBER: _ClassVar[int]
    header: CallHeader
    acknowledgements: _containers.RepeatedCompositeFieldContainer[Acknowledgement]
    def __init__(self, header: _Optional[_Union[CallHeader, _Mapping]] = ..., acknowledgements: _Optional[_Iterable[_Union[Acknowledgement, _Mapping]]] = ...) -> None: ...

class ReconcileRequest(_message.Message):
    __slots__ = ("header", "tasks")
    class Task(_message.Message):
        __slots__ = ("task_id", "agent_id")
        TASK_ID_FIELD_NUMBER: _ClassVar[int]
        AGENT_ID_FIELD_NUMBER: _ClassVar[int]
        task_id: str
        agent_id: str
        def __init__(self, task_id: _Optional[str] = ..., agent_id: _Optional[str] = ...) -> None: ...
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    header: CallHeader
    tasks: _containers.RepeatedCompositeFieldContainer[ReconcileRequest.Task]
    def __init__(self, header: _Optional[_Union[CallHeader, _Mapping]] = ..., tasks: _Optional[_Iterable[_Union[ReconcileRequest.Task, _Mapping]]] = ...) -> None: ...

class TeardownRequest(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: CallHeader
    def __init__(self, header: _Optional[_Union[CallHeader, _Mapping]] = ...) -> None: ...

class MessageRequest(_message.Message):
    __slots__ = ("header", "agent_id", "executor_id", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: CallHeader
    agent_id: str
    executor_id: str
    data: bytes
    def __init__(self, header: _Optional[_Union[CallHeader, _Mapping]] = ..., agent_id: _Optional[str] = ..., executor_id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("type", "subscribed", "offers", "rescind", "update", "failure", "error", "message")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[Event.Type]
        SUBSCRIBED: _ClassVar[Event.Type]
        OFFERS: _ClassVar[Event.Type]
        RESCIND: _ClassVar[Event.Type]
        UPDATE: _ClassVar[Event.Type]
        FAILURE: _ClassVar[Event.Type]
        ERROR: _ClassVar[Event.Type]
        HEARTBEAT: _ClassVar[Event.Type]
        MESSAGE: _ClassVar[Event.Type]
    TYPE_UNSPECIFIED: Event.Type
    SUBSCRIBED: Event.Type
    OFFERS: Event.Type
    RESCIND: Event.Type
    UPDATE: Event.Type
    FAILURE: Event.Type
    ERROR: Event.Type
    HEARTBEAT: Event.Type
    MESSAGE: Event.Type
    class Subscribed(_message.Message):
        __slots__ = ("framework_id", "stream_id", "heartbeat_interval_seconds", "master_info")
        FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
        STREAM_ID_FIELD_NUMBER: _ClassVar[int]
        HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
        MASTER_INFO_FIELD_NUMBER: _ClassVar[int]
        framework_id: str
        stream_id: str
        heartbeat_interval_seconds: float
        master_info: _messages_pb2.MasterInfo
        def __init__(self, framework_id: _Optional[str] = ..., stream_id: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[float] = ..., master_info: _Optional[_Union[_messages_pb2.MasterInfo, _Mapping]] = ...) -> None: ...
    class Offers(_message.Message):
        __slots__ = ("offers",)
        OFFERS_FIELD_NUMBER: _ClassVar[int]
        offers: _containers.RepeatedCompositeFieldContainer[_messages_pb2.Offer]
        def __init__(self, offers: _Optional[_Iterable[_Union[_messages_pb2.Offer, _Mapping]]] = ...) -> None: ...
    class Rescind(_message.Message):
        __slots__ = ("offer_id",)
        OFFER_ID_FIELD_NUMBER: _ClassVar[int]
        offer_id: str
        def __init__(self, offer_id: _Optional[str] = ...) -> None: ...
    class Update(_message.Message):
        __slots__ = ("statuses",)
        STATUSES_FIELD_NUMBER: _ClassVar[int]
        statuses: _containers.RepeatedCompositeFieldContainer[_messages_pb2.TaskStatus]
        def __init__(self, statuses: _Optional[_Iterable[_Union[_messages_pb2.TaskStatus, _Mapping]]] = ...) -> None: ...
    class Failure(_message.Message):
        __slots__ = ("agent_id", "message", "executor_id", "status")
        AGENT_ID_FIELD_NUMBER: _ClassVar[int]
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
        STATUS_FIELD_NUMBER: _ClassVar[int]
        agent_id: str
        message: str
        executor_id: str
        status: int
        def __init__(self, agent_id: _Optional[str] = ..., message: _Optional[str] = ..., executor_id: _Optional[str] = ..., status: _Optional[int] = ...) -> None: ...
    class Error(_message.Message):
        __slots__ = ("message",)
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        message: str
        def __init__(self, message: _Optional[str] = ...) -> None: ...
    class Message(_message.Message):
        __slots__ = ("agent_id", "executor_id", "data")
        AGENT_ID_FIELD_NUMBER: _ClassVar[int]
        EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
        DATA_FIELD_NUMBER: _ClassVar[int]
        agent_id: str
        executor_id: str
        data: bytes
        def __init__(self, agent_id: _Optional[str] = ..., executor_id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    RESCIND_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    type: Event.Type
    subscribed: Event.Subscribed
    offers: Event.Offers
    rescind: Event.Rescind
    update: Event.Update
    failure: Event.Failure
    error: Event.Error
    message: Event.Message
    def __init__(self, type: _Optional[_Union[Event.Type, str]] = ..., subscribed: _Optional[_Union[Event.Subscribed, _Mapping]] = ..., offers: _Optional[_Union[Event.Offers, _Mapping]] = ..., rescind: _Optional[_Union[Event.Rescind, _Mapping]] = ..., update: _Optional[_Union[Event.Update, _Mapping]] = ..., failure: _Optional[_Union[Event.Failure, _Mapping]] = ..., error: _Optional[_Union[Event.Error, _Mapping]] = ..., message: _Optional[_Union[Event.Message, _Mapping]] = ...) -> None: ...
