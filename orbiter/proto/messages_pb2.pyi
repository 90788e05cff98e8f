from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Capability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAPABILITY_UNSPECIFIED: _ClassVar[Capability]
    PARTITION_AWARE: _ClassVar[Capability]
    MULTI_ROLE: _ClassVar[Capability]

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    TASK_STAGING: _ClassVar[TaskState]
    TASK_STARTING: _ClassVar[TaskState]
    TASK_RUNNING: _ClassVar[TaskState]
    TASK_KILLING: _ClassVar[TaskState]
    TASK_FINISHED: _ClassVar[TaskState]
    TASK_FAILED: _ClassVar[TaskState]
    TASK_KILLED: _ClassVar[TaskState]
    TASK_ERROR: _ClassVar[TaskState]
    TASK_LOST: _ClassVar[TaskState]
    TASK_DROPPED: _ClassVar[TaskState]
    TASK_UNREACHABLE: _ClassVar[TaskState]
    TASK_GONE: _ClassVar[TaskState]
    TASK_GONE_BY_OPERATOR: _ClassVar[TaskState]
    TASK_UNKNOWN: _ClassVar[TaskState]

class TaskSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_UNSPECIFIED: _ClassVar[TaskSource]
    SOURCE_MASTER: _ClassVar[TaskSource]
    SOURCE_AGENT: _ClassVar[TaskSource]
    SOURCE_EXECUTOR: _ClassVar[TaskSource]

class TaskReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REASON_UNSPECIFIED: _ClassVar[TaskReason]
    REASON_COMMAND_EXITED: _ClassVar[TaskReason]
    REASON_COMMAND_SIGNALED: _ClassVar[TaskReason]
    REASON_TASK_KILLED: _ClassVar[TaskReason]
    REASON_CONTAINER_LAUNCH_FAILED: _ClassVar[TaskReason]
    REASON_AGENT_DISCONNECTED: _ClassVar[TaskReason]
    REASON_AGENT_REMOVED: _ClassVar[TaskReason]
    REASON_AGENT_RESTARTED: _ClassVar[TaskReason]
    REASON_FRAMEWORK_REMOVED: _ClassVar[TaskReason]
    REASON_RECONCILIATION: _ClassVar[TaskReason]
    REASON_TASK_INVALID: _ClassVar[TaskReason]
    REASON_TASK_UNKNOWN: _ClassVar[TaskReason]
    REASON_AGENT_UNKNOWN: _ClassVar[TaskReason]
    REASON_AGENT_DRAINING: _ClassVar[TaskReason]
    REASON_AGENT_SHUTDOWN: _ClassVar[TaskReason]
    REASON_AGENT_REREGISTERED: _ClassVar[TaskReason]
    REASON_EXECUTOR_TERMINATED: _ClassVar[TaskReason]
    REASON_EXECUTOR_REGISTRATION_TIMEOUT: _ClassVar[TaskReason]
    REASON_CONTAINER_LIMITATION_MEMORY: _ClassVar[TaskReason]
    REASON_CONTAINER_LIMITATION_DISK: _ClassVar[TaskReason]
CAPABILITY_UNSPECIFIED: Capability
PARTITION_AWARE: Capability
MULTI_ROLE: Capability
TASK_STATE_UNSPECIFIED: TaskState
TASK_STAGING: TaskState
TASK_STARTING: TaskState
TASK_RUNNING: TaskState
TASK_KILLING: TaskState
TASK_FINISHED: TaskState
TASK_FAILED: TaskState
TASK_KILLED: TaskState
TASK_ERROR: TaskState
TASK_LOST: TaskState
TASK_DROPPED: TaskState
TASK_UNREACHABLE: TaskState
TASK_GONE: TaskState
TASK_GONE_BY_OPERATOR: TaskState
TASK_UNKNOWN: TaskState
SOURCE_UNSPECIFIED: TaskSource
SOURCE_MASTER: TaskSource
SOURCE_AGENT: TaskSource
SOURCE_EXECUTOR: TaskSource
REASON_UNSPECIFIED: TaskReason
REASON_COMMAND_EXITED: TaskReason
REASON_COMMAND_SIGNALED: TaskReason
REASON_TASK_KILLED: TaskReason
REASON_CONTAINER_LAUNCH_FAILED: TaskReason
REASON_AGENT_DISCONNECTED: TaskReason
REASON_AGENT_REMOVED: TaskReason
REASON_AGENT_RESTARTED: TaskReason
REASON_FRAMEWORK_REMOVED: TaskReason
REASON_RECONCILIATION: TaskReason
REASON_TASK_INVALID: TaskReason
REASON_TASK_UNKNOWN: TaskReason
REASON_AGENT_UNKNOWN: TaskReason
REASON_AGENT_DRAINING: TaskReason
REASON_AGENT_SHUTDOWN: TaskReason
REASON_AGENT_REREGISTERED: TaskReason
REASON_EXECUTOR_TERMINATED: TaskReason
REASON_EXECUTOR_REGISTRATION_TIMEOUT: TaskReason
REASON_CONTAINER_LIMITATION_MEMORY: TaskReason
REASON_CONTAINER_LIMITATION_DISK: TaskReason

