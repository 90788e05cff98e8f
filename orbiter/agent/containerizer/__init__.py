"""Containerizers: how the agent turns a TaskInfo into something running."""

from .base import Container, Containerizer, LaunchError, Termination
from .null import NullContainer, NullContainerizer
from .process import ProcessContainer, ProcessContainerizer

__all__ = [
    "Container",
    "Containerizer",
    "LaunchError",
    "NullContainer",
    "NullContainerizer",
    "ProcessContainer",
    "ProcessContainerizer",
    "Termination",
]
