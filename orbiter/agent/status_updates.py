"""Reliable delivery of task status updates, sans I/O.

Per task, updates form a queue; only the head is in flight. The head is
(re)sent until the master passes back the framework's acknowledgement for
its uuid, then the next update goes. Retries back off from `retry_min` to
`retry_max`. A reconnect makes every head due again at once. The agent
checkpoints each task's terminal update until it is acknowledged, so a
restarted agent resends it (earlier updates are superseded by it).
"""

from __future__ import annotations

import uuid as uuidlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from orbiter.proto import agent_pb2, messages_pb2


@dataclass(slots=True)
class _Stream:
    framework_id: str
    queue: deque[messages_pb2.TaskStatus] = field(default_factory=deque)
    next_send: float = 0.0
    backoff: float = 0.0


class StatusUpdateManager:
    def __init__(self, retry_min: float = 10.0, retry_max: float = 600.0) -> None:
        self.retry_min = retry_min
        self.retry_max = retry_max
        # Keyed by (framework id, task id): task ids are unique only within a framework.
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._due: set[tuple[str, str]] = set()

    def add(self, framework_id: str, status: messages_pb2.TaskStatus) -> messages_pb2.TaskStatus:
        """Queue an update; gives it a fresh uuid if it has none. Returns the queued status."""
        if not status.uuid:
            status.uuid = uuidlib.uuid4().bytes
        key = (framework_id, status.task_id)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(framework_id)
        stream.queue.append(status)
        if len(stream.queue) == 1:
            stream.next_send = 0.0
            stream.backoff = 0.0
            self._due.add(key)
        return status

    def acknowledge(
        self, framework_id: str, task_id: str, uuid: bytes
    ) -> messages_pb2.TaskStatus | None:
        """Drop the head update if `uuid` is its; returns it, or None for a stale ack."""
        key = (framework_id, task_id)
        stream = self._streams.get(key)
        if stream is None or not stream.queue or stream.queue[0].uuid != uuid:
            return None
        acked = stream.queue.popleft()
        if stream.queue:
            stream.next_send = 0.0
            stream.backoff = 0.0
            self._due.add(key)
        else:
            del self._streams[key]
            self._due.discard(key)
        return acked

    def due(self, now: float) -> list[agent_pb2.StatusUpdate]:
        """Heads to send now; each is scheduled for its next retry."""
        out: list[agent_pb2.StatusUpdate] = []
        for stream in self._streams.values():
            if stream.next_send <= now and stream.queue:
                out.append(
                    agent_pb2.StatusUpdate(framework_id=stream.framework_id, status=stream.queue[0])
                )
                stream.backoff = (
                    self.retry_min
                    if stream.backoff == 0
                    else min(stream.backoff * 2, self.retry_max)
                )
                stream.next_send = now + stream.backoff
        self._due.clear()
        return out

    def has_due(self, now: float) -> bool:
        """Cheap check for the send loop: is anything new waiting?"""
        return bool(self._due)

    def next_retry(self) -> float | None:
        times = [s.next_send for s in self._streams.values() if s.queue]
        return min(times) if times else None

    def resend_all(self) -> None:
        """After a reconnect: every head is due now."""
        for framework_id in {s.framework_id for s in self._streams.values()}:
            self.resend_framework(framework_id)

    def resend_framework(self, framework_id: str) -> None:
        """The framework (re)subscribed: its heads are due now, their backoff starts over."""
        for key, stream in self._streams.items():
            if stream.framework_id == framework_id:
                stream.next_send = 0.0
                stream.backoff = 0.0
                self._due.add(key)

    def pending(self) -> Iterable[tuple[str, messages_pb2.TaskStatus]]:
        for stream in self._streams.values():
            for status in stream.queue:
                yield stream.framework_id, status

    def holds(self, framework_id: str, uuid: bytes) -> bool:
        """Is an update with this uuid queued (not yet acknowledged)?"""
        return any(
            st.uuid == uuid
            for stream in self._streams.values()
            if stream.framework_id == framework_id
            for st in stream.queue
        )

    def unacknowledged(self, framework_id: str, task_id: str) -> int:
        stream = self._streams.get((framework_id, task_id))
        return len(stream.queue) if stream else 0

    def __len__(self) -> int:
        return sum(len(s.queue) for s in self._streams.values())
