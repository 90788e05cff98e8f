"""The master's state machine: events in, effects out, no I/O.

Every public method takes the event's data and `now` (seconds), updates the
master's view of agents, frameworks, tasks and offers, and returns the
effects the shell must carry out in order. A method that refuses its input
raises an `OrbiterError` and leaves the state exactly as it was: all
validation happens before the first change.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from orbiter import roles as role_names
from orbiter.alerts import silences
from orbiter.durations import time_left
from orbiter.errors import (
    Code,
    InvalidCall,
    OrbiterError,
    RegistrationRefused,
    StaleStream,
    UnknownAgent,
    UnknownFramework,
    UnknownOffer,
)
from orbiter.master import limits as caps
from orbiter.master import quota as quota_rules
from orbiter.master import reservations as resv
from orbiter.master.allocator import AgentView, FrameworkView, OfferFilter, allocate
from orbiter.master.effects import (
    CloseAgentLink,
    CloseFrameworkStream,
    Effect,
    PersistRegistry,
    SendToAgent,
    SendToFramework,
)
from orbiter.proto import agent_pb2, master_pb2, messages_pb2, scheduler_pb2
from orbiter.resources import InvalidResources, Resources
from orbiter.security import acl
from orbiter.taskstates import KNOWN_STATES, TERMINAL_STATES

if TYPE_CHECKING:
    from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

pb = messages_pb2
TS = pb.TaskState


DEFAULT_ROLE = "*"
DEFAULT_REFUSE_SECONDS = 5.0
COMPLETED_TASKS_KEPT = 1000
TASK_HISTORY_KEPT = 20
# Task, executor and persistence ids name directories on the agent (sandboxes, volumes):
# "." and ".." would name the directory above, as Mesos's validateID also refuses.
TASK_ID_RE = re.compile(r"^(?!\.\.?$)[A-Za-z0-9_.:@-]{1,200}$")
ID_RULE = "use 1-200 of A-Z a-z 0-9 _ . : @ - ('.' and '..' are not ids)"
MAX_FRAMEWORK_MESSAGE = 4 * 1024 * 1024


class AgentStatus(Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # link lost; waiting for it to come back
    RECOVERING = "recovering"  # known from the registry after a master restart
    UNREACHABLE = "unreachable"
    GONE = "gone"


class FrameworkStatus(Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class MasterConfig:
    offer_timeout: float = 30.0
    agent_heartbeat_interval: float = 5.0
    # An agent silent (or disconnected) this long is marked unreachable.
    agent_timeout: float = 15.0
    framework_heartbeat_interval: float = 15.0
    allocation_interval: float = 1.0
    # After a master restart or failover, agents known from the registry that
    # have not re-registered within this are marked unreachable.
    agent_reregister_timeout: float = 15.0
    # Agents unreachable longer than this are removed for good (Mesos's
    # registry_max_agent_age); 0 keeps them until an operator removes them.
    agent_removal_age: float = 7 * 86400.0
    # Who may register in which roles and run tasks as which users (security.acls).
    acls: acl.Acls = field(default_factory=acl.Acls)
    # Call rates and registry caps (`master:` in the configuration file).
    limits: caps.Limits = field(default_factory=caps.Limits)


GONE_AGENTS_KEPT = 1000
EVENTS_KEPT = 1000


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    """Something an operator wants to read about later: an agent's lifecycle, by whom and why."""

    time: float
    kind: str
    agent_id: str
    message: str
    by: str = ""
    """Who asked, for operator and Satellite actions (the archive's principal)."""
    action: str = ""
    """For an operator's action: deactivate, drain, reactivate, pin, unpin, remove,
    silence add, silence expire (Satellite's decision log shows these beside its own)."""
    principal: str = ""
    """The authenticated principal that asked; "" with authentication off (local)."""


@dataclass(slots=True)
class Task:
    info: pb.TaskInfo
    framework_id: str
    agent_id: str
    role: str
    resources: Resources
    state: int = TS.TASK_STAGING
    status: pb.TaskStatus | None = None
    # uuid of the terminal update; the task is forgotten once it is acknowledged.
    terminal_uuid: bytes = b""
    # A kill that could not be sent yet (agent disconnected); sent when it is back.
    kill_pending: bool = False
    # The updates that changed its state, oldest first (the web UI's task page).
    history: list[pb.TaskStatus] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.info.task_id


def _remember(task: Task, status: pb.TaskStatus) -> None:
    """Keep the update in the task's history: the first ones and the newest, at most 20."""
    if len(task.history) >= TASK_HISTORY_KEPT:
        del task.history[TASK_HISTORY_KEPT // 2]
    task.history.append(status)


@dataclass(frozen=True, slots=True)
class ExecutorUse:
    """A framework's executor on an agent: its resources are in use until it ends,
    however many of its tasks have ended (as in Mesos)."""

    info: pb.ExecutorInfo
    role: str  # "" when its framework is gone: then only the agent's use is counted
    resources: Resources


@dataclass(slots=True)
class Offer:
    id: str
    framework_id: str
    agent_id: str
    role: str
    resources: Resources
    expires: float
    # Persistence ids of the agent's volumes in this offer.
    volumes: tuple[str, ...] = ()


@dataclass(slots=True)
class Agent:
    info: pb.AgentInfo
    total: Resources
    status: AgentStatus
    registered_time: float
    link_id: int = 0
    last_seen: float = 0.0
    used: Resources = field(default_factory=Resources.empty)
    offered: Resources = field(default_factory=Resources.empty)
    # Keyed by (framework id, task id): task ids are unique only within a framework.
    tasks: dict[tuple[str, str], Task] = field(default_factory=dict)
    offers: set[str] = field(default_factory=set)
    maintenance: master_pb2.Maintenance = field(default_factory=master_pb2.Maintenance)
    pin: master_pb2.Pin | None = None
    # When the master marked it unreachable (0: never, or it came back).
    unreachable_since: float = 0.0
    # Tasks whose end the master reported itself (lost while the agent was
    # unreachable): the agent's own later updates for them are dropped, so the
    # framework never sees a second terminal state.
    ended_by_master: set[tuple[str, str]] = field(default_factory=set)
    # Partition-aware frameworks' tasks reported TASK_UNREACHABLE (not an end) while
    # the agent is unreachable: they end (GONE) if it is removed or returns without them.
    unreachable_tasks: dict[tuple[str, str], Task] = field(default_factory=dict)
    # Keyed by (framework id, executor id).
    executors: dict[tuple[str, str], ExecutorUse] = field(default_factory=dict)
    _available: Resources | None = None
    total_quantities: dict[str, float] = field(default_factory=dict)
    # Who registered it ("" with authentication off); only they may register as it.
    principal: str = ""
    # Dynamic reservations, oldest first, and persistent volumes by persistence id;
    # `total` is the agent's static resources with both applied (`resv.effective_total`).
    reservations: list[resv.Reservation] = field(default_factory=list)
    volumes: dict[str, resv.Volume] = field(default_factory=dict)
    # Volumes in use: persistence id -> (framework id, task id); and in an offer -> offer id.
    volume_users: dict[str, tuple[str, str]] = field(default_factory=dict)
    volume_offers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # __init__ assigns total_quantities' default after total: compute it again.
        object.__setattr__(self, "total_quantities", self.total.quantities())

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def mode(self) -> int:
        return self.maintenance.mode

    def apply_reservations(self, static: Resources | None = None) -> None:
        """Set `total` from the static resources (the agent's info by default)."""
        if static is None:
            static = Resources.from_proto(self.info.resources)
        self.total = resv.effective_total(static, self.reservations, self.volumes.values())

    def volumes_message(self) -> agent_pb2.MasterMessage:
        msg = agent_pb2.MasterMessage()
        msg.volumes.volumes.extend(v.to_proto() for v in self.volumes.values())
        return msg

    @property
    def in_service(self) -> bool:
        """Connected and active: the only agents whose resources are offered."""
        return self.status is AgentStatus.CONNECTED and self.mode == master_pb2.ACTIVE

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name in ("total", "used", "offered"):
            # Allocation reads these for every agent many times a second: cache, invalidate here.
            object.__setattr__(self, "_available", None)
            if name == "total":
                object.__setattr__(self, "total_quantities", value.quantities())  # type: ignore[attr-defined]

    @property
    def available(self) -> Resources:
        if self._available is None:
            try:
                self._available = self.total - self.used - self.offered
            except InvalidResources:
                # The agent came back smaller than what its tasks hold: nothing to offer.
                self._available = Resources.empty()
        return self._available


@dataclass(slots=True)
class Framework:
    info: pb.FrameworkInfo
    status: FrameworkStatus
    registered_time: float
    stream_id: str = ""
    disconnected_at: float = 0.0
    # After a master restart, time to resubscribe even with failover_timeout 0.
    recovery_grace: float = 0.0
    tasks: dict[str, Task] = field(default_factory=dict)
    completed: deque[Task] = field(default_factory=lambda: deque(maxlen=COMPLETED_TASKS_KEPT))
    offers: set[str] = field(default_factory=set)
    # Quantities held (offered or used) per role, for DRF. Quantities, not
    # Resources: port ranges of different agents overlap, and a union would
    # lose count of them.
    allocated: dict[str, dict[str, float]] = field(default_factory=dict)
    suppressed_roles: set[str] = field(default_factory=set)
    filters: list[OfferFilter] = field(default_factory=list)
    # Who registered it ("" with authentication off); only they may subscribe as it.
    principal: str = ""

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self.info.roles) or (DEFAULT_ROLE,)

    @property
    def partition_aware(self) -> bool:
        return pb.PARTITION_AWARE in self.info.capabilities

    def add_allocation(self, role: str, resources: Resources) -> None:
        held = self.allocated.setdefault(role, {})
        for name, q in resources.quantities().items():
            held[name] = held.get(name, 0.0) + q

    def remove_allocation(self, role: str, resources: Resources) -> None:
        held = self.allocated.setdefault(role, {})
        for name, q in resources.quantities().items():
            left = held.get(name, 0.0) - q
            # Float sums of thousandths: treat dust as zero.
            held[name] = left if left > 1e-9 else 0.0


@dataclass(slots=True)
class _AcceptPlan:
    """What an Accept's operations would do, built op by op before anything changes."""

    remaining: Resources
    reservations: list[resv.Reservation]
    volumes: dict[str, resv.Volume]
    # Volumes a LAUNCH or DESTROY may still take: offered, or created in this call.
    free_volumes: set[str]
    tasks: list[tuple[pb.TaskInfo, Resources]] = field(default_factory=list)
    launched: Resources = field(default_factory=Resources.empty)
    seen: set[str] = field(default_factory=set)
    starting: dict[str, Resources] = field(default_factory=dict)
    volumes_changed: bool = False
    log: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.log)


def _free_volumes(agent: Agent, role: str) -> tuple[str, ...]:
    """Persistence ids of `role`'s volumes on `agent` that no task uses and no offer holds."""
    return tuple(
        pid
        for pid, v in agent.volumes.items()
        if v.role == role and pid not in agent.volume_users and pid not in agent.volume_offers
    )


def _add_offer_message(
    into: RepeatedCompositeFieldContainer[pb.Offer], offer: Offer, agent: Agent
) -> None:
    """Append `offer` as the framework sees it: with the agent's attributes, and the
    reservations and volumes of the offer's role."""
    msg = into.add(
        id=offer.id,
        framework_id=offer.framework_id,
        agent_id=offer.agent_id,
        hostname=agent.info.hostname,
        role=offer.role,
    )
    offer.resources.add_to(msg.resources)
    if agent.info.attributes:
        msg.attributes.extend(agent.info.attributes)
    if agent.reservations:
        msg.reservations.extend(
            r.to_proto()
            for r in agent.reservations
            if r.role == offer.role and r.resources.overlap(offer.resources)
        )
    if offer.volumes:
        msg.volumes.extend(agent.volumes[pid].to_proto() for pid in offer.volumes)


def _update_event(statuses: Sequence[pb.TaskStatus]) -> scheduler_pb2.Event:
    event = scheduler_pb2.Event(type=scheduler_pb2.Event.UPDATE)
    event.update.statuses.extend(statuses)
    return event


def _error_event(message: str) -> scheduler_pb2.Event:
    return scheduler_pb2.Event(
        type=scheduler_pb2.Event.ERROR, error=scheduler_pb2.Event.Error(message=message)
    )


