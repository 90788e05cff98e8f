from orbiter.proto import messages_pb2 as _messages_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutorCaller(_message.Message):
    __slots__ = ("framework_id", "executor_id", "token")
    FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    framework_id: str
    executor_id: str
    token: str
    def __init__(self, framework_id: _Optional[str] = ..., executor_id: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class ExecutorSubscribe(_message.Message):
    __slots__ = ("caller", "tasks", "unacknowledged")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    UNACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    caller: ExecutorCaller
    tasks: _containers.RepeatedCompositeFieldContainer[_messages_pb2.TaskInfo]
    unacknowledged: _containers.RepeatedCompositeFieldContainer[_messages_pb2.TaskStatus]
    def __init__(self, caller: _Optional[_Union[ExecutorCaller, _Mapping]] = ..., tasks: _Optional[_Iterable[_Union[_messages_pb2.TaskInfo, _Mapping]]] = ..., unacknowledged: _Optional[_Iterable[_Union[_messages_pb2.TaskStatus, _Mapping]]] = ...) -> None: ...

class ExecutorUpdate(_message.Message):
    __slots__ = ("caller", "status")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    caller: ExecutorCaller
    status: _messages_pb2.TaskStatus
    def __init__(self, caller: _Optional[_Union[ExecutorCaller, _Mapping]] = ..., status: _Optional[_Union[_messages_pb2.TaskStatus, _Mapping]] = ...) -> None: ...

class ExecutorMessage(_message.Message):
    __slots__ = ("caller", "data")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    caller: ExecutorCaller
    data: bytes
    def __init__(self, caller: _Optional[_Union[ExecutorCaller, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ExecutorReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExecutorEvent(_message.Message):
    __slots__ = ("type", "subscribed", "launch", "kill", "acknowledged", "message", "shutdown", "error")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[ExecutorEvent.Type]
        SUBSCRIBED: _ClassVar[ExecutorEvent.Type]
        LAUNCH: _ClassVar[ExecutorEvent.Type]
        KILL: _ClassVar[ExecutorEvent.Type]
        ACKNOWLEDGED: _ClassVar[ExecutorEvent.Type]
        MESSAGE: _ClassVar[ExecutorEvent.Type]
        SHUTDOWN: _ClassVar[ExecutorEvent.Type]
        ERROR: _ClassVar[ExecutorEvent.Type]
    TYPE_UNSPECIFIED: ExecutorEvent.Type
    SUBSCRIBED: ExecutorEvent.Type
    LAUNCH: ExecutorEvent.Type
    KILL: ExecutorEvent.Type
    ACKNOWLEDGED: ExecutorEvent.Type
    MESSAGE: ExecutorEvent.Type
    SHUTDOWN: ExecutorEvent.Type
    ERROR: ExecutorEvent.Type
    class Subscribed(_message.Message):
        __slots__ = ("executor_info", "framework_info", "agent_info")
        EXECUTOR_INFO_FIELD_NUMBER: _ClassVar[int]
        FRAMEWORK_INFO_FIELD_NUMBER: _ClassVar[int]
        AGENT_INFO_FIELD_NUMBER: _ClassVar[int]
        executor_info: _messages_pb2.ExecutorInfo
        framework_info: _messages_pb2.FrameworkInfo
        agent_info: _messages_pb2.AgentInfo
        def __init__(self, executor_info: _Optional[_Union[_messages_pb2.ExecutorInfo, _Mapping]] = ..., framework_info: _Optional[_Union[_messages_pb2.FrameworkInfo, _Mapping]] = ..., agent_info: _Optional[_Union[_messages_pb2.AgentInfo, _Mapping]] = ...) -> None: ...
    class Launch(_message.Message):
        __slots__ = ("task",)
        TASK_FIELD_NUMBER: _ClassVar[int]
        task: _messages_pb2.TaskInfo
        def __init__(self, task: _Optional[_Union[_messages_pb2.TaskInfo, _Mapping]] = ...) -> None: ...
    class Kill(_message.Message):
        __slots__ = ("task_id", "grace_period")
        TASK_ID_FIELD_NUMBER: _ClassVar[int]
        GRACE_PERIOD_FIELD_NUMBER: _ClassVar[int]
        task_id: str
        grace_period: float
        def __init__(self, task_id: _Optional[str] = ..., grace_period: _Optional[float] = ...) -> None: ...
    class Acknowledged(_message.Message):
        __slots__ = ("task_id", "uuid")
        TASK_ID_FIELD_NUMBER: _ClassVar[int]
        UUID_FIELD_NUMBER: _ClassVar[int]
        task_id: str
        uuid: bytes
        def __init__(self, task_id: _Optional[str] = ..., uuid: _Optional[bytes] = ...) -> None: ...
    class Message(_message.Message):
        __slots__ = ("data",)
        DATA_FIELD_NUMBER: _ClassVar[int]
        data: bytes
        def __init__(self, data: _Optional[bytes] = ...) -> None: ...
    class Shutdown(_message.Message):
        __slots__ = ("grace_period",)
        GRACE_PERIOD_FIELD_NUMBER: _ClassVar[int]
        grace_period: float
        def __init__(self, grace_period: _Optional[float] = ...) -> None: ...
    class Error(_message.Message):
        __slots__ = ("message",)
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        message: str
        def __init__(self, message: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    LAUNCH_FIELD_NUMBER: _ClassVar[int]
    KILL_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    type: ExecutorEvent.Type
    subscribed: ExecutorEvent.Subscribed
    launch: ExecutorEvent.Launch
    kill: ExecutorEvent.Kill
    acknowledged: ExecutorEvent.Acknowledged
    message: ExecutorEvent.Message
    shutdown: ExecutorEvent.Shutdown
    error: ExecutorEvent.Error
    def __init__(self, type: _Optional[_Union[ExecutorEvent.Type, str]] = ..., subscribed: _Optional[_Union[ExecutorEvent.Subscribed, _Mapping]] = ..., launch: _Optional[_Union[ExecutorEvent.Launch, _Mapping]] = ..., kill: _Optional[_Union[ExecutorEvent.Kill, _Mapping]] = ..., acknowledged: _Optional[_Union[ExecutorEvent.Acknowledged, _Mapping]] = ..., message: _Optional[_Union[ExecutorEvent.Message, _Mapping]] = ..., shutdown: _Optional[_Union[ExecutorEvent.Shutdown, _Mapping]] = ..., error: _Optional[_Union[ExecutorEvent.Error, _Mapping]] = ...) -> None: ...
