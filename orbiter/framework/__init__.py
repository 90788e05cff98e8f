"""The scheduler and executor SDKs and the built-in command framework behind `orbiter execute`."""

from orbiter.framework.driver import (
    CallError,
    Scheduler,
    SchedulerDriver,
    executor_info,
    task_info,
)
from orbiter.framework.executor import Executor, ExecutorDriver, NotUnderAgent, update

__all__ = [
    "CallError",
    "Executor",
    "ExecutorDriver",
    "NotUnderAgent",
    "Scheduler",
    "SchedulerDriver",
    "executor_info",
    "task_info",
    "update",
]