class Master:
    """The leading master's view of the cluster, changed only through events."""

    def __init__(self, info: pb.MasterInfo, config: MasterConfig, now: float) -> None:
        self.info = info
        self.config = config
        self.agents: dict[str, Agent] = {}
        self.frameworks: dict[str, Framework] = {}
        self.offers: dict[str, Offer] = {}
        self.registry_version = 0
        self.allocation_wanted = True
        self.last_allocation = 0.0
        self.start_time = now
        self._ids = itertools.count(1)
        self._by_address: dict[str, set[str]] = {}
        self._id_prefix = info.id[:8]
        # Agents removed for good, newest last; their ids are never admitted again.
        self.gone: dict[str, master_pb2.GoneAgent] = {}
        self.events: deque[ClusterEvent] = deque(maxlen=EVENTS_KEPT)
        # Events the shell has not handed to the archive yet (bounded: never unread for long).
        self.outbox: deque[ClusterEvent] = deque(maxlen=10 * EVENTS_KEPT)
        self.silences: dict[str, master_pb2.Silence] = {}
        # Operators' role weights and quotas (registry); absent: weight 1, no quota.
        self.weights: dict[str, float] = {}
        self.quotas: dict[str, quota_rules.Quota] = {}

    def _event(
        self,
        now: float,
        kind: str,
        agent_id: str,
        message: str,
        by: str = "",
        action: str = "",
        principal: str = "",
    ) -> None:
        event = ClusterEvent(now, kind, agent_id, message, by, action, principal)
        self.events.append(event)
        self.outbox.append(event)

    def _operator_event(
        self, now: float, kind: str, agent_id: str, action: str, message: str, principal: str
    ) -> None:
        self._event(now, kind, agent_id, message, "operator", action, principal)

    def _maintenance_event(self, agent: Agent, now: float, what: str, action: str = "") -> None:
        m = agent.maintenance
        who = f"{m.by} ({m.principal})" if m.principal and m.principal != m.by else m.by
        text = f"{what} by {who}: {m.reason}"
        if m.by == "operator" and action:
            text += _pin_note(agent, now)
        self._event(now, "maintenance", agent.id, text, m.by,
                    action if m.by == "operator" else "", m.principal)  # fmt: skip

    # ------------------------------------------------------------------ registry

    def recover(self, registry: master_pb2.Registry, now: float) -> None:
        """Load what survived a restart: admitted agents and framework records."""
        self.registry_version = registry.version
        for gone in registry.gone_agents:
            self.gone[gone.id] = gone
        self.silences = {s.id: s for s in registry.silences}
        self.weights = {w.role: w.weight for w in registry.weights}
        self.quotas = {
            q.role: quota_rules.Quota(dict(q.guarantees), dict(q.limits)) for q in registry.quotas
        }
        for record in registry.agents:
            unreachable = record.unreachable_since > 0
            self.agents[record.info.id] = Agent(
                info=record.info,
                total=Resources.from_proto(record.info.resources),
                # An agent that was unreachable stays so: its tasks were reported lost.
                status=AgentStatus.UNREACHABLE if unreachable else AgentStatus.RECOVERING,
                registered_time=record.registered_time,
                last_seen=now,
                maintenance=record.maintenance,
                pin=record.pin if record.HasField("pin") else None,
                unreachable_since=record.unreachable_since,
                ended_by_master={(k.framework_id, k.task_id) for k in record.ended_by_master},
                principal=record.principal,
                reservations=[resv.Reservation.from_proto(r) for r in record.reservations],
                volumes={v.persistence_id: resv.Volume.from_proto(v) for v in record.volumes},
            )
            self.agents[record.info.id].apply_reservations()
            self._by_address.setdefault(record.info.http_address, set()).add(record.info.id)
        for record in registry.frameworks:
            self.frameworks[record.info.id] = Framework(
                info=record.info,
                status=FrameworkStatus.DISCONNECTED,
                registered_time=record.registered_time,
                disconnected_at=now,
                recovery_grace=max(self.config.agent_timeout, self.config.agent_reregister_timeout),
                principal=record.principal,
            )

    def registry(self) -> master_pb2.Registry:
        """The snapshot the shell persists."""
        reg = master_pb2.Registry(version=self.registry_version, master_id=self.info.id)
        for agent in self.agents.values():
            if agent.status is not AgentStatus.GONE:
                record = reg.agents.add(
                    info=agent.info,
                    registered_time=agent.registered_time,
                    maintenance=agent.maintenance,
                    unreachable_since=agent.unreachable_since,
                    principal=agent.principal,
                )
                if agent.pin is not None:
                    record.pin.CopyFrom(agent.pin)
                for fw_id, task_id in sorted(agent.ended_by_master):
                    record.ended_by_master.add(framework_id=fw_id, task_id=task_id)
                record.reservations.extend(r.to_proto() for r in agent.reservations)
                record.volumes.extend(v.to_proto() for v in agent.volumes.values())
        for fw in self.frameworks.values():
            if fw.status is not FrameworkStatus.COMPLETED:
                reg.frameworks.add(
                    info=fw.info, registered_time=fw.registered_time, principal=fw.principal
                )
        reg.gone_agents.extend(self.gone.values())
        reg.silences.extend(self.silences.values())
        for role, weight in sorted(self.weights.items()):
            reg.weights.add(role=role, weight=weight)
        for role, quota in sorted(self.quotas.items()):
            reg.quotas.add(role=role, guarantees=quota.guarantees, limits=quota.limits)
        return reg

    def _persist(self) -> PersistRegistry:
        self.registry_version += 1
        return PersistRegistry(self.registry_version)

    def _new_id(self, kind: str) -> str:
        return f"{self._id_prefix}-{kind}{next(self._ids)}"

    # ------------------------------------------------------------------ agents

    def agent_register(
        self,
        link_id: int,
        message: agent_pb2.AgentMessage.Register,
        now: float,
        principal: str = "",
    ) -> tuple[str, list[Effect]]:
        """Admit an agent (first registration) or take it back (re-registration).

        Agent ids are the master's to issue: an id it never issued is refused, and an
        admitted id is bound to the principal that registered it.
        """
        info = message.info
        try:
            total = Resources.from_proto(info.resources)
        except InvalidResources as e:
            raise RegistrationRefused(
                f"agent resources are invalid: {e}", Code.INVALID_ARGUMENT
            ) from None
        if not info.hostname:
            raise RegistrationRefused("agent hostname is empty", Code.INVALID_ARGUMENT)
        if not info.http_address:
            raise RegistrationRefused("agent http_address is empty", Code.INVALID_ARGUMENT)
        for record in message.tasks:
            if not record.task.task_id or not record.framework_id:
                raise RegistrationRefused(
                    "agent reported a task without a task id or framework id", Code.INVALID_ARGUMENT
                )
        effects: list[Effect] = []
        same_address = [
            a
            for a in (self.agents[i] for i in self._by_address.get(info.http_address, ()))
            if a.id != info.id and a.status is not AgentStatus.GONE
        ]
        for other in same_address:
            if other.status is AgentStatus.CONNECTED:
                raise RegistrationRefused(
                    f"another agent ({other.id}) is registered and connected at "
                    f"{info.http_address}; an agent there with a different id "
                    f"({info.id or 'new'}) is refused. Stop the other agent, or restart this "
                    "one with its original --work-dir so it keeps its id"
                )
        if info.id:
            existing = self.agents.get(info.id)
            if info.id in self.gone or (
                existing is not None and existing.status is AgentStatus.GONE
            ):
                raise RegistrationRefused(
                    f"agent {info.id} was removed from the cluster; restart it with an empty "
                    "--work-dir to register as a new agent"
                )
            if existing is None:
                raise RegistrationRefused(
                    f"agent id {info.id} was never issued by this cluster's masters; agent ids "
                    "are issued by the master: register without an id (restart the agent with "
                    "an empty --work-dir)"
                )
            if existing.principal and existing.principal != principal:
                raise RegistrationRefused(
                    f"agent {info.id} is registered by principal {existing.principal!r}; "
                    f"{principal or 'an unauthenticated caller'!r} may not register as it",
                    Code.PERMISSION_DENIED,
                )
        static = total
        known = self.agents.get(info.id) if info.id else None
        if known is not None:
            total = resv.effective_total(static, known.reservations, known.volumes.values())
        left = total
        for record in message.tasks:
            if record.state in TERMINAL_STATES:
                continue
            try:
                needs = Resources.from_proto(record.task.resources)
            except InvalidResources as e:
                raise RegistrationRefused(
                    f"task {record.task.task_id}: {e}", Code.INVALID_ARGUMENT
                ) from None
            if not left.contains(needs):
                raise RegistrationRefused(
                    f"the agent's resources ({total.format()}) no longer hold its running tasks "
                    f"(task {record.task.task_id} needs {needs.format()}); restart it with "
                    "--resources that include them"
                )
            left = left - needs
        if principal and not info.id:
            replaced = {a.id for a in same_address}
            registered = sum(
                1
                for a in self.agents.values()
                if a.principal == principal
                and a.status is not AgentStatus.GONE
                and a.id not in replaced
            )
            caps.check_new_agent(self.config.limits, principal, registered)
        # Validation done; from here on the state changes.
        for other in same_address:
            effects += self._remove_agent(other, now, "replaced by a new agent at the same address")
        if info.id and info.id in self.agents:
            agent = self.agents[info.id]
            if agent.status is AgentStatus.CONNECTED and agent.link_id != link_id:
                effects.append(CloseAgentLink(agent.id, agent.link_id, "replaced by a newer link"))
            effects += self._rescind_agent_offers(agent)  # made of the old resources
            self._index_address(agent, info.http_address)
            agent.info = info
            agent.total = total
            agent.link_id = link_id
            agent.last_seen = now
            was_unreachable = agent.status is AgentStatus.UNREACHABLE
            # Only after a failover does the master learn tasks it does not hold.
            learning = agent.status is AgentStatus.RECOVERING
            if was_unreachable:
                self._event(
                    now, "agent_reregistered", agent.id, "came back after being unreachable"
                )
            elif agent.status is AgentStatus.RECOVERING:
                self._event(now, "agent_reregistered", agent.id, "re-registered after failover")
            agent.status = AgentStatus.CONNECTED
            agent.unreachable_since = 0.0
            # A record from before authentication was on is bound at its first return.
            agent.principal = agent.principal or principal
            effects.append(self._persist())
            effects.append(self._registered(agent.id))
            effects += self._reconcile_agent_tasks(
                agent, message.tasks, now, was_unreachable, learning
            )
            effects += self._reconcile_agent_executors(agent, message.executors)
            effects += self._reconcile_agent_volumes(agent, message.volumes, now)
        else:
            agent_id = info.id or self._new_id("S")
            info = pb.AgentInfo()
            info.CopyFrom(message.info)
            info.id = agent_id
            agent = Agent(
                info=info,
                total=total,
                status=AgentStatus.CONNECTED,
                registered_time=now,
                link_id=link_id,
                last_seen=now,
                principal=principal,
            )
            self.agents[agent_id] = agent
            self._index_address(agent, info.http_address)
            self._event(now, "agent_registered", agent_id, f"{info.hostname} ({info.http_address})")
            effects.append(self._persist())
            effects.append(self._registered(agent_id))
            effects += self._reconcile_agent_tasks(agent, message.tasks, now)
            effects += self._reconcile_agent_executors(agent, message.executors)
            effects += self._reconcile_agent_volumes(agent, message.volumes, now)
        self.allocation_wanted = True
        return agent.id, effects

    def _reconcile_agent_volumes(
        self, agent: Agent, reported: Iterable[pb.Volume], now: float
    ) -> list[Effect]:
        """The master's list of the agent's volumes is the truth: it goes to the agent
        after every registration (the agent removes what it held of volumes destroyed
        while it was away). A volume the agent holds that the master never knew is
        left alone and named in an event, for an operator to look at."""
        for v in reported:
            if v.persistence_id not in agent.volumes:
                self._event(
                    now, "volume_unknown", agent.id,
                    f"agent holds volume {v.persistence_id} (role {v.role or '*'}) the master "
                    "does not know; its data is left in place",
                )  # fmt: skip
        if not agent.volumes and not any(True for _ in reported):
            return []
        return [SendToAgent(agent.id, agent.volumes_message())]

    def _index_address(self, agent: Agent, address: str) -> None:
        """Keep the address -> agents index, so registration does not scan every agent."""
        self._by_address.get(agent.info.http_address, set()).discard(agent.id)
        self._by_address.setdefault(address, set()).add(agent.id)

    def _registered(self, agent_id: str) -> SendToAgent:
        msg = agent_pb2.MasterMessage()
        msg.registered.agent_id = agent_id
        msg.registered.heartbeat_interval_seconds = self.config.agent_heartbeat_interval
        msg.registered.master_info.CopyFrom(self.info)
        return SendToAgent(agent_id, msg)

    def _reconcile_agent_tasks(
        self,
        agent: Agent,
        records: Iterable[agent_pb2.TaskRecord],
        now: float,
        was_unreachable: bool = False,
        learning: bool = True,
    ) -> list[Effect]:
        """Merge the tasks an agent reports with what the master knew of it.

        Tasks of frameworks that are gone are killed. Tasks that come back from
        an agent the master had marked unreachable were reported TASK_LOST to
        frameworks that are not partition-aware: they are killed and whatever
        the agent later says of them is dropped, so the framework never sees a
        second end. Partition-aware frameworks were told TASK_UNREACHABLE (not
        an end) and get the task back with its current state, as in Mesos, or
        TASK_GONE if the agent came back without it.

        Unless the master is `learning` its tasks back after a failover (or the
        agent is new), a task it does not hold is not taken in: its end was
        acknowledged and forgotten, or its id now names another task.
        """
        effects: list[Effect] = []
        reported: set[tuple[str, str]] = set()
        kills: list[agent_pb2.MasterMessage.KillTask] = []
        back: dict[str, list[pb.TaskStatus]] = {}
        # Keep only what the agent still holds: the rest it has forgotten.
        ended_earlier = agent.ended_by_master
        agent.ended_by_master = set()
        for record in records:
            task_id = record.task.task_id
            key = (record.framework_id, task_id)
            reported.add(key)
            known = agent.tasks.get(key)
            if known is not None:
                if known.kill_pending:
                    known.kill_pending = False
                    kills.append(
                        agent_pb2.MasterMessage.KillTask(
                            framework_id=known.framework_id,
                            task_id=task_id,
                            reason=pb.REASON_TASK_KILLED,
                        )
                    )
                continue
            fw = self.frameworks.get(record.framework_id)
            lost_earlier = key in ended_earlier or (
                was_unreachable and fw is not None and not fw.partition_aware
            )
            partitioned = was_unreachable and fw is not None and fw.partition_aware
            taken = fw is not None and task_id in fw.tasks  # the id is another task's now
            stranger = taken or not (learning or partitioned or key in agent.unreachable_tasks)
            if fw is None or fw.status is FrameworkStatus.COMPLETED or lost_earlier or stranger:
                if lost_earlier:
                    agent.ended_by_master.add(key)
                if record.state not in TERMINAL_STATES:
                    kills.append(
                        agent_pb2.MasterMessage.KillTask(
                            framework_id=record.framework_id,
                            task_id=task_id,
                            reason=pb.REASON_FRAMEWORK_REMOVED
                            if fw is None or fw.status is FrameworkStatus.COMPLETED
                            else pb.REASON_AGENT_DISCONNECTED
                            if lost_earlier
                            else pb.REASON_TASK_UNKNOWN,
                        )
                    )
                continue
            try:
                resources = Resources.from_proto(record.task.resources)
            except InvalidResources:
                resources = Resources.empty()
            role = fw.roles[0]
            task = Task(record.task, fw.id, agent.id, role, resources, state=record.state)
            agent.tasks[key] = task
            fw.tasks[task_id] = task
            if record.state not in TERMINAL_STATES:
                for v in record.task.volumes:
                    if v.persistence_id in agent.volumes:
                        agent.volume_users[v.persistence_id] = key
                agent.used = agent.used + resources
                fw.add_allocation(role, resources)
                if was_unreachable:
                    back.setdefault(fw.id, []).append(
                        self._master_status(
                            task,
                            record.state,
                            pb.REASON_AGENT_REREGISTERED,
                            f"agent {agent.id} is reachable again and still runs the task",
                            now,
                        )
                    )
        if agent.mode == master_pb2.DRAINING:
            for task in agent.tasks.values():
                if task.state not in TERMINAL_STATES and not any(
                    k.task_id == task.id and k.framework_id == task.framework_id for k in kills
                ):
                    kills.append(self._drain_kill(agent, task))
        # Tasks the master launched there that the agent no longer knows are lost.
        lost = [t for key, t in agent.tasks.items() if key not in reported]
        by_fw: dict[str, list[pb.TaskStatus]] = {}
        for task in lost:
            if task.state in TERMINAL_STATES:
                # Its end was already sent; only the acknowledgement was missing.
                self._forget(task)
                continue
            status = self._master_status(
                task, TS.TASK_LOST, pb.REASON_AGENT_RESTARTED, "agent restarted without it", now
            )
            by_fw.setdefault(task.framework_id, []).append(status)
            self._end_task(task, status)
        for key, task in agent.unreachable_tasks.items():
            if key not in reported:
                by_fw.setdefault(task.framework_id, []).append(
                    self._master_status(
                        task,
                        TS.TASK_GONE,
                        pb.REASON_AGENT_REREGISTERED,
                        f"agent {agent.id} is reachable again but no longer has the task",
                        now,
                    )
                )
        agent.unreachable_tasks.clear()
        for fw_id, statuses in [*by_fw.items(), *back.items()]:
            effects += self._to_framework(fw_id, _update_event(statuses))
        if kills:
            msg = agent_pb2.MasterMessage()
            msg.kill_tasks.kills.extend(kills)
            effects.append(SendToAgent(agent.id, msg))
        return effects

    def _reconcile_agent_executors(
        self, agent: Agent, records: Iterable[agent_pb2.ExecutorRecord]
    ) -> list[Effect]:
        """Hold exactly the executors the agent says it runs: those it no longer runs
        ended while the link was down (their frameworks hear so); those the master did
        not know it learns (after a failover, or from an agent that was unreachable)."""
        effects: list[Effect] = []
        reported = {(r.framework_id, r.executor.executor_id): r.executor for r in records}
        for key in [k for k in agent.executors if k not in reported]:
            self._free_executor(agent, key)
            effects += self._executor_lost(
                agent.id, key, "the executor ended while its agent was disconnected", None
            )
        for key, info in reported.items():
            if key in agent.executors:
                continue
            try:
                resources = Resources.from_proto(info.resources)
            except InvalidResources:
                resources = Resources.empty()
            fw = self.frameworks.get(key[0])
            live = fw is not None and fw.status is not FrameworkStatus.COMPLETED
            self._charge_executor(agent, key, fw if live else None, info, resources)
        return effects

    def _charge_executor(
        self,
        agent: Agent,
        key: tuple[str, str],
        fw: Framework | None,
        info: pb.ExecutorInfo,
        resources: Resources,
    ) -> None:
        role = fw.roles[0] if fw is not None else ""
        agent.executors[key] = ExecutorUse(info, role, resources)
        agent.used = agent.used + resources
        if fw is not None:
            fw.add_allocation(role, resources)

    def _free_executor(self, agent: Agent, key: tuple[str, str]) -> None:
        use = agent.executors.pop(key, None)
        if use is None:
            return
        agent.used = agent.used - use.resources
        fw = self.frameworks.get(key[0])
        if fw is not None and use.role in fw.allocated:
            fw.remove_allocation(use.role, use.resources)
        self.allocation_wanted = True

    def executor_exited(
        self, agent_id: str, link_id: int, message: agent_pb2.ExecutorExited, now: float
    ) -> list[Effect]:
        """An executor ended: free its resources and tell its framework (FAILURE, as Mesos
        does; its tasks' own ends come as status updates)."""
        if not self.agent_message_seen(agent_id, link_id, now):
            return []
        agent = self.agents[agent_id]
        key = (message.framework_id, message.executor_id)
        if key not in agent.executors:
            return []
        self._free_executor(agent, key)
        status = message.status if message.HasField("status") else None
        return self._executor_lost(agent_id, key, message.message, status)

    def _executor_lost(
        self, agent_id: str, key: tuple[str, str], message: str, status: int | None
    ) -> list[Effect]:
        event = scheduler_pb2.Event(type=scheduler_pb2.Event.FAILURE)
        event.failure.agent_id = agent_id
        event.failure.executor_id = key[1]
        event.failure.message = message
        if status is not None:
            event.failure.status = status
        return self._to_framework(key[0], event)

    def agent_message_seen(self, agent_id: str, link_id: int, now: float) -> bool:
        """Note that the agent is alive; False if the link is stale and must be closed."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.link_id != link_id or agent.status is not AgentStatus.CONNECTED:
            return False
        agent.last_seen = now
        return True

    def agent_disconnected(self, agent_id: str, link_id: int, now: float) -> list[Effect]:
        """The agent's link dropped; keep its tasks until the timeout, stop offering it."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.link_id != link_id or agent.status is not AgentStatus.CONNECTED:
            return []
        agent.status = AgentStatus.DISCONNECTED
        agent.last_seen = now
        return self._rescind_agent_offers(agent)

    def status_updates(
        self,
        agent_id: str,
        link_id: int,
        updates: Sequence[agent_pb2.StatusUpdate],
        now: float,
    ) -> list[Effect]:
        """Record the agent's task updates and forward them to their frameworks."""
        if not self.agent_message_seen(agent_id, link_id, now):
            return []
        agent = self.agents[agent_id]
        by_fw: dict[str, list[pb.TaskStatus]] = {}
        self_acks: list[agent_pb2.MasterMessage.StatusAck] = []
        for update in updates:
            status = update.status
            fw = self.frameworks.get(update.framework_id)
            task = agent.tasks.get((update.framework_id, status.task_id))
            if status.state not in KNOWN_STATES:
                fw = None  # a state no one can act on: acknowledge it here and drop it
            elif task is None or (task.state in TERMINAL_STATES and status.state != task.state):
                # The master holds every task it launched or adopted until its end is
                # acknowledged. An update for any other task is a late duplicate of an
                # acknowledged end, or a task whose end the master reported itself
                # (lost with an unreachable agent): forwarding it would give the
                # framework a second end.
                fw = None
            if fw is None or fw.status is FrameworkStatus.COMPLETED:
                # Nobody will ever acknowledge it; do it here so the agent stops retrying.
                if status.uuid:
                    self_acks.append(
                        agent_pb2.MasterMessage.StatusAck(
                            framework_id=update.framework_id,
                            task_id=status.task_id,
                            uuid=status.uuid,
                        )
                    )
                continue
            if task is not None:
                self._apply_status(task, status)
            if fw.status is FrameworkStatus.CONNECTED:
                by_fw.setdefault(fw.id, []).append(status)
        effects: list[Effect] = []
        for fw_id, statuses in by_fw.items():
            effects += self._to_framework(fw_id, _update_event(statuses))
        effects += self._check_drained(agent, now)
        if self_acks:
            msg = agent_pb2.MasterMessage()
            msg.status_acks.acks.extend(self_acks)
            effects.append(SendToAgent(agent_id, msg))
        return effects

    def _apply_status(self, task: Task, status: pb.TaskStatus) -> None:
        if task.state in TERMINAL_STATES:
            # A resend of the end (or the end of a task adopted as ended at
            # re-registration): the acknowledgement that forgets it carries this uuid.
            task.terminal_uuid = status.uuid
            task.status = status
            return
        if status.state != task.state or not task.history:
            _remember(task, status)
        task.state = status.state
        task.status = status
        if status.state in TERMINAL_STATES:
            task.terminal_uuid = status.uuid
            self._release(task)

    def _release(self, task: Task) -> None:
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.used = agent.used - task.resources
            for v in task.info.volumes:
                if agent.volume_users.get(v.persistence_id) == (task.framework_id, task.id):
                    del agent.volume_users[v.persistence_id]
        fw = self.frameworks.get(task.framework_id)
        if fw is not None and task.role in fw.allocated:
            fw.remove_allocation(task.role, task.resources)
        self.allocation_wanted = True

    def _end_task(self, task: Task, status: pb.TaskStatus) -> None:
        """Give the task its final master-made status and forget it."""
        if task.state not in TERMINAL_STATES and task.state != TS.TASK_UNREACHABLE:
            self._release(task)
        _remember(task, status)
        task.state = status.state
        task.status = status
        self._forget(task)

    def _forget(self, task: Task) -> None:
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.tasks.pop((task.framework_id, task.id), None)
        fw = self.frameworks.get(task.framework_id)
        if fw is not None and fw.tasks.pop(task.id, None) is not None:
            fw.completed.append(task)

    def _master_status(
        self, task: Task, state: int, reason: int, message: str, now: float
    ) -> pb.TaskStatus:
        return pb.TaskStatus(
            task_id=task.id,
            agent_id=task.agent_id,
            state=state,
            reason=reason,
            message=message,
            source=pb.SOURCE_MASTER,
            timestamp=now,
        )

    def _rescind_agent_offers(self, agent: Agent) -> list[Effect]:
        effects: list[Effect] = []
        for offer_id in list(agent.offers):
            effects += self._rescind(self.offers[offer_id])
        return effects

    def _rescind(self, offer: Offer) -> list[Effect]:
        self._drop_offer(offer)
        event = scheduler_pb2.Event(
            type=scheduler_pb2.Event.RESCIND, rescind=scheduler_pb2.Event.Rescind(offer_id=offer.id)
        )
        return self._to_framework(offer.framework_id, event)

    def _drop_offer(self, offer: Offer) -> None:
        del self.offers[offer.id]
        agent = self.agents[offer.agent_id]
        agent.offers.discard(offer.id)
        agent.offered = agent.offered - offer.resources
        for pid in offer.volumes:
            if agent.volume_offers.get(pid) == offer.id:
                del agent.volume_offers[pid]
        fw = self.frameworks[offer.framework_id]
        fw.offers.discard(offer.id)
        fw.remove_allocation(offer.role, offer.resources)
        self.allocation_wanted = True

    def _mark_unreachable(self, agent: Agent, now: float, why: str) -> list[Effect]:
        agent.status = AgentStatus.UNREACHABLE
        agent.unreachable_since = now
        self._event(now, "agent_unreachable", agent.id, why)
        # Durable before any framework hears of it: a new leader must know these ends.
        effects: list[Effect] = [self._persist()]
        effects += self._rescind_agent_offers(agent)
        by_fw: dict[str, list[pb.TaskStatus]] = {}
        for task in list(agent.tasks.values()):
            if task.state in TERMINAL_STATES:
                # Ended, and that end was (or will be, on resubscription) sent; the
                # agent resends it if the acknowledgement never reached it.
                self._forget(task)
                continue
            fw = self.frameworks.get(task.framework_id)
            aware = fw is not None and fw.partition_aware
            state = TS.TASK_UNREACHABLE if aware else TS.TASK_LOST
            if aware:
                agent.unreachable_tasks[(task.framework_id, task.id)] = task
            else:
                agent.ended_by_master.add((task.framework_id, task.id))
            status = self._master_status(
                task,
                state,
                pb.REASON_AGENT_DISCONNECTED,
                f"agent {agent.id} ({agent.info.hostname}) is unreachable: {why}",
                now,
            )
            by_fw.setdefault(task.framework_id, []).append(status)
            self._end_task(task, status)
        # Learned back from the agent's registration if it returns.
        for key in list(agent.executors):
            self._free_executor(agent, key)
        failure = scheduler_pb2.Event(
            type=scheduler_pb2.Event.FAILURE,
            failure=scheduler_pb2.Event.Failure(agent_id=agent.id, message="agent unreachable"),
        )
        for fw_id, statuses in by_fw.items():
            effects += self._to_framework(fw_id, _update_event(statuses))
        for fw in self.frameworks.values():
            if fw.status is FrameworkStatus.CONNECTED:
                effects += self._to_framework(fw.id, failure)
        return effects

    def _remove_agent(
        self, agent: Agent, now: float, why: str, by: str = "master", principal: str = ""
    ) -> list[Effect]:
        """Take the agent out of the cluster for good; its tasks end as Mesos's mark-gone does."""
        # Durable before anyone hears of it: a new leader must not take the agent back.
        effects: list[Effect] = [self._persist()]
        if agent.status is AgentStatus.CONNECTED:
            message = (
                f"agent {agent.id} was removed from the cluster ({why}); restart it with an "
                "empty --work-dir to register as a new agent"
            )
            effects.append(CloseAgentLink(agent.id, agent.link_id, message, shutdown=True))
        effects += self._rescind_agent_offers(agent)
        by_fw: dict[str, list[pb.TaskStatus]] = {}
        for task in list(agent.tasks.values()):
            if task.state in TERMINAL_STATES:
                self._forget(task)
                continue
            fw = self.frameworks.get(task.framework_id)
            if fw is None or not fw.partition_aware:
                state = TS.TASK_LOST
            else:
                state = TS.TASK_GONE_BY_OPERATOR if by == "operator" else TS.TASK_GONE
            status = self._master_status(
                task, state, pb.REASON_AGENT_REMOVED, f"agent {agent.id} removed: {why}", now
            )
            by_fw.setdefault(task.framework_id, []).append(status)
            self._end_task(task, status)
        # Partition-aware tasks were told TASK_UNREACHABLE, not an end: give them theirs.
        gone = TS.TASK_GONE_BY_OPERATOR if by == "operator" else TS.TASK_GONE
        for task in agent.unreachable_tasks.values():
            status = self._master_status(
                task, gone, pb.REASON_AGENT_REMOVED, f"agent {agent.id} removed: {why}", now
            )
            by_fw.setdefault(task.framework_id, []).append(status)
        agent.unreachable_tasks.clear()
        for key in list(agent.executors):
            self._free_executor(agent, key)
        for fw_id, statuses in by_fw.items():
            effects += self._to_framework(fw_id, _update_event(statuses))
        agent.status = AgentStatus.GONE
        agent.ended_by_master.clear()
        self._by_address.get(agent.info.http_address, set()).discard(agent.id)
        self.gone[agent.id] = master_pb2.GoneAgent(id=agent.id, removed_at=now, by=by, reason=why)
        while len(self.gone) > GONE_AGENTS_KEPT:
            oldest = next(iter(self.gone))
            del self.gone[oldest]
            old = self.agents.get(oldest)
            if old is not None and old.status is AgentStatus.GONE:
                del self.agents[oldest]
        action = "remove" if by == "operator" else ""
        self._event(now, "agent_removed", agent.id, f"by {by}: {why}", by, action, principal)
        return effects

    def remove_agent(
        self, agent_id: str, by: str, reason: str, now: float, principal: str = ""
    ) -> list[Effect]:
        """An operator says the agent is gone for good (Mesos: mark agent gone).

        Its tasks end (TASK_GONE_BY_OPERATOR for partition-aware frameworks,
        TASK_LOST for the others), it is told to shut down if connected, and its
        id is never admitted again.
        """
        agent = self._maintained(agent_id)
        self._check_who(by, reason)
        return self._remove_agent(agent, now, reason, by, principal)

    # ------------------------------------------------------------------ frameworks

    def subscribe(
        self, info: pb.FrameworkInfo, now: float, principal: str = ""
    ) -> tuple[str, str, list[Effect]]:
        """Register a framework or take back an existing one; returns (id, stream id, effects).

        A framework id is bound to the principal that registered it: another's
        Subscribe with that id is refused.
        """
        if not info.name:
            raise InvalidCall("framework_info.name is empty: give the framework a name")
        for role in info.roles:
            why = role_names.problem(role)
            if why is not None:
                raise InvalidCall(f"framework role {role!r} is not a valid role name: {why}")
        if len(set(info.roles)) != len(info.roles):
            raise InvalidCall("framework_info.roles lists a role twice")
        if not (info.failover_timeout >= 0) or info.failover_timeout == float("inf"):
            raise InvalidCall(
                f"framework_info.failover_timeout must be a finite number of seconds >= 0, "
                f"got {info.failover_timeout}"
            )
        if principal and info.principal and info.principal != principal:
            raise InvalidCall(
                f"framework_info.principal {info.principal!r} is not the authenticated "
                f"principal {principal!r}; leave it empty or give your own",
                Code.PERMISSION_DENIED,
            )
        acl.authorize(
            self.config.acls, principal, acl.REGISTER_FRAMEWORK, info.roles or [DEFAULT_ROLE]
        )
        if not info.id and principal:
            registered = sum(
                1
                for f in self.frameworks.values()
                if f.principal == principal and f.status is not FrameworkStatus.COMPLETED
            )
            caps.check_new_framework(self.config.limits, principal, registered)
        effects: list[Effect] = []
        stream_id = uuid.uuid4().hex
        if info.id:
            fw = self.frameworks.get(info.id)
            if fw is None:
                raise UnknownFramework(
                    f"framework {info.id} is unknown to this master; subscribe without an id "
                    "to register as a new framework"
                )
            if fw.status is FrameworkStatus.COMPLETED:
                raise UnknownFramework(
                    f"framework {info.id} was torn down; subscribe without an id to start anew",
                    Code.FAILED_PRECONDITION,
                )
            if fw.principal and fw.principal != principal:
                raise InvalidCall(
                    f"framework {info.id} belongs to principal {fw.principal!r}; "
                    f"{principal or 'an unauthenticated caller'!r} may not subscribe as it",
                    Code.PERMISSION_DENIED,
                )
            fw.principal = fw.principal or principal  # a record from before auth was on
            if fw.status is FrameworkStatus.CONNECTED:
                effects.append(
                    CloseFrameworkStream(
                        fw.id, fw.stream_id, "framework failed over to a new stream"
                    )
                )
                for offer_id in list(fw.offers):
                    self._drop_offer(self.offers[offer_id])
            new_info = pb.FrameworkInfo()
            new_info.CopyFrom(info)
            new_info.principal = principal or info.principal
            fw.info = new_info
            fw.status = FrameworkStatus.CONNECTED
            fw.stream_id = stream_id
            fw.recovery_grace = 0.0
        else:
            fw_id = self._new_id("F")
            new_info = pb.FrameworkInfo()
            new_info.CopyFrom(info)
            new_info.principal = principal or info.principal
            new_info.id = fw_id
            fw = Framework(
                info=new_info,
                status=FrameworkStatus.CONNECTED,
                registered_time=now,
                stream_id=stream_id,
                principal=principal,
            )
            self.frameworks[fw_id] = fw
        effects.append(self._persist())
        event = scheduler_pb2.Event(type=scheduler_pb2.Event.SUBSCRIBED)
        event.subscribed.framework_id = fw.id
        event.subscribed.stream_id = stream_id
        event.subscribed.heartbeat_interval_seconds = self.config.framework_heartbeat_interval
        event.subscribed.master_info.CopyFrom(self.info)
        effects.append(SendToFramework(fw.id, event))
        if info.id:
            # Updates the agents hold for it went nowhere while it was away: have them
            # resent now, not at their next retry (which backs off to minutes).
            holders = {t.agent_id for t in fw.tasks.values()}
            for agent_id in sorted(holders):
                agent = self.agents.get(agent_id)
                if agent is not None and agent.status is AgentStatus.CONNECTED:
                    msg = agent_pb2.MasterMessage()
                    msg.resend_updates.framework_id = fw.id
                    effects.append(SendToAgent(agent_id, msg))
        self.allocation_wanted = True
        return fw.id, stream_id, effects

    def framework_disconnected(self, framework_id: str, stream_id: str, now: float) -> list[Effect]:
        fw = self.frameworks.get(framework_id)
        if fw is None or fw.stream_id != stream_id or fw.status is not FrameworkStatus.CONNECTED:
            return []
        fw.status = FrameworkStatus.DISCONNECTED
        fw.disconnected_at = now
        for offer_id in list(fw.offers):
            self._drop_offer(self.offers[offer_id])
        return []

    def _caller(self, header: scheduler_pb2.CallHeader) -> Framework:
        fw = self.frameworks.get(header.framework_id)
        if fw is None:
            raise UnknownFramework(
                f"framework {header.framework_id or '(empty id)'} is not subscribed; call "
                "Subscribe first"
            )
        if fw.status is not FrameworkStatus.CONNECTED:
            raise StaleStream(f"framework {fw.id} is {fw.status.value}; subscribe again")
        if header.stream_id != fw.stream_id:
            raise StaleStream(
                f"stream id {header.stream_id or '(empty)'} is not framework {fw.id}'s current "
                "stream; the framework has resubscribed elsewhere"
            )
        return fw

    def _remove_framework(self, fw: Framework, now: float, why: str) -> list[Effect]:
        effects: list[Effect] = []
        if fw.status is FrameworkStatus.CONNECTED:
            effects.append(CloseFrameworkStream(fw.id, fw.stream_id, why))
        for offer_id in list(fw.offers):
            self._drop_offer(self.offers[offer_id])
        kills: dict[str, list[agent_pb2.MasterMessage.KillTask]] = {}
        for task in list(fw.tasks.values()):
            if task.state in TERMINAL_STATES:
                self._forget(task)  # ended already; only its acknowledgement was missing
                continue
            agent = self.agents.get(task.agent_id)
            if agent is not None and agent.status is AgentStatus.CONNECTED:
                kills.setdefault(agent.id, []).append(
                    agent_pb2.MasterMessage.KillTask(
                        framework_id=fw.id, task_id=task.id, reason=pb.REASON_FRAMEWORK_REMOVED
                    )
                )
            status = self._master_status(
                task, TS.TASK_KILLED, pb.REASON_FRAMEWORK_REMOVED, why, now
            )
            self._end_task(task, status)
        for agent_id, agent_kills in kills.items():
            msg = agent_pb2.MasterMessage()
            msg.kill_tasks.kills.extend(agent_kills)
            effects.append(SendToAgent(agent_id, msg))
        fw.status = FrameworkStatus.COMPLETED
        fw.stream_id = ""
        fw.filters.clear()
        effects.append(self._persist())
        return effects

    def teardown(self, header: scheduler_pb2.CallHeader, now: float) -> list[Effect]:
        fw = self._caller(header)
        return self._remove_framework(fw, now, "framework tore itself down")

    def operator_teardown(
        self, framework_id: str, principal: str, reason: str, now: float
    ) -> list[Effect]:
        """An operator ends a framework (Mesos's TEARDOWN): its tasks are killed, its id retired.

        The caller has checked that `principal` may (its own framework, or an ACL rule).
        """
        fw = self.frameworks.get(framework_id)
        if fw is None:
            raise UnknownFramework(f"framework {framework_id} is unknown to this master")
        if fw.status is FrameworkStatus.COMPLETED:
            raise UnknownFramework(
                f"framework {framework_id} is already torn down", Code.FAILED_PRECONDITION
            )
        why = f"torn down by {principal or 'operator'}" + (f": {reason}" if reason else "")
        self._operator_event(now, "framework", "", "teardown", f"framework {fw.id} {why}",
                             principal)  # fmt: skip
        return self._remove_framework(fw, now, why)

    # ------------------------------------------------------------------ offers

    def allocate(self, now: float) -> list[Effect]:
        """Run the allocator and send the offers it decides on."""
        self.allocation_wanted = False
        self.last_allocation = now
        agents = [AgentView(aid, a.available) for aid, a in self.agents.items() if a.in_service]
        frameworks = []
        for fw in self.frameworks.values():
            if fw.status is FrameworkStatus.COMPLETED:
                continue
            connected = fw.status is FrameworkStatus.CONNECTED
            if fw.filters:
                fw.filters = [f for f in fw.filters if f.expires > now]
            # A disconnected framework is offered nothing; what it holds counts for its roles.
            frameworks.append(
                FrameworkView(
                    fw.id,
                    fw.roles,
                    fw.allocated,
                    frozenset(fw.suppressed_roles),
                    tuple(fw.filters),
                    connected,
                )
            )
        if not agents or not frameworks:
            return []
        total = self.total_quantities()
        plans = allocate(agents, frameworks, total, now, self.weights, self.quotas)
        expires = now + self.config.offer_timeout
        # One OFFERS event per framework, the offers built in place (not built, then copied).
        events: dict[str, scheduler_pb2.Event] = {}
        for plan in plans:
            agent = self.agents[plan.agent_id]
            fw = self.frameworks[plan.framework_id]
            offer = Offer(
                self._new_id("O"),
                plan.framework_id,
                plan.agent_id,
                plan.role,
                plan.resources,
                expires,
                _free_volumes(agent, plan.role) if agent.volumes else (),
            )
            for pid in offer.volumes:
                agent.volume_offers[pid] = offer.id
            self.offers[offer.id] = offer
            agent.offers.add(offer.id)
            agent.offered = agent.offered + plan.resources
            fw.offers.add(offer.id)
            fw.add_allocation(plan.role, plan.resources)
            event = events.get(plan.framework_id)
            if event is None:
                event = scheduler_pb2.Event(type=scheduler_pb2.Event.OFFERS)
                events[plan.framework_id] = event
            _add_offer_message(event.offers.offers, offer, agent)
        return [SendToFramework(fw_id, event) for fw_id, event in events.items()]

    def total_quantities(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for agent in self.agents.values():
            if agent.status is AgentStatus.CONNECTED:
                for name, q in agent.total_quantities.items():
                    total[name] = total.get(name, 0.0) + q
        return total

    def _offers_of(self, fw: Framework, offer_ids: Sequence[str]) -> list[Offer]:
        if not offer_ids:
            raise InvalidCall("no offer ids given")
        if len(set(offer_ids)) != len(offer_ids):
            raise InvalidCall("an offer id is given twice")
        offers = []
        for offer_id in offer_ids:
            offer = self.offers.get(offer_id)
            if offer is None:
                raise UnknownOffer(
                    f"offer {offer_id} is unknown or no longer valid (it was used, declined, "
                    "rescinded or timed out); wait for new offers"
                )
            if offer.framework_id != fw.id:
                raise UnknownOffer(f"offer {offer_id} was made to another framework")
            offers.append(offer)
        return offers

    def accept(
        self,
        header: scheduler_pb2.CallHeader,
        offer_ids: Sequence[str],
        operations: Sequence[scheduler_pb2.Operation],
        filters: scheduler_pb2.Filters,
        now: float,
    ) -> list[Effect]:
        """Apply operations to offered resources in order: LAUNCH, RESERVE, UNRESERVE,
        CREATE, DESTROY (Mesos's semantics: a later operation may use what an earlier
        one made). Everything is checked before anything changes."""
        fw = self._caller(header)
        offers = self._offers_of(fw, offer_ids)
        agent_ids = {o.agent_id for o in offers}
        if len(agent_ids) > 1:
            raise InvalidCall(
                f"offers {', '.join(offer_ids)} come from different agents "
                f"({', '.join(sorted(agent_ids))}); accept offers of one agent per call"
            )
        agent = self.agents[offers[0].agent_id]
        offered = Resources.empty()
        for o in offers:
            offered = offered + o.resources
        role = offers[0].role
        refuse = _refuse_seconds(filters)
        plan = _AcceptPlan(
            remaining=offered,
            reservations=list(agent.reservations),
            volumes=dict(agent.volumes),
            free_volumes={pid for o in offers for pid in o.volumes},
        )
        op_type = scheduler_pb2.Operation
        for i, op in enumerate(operations):
            where = f"operation {i}"
            if op.type == op_type.LAUNCH:
                self._plan_launch(fw, agent, op.launch, plan, where)
            elif op.type == op_type.RESERVE:
                self._plan_reserve(fw, agent, role, op.reserve, plan, f"{where} (RESERVE)")
            elif op.type == op_type.UNRESERVE:
                self._plan_unreserve(fw, agent, op.unreserve, plan, f"{where} (UNRESERVE)")
            elif op.type == op_type.CREATE:
                self._plan_create(fw, agent, role, op.create, plan, f"{where} (CREATE)")
            elif op.type == op_type.DESTROY:
                self._plan_destroy(fw, agent, op.destroy, plan, f"{where} (DESTROY)")
            else:
                raise InvalidCall(
                    f"{where}: type {op.type} is not supported (use LAUNCH, RESERVE, UNRESERVE, "
                    "CREATE or DESTROY)"
                )
        remaining = plan.remaining
        # Valid: consume the offers and apply.
        for o in offers:
            self._drop_offer(o)
        if refuse > 0 and remaining:
            fw.filters.append(OfferFilter(agent.id, remaining, now + refuse))
        effects: list[Effect] = []
        if plan.changed:
            agent.reservations = plan.reservations
            agent.volumes = plan.volumes
            agent.apply_reservations()
            self.allocation_wanted = True
            effects.append(self._persist())
            if plan.volumes_changed:
                effects.append(SendToAgent(agent.id, agent.volumes_message()))
            for what in plan.log:
                self._event(now, "reservation", agent.id, what, principal=fw.principal)
        if not plan.tasks:
            return effects
        run = agent_pb2.MasterMessage()
        run.run_tasks.framework_id = fw.id
        run.run_tasks.framework.CopyFrom(fw.info)
        for info, resources in plan.tasks:
            task_info = pb.TaskInfo()
            task_info.CopyFrom(info)
            task_info.agent_id = agent.id
            if not task_info.name:
                task_info.name = task_info.task_id
            del task_info.volumes[:]
            for v in info.volumes:
                task_info.volumes.append(agent.volumes[v.persistence_id].to_proto())
                agent.volume_users[v.persistence_id] = (fw.id, task_info.task_id)
            task = Task(task_info, fw.id, agent.id, role, resources)
            agent.tasks[(fw.id, task.id)] = task
            fw.tasks[task.id] = task
            run.run_tasks.tasks.append(task_info)
        agent.used = agent.used + plan.launched
        fw.add_allocation(role, plan.launched)
        for executor_id, executor_resources in plan.starting.items():
            info = next(t.executor for t, _ in plan.tasks if t.executor.executor_id == executor_id)
            agent.executors[(fw.id, executor_id)] = ExecutorUse(info, role, executor_resources)
        effects.append(SendToAgent(agent.id, run))
        return effects

    def _plan_launch(
        self, fw: Framework, agent: Agent, launch: scheduler_pb2.Operation.Launch,
        plan: _AcceptPlan, where: str,
    ) -> None:  # fmt: skip
        for task in launch.task_infos:
            resources = self._validate_task(fw, agent, task, plan.seen, where)
            needs = resources + self._executor_needs(fw, agent, task, plan.starting)
            # One by one, so two tasks cannot both claim the same port.
            if not plan.remaining.contains(needs):
                raise InvalidCall(
                    f"{where}, task {task.task_id}: asks for {needs.format()} "
                    f"{'(with its executor) ' if needs != resources else ''}but "
                    f"only {plan.remaining.format() or 'nothing'} is left of the offers on agent "
                    f"{agent.id}"
                )
            docker = task.container.type == pb.ContainerInfo.DOCKER
            if task.volumes and task.HasField("executor"):
                raise InvalidCall(
                    f"{where}, task {task.task_id}: persistent volumes go to command tasks "
                    "and DOCKER tasks, not to tasks of a framework's own executor"
                )
            for v in task.volumes:
                pid = v.persistence_id
                here = f"{where}, task {task.task_id}, volume {pid!r}"
                if pid not in plan.free_volumes:
                    raise InvalidCall(f"{here}: {self._why_not_free(agent, plan, pid)}")
                if plan.volumes[pid].container_path.startswith("/") and not docker:
                    raise InvalidCall(
                        f"{here}: its container_path {plan.volumes[pid].container_path!r} is "
                        "absolute, which only DOCKER tasks can mount; give a path relative to "
                        "the sandbox when creating volumes for other tasks"
                    )
                plan.free_volumes.discard(pid)
            plan.remaining = plan.remaining - needs
            plan.launched = plan.launched + needs
            plan.tasks.append((task, resources))

    @staticmethod
    def _why_not_free(agent: Agent, plan: _AcceptPlan, pid: str) -> str:
        if pid not in plan.volumes:
            return "no such persistent volume on this agent (CREATE it first)"
        if pid in agent.volume_users:
            fw_id, task_id = agent.volume_users[pid]
            return f"in use by task {task_id} of framework {fw_id}"
        if any(pid == v.persistence_id for t, _ in plan.tasks for v in t.volumes):
            return "already used by a task launched earlier in this call"
        return "not in the accepted offers (it is offered to its role while no task uses it)"

    def _plan_reserve(
        self, fw: Framework, agent: Agent, role: str, op: scheduler_pb2.Operation.Reserve,
        plan: _AcceptPlan, where: str,
    ) -> None:  # fmt: skip
        wanted = resv.parse_reserved(op.resources, where)
        if wanted.roles() != {role} or role == DEFAULT_ROLE:
            raise InvalidCall(
                f"{where}: {wanted.format()} must all be reserved for the offer's role "
                f"{role!r}" + (" (a framework in role '*' cannot reserve)" if role == "*" else "")
            )
        acl.authorize(self.config.acls, fw.principal, acl.RESERVE, [role])
        unreserved = wanted.reassigned("")
        if not plan.remaining.contains(unreserved):
            raise InvalidCall(
                f"{where}: reserving {wanted.format()} needs {unreserved.format()} unreserved, "
                f"but only {plan.remaining.format() or 'nothing'} is left of the offers on agent "
                f"{agent.id}"
            )
        plan.remaining = plan.remaining - unreserved + wanted
        plan.reservations.append(
            resv.Reservation(role, fw.principal, resv.labels(op.labels), wanted)
        )
        plan.log.append(f"reserved {wanted.format()} for {fw.id}")

    def _plan_unreserve(
        self, fw: Framework, agent: Agent, op: scheduler_pb2.Operation.Unreserve,
        plan: _AcceptPlan, where: str,
    ) -> None:  # fmt: skip
        wanted = resv.parse_reserved(op.resources, where)
        if not plan.remaining.contains(wanted):
            raise InvalidCall(
                f"{where}: {wanted.format()} is not all in the offers (resources that tasks "
                f"use, or that hold volumes, cannot be unreserved); left of the offers: "
                f"{plan.remaining.format() or 'nothing'}"
            )
        plan.reservations, touched = resv.take(plan.reservations, wanted, where)
        for reserver in sorted(touched):
            acl.authorize(self.config.acls, fw.principal, acl.UNRESERVE, [reserver], reserver)
        plan.remaining = plan.remaining - wanted + wanted.reassigned("")
        plan.log.append(f"unreserved {wanted.format()} for {fw.id}")

    def _plan_create(
        self, fw: Framework, agent: Agent, role: str, op: scheduler_pb2.Operation.Create,
        plan: _AcceptPlan, where: str,
    ) -> None:  # fmt: skip
        if not op.volumes:
            raise InvalidCall(f"{where}: no volumes given")
        for v in op.volumes:
            pid = v.persistence_id
            here = f"{where}, volume {pid!r}"
            if not TASK_ID_RE.match(pid):
                raise InvalidCall(f"{here}: persistence_id is invalid: {ID_RULE}")
            if pid in plan.volumes:
                raise InvalidCall(f"{here}: a volume with this id exists on agent {agent.id}",
                                  Code.ALREADY_EXISTS)  # fmt: skip
            vrole = v.role or role
            if vrole != role or role == DEFAULT_ROLE:
                raise InvalidCall(f"{here}: volumes are created in the offer's role {role!r} on "
                                  "disk reserved for it, not in role " + repr(vrole))  # fmt: skip
            if not (v.size > 0) or v.size > 1e12:
                raise InvalidCall(f"{here}: size must be > 0 (MB of disk({role}))")
            path = resv.check_container_path(v.container_path, here)
            acl.authorize(self.config.acls, fw.principal, acl.CREATE_VOLUME, [role])
            volume = resv.Volume(pid, role, v.size, path, fw.principal, resv.labels(v.labels))
            if not plan.remaining.contains(volume.disk):
                raise InvalidCall(
                    f"{here}: needs {volume.disk.format()} (disk reserved for {role!r}; RESERVE "
                    f"it first) but only {plan.remaining.format() or 'nothing'} is left of the "
                    f"offers on agent {agent.id}"
                )
            plan.remaining = plan.remaining - volume.disk
            plan.volumes[pid] = volume
            plan.free_volumes.add(pid)
            plan.volumes_changed = True
            plan.log.append(f"created volume {pid} ({volume.disk.format()}) for {fw.id}")

    def _plan_destroy(
        self, fw: Framework, agent: Agent, op: scheduler_pb2.Operation.Destroy,
        plan: _AcceptPlan, where: str,
    ) -> None:  # fmt: skip
        if not op.volumes:
            raise InvalidCall(f"{where}: no volumes given")
        for v in op.volumes:
            pid = v.persistence_id
            here = f"{where}, volume {pid!r}"
            if pid not in plan.free_volumes:
                raise InvalidCall(f"{here}: {self._why_not_free(agent, plan, pid)}; only a "
                                  "volume no task uses can be destroyed")  # fmt: skip
            volume = plan.volumes[pid]
            creator = volume.principal
            acl.authorize(self.config.acls, fw.principal, acl.DESTROY_VOLUME, [creator], creator)
            plan.remaining = plan.remaining + volume.disk
            del plan.volumes[pid]
            plan.free_volumes.discard(pid)
            plan.volumes_changed = True
            plan.log.append(f"destroyed volume {pid} for {fw.id}")

    def _validate_task(
        self, fw: Framework, agent: Agent, task: pb.TaskInfo, seen: set[str], where: str
    ) -> Resources:
        tid = task.task_id
        if not TASK_ID_RE.match(tid):
            raise InvalidCall(f"{where}: task id {tid!r} is invalid: {ID_RULE}")
        where = f"{where}, task {tid}"
        if tid in seen:
            raise InvalidCall(f"{where}: task id is used twice in this call", Code.ALREADY_EXISTS)
        if tid in fw.tasks:
            raise InvalidCall(
                f"{where}: the framework already has a task with this id", Code.ALREADY_EXISTS
            )
        seen.add(tid)
        for user in {task.command.user, task.executor.command.user} - {""}:
            try:
                acl.authorize(self.config.acls, fw.principal, acl.RUN_TASK, [user])
            except acl.Forbidden as e:
                raise acl.Forbidden(f"{where}: {e.message}") from None
        if task.agent_id and task.agent_id != agent.id:
            raise InvalidCall(
                f"{where}: agent_id {task.agent_id} differs from the offers' agent {agent.id}"
            )
        try:
            resources = Resources.from_proto(task.resources)
        except InvalidResources as e:
            raise InvalidCall(f"{where}: {e}") from None
        if not (resources.scalar("cpus") > 0 or resources.scalar("mem") > 0):
            raise InvalidCall(f"{where}: a task needs some cpus or mem")
        container = task.container
        if task.HasField("executor"):
            executor = task.executor
            if not TASK_ID_RE.match(executor.executor_id):
                raise InvalidCall(
                    f"{where}: executor id {executor.executor_id!r} is invalid: {ID_RULE}"
                )
            if not executor.command.value:
                raise InvalidCall(
                    f"{where}: executor {executor.executor_id} has no command.value: give the "
                    "command that starts it"
                )
            if task.command.value:
                raise InvalidCall(
                    f"{where}: give either command (the built-in command executor runs it) or "
                    "executor (your executor runs the task), not both"
                )
            try:
                Resources.from_proto(executor.resources)
            except InvalidResources as e:
                raise InvalidCall(f"{where}: executor {executor.executor_id}: {e}") from None
        elif container.type == pb.ContainerInfo.DOCKER:
            if not container.docker.image:
                raise InvalidCall(f"{where}: a DOCKER container needs docker.image")
        elif not task.command.value:
            raise InvalidCall(f"{where}: command.value is empty: give the command to run")
        if task.kill_grace_period < 0 or task.kill_grace_period != task.kill_grace_period:
            raise InvalidCall(f"{where}: kill_grace_period must be >= 0")
        return resources

    def _executor_needs(
        self, fw: Framework, agent: Agent, task: pb.TaskInfo, starting: dict[str, Resources]
    ) -> Resources:
        """An executor's own resources, charged with the first task that starts it
        on the agent (as in Mesos) and held until the agent says it ended; later
        tasks of a running executor add nothing."""
        if not task.HasField("executor"):
            return Resources.empty()
        executor_id = task.executor.executor_id
        if executor_id in starting or (fw.id, executor_id) in agent.executors:
            return Resources.empty()
        starting[executor_id] = Resources.from_proto(task.executor.resources)
        return starting[executor_id]

    def decline(
        self,
        header: scheduler_pb2.CallHeader,
        offer_ids: Sequence[str],
        filters: scheduler_pb2.Filters,
        now: float,
    ) -> list[Effect]:
        fw = self._caller(header)
        offers = self._offers_of(fw, offer_ids)
        refuse = _refuse_seconds(filters)
        for o in offers:
            self._drop_offer(o)
            if refuse > 0:
                fw.filters.append(OfferFilter(o.agent_id, o.resources, now + refuse))
        return []

    def message(
        self, header: scheduler_pb2.CallHeader, agent_id: str, executor_id: str, data: bytes
    ) -> list[Effect]:
        """Pass bytes to one of the framework's executors (best effort, as in Mesos)."""
        fw = self._caller(header)
        if not executor_id:
            raise InvalidCall("message: executor_id is empty")
        if len(data) > MAX_FRAMEWORK_MESSAGE:
            raise InvalidCall(
                f"message: {len(data)} bytes is over the {MAX_FRAMEWORK_MESSAGE} byte limit; "
                "send large data through a shared store and a reference here"
            )
        agent = self.agents.get(agent_id)
        if agent is None or agent.status is not AgentStatus.CONNECTED:
            raise InvalidCall(
                f"message: agent {agent_id or '(empty)'} is not connected; the message would "
                "be lost",
                Code.FAILED_PRECONDITION,
            )
        msg = agent_pb2.MasterMessage()
        msg.framework_message.framework_id = fw.id
        msg.framework_message.executor_id = executor_id
        msg.framework_message.data = data
        return [SendToAgent(agent.id, msg)]

    def framework_message(
        self, agent_id: str, link_id: int, message: agent_pb2.FrameworkMessage, now: float
    ) -> list[Effect]:
        """An executor's bytes for its scheduler, dropped if the framework is away."""
        if not self.agent_message_seen(agent_id, link_id, now):
            return []
        event = scheduler_pb2.Event(type=scheduler_pb2.Event.MESSAGE)
        event.message.agent_id = agent_id
        event.message.executor_id = message.executor_id
        event.message.data = message.data
        return self._to_framework(message.framework_id, event)

    def revive(self, header: scheduler_pb2.CallHeader, roles: Sequence[str]) -> list[Effect]:
        fw = self._caller(header)
        self._check_roles(fw, roles)
        fw.filters.clear()
        fw.suppressed_roles.difference_update(roles or fw.roles)
        self.allocation_wanted = True
        return []

    def suppress(self, header: scheduler_pb2.CallHeader, roles: Sequence[str]) -> list[Effect]:
        fw = self._caller(header)
        self._check_roles(fw, roles)
        fw.suppressed_roles.update(roles or fw.roles)
        return []

    def _check_roles(self, fw: Framework, roles: Sequence[str]) -> None:
        for role in roles:
            if role not in fw.roles:
                raise InvalidCall(f"role {role!r} is not one of the framework's roles {fw.roles}")

    def kill(
        self,
        header: scheduler_pb2.CallHeader,
        task_id: str,
        agent_id: str,
        grace_period: float | None,
        now: float,
    ) -> list[Effect]:
        fw = self._caller(header)
        if not task_id:
            raise InvalidCall("task_id is empty")
        if grace_period is not None and not grace_period >= 0:
            raise InvalidCall(f"grace_period must be >= 0 seconds, got {grace_period}")
        task = fw.tasks.get(task_id)
        if task is None:
            status = pb.TaskStatus(
                task_id=task_id,
                agent_id=agent_id,
                state=TS.TASK_UNKNOWN,
                reason=pb.REASON_TASK_UNKNOWN,
                message="the master knows no running task with this id",
                source=pb.SOURCE_MASTER,
                timestamp=now,
            )
            return self._to_framework(fw.id, _update_event([status]))
        return self._kill_task(task, grace_period)

    def _kill_task(self, task: Task, grace_period: float | None) -> list[Effect]:
        agent = self.agents[task.agent_id]
        if agent.status is not AgentStatus.CONNECTED:
            # Sent when the agent reconnects and reports the task.
            task.kill_pending = True
            return []
        msg = agent_pb2.MasterMessage()
        kill = msg.kill_tasks.kills.add(
            framework_id=task.framework_id, task_id=task.id, reason=pb.REASON_TASK_KILLED
        )
        if grace_period is not None:
            kill.grace_period = grace_period
        return [SendToAgent(agent.id, msg)]

    def operator_kill(
        self,
        task_id: str,
        framework_id: str,
        grace_period: float | None,
        now: float = 0.0,
        principal: str = "",
    ) -> tuple[Task, list[Effect]]:
        """An operator kills a live task by id (Mesos: the operator API's KILL_TASK is
        absent; `mesos task kill` goes through the framework; ours does not need it). The
        framework learns of it as TASK_KILLED, like any kill. With several live tasks of
        that id (one per framework), `framework_id` picks one."""
        if not task_id:
            raise InvalidCall("task_id is empty")
        if grace_period is not None and not 0 <= grace_period <= 86400:
            raise InvalidCall(f"grace must be between 0 and 86400 seconds, got {grace_period}")
        found = [
            fw.tasks[task_id]
            for fw in self.frameworks.values()
            if task_id in fw.tasks and (not framework_id or fw.id == framework_id)
        ]
        if not found:
            ended = [
                t
                for fw in self.frameworks.values()
                if not framework_id or fw.id == framework_id
                for t in fw.completed
                if t.id == task_id
            ]
            if ended:
                raise OrbiterError(
                    f"task {task_id!r} has ended already ({pb.TaskState.Name(ended[-1].state)})",
                    Code.FAILED_PRECONDITION,
                )
            where = f" of framework {framework_id!r}" if framework_id else ""
            raise OrbiterError(
                f"no live task {task_id!r}{where}; list tasks with `orbiter tasks`",
                Code.NOT_FOUND,
            )
        if len(found) > 1:
            raise OrbiterError(
                f"{len(found)} live tasks are called {task_id!r}; name the framework: one of "
                + ", ".join(sorted(t.framework_id for t in found)),
                Code.FAILED_PRECONDITION,
            )
        task = found[0]
        if task.state in TERMINAL_STATES:
            raise OrbiterError(
                f"task {task_id!r} has ended already ({pb.TaskState.Name(task.state)})",
                Code.FAILED_PRECONDITION,
            )
        self._operator_event(
            now, "task", task.agent_id, "kill",
            f"task {task.id} of framework {task.framework_id} killed by "
            f"{principal or 'operator'}", principal,
        )  # fmt: skip
        return task, self._kill_task(task, grace_period)

    def acknowledge(
        self, header: scheduler_pb2.CallHeader, acks: Sequence[scheduler_pb2.Acknowledgement]
    ) -> list[Effect]:
        """Pass the framework's acknowledgements on to the agents that sent the updates."""
        fw = self._caller(header)
        for i, ack in enumerate(acks):
            if len(ack.uuid) != 16:
                raise InvalidCall(
                    f"acknowledgement {i} (task {ack.task_id!r}): uuid must be the 16 bytes of "
                    "the update's uuid"
                )
            if not ack.task_id or not ack.agent_id:
                raise InvalidCall(f"acknowledgement {i}: task_id and agent_id are required")
        by_agent: dict[str, list[agent_pb2.MasterMessage.StatusAck]] = {}
        for ack in acks:
            task = fw.tasks.get(ack.task_id)
            if task is not None and task.terminal_uuid and task.terminal_uuid == ack.uuid:
                self._forget(task)
            agent = self.agents.get(ack.agent_id)
            if agent is not None and agent.status is AgentStatus.CONNECTED:
                by_agent.setdefault(agent.id, []).append(
                    agent_pb2.MasterMessage.StatusAck(
                        framework_id=fw.id, task_id=ack.task_id, uuid=ack.uuid
                    )
                )
        effects: list[Effect] = []
        for agent_id, agent_acks in by_agent.items():
            msg = agent_pb2.MasterMessage()
            msg.status_acks.acks.extend(agent_acks)
            effects.append(SendToAgent(agent_id, msg))
        return effects

    def reconcile(
        self,
        header: scheduler_pb2.CallHeader,
        tasks: Sequence[scheduler_pb2.ReconcileRequest.Task],
        now: float,
    ) -> list[Effect]:
        """Send the latest known state of the given tasks (or of all, if none given)."""
        fw = self._caller(header)
        statuses: list[pb.TaskStatus] = []
        if not tasks:
            for task in fw.tasks.values():
                statuses.append(self._reconciled(task, now))
        for req in tasks:
            if not req.task_id:
                raise InvalidCall("reconcile: a task entry has an empty task_id")
        for req in tasks:
            task = fw.tasks.get(req.task_id)
            if task is not None:
                statuses.append(self._reconciled(task, now))
                continue
            agent = self.agents.get(req.agent_id) if req.agent_id else None
            gone = self.gone.get(req.agent_id)
            if gone is not None:
                state = TS.TASK_LOST
                if fw.partition_aware:
                    state = TS.TASK_GONE_BY_OPERATOR if gone.by == "operator" else TS.TASK_GONE
                statuses.append(
                    pb.TaskStatus(
                        task_id=req.task_id,
                        agent_id=req.agent_id,
                        state=state,
                        reason=pb.REASON_RECONCILIATION,
                        message=f"agent {req.agent_id} was removed: {gone.reason}",
                        source=pb.SOURCE_MASTER,
                        timestamp=now,
                    )
                )
                continue
            if agent is not None and agent.status in (
                AgentStatus.DISCONNECTED,
                AgentStatus.RECOVERING,
            ):
                continue  # not known yet; the framework asks again later
            if agent is None:
                state, reason, why = TS.TASK_UNKNOWN, pb.REASON_RECONCILIATION, "task is unknown"
            elif agent.status is AgentStatus.UNREACHABLE:
                state, reason, why = (
                    TS.TASK_UNREACHABLE if fw.partition_aware else TS.TASK_LOST,
                    pb.REASON_RECONCILIATION,
                    "agent is unreachable",
                )
            else:
                state, reason, why = (
                    TS.TASK_GONE if fw.partition_aware else TS.TASK_LOST,
                    pb.REASON_RECONCILIATION,
                    f"task is not known on agent {agent.id}",
                )
            statuses.append(
                pb.TaskStatus(
                    task_id=req.task_id,
                    agent_id=req.agent_id,
                    state=state,
                    reason=reason,
                    message=why,
                    source=pb.SOURCE_MASTER,
                    timestamp=now,
                )
            )
        if not statuses:
            return []
        return self._to_framework(fw.id, _update_event(statuses))

    def _reconciled(self, task: Task, now: float) -> pb.TaskStatus:
        status = pb.TaskStatus(
            task_id=task.id,
            agent_id=task.agent_id,
            state=task.state,
            reason=pb.REASON_RECONCILIATION,
            source=pb.SOURCE_MASTER,
            timestamp=now,
        )
        if task.status is not None:
            status.message = task.status.message
            if task.status.HasField("healthy"):
                status.healthy = task.status.healthy
            if task.status.HasField("exit_code"):
                status.exit_code = task.status.exit_code
        return status

    # ------------------------------------------------------------------ maintenance

    def operator_reserve(
        self,
        agent_id: str,
        resources: Resources,
        labels: dict[str, str],
        now: float,
        principal: str = "",
    ) -> list[Effect]:
        """An operator reserves an agent's unreserved resources for roles (Mesos's
        RESERVE_RESOURCES). Outstanding offers of the agent are rescinded when the
        resources are offered, as in Mesos; resources tasks use are refused."""
        agent = self._maintained(agent_id)
        where = f"reserve on agent {agent_id}"
        if not resources or "" in resources.roles():
            raise InvalidCall(
                f"{where}: {resources.format() or 'nothing'}: give resources with a role, "
                "like cpus(db):1;mem(db):256 (or --role db)"
            )
        for role in sorted(resources.roles()):
            acl.authorize(self.config.acls, principal, acl.RESERVE, [role])
        unreserved = resources.reassigned("")
        self._check_free(agent, unreserved, where)
        effects = self._free_offered(agent, unreserved)
        for role in sorted(resources.roles()):
            agent.reservations.append(
                resv.Reservation(role, principal, resv.labels(labels), resources.reserved(role))
            )
        agent.apply_reservations()
        self.allocation_wanted = True
        self._operator_event(now, "reservation", agent.id, "reserve",
                             f"reserved {resources.format()}", principal)  # fmt: skip
        effects.append(self._persist())
        return effects

    def operator_unreserve(
        self, agent_id: str, resources: Resources, now: float, principal: str = ""
    ) -> list[Effect]:
        """An operator gives dynamically reserved resources back to the unreserved pool
        (Mesos's UNRESERVE_RESOURCES): only what no task uses and no volume holds."""
        agent = self._maintained(agent_id)
        where = f"unreserve on agent {agent_id}"
        reservations, touched = resv.take(agent.reservations, resources, where)
        for reserver in sorted(touched):
            acl.authorize(self.config.acls, principal, acl.UNRESERVE, [reserver], reserver)
        self._check_free(agent, resources, where)
        effects = self._free_offered(agent, resources)
        agent.reservations = reservations
        agent.apply_reservations()
        self.allocation_wanted = True
        self._operator_event(now, "reservation", agent.id, "unreserve",
                             f"unreserved {resources.format()}", principal)  # fmt: skip
        effects.append(self._persist())
        return effects

    @staticmethod
    def _check_free(agent: Agent, wanted: Resources, where: str) -> None:
        try:
            free = agent.total - agent.used
        except InvalidResources:
            free = Resources.empty()
        if not free.contains(wanted):
            raise InvalidCall(
                f"{where}: {wanted.format()} is not free: tasks use or volumes hold the rest "
                f"(free, offered or not: {free.format() or 'nothing'})",
                Code.FAILED_PRECONDITION,
            )

    def _free_offered(self, agent: Agent, wanted: Resources) -> list[Effect]:
        """Rescind the agent's offers if `wanted` is not available without them."""
        if agent.available.contains(wanted):
            return []
        return self._rescind_agent_offers(agent)

    def _maintained(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(f"no agent {agent_id!r}; list agents with `orbiter agents`")
        if agent.status is AgentStatus.GONE:
            raise InvalidCall(
                f"agent {agent_id} was removed from the cluster", Code.FAILED_PRECONDITION
            )
        return agent

    @staticmethod
    def _check_who(by: str, reason: str) -> None:
        if by not in ("operator", "satellite"):
            raise InvalidCall(f"by must be 'operator' or 'satellite', got {by!r}")
        if not reason.strip():
            raise InvalidCall("a reason is required: say why (it is kept and shown)")

    def deactivate(
        self, agent_id: str, by: str, reason: str, now: float, principal: str = ""
    ) -> list[Effect]:
        """Stop offering the agent; its tasks keep running. Outstanding offers are rescinded."""
        agent = self._maintained(agent_id)
        self._check_who(by, reason)
        if agent.mode in (master_pb2.DRAINING, master_pb2.DRAINED):
            raise InvalidCall(
                f"agent {agent_id} is {master_pb2.MaintenanceMode.Name(agent.mode).lower()}; "
                "reactivate it first",
                Code.FAILED_PRECONDITION,
            )
        if agent.mode == master_pb2.DEACTIVATED:
            return self._take_over(agent, by, reason, now, "deactivate", principal)
        agent.maintenance = master_pb2.Maintenance(
            mode=master_pb2.DEACTIVATED, by=by, reason=reason, since=now, principal=principal
        )
        self._maintenance_event(agent, now, "deactivated", "deactivate")
        return [*self._rescind_agent_offers(agent), self._persist()]

    def drain(
        self, agent_id: str, grace: float, by: str, reason: str, now: float, principal: str = ""
    ) -> list[Effect]:
        """Stop offering the agent and kill its tasks; it is DRAINED once none is left."""
        agent = self._maintained(agent_id)
        self._check_who(by, reason)
        if not (0 <= grace <= 86400):
            raise InvalidCall(f"grace must be between 0 and 86400 seconds, got {grace}")
        if agent.mode in (master_pb2.DRAINING, master_pb2.DRAINED):
            return self._take_over(agent, by, reason, now, "drain", principal)
        agent.maintenance = master_pb2.Maintenance(
            mode=master_pb2.DRAINING,
            by=by,
            reason=reason,
            since=now,
            drain_grace=grace,
            principal=principal,
        )
        self._maintenance_event(agent, now, "draining", "drain")
        effects: list[Effect] = [*self._rescind_agent_offers(agent), self._persist()]
        kills = [
            self._drain_kill(agent, t)
            for t in agent.tasks.values()
            if t.state not in TERMINAL_STATES
        ]
        if kills and agent.status is AgentStatus.CONNECTED:
            msg = agent_pb2.MasterMessage()
            msg.kill_tasks.kills.extend(kills)
            effects.append(SendToAgent(agent.id, msg))
        effects += self._check_drained(agent, now)
        return effects

    def _take_over(
        self, agent: Agent, by: str, reason: str, now: float, action: str, principal: str = ""
    ) -> list[Effect]:
        """An operator repeating what Satellite did makes it theirs: Satellite never undoes it."""
        m = agent.maintenance
        if by != "operator" or (m.by == "operator" and m.reason == reason):
            return []
        mode = master_pb2.MaintenanceMode.Name(m.mode).lower()
        m.by = "operator"
        m.reason = reason
        m.principal = principal
        self._maintenance_event(agent, now, f"stays {mode}, now held", action)
        return [self._persist()]

    def _drain_kill(self, agent: Agent, task: Task) -> agent_pb2.MasterMessage.KillTask:
        return agent_pb2.MasterMessage.KillTask(
            framework_id=task.framework_id,
            task_id=task.id,
            grace_period=agent.maintenance.drain_grace,
            reason=pb.REASON_AGENT_DRAINING,
        )

    def _check_drained(self, agent: Agent, now: float) -> list[Effect]:
        if agent.mode != master_pb2.DRAINING:
            return []
        if any(t.state not in TERMINAL_STATES for t in agent.tasks.values()):
            return []
        agent.maintenance.mode = master_pb2.DRAINED
        agent.maintenance.since = now
        self._maintenance_event(agent, now, "drained")
        return [self._persist()]

    def reactivate(
        self, agent_id: str, by: str, reason: str, now: float, principal: str = ""
    ) -> list[Effect]:
        """Put the agent back in service."""
        agent = self._maintained(agent_id)
        self._check_who(by, reason or "reactivated")
        if agent.mode == master_pb2.ACTIVE:
            if by == "operator":
                self._operator_event(now, "maintenance", agent.id, "reactivate",
                                     "already active; nothing changed", principal)  # fmt: skip
            return []
        agent.maintenance = master_pb2.Maintenance(
            mode=master_pb2.ACTIVE, by=by, reason=reason, since=now, principal=principal
        )
        self._maintenance_event(agent, now, "reactivated", "reactivate")
        self.allocation_wanted = True
        return [self._persist()]

    def set_pin(
        self, agent_id: str, state: str, until: float, reason: str, now: float, principal: str = ""
    ) -> list[Effect]:
        """Pin the agent in `state` now and hold Satellite off it until the pin expires.

        A pin overrides Satellite only. `active` reactivates an agent that is out of
        service, and Satellite will not deactivate or drain it; `inactive` deactivates
        an active agent (a draining or drained one stays so), and Satellite will not
        reactivate it. Operators' own commands still act on a pinned agent; the pin
        stays and keeps holding Satellite off. A new pin replaces the old one.
        """
        agent = self._maintained(agent_id)
        if state not in ("active", "inactive"):
            raise InvalidCall(f"pin state must be 'active' or 'inactive', got {state!r}")
        if not until > now:
            raise InvalidCall("a pin must last a positive time")
        self._check_who("operator", reason)
        agent.pin = master_pb2.Pin(state=state, until=until, reason=reason)
        effects: list[Effect] = []
        mode = master_pb2.MaintenanceMode.Name(agent.mode).lower()
        done = ""
        if state == "inactive" and agent.mode == master_pb2.ACTIVE:
            agent.maintenance = master_pb2.Maintenance(
                mode=master_pb2.DEACTIVATED, by="operator", reason=f"pinned inactive: {reason}",
                since=now, principal=principal,
            )  # fmt: skip
            effects += self._rescind_agent_offers(agent)
            done = "deactivated and "
        elif state == "active" and agent.mode != master_pb2.ACTIVE:
            agent.maintenance = master_pb2.Maintenance(
                mode=master_pb2.ACTIVE, by="operator", reason=f"pinned active: {reason}",
                since=now, principal=principal,
            )  # fmt: skip
            self.allocation_wanted = True
            done = f"reactivated (was {mode}) and "
        elif state == "inactive":
            done = f"stays {mode}, "
        hold = "deactivate or drain" if state == "active" else "reactivate"
        self._operator_event(
            now, "maintenance", agent.id, "pin",
            f"{done}pinned {state} ({time_left(until, now)}): Satellite will not {hold} it "
            f"until the pin expires: {reason}",
            principal,
        )  # fmt: skip
        effects.append(self._persist())
        return effects

    def clear_pin(self, agent_id: str, now: float = 0.0, principal: str = "") -> list[Effect]:
        """Remove the pin: Satellite's automation applies again. The agent's mode stays."""
        agent = self._maintained(agent_id)
        if agent.pin is None or agent.pin.until <= now:
            self._operator_event(now, "maintenance", agent.id, "unpin",
                                 "was not pinned; nothing changed", principal)  # fmt: skip
            if agent.pin is None:
                return []
            agent.pin = None
            return [self._persist()]
        agent.pin = None
        m = agent.maintenance
        if agent.mode == master_pb2.ACTIVE:
            what = "unpinned, stays active: Satellite's automation applies to it again"
        else:
            mode = master_pb2.MaintenanceMode.Name(agent.mode).lower()
            back = (
                "`orbiter reactivate` puts it back"
                if m.by == "operator"
                else "Satellite reactivates it when its alert resolves"
            )
            what = f"unpinned, stays {mode} by {m.by}: {back}"
        self._operator_event(now, "maintenance", agent.id, "unpin", what, principal)
        return [self._persist()]

    # ------------------------------------------------------------------ silences

    def put_silence(
        self, silence: master_pb2.Silence, now: float, principal: str = ""
    ) -> list[Effect]:
        """Add a silence, or replace one with the same id (Alertmanager's update)."""
        old = self.silences.get(silence.id)
        if old is not None and silences.state(old, now) == "expired":
            raise InvalidCall(f"silence {silence.id} has expired; create a new one")
        if old is None:
            live = sum(1 for s in self.silences.values() if silences.state(s, now) != "expired")
            caps.check_new_silence(self.config.limits, live)
        self.silences[silence.id] = silence
        self.silences = silences.prune(self.silences, now)
        self._operator_event(now, "silence", "", "silence add",
                             f"silence {silence.id} by {silence.created_by}: "
                             f"{', '.join(map(str, silences.specs(silence)))} until "
                             f"{silences.format_time(silence.ends_at)} ({silence.comment})",
                             principal)  # fmt: skip
        return [self._persist()]

    def expire_silence(self, silence_id: str, now: float, principal: str = "") -> list[Effect]:
        """End a silence now; it stays listed, expired, for a few days."""
        old = self.silences.get(silence_id)
        if old is None:
            raise OrbiterError(
                f"no silence {silence_id}; `orbiter silence list` shows them", Code.NOT_FOUND
            )
        if silences.state(old, now) == "expired":
            return []
        expired = master_pb2.Silence()
        expired.CopyFrom(old)
        expired.ends_at = now
        expired.updated_at = now
        if expired.starts_at > now:
            expired.starts_at = now
        self.silences[silence_id] = expired
        self._operator_event(now, "silence", "", "silence expire",
                             f"silence {silence_id} expired", principal)  # fmt: skip
        return [self._persist()]

    # ------------------------------------------------------------------ roles

    def update_weights(
        self, weights: dict[str, object], now: float, principal: str = ""
    ) -> list[Effect]:
        """Set role weights (Mesos's UPDATE_WEIGHTS); weight 1 is the default and is not kept."""
        if not weights:
            raise InvalidCall("no weights given: [{role, weight}, ...]")
        checked = {role: quota_rules.check_weight(role, w) for role, w in weights.items()}
        acl.authorize(self.config.acls, principal, acl.UPDATE_WEIGHTS, sorted(checked))
        for role, weight in checked.items():
            if weight == 1.0:
                self.weights.pop(role, None)
            else:
                self.weights[role] = weight
        said = ", ".join(f"{r}={w:g}" for r, w in sorted(checked.items()))
        self._operator_event(now, "quota", "", "update weights", f"weights {said}", principal)
        self.allocation_wanted = True
        return [self._persist()]

    def update_quotas(
        self,
        quotas: dict[str, quota_rules.Quota],
        now: float,
        principal: str = "",
        force: bool = False,
    ) -> list[Effect]:
        """Set role quotas (Mesos's UPDATE_QUOTA); an empty quota removes the role's.

        The quotas are checked together with those kept (a child's guarantee in
        its parent's, a guarantee within the limit, the guarantees within the
        cluster unless `force`); a refusal changes nothing.
        """
        if not quotas:
            raise InvalidCall("no quotas given: [{role, guarantees, limits}, ...]")
        total = self.total_quantities()
        for role, q in quotas.items():
            quota_rules.check_role(role, "a quota")
            quota_rules.check_quantities(q.guarantees, f"{role}: guarantees", total)
            quota_rules.check_quantities(q.limits, f"{role}: limits", total)
        acl.authorize(self.config.acls, principal, acl.UPDATE_QUOTAS, sorted(quotas))
        after = dict(self.quotas)
        for role, q in quotas.items():
            if q.is_empty():
                after.pop(role, None)
            else:
                after[role] = quota_rules.Quota(dict(q.guarantees), dict(q.limits))
        quota_rules.check_quotas(after, total, force)
        self.quotas = after
        for role, q in sorted(quotas.items()):
            what = (
                f"quota of {role} removed" if q.is_empty() else
                f"quota of {role}: guarantee {quota_rules.format_quantities(q.guarantees) or '-'}"
                f", limit {quota_rules.format_quantities(q.limits) or '-'}"
            )  # fmt: skip
            self._operator_event(now, "quota", "", "update quota", what, principal)
        self.allocation_wanted = True
        return [self._persist()]

    def role_view(self) -> dict[str, dict[str, object]]:
        """Every role that has a framework, a weight, a quota or an allocation (and parents)."""
        names: set[str] = set(self.weights) | set(self.quotas)
        allocated: dict[str, dict[str, float]] = {}
        frameworks: dict[str, list[str]] = {}
        for fw in self.frameworks.values():
            if fw.status is FrameworkStatus.COMPLETED:
                continue
            for role in fw.roles:
                frameworks.setdefault(role, []).append(fw.id)
            for role, held in fw.allocated.items():
                for node in role_names.lineage(role):
                    into = allocated.setdefault(node, {})
                    for name, q in held.items():
                        into[name] = into.get(name, 0.0) + q
        names |= set(frameworks) | {r for r, held in allocated.items() if any(held.values())}
        names |= {a for r in list(names) for a in role_names.ancestors(r)}
        out: dict[str, dict[str, object]] = {}
        for role in sorted(names):
            q = self.quotas.get(role, quota_rules.Quota())
            out[role] = {
                "weight": self.weights.get(role, 1.0),
                "frameworks": sorted(frameworks.get(role, [])),
                "allocated": {n: v for n, v in sorted(allocated.get(role, {}).items()) if v},
                "guarantees": dict(q.guarantees),
                "limits": dict(q.limits),
            }
        return out

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> list[Effect]:
        """Carry out everything whose time has come: timeouts and expiries."""
        effects: list[Effect] = []
        cfg = self.config
        timeout = cfg.agent_timeout
        for agent in list(self.agents.values()):
            silent = now - agent.last_seen
            if agent.status is AgentStatus.CONNECTED and silent > timeout:
                effects.append(CloseAgentLink(agent.id, agent.link_id, "no heartbeat"))
                agent.status = AgentStatus.DISCONNECTED
                effects += self._rescind_agent_offers(agent)
            elif agent.status is AgentStatus.DISCONNECTED and silent > timeout:
                effects += self._mark_unreachable(agent, now, f"no contact for {timeout:g}s")
            elif agent.status is AgentStatus.RECOVERING and silent > cfg.agent_reregister_timeout:
                effects += self._mark_unreachable(
                    agent,
                    now,
                    f"did not re-register within {cfg.agent_reregister_timeout:g}s of the "
                    "master's failover",
                )
            elif (
                agent.status is AgentStatus.UNREACHABLE
                and cfg.agent_removal_age > 0
                and now - agent.unreachable_since > cfg.agent_removal_age
            ):
                effects += self._remove_agent(
                    agent, now, f"unreachable for more than {cfg.agent_removal_age:g}s"
                )
        for offer in list(self.offers.values()):
            if offer.expires <= now:
                effects += self._rescind(offer)
        for fw in list(self.frameworks.values()):
            if fw.status is FrameworkStatus.DISCONNECTED and now - fw.disconnected_at > max(
                fw.info.failover_timeout, fw.recovery_grace
            ):
                effects += self._remove_framework(
                    fw, now, f"framework did not reconnect within {fw.info.failover_timeout:g}s"
                )
        for agent in self.agents.values():
            if agent.pin is not None and agent.pin.until <= now:
                agent.pin = None
                effects.append(self._persist())
            effects += self._check_drained(agent, now)
        if now - self.last_allocation >= self.config.allocation_interval:
            self.allocation_wanted = True
        return effects

    # ------------------------------------------------------------------ helpers

    def _to_framework(self, fw_id: str, event: scheduler_pb2.Event) -> list[Effect]:
        fw = self.frameworks.get(fw_id)
        if fw is None or fw.status is not FrameworkStatus.CONNECTED:
            return []
        return [SendToFramework(fw_id, event)]


def _pin_note(agent: Agent, now: float) -> str:
    """What an operator's command on a pinned agent leaves in force."""
    pin = agent.pin
    if pin is None or pin.until <= now:
        return ""
    return f" (the pin {pin.state}, {time_left(pin.until, now)}, still holds Satellite off it)"


def _refuse_seconds(filters: scheduler_pb2.Filters) -> float:
    if not filters.HasField("refuse_seconds"):
        return DEFAULT_REFUSE_SECONDS
    value = filters.refuse_seconds
    if not (0 <= value < 365 * 86400):
        raise InvalidCall(f"filters.refuse_seconds must be between 0 and one year, got {value}")
    return value


__all__ = [
    "TERMINAL_STATES",
    "Agent",
    "AgentStatus",
    "Framework",
    "FrameworkStatus",
    "Master",
    "MasterConfig",
    "Offer",
    "Task",
]
