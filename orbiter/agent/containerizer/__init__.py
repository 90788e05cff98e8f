"""Containerizers: how the agent turns a TaskInfo into something running.

An agent runs `process` (or `null`, for scale tests) for plain tasks and,
with `docker` among its containerizers, Docker for tasks whose container is
DOCKER. The docker module (and the docker SDK) is imported only by agents
that use it.
"""

from orbiter.proto import messages_pb2

from .base import Container, Containerizer, LaunchError, Termination
from .null import NullContainer, NullContainerizer
from .process import ProcessContainer, ProcessContainerizer

pb = messages_pb2
KNOWN = ("process", "docker", "null")


def parse_containerizers(text: str) -> tuple[str, ...]:
    """`process,docker` -> ("process", "docker"); ValueError naming what is wrong.

    Exactly one of `process` and `null` runs plain tasks; `docker` is optional.
    """
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for name in names:
        if name not in KNOWN:
            raise ValueError(f"unknown containerizer {name!r}; choose from {', '.join(KNOWN)}")
    if len(set(names)) != len(names):
        raise ValueError(f"a containerizer is named twice in {text!r}")
    plain = [n for n in names if n in ("process", "null")]
    if len(plain) > 1:
        raise ValueError("give one of 'process' and 'null', not both")
    if not plain:
        names = ("process", *names)
    return names


def is_docker_task(task: pb.TaskInfo) -> bool:
    """Does the task ask for a Docker container (and so the docker containerizer)?"""
    return task.HasField("container") and task.container.type == pb.ContainerInfo.DOCKER


__all__ = [
    "KNOWN",
    "Container",
    "Containerizer",
    "LaunchError",
    "NullContainer",
    "NullContainerizer",
    "ProcessContainer",
    "ProcessContainerizer",
    "Termination",
    "is_docker_task",
    "parse_containerizers",
]
