"""What the master's state machine asks its shell to do.

The state machine never touches a socket or a disk; it returns these in the
order they must happen. The shell carries them out one after another, so a
`PersistRegistry` completes before any message that follows it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from orbiter.proto import agent_pb2, scheduler_pb2


@dataclass(frozen=True, slots=True)
class SendToAgent:
    agent_id: str
    message: agent_pb2.MasterMessage


@dataclass(frozen=True, slots=True)
class SendToFramework:
    framework_id: str
    event: scheduler_pb2.Event


@dataclass(frozen=True, slots=True)
class CloseFrameworkStream:
    """End a framework's event stream (failed over, torn down); `stream_id` names which one."""

    framework_id: str
    stream_id: str
    message: str


@dataclass(frozen=True, slots=True)
class CloseAgentLink:
    """End an agent's link (replaced by a newer link, or the agent was removed)."""

    agent_id: str
    link_id: int
    message: str
    # Tell the agent to stop rather than reconnect (it was removed).
    shutdown: bool = False


@dataclass(frozen=True, slots=True)
class PersistRegistry:
    """Write the registry snapshot before carrying out any later effect."""

    version: int


Effect = SendToAgent | SendToFramework | CloseFrameworkStream | CloseAgentLink | PersistRegistry
