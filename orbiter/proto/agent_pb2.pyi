from orbiter.proto import messages_pb2 as _messages_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FrameworkMessage(_message.Message):
    __slots__ = ("framework_id", "executor_id", "data")
    FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    framework_id: str
    executor_id: str
    data: bytes
    def __init__(self, framework_id: _Optional[str] = ..., executor_id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class TaskRecord(_message.Message):
    __slots__ = ("framework_id", "task", "state")
    FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    framework_id: str
    task: _messages_pb2.TaskInfo
    state: _messages_pb2.TaskState
    def __init__(self, framework_id: _Optional[str] = ..., task: _Optional[_Union[_messages_pb2.TaskInfo, _Mapping]] = ..., state: _Optional[_Union[_messages_pb2.TaskState, str]] = ...) -> None: ...

class ExecutorRecord(_message.Message):
    __slots__ = ("framework_id", "executor")
    FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    framework_id: str
    executor: _messages_pb2.ExecutorInfo
    def __init__(self, framework_id: _Optional[str] = ..., executor: _Optional[_Union[_messages_pb2.ExecutorInfo, _Mapping]] = ...) -> None: ...

class StatusUpdate(_message.Message):
    __slots__ = ("framework_id", "status")
    FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    framework_id: str
    status: _messages_pb2.TaskStatus
    def __init__(self, framework_id: _Optional[str] = ..., status: _Optional[_Union[_messages_pb2.TaskStatus, _Mapping]] = ...) -> None: ...

class AgentMessage(_message.Message):
    __slots__ = ("register", "heartbeat", "status_updates", "framework_message", "executor_exited")
    class Register(_message.Message):
        __slots__ = ("info", "tasks", "executors", "volumes")
        INFO_FIELD_NUMBER: _ClassVar[int]
        TASKS_FIELD_NUMBER: _ClassVar[int]
        EXECUTORS_FIELD_NUMBER: _ClassVar[int]
        VOLUMES_FIELD_NUMBER: _ClassVar[int]
        info: _messages_pb2.AgentInfo
        tasks: _containers.RepeatedCompositeFieldContainer[TaskRecord]
        executors: _containers.RepeatedCompositeFieldContainer[ExecutorRecord]
        volumes: _containers.RepeatedCompositeFieldContainer[_messages_pb2.Volume]
        def __init__(self, info: _Optional[_Union[_messages_pb2.AgentInfo, _Mapping]] = ..., tasks: _Optional[_Iterable[_Union[TaskRecord, _Mapping]]] = ..., executors: _Optional[_Iterable[_Union[ExecutorRecord, _Mapping]]] = ..., volumes: _Optional[_Iterable[_Union[_messages_pb2.Volume, _Mapping]]] = ...) -> None: ...
    class Heartbeat(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class StatusUpdates(_message.Message):
        __slots__ = ("updates",)
        UPDATES_FIELD_NUMBER: _ClassVar[int]
        updates: _containers.RepeatedCompositeFieldContainer[StatusUpdate]
        def __init__(self, updates: _Optional[_Iterable[_Union[StatusUpdate, _Mapping]]] = ...) -> None: ...
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STATUS_UPDATES_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_EXITED_FIELD_NUMBER: _ClassVar[int]
    register: AgentMessage.Register
    heartbeat: AgentMessage.Heartbeat
    status_updates: AgentMessage.StatusUpdates
    framework_message: FrameworkMessage
    executor_exited: ExecutorExited
    def __init__(self, register: _Optional[_Union[AgentMessage.Register, _Mapping]] = ..., heartbeat: _Optional[_Union[AgentMessage.Heartbeat, _Mapping]] = ..., status_updates: _Optional[_Union[AgentMessage.StatusUpdates, _Mapping]] = ..., framework_message: _Optional[_Union[FrameworkMessage, _Mapping]] = ..., executor_exited: _Optional[_Union[ExecutorExited, _Mapping]] = ...) -> None: ...

class ExecutorExited(_message.Message):
    __slots__ = ("framework_id", "executor_id", "message", "status")
    FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    framework_id: str
    executor_id: str
    message: str
    status: int
    def __init__(self, framework_id: _Optional[str] = ..., executor_id: _Optional[str] = ..., message: _Optional[str] = ..., status: _Optional[int] = ...) -> None: ...

class MasterMessage(_message.Message):
    __slots__ = ("registered", "run_tasks", "kill_tasks", "status_acks", "shutdown", "resend_updates", "framework_message", "volumes")
    class Registered(_message.Message):
        __slots__ = ("agent_id", "heartbeat_interval_seconds", "master_info")
        AGENT_ID_FIELD_NUMBER: _ClassVar[int]
        HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
        MASTER_INFO_FIELD_NUMBER: _ClassVar[int]
        agent_id: str
        heartbeat_interval_seconds: float
        master_info: _messages_pb2.MasterInfo
        def __init__(self, agent_id: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[float] = ..., master_info: _Optional[_Union[_messages_pb2.MasterInfo, _Mapping]] = ...) -> None: ...
    class RunTasks(_message.Message):
        __slots__ = ("framework_id", "framework", "tasks")
        FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
        FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
        TASKS_FIELD_NUMBER: _ClassVar[int]
        framework_id: str
        framework: _messages_pb2.FrameworkInfo
        tasks: _containers.RepeatedCompositeFieldContainer[_messages_pb2.TaskInfo]
        def __init__(self, framework_id: _Optional[str] = ..., framework: _Optional[_Union[_messages_pb2.FrameworkInfo, _Mapping]] = ..., tasks: _Optional[_Iterable[_Union[_messages_pb2.TaskInfo, _Mapping]]] = ...) -> None: ...
    class KillTask(_message.Message):
        __slots__ = ("framework_id", "task_id", "grace_period", "reason")
        FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
        TASK_ID_FIELD_NUMBER: _ClassVar[int]
        GRACE_PERIOD_FIELD_NUMBER: _ClassVar[int]
        REASON_FIELD_NUMBER: _ClassVar[int]
        framework_id: str
        task_id: str
        grace_period: float
        reason: _messages_pb2.TaskReason
        def __init__(self, framework_id: _Optional[str] = ..., task_id: _Optional[str] = ..., grace_period: _Optional[float] = ..., reason: _Optional[_Union[_messages_pb2.TaskReason, str]] = ...) -> None: ...
    class KillTasks(_message.Message):
        __slots__ = ("kills",)
        KILLS_FIELD_NUMBER: _ClassVar[int]
        kills: _containers.RepeatedCompositeFieldContainer[MasterMessage.KillTask]
        def __init__(self, kills: _Optional[_Iterable[_Union[MasterMessage.KillTask, _Mapping]]] = ...) -> None: ...
    class StatusAck(_message.Message):
        __slots__ = ("framework_id", "task_id", "uuid")
        FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
        TASK_ID_FIELD_NUMBER: _ClassVar[int]
        UUID_FIELD_NUMBER: _ClassVar[int]
        framework_id: str
        task_id: str
        uuid: bytes
        def __init__(self, framework_id: _Optional[str] = ..., task_id: _Optional[str] = ..., uuid: _Optional[bytes] = ...) -> None: ...
    class StatusAcks(_message.Message):
        __slots__ = ("acks",)
        ACKS_FIELD_NUMBER: _ClassVar[int]
        acks: _containers.RepeatedCompositeFieldContainer[MasterMessage.StatusAck]
        def __init__(self, acks: _Optional[_Iterable[_Union[MasterMessage.StatusAck, _Mapping]]] = ...) -> None: ...
    class Shutdown(_message.Message):
        __slots__ = ("message",)
        MESSAGE_FIELD_NUMBER: _ClassVar[int]
        message: str
        def __init__(self, message: _Optional[str] = ...) -> None: ...
    class ResendUpdates(_message.Message):
        __slots__ = ("framework_id",)
        FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
        framework_id: str
        def __init__(self, framework_id: _Optional[str] = ...) -> None: ...
    class Volumes(_message.Message):
        __slots__ = ("volumes",)
        VOLUMES_FIELD_NUMBER: _ClassVar[int]
        volumes: _containers.RepeatedCompositeFieldContainer[_messages_pb2.Volume]
        def __init__(self, volumes: _Optional[_Iterable[_Union[_messages_pb2.Volume, _Mapping]]] = ...) -> None: ...
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    RUN_TASKS_FIELD_NUMBER: _ClassVar[int]
    KILL_TASKS_FIELD_NUMBER: _ClassVar[int]
    STATUS_ACKS_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    RESEND_UPDATES_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    registered: MasterMessage.Registered
    run_tasks: MasterMessage.RunTasks
    kill_tasks: MasterMessage.KillTasks
    status_acks: MasterMessage.StatusAcks
    shutdown: MasterMessage.Shutdown
    resend_updates: MasterMessage.ResendUpdates
    framework_message: FrameworkMessage
    volumes: MasterMessage.Volumes
    def __init__(self, registered: _Optional[_Union[MasterMessage.Registered, _Mapping]] = ..., run_tasks: _Optional[_Union[MasterMessage.RunTasks, _Mapping]] = ..., kill_tasks: _Optional[_Union[MasterMessage.KillTasks, _Mapping]] = ..., status_acks: _Optional[_Union[MasterMessage.StatusAcks, _Mapping]] = ..., shutdown: _Optional[_Union[MasterMessage.Shutdown, _Mapping]] = ..., resend_updates: _Optional[_Union[MasterMessage.ResendUpdates, _Mapping]] = ..., framework_message: _Optional[_Union[FrameworkMessage, _Mapping]] = ..., volumes: _Optional[_Union[MasterMessage.Volumes, _Mapping]] = ...) -> None: ...

class TaskCheckpoint(_message.Message):
    __slots__ = ("framework_id", "task", "pid", "terminal")
    FRAMEWORK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    framework_id: str
    task: _messages_pb2.TaskInfo
    pid: int
    terminal: _messages_pb2.TaskStatus
    def __init__(self, framework_id: _Optional[str] = ..., task: _Optional[_Union[_messages_pb2.TaskInfo, _Mapping]] = ..., pid: _Optional[int] = ..., terminal: _Optional[_Union[_messages_pb2.TaskStatus, _Mapping]] = ...) -> None: ...

class KeeperRequest(_message.Message):
    __slots__ = ("id", "hello", "launch", "signal", "forget", "retire")
    class Launch(_message.Message):
        __slots__ = ("key", "executable", "argv", "env", "cwd", "stdout", "stderr", "uid", "gid", "groups", "cgroups", "rlimit_as", "rlimit_nproc", "log_cap")
        class EnvEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: str
            def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
        KEY_FIELD_NUMBER: _ClassVar[int]
        EXECUTABLE_FIELD_NUMBER: _ClassVar[int]
        ARGV_FIELD_NUMBER: _ClassVar[int]
        ENV_FIELD_NUMBER: _ClassVar[int]
        CWD_FIELD_NUMBER: _ClassVar[int]
        STDOUT_FIELD_NUMBER: _ClassVar[int]
        STDERR_FIELD_NUMBER: _ClassVar[int]
        UID_FIELD_NUMBER: _ClassVar[int]
        GID_FIELD_NUMBER: _ClassVar[int]
        GROUPS_FIELD_NUMBER: _ClassVar[int]
        CGROUPS_FIELD_NUMBER: _ClassVar[int]
        RLIMIT_AS_FIELD_NUMBER: _ClassVar[int]
        RLIMIT_NPROC_FIELD_NUMBER: _ClassVar[int]
        LOG_CAP_FIELD_NUMBER: _ClassVar[int]
        key: str
        executable: str
        argv: _containers.RepeatedScalarFieldContainer[str]
        env: _containers.ScalarMap[str, str]
        cwd: str
        stdout: str
        stderr: str
        uid: int
        gid: int
        groups: _containers.RepeatedScalarFieldContainer[int]
        cgroups: _containers.RepeatedScalarFieldContainer[str]
        rlimit_as: int
        rlimit_nproc: int
        log_cap: int
        def __init__(self, key: _Optional[str] = ..., executable: _Optional[str] = ..., argv: _Optional[_Iterable[str]] = ..., env: _Optional[_Mapping[str, str]] = ..., cwd: _Optional[str] = ..., stdout: _Optional[str] = ..., stderr: _Optional[str] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., groups: _Optional[_Iterable[int]] = ..., cgroups: _Optional[_Iterable[str]] = ..., rlimit_as: _Optional[int] = ..., rlimit_nproc: _Optional[int] = ..., log_cap: _Optional[int] = ...) -> None: ...
    class Signal(_message.Message):
        __slots__ = ("key", "signal")
        KEY_FIELD_NUMBER: _ClassVar[int]
        SIGNAL_FIELD_NUMBER: _ClassVar[int]
        key: str
        signal: int
        def __init__(self, key: _Optional[str] = ..., signal: _Optional[int] = ...) -> None: ...
    class Forget(_message.Message):
        __slots__ = ("key",)
        KEY_FIELD_NUMBER: _ClassVar[int]
        key: str
        def __init__(self, key: _Optional[str] = ...) -> None: ...
    class Hello(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class Retire(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    LAUNCH_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    FORGET_FIELD_NUMBER: _ClassVar[int]
    RETIRE_FIELD_NUMBER: _ClassVar[int]
    id: int
    hello: KeeperRequest.Hello
    launch: KeeperRequest.Launch
    signal: KeeperRequest.Signal
    forget: KeeperRequest.Forget
    retire: KeeperRequest.Retire
    def __init__(self, id: _Optional[int] = ..., hello: _Optional[_Union[KeeperRequest.Hello, _Mapping]] = ..., launch: _Optional[_Union[KeeperRequest.Launch, _Mapping]] = ..., signal: _Optional[_Union[KeeperRequest.Signal, _Mapping]] = ..., forget: _Optional[_Union[KeeperRequest.Forget, _Mapping]] = ..., retire: _Optional[_Union[KeeperRequest.Retire, _Mapping]] = ...) -> None: ...

class KeptTask(_message.Message):
    __slots__ = ("key", "pid", "start_time", "returncode")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    RETURNCODE_FIELD_NUMBER: _ClassVar[int]
    key: str
    pid: int
    start_time: float
    returncode: int
    def __init__(self, key: _Optional[str] = ..., pid: _Optional[int] = ..., start_time: _Optional[float] = ..., returncode: _Optional[int] = ...) -> None: ...

class KeeperEvent(_message.Message):
    __slots__ = ("reply", "exited")
    class Reply(_message.Message):
        __slots__ = ("id", "error", "tasks")
        ID_FIELD_NUMBER: _ClassVar[int]
        ERROR_FIELD_NUMBER: _ClassVar[int]
        TASKS_FIELD_NUMBER: _ClassVar[int]
        id: int
        error: str
        tasks: _containers.RepeatedCompositeFieldContainer[KeptTask]
        def __init__(self, id: _Optional[int] = ..., error: _Optional[str] = ..., tasks: _Optional[_Iterable[_Union[KeptTask, _Mapping]]] = ...) -> None: ...
    class Exited(_message.Message):
        __slots__ = ("task",)
        TASK_FIELD_NUMBER: _ClassVar[int]
        task: KeptTask
        def __init__(self, task: _Optional[_Union[KeptTask, _Mapping]] = ...) -> None: ...
    REPLY_FIELD_NUMBER: _ClassVar[int]
    EXITED_FIELD_NUMBER: _ClassVar[int]
    reply: KeeperEvent.Reply
    exited: KeeperEvent.Exited
    def __init__(self, reply: _Optional[_Union[KeeperEvent.Reply, _Mapping]] = ..., exited: _Optional[_Union[KeeperEvent.Exited, _Mapping]] = ...) -> None: ...
