"""Facts about task states that the master, the agents and the SDK must agree on."""

from __future__ import annotations

from orbiter.proto.messages_pb2 import TaskState as TS

TERMINAL_STATES = frozenset(
    {
        TS.TASK_FINISHED,
        TS.TASK_FAILED,
        TS.TASK_KILLED,
        TS.TASK_ERROR,
        TS.TASK_LOST,
        TS.TASK_DROPPED,
        TS.TASK_GONE,
        TS.TASK_GONE_BY_OPERATOR,
    }
)
"""States a task never leaves; its resources are free again."""

KNOWN_STATES = frozenset(v for v in TS.values() if v != TS.TASK_STATE_UNSPECIFIED)
"""Every state a status update may carry."""