class Range(_message.Message):
    __slots__ = ("begin", "end")
    BEGIN_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    begin: int
    end: int
    def __init__(self, begin: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class Resource(_message.Message):
    __slots__ = ("name", "type", "scalar", "ranges", "items", "role")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SCALAR: _ClassVar[Resource.Type]
        RANGES: _ClassVar[Resource.Type]
        SET: _ClassVar[Resource.Type]
    SCALAR: Resource.Type
    RANGES: Resource.Type
    SET: Resource.Type
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SCALAR_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: Resource.Type
    scalar: float
    ranges: _containers.RepeatedCompositeFieldContainer[Range]
    items: _containers.RepeatedScalarFieldContainer[str]
    role: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[Resource.Type, str]] = ..., scalar: _Optional[float] = ..., ranges: _Optional[_Iterable[_Union[Range, _Mapping]]] = ..., items: _Optional[_Iterable[str]] = ..., role: _Optional[str] = ...) -> None: ...

class Attribute(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class AgentInfo(_message.Message):
    __slots__ = ("id", "hostname", "resources", "attributes", "http_address", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    HTTP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    hostname: str
    resources: _containers.RepeatedCompositeFieldContainer[Resource]
    attributes: _containers.RepeatedCompositeFieldContainer[Attribute]
    http_address: str
    version: str
    def __init__(self, id: _Optional[str] = ..., hostname: _Optional[str] = ..., resources: _Optional[_Iterable[_Union[Resource, _Mapping]]] = ..., attributes: _Optional[_Iterable[_Union[Attribute, _Mapping]]] = ..., http_address: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class FrameworkInfo(_message.Message):
    __slots__ = ("id", "name", "roles", "principal", "failover_timeout", "capabilities", "user", "hostname")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    FAILOVER_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    principal: str
    failover_timeout: float
    capabilities: _containers.RepeatedScalarFieldContainer[Capability]
    user: str
    hostname: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., principal: _Optional[str] = ..., failover_timeout: _Optional[float] = ..., capabilities: _Optional[_Iterable[_Union[Capability, str]]] = ..., user: _Optional[str] = ..., hostname: _Optional[str] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("id", "framework_id", "agent_id", "hostname", "resources", "attributes", "role", "reservations", "volumes")
    ID_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    id: str
    framework_id: str
    agent_id: str
    hostname: str
    resources: _containers.RepeatedCompositeFieldContainer[Resource]
    attributes: _containers.RepeatedCompositeFieldContainer[Attribute]
    role: str
    reservations: _containers.RepeatedCompositeFieldContainer[Reservation]
    volumes: _containers.RepeatedCompositeFieldContainer[Volume]
    def __init__(self, id: _Optional[str] = ..., framework_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., hostname: _Optional[str] = ..., resources: _Optional[_Iterable[_Union[Resource, _Mapping]]] = ..., attributes: _Optional[_Iterable[_Union[Attribute, _Mapping]]] = ..., role: _Optional[str] = ..., reservations: _Optional[_Iterable[_Union[Reservation, _Mapping]]] = ..., volumes: _Optional[_Iterable[_Union[Volume, _Mapping]]] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("role", "principal", "labels", "resources")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    role: str
    principal: str
    labels: _containers.ScalarMap[str, str]
    resources: _containers.RepeatedCompositeFieldContainer[Resource]
    def __init__(self, role: _Optional[str] = ..., principal: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., resources: _Optional[_Iterable[_Union[Resource, _Mapping]]] = ...) -> None: ...

class Volume(_message.Message):
    __slots__ = ("persistence_id", "role", "size", "container_path", "principal", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PERSISTENCE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_PATH_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    persistence_id: str
    role: str
    size: float
    container_path: str
    principal: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, persistence_id: _Optional[str] = ..., role: _Optional[str] = ..., size: _Optional[float] = ..., container_path: _Optional[str] = ..., principal: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CommandInfo(_message.Message):
    __slots__ = ("shell", "value", "arguments", "environment", "user")
    class EnvironmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SHELL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    shell: bool
    value: str
    arguments: _containers.RepeatedScalarFieldContainer[str]
    environment: _containers.ScalarMap[str, str]
    user: str
    def __init__(self, shell: _Optional[bool] = ..., value: _Optional[str] = ..., arguments: _Optional[_Iterable[str]] = ..., environment: _Optional[_Mapping[str, str]] = ..., user: _Optional[str] = ...) -> None: ...

class ContainerInfo(_message.Message):
    __slots__ = ("type", "docker")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        MESOS: _ClassVar[ContainerInfo.Type]
        DOCKER: _ClassVar[ContainerInfo.Type]
    MESOS: ContainerInfo.Type
    DOCKER: ContainerInfo.Type
    class DockerInfo(_message.Message):
        __slots__ = ("image", "force_pull_image", "port_mappings")
        class PortMapping(_message.Message):
            __slots__ = ("host_port", "container_port", "protocol")
            HOST_PORT_FIELD_NUMBER: _ClassVar[int]
            CONTAINER_PORT_FIELD_NUMBER: _ClassVar[int]
            PROTOCOL_FIELD_NUMBER: _ClassVar[int]
            host_port: int
            container_port: int
            protocol: str
            def __init__(self, host_port: _Optional[int] = ..., container_port: _Optional[int] = ..., protocol: _Optional[str] = ...) -> None: ...
        IMAGE_FIELD_NUMBER: _ClassVar[int]
        FORCE_PULL_IMAGE_FIELD_NUMBER: _ClassVar[int]
        PORT_MAPPINGS_FIELD_NUMBER: _ClassVar[int]
        image: str
        force_pull_image: bool
        port_mappings: _containers.RepeatedCompositeFieldContainer[ContainerInfo.DockerInfo.PortMapping]
        def __init__(self, image: _Optional[str] = ..., force_pull_image: _Optional[bool] = ..., port_mappings: _Optional[_Iterable[_Union[ContainerInfo.DockerInfo.PortMapping, _Mapping]]] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DOCKER_FIELD_NUMBER: _ClassVar[int]
    type: ContainerInfo.Type
    docker: ContainerInfo.DockerInfo
    def __init__(self, type: _Optional[_Union[ContainerInfo.Type, str]] = ..., docker: _Optional[_Union[ContainerInfo.DockerInfo, _Mapping]] = ...) -> None: ...

class TaskInfo(_message.Message):
    __slots__ = ("name", "task_id", "agent_id", "resources", "command", "container", "labels", "kill_grace_period", "executor", "volumes")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    KILL_GRACE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    name: str
    task_id: str
    agent_id: str
    resources: _containers.RepeatedCompositeFieldContainer[Resource]
    command: CommandInfo
    container: ContainerInfo
    labels: _containers.ScalarMap[str, str]
    kill_grace_period: float
    executor: ExecutorInfo
    volumes: _containers.RepeatedCompositeFieldContainer[Volume]
    def __init__(self, name: _Optional[str] = ..., task_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., resources: _Optional[_Iterable[_Union[Resource, _Mapping]]] = ..., command: _Optional[_Union[CommandInfo, _Mapping]] = ..., container: _Optional[_Union[ContainerInfo, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., kill_grace_period: _Optional[float] = ..., executor: _Optional[_Union[ExecutorInfo, _Mapping]] = ..., volumes: _Optional[_Iterable[_Union[Volume, _Mapping]]] = ...) -> None: ...

class ExecutorInfo(_message.Message):
    __slots__ = ("executor_id", "name", "command", "resources")
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    executor_id: str
    name: str
    command: CommandInfo
    resources: _containers.RepeatedCompositeFieldContainer[Resource]
    def __init__(self, executor_id: _Optional[str] = ..., name: _Optional[str] = ..., command: _Optional[_Union[CommandInfo, _Mapping]] = ..., resources: _Optional[_Iterable[_Union[Resource, _Mapping]]] = ...) -> None: ...

class TaskStatus(_message.Message):
    __slots__ = ("task_id", "state", "message", "source", "reason", "agent_id", "uuid", "healthy", "timestamp", "exit_code")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    state: TaskState
    message: str
    source: TaskSource
    reason: TaskReason
    agent_id: str
    uuid: bytes
    healthy: bool
    timestamp: float
    exit_code: int
    def __init__(self, task_id: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., message: _Optional[str] = ..., source: _Optional[_Union[TaskSource, str]] = ..., reason: _Optional[_Union[TaskReason, str]] = ..., agent_id: _Optional[str] = ..., uuid: _Optional[bytes] = ..., healthy: _Optional[bool] = ..., timestamp: _Optional[float] = ..., exit_code: _Optional[int] = ...) -> None: ...

class MasterInfo(_message.Message):
    __slots__ = ("id", "hostname", "grpc_address", "http_address", "version", "start_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    GRPC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HTTP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    hostname: str
    grpc_address: str
    http_address: str
    version: str
    start_time: float
    def __init__(self, id: _Optional[str] = ..., hostname: _Optional[str] = ..., grpc_address: _Optional[str] = ..., http_address: _Optional[str] = ..., version: _Optional[str] = ..., start_time: _Optional[float] = ...) -> None: ...
