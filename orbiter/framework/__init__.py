"""The scheduler SDK and the built-in command framework behind `orbiter execute`."""

from orbiter.framework.driver import CallError, Scheduler, SchedulerDriver, task_info

__all__ = ["CallError", "Scheduler", "SchedulerDriver", "task_info"]
