"""The master's half of the event archive: what happened to tasks and agents, to Elasticsearch.

Satellite archives samples, alerts and its own decisions; the master knows the
rest, so the leading master runs an `Archive` with only the Elasticsearch sink
(its own spool: `<spool dir>/master`, so it never shares one with Satellite):

- every task status update as frameworks get it (`task_status`: task, framework,
  agent, state, the agent's message and reason);
- the master's cluster events: agents registered, unreachable, back, removed
  (`agent`); deactivations, drains, reactivations and pins with who asked and why
  (`maintenance`, principal `operator` or `satellite`); silences (`operator`).

Mapping effects and events to archive documents is pure; `MasterArchive` offers
them (which only queues) and owns the sink's start and stop.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry

from orbiter.master.effects import Effect, SendToFramework
from orbiter.master.state import ClusterEvent
from orbiter.proto import messages_pb2, scheduler_pb2
from orbiter.satellite.archive import Archive, ArchiveConfig, ArchiveEvent

_KIND_OF = {
    "agent_registered": "agent",
    "agent_reregistered": "agent",
    "agent_unreachable": "agent",
    "agent_removed": "agent",
    "maintenance": "maintenance",
    "silence": "operator",
    "quota": "operator",
}


def task_events(effect: Effect, now: float) -> list[ArchiveEvent]:
    """The status updates an effect carries to a framework, as archive documents."""
    if not isinstance(effect, SendToFramework) or effect.event.type != scheduler_pb2.Event.UPDATE:
        return []
    out = []
    for status in effect.event.update.statuses:
        state = messages_pb2.TaskState.Name(status.state)
        reason = messages_pb2.TaskReason.Name(status.reason) if status.reason else ""
        detail = f": {status.message}" if status.message else ""
        out.append(
            ArchiveEvent(
                status.timestamp or now,
                "task_status",
                f"task {status.task_id} {state}{detail}",
                agent_id=status.agent_id,
                framework_id=effect.framework_id,
                task_id=status.task_id,
                state=state,
                labels={"reason": reason} if reason else {},
            )
        )
    return out


def cluster_event(event: ClusterEvent) -> ArchiveEvent:
    return ArchiveEvent(
        event.time,
        _KIND_OF.get(event.kind, "agent"),
        event.message,
        agent_id=event.agent_id,
        action=event.kind,
        principal=event.principal or event.by,
    )


class MasterArchive:
    def __init__(self, cfg: ArchiveConfig, work_dir: Path, registry: CollectorRegistry) -> None:
        spool = replace(cfg.spool, directory=cfg.spool.path(work_dir) / "master")
        self.archive = Archive(
            ArchiveConfig(elasticsearch=cfg.elasticsearch, spool=spool), work_dir, registry
        )

    def effects(self, effects: list[Effect], now: float) -> None:
        for effect in effects:
            for event in task_events(effect, now):
                self.archive.offer_event(event)

    def events(self, events: list[ClusterEvent]) -> None:
        for event in events:
            self.archive.offer_event(cluster_event(event))

    async def start(self) -> None:
        await self.archive.start()

    async def stop(self) -> None:
        await self.archive.stop()
