from orbiter.proto import messages_pb2 as _messages_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentRecord(_message.Message):
    __slots__ = ("info", "registered_time")
    INFO_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_TIME_FIELD_NUMBER: _ClassVar[int]
    info: _messages_pb2.AgentInfo
    registered_time: float
    def __init__(self, info: _Optional[_Union[_messages_pb2.AgentInfo, _Mapping]] = ..., registered_time: _Optional[float] = ...) -> None: ...

class FrameworkRecord(_message.Message):
    __slots__ = ("info", "registered_time")
    INFO_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_TIME_FIELD_NUMBER: _ClassVar[int]
    info: _messages_pb2.FrameworkInfo
    registered_time: float
    def __init__(self, info: _Optional[_Union[_messages_pb2.FrameworkInfo, _Mapping]] = ..., registered_time: _Optional[float] = ...) -> None: ...

class Registry(_message.Message):
    __slots__ = ("version", "master_id", "agents", "frameworks")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MASTER_ID_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORKS_FIELD_NUMBER: _ClassVar[int]
    version: int
    master_id: str
    agents: _containers.RepeatedCompositeFieldContainer[AgentRecord]
    frameworks: _containers.RepeatedCompositeFieldContainer[FrameworkRecord]
    def __init__(self, version: _Optional[int] = ..., master_id: _Optional[str] = ..., agents: _Optional[_Iterable[_Union[AgentRecord, _Mapping]]] = ..., frameworks: _Optional[_Iterable[_Union[FrameworkRecord, _Mapping]]] = ...) -> None: ...
