"""A simulated world around one `Master`, for the failure property test.

The master is the real sans-I/O state machine; everything around it is a
model: agents with their own truth (the tasks they run and how those really
ended) and unacknowledged status-update queues (the real
`StatusUpdateManager`), frameworks that behave as the SDK does (subscribe,
launch on offers, acknowledge every update with a uuid, reconcile), links
that drop, a registry the shell persists, and a clock.

Effects are carried out at once, in order, as the shell would: a message to
a peer whose link is down is lost. Whatever a framework is told is checked
when it arrives (one terminal state per task, and a truthful one) and
recorded in `World.violations`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from orbiter.agent.status_updates import StatusUpdateManager
from orbiter.errors import OrbiterError, RegistrationRefused
from orbiter.master.effects import (
    CloseAgentLink,
    CloseFrameworkStream,
    Effect,
    PersistRegistry,
    SendToAgent,
    SendToFramework,
)
from orbiter.master.state import Master, MasterConfig
from orbiter.proto import agent_pb2, master_pb2, messages_pb2, scheduler_pb2
from orbiter.resources import Resources
from orbiter.taskstates import TERMINAL_STATES

pb = messages_pb2
TS = pb.TaskState
Event = scheduler_pb2.Event

CONFIG = MasterConfig()
AGENT_RESOURCES = "cpus:4;mem:1024"
TASK_RESOURCES = "cpus:1;mem:128"
# Long enough that no framework is torn down for being away: frameworks here always come back.
FAILOVER_TIMEOUT = 1e9

RUNNING = "running"
VANISHED = "vanished"  # the task disappeared with its agent (restart, removal, death)
Truth = str | int  # RUNNING, VANISHED, or the terminal TaskState it really ended in

Key = tuple[str, str]  # (framework id, task id)


def state_name(state: int) -> str:
    return TS.Name(state).removeprefix("TASK_")


def timeouts(config: MasterConfig) -> list[float]:
    """Every timeout the master has, whatever this version of MasterConfig calls them."""
    out = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if ("timeout" in f.name or f.name.endswith("_age")) and isinstance(value, int | float):
            out.append(float(value))
    return sorted(set(out))


# ---------------------------------------------------------------- agents


@dataclass
class AgentTask:
    framework_id: str
    info: pb.TaskInfo
    state: int


@dataclass
class SimAgent:
    """One agent process and the machine under it."""

    index: int
    id: str = ""
    link: int = 0  # 0: no link (dropped, partitioned, or never connected)
    alive: bool = True  # False: shut down by the master, or the machine is gone
    tasks: dict[Key, AgentTask] = field(default_factory=dict)
    updates: StatusUpdateManager = field(default_factory=StatusUpdateManager)

    @property
    def name(self) -> str:
        return f"agent{self.index}"

    @property
    def address(self) -> str:
        return f"10.0.0.{self.index + 1}:5051"


# ---------------------------------------------------------------- frameworks


def history(seen: list[Received]) -> str:
    """What a framework was told, repeats folded: 'RUNNING(agent, ...) x3, LOST(...)'."""
    parts: list[str] = []
    for text, group in itertools.groupby(map(str, seen)):
        n = len(list(group))
        parts.append(text if n == 1 else f"{text} x{n}")
    return ", ".join(parts)


@dataclass(frozen=True)
class Received:
    """One status as a framework received it."""

    state: int
    source: int
    reason: int
    uuid: bytes

    def __str__(self) -> str:
        source = pb.TaskSource.Name(self.source).removeprefix("SOURCE_").lower()
        reason = pb.TaskReason.Name(self.reason).removeprefix("REASON_")
        return f"{state_name(self.state)}({source}, {reason})"


@dataclass
class SimFramework:
    """A scheduler using the SDK: it acknowledges and reconciles as the driver does."""

    index: int
    partition_aware: bool
    id: str = ""
    header: scheduler_pb2.CallHeader | None = None
    offers: dict[str, pb.Offer] = field(default_factory=dict)
    launched: dict[str, str] = field(default_factory=dict)  # task id -> agent id
    seen: dict[str, list[Received]] = field(default_factory=dict)  # task id -> statuses
    to_ack: list[scheduler_pb2.Acknowledgement] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "aware" if self.partition_aware else "plain"

    def view(self, task_id: str) -> int:
        """The task's state as the framework believes it: its latest status."""
        seen = self.seen.get(task_id)
        return seen[-1].state if seen else TS.TASK_STAGING

    def ended(self, task_id: str) -> bool:
        return any(r.state in TERMINAL_STATES for r in self.seen.get(task_id, ()))

    def open_tasks(self) -> list[str]:
        return [t for t in self.launched if not self.ended(t)]

    def info(self) -> pb.FrameworkInfo:
        info = pb.FrameworkInfo(id=self.id, name=self.name, failover_timeout=FAILOVER_TIMEOUT)
        if self.partition_aware:
            info.capabilities.append(pb.PARTITION_AWARE)
        return info


# ---------------------------------------------------------------- the world


class World:
    """One master, its agents and frameworks, and what each really knows."""

    def __init__(self, n_agents: int = 2, config: MasterConfig = CONFIG) -> None:
        self.config = config
        self.now = 0.0
        self.generation = 0
        self.master = self._new_master()
        self.persisted = master_pb2.Registry()
        self.agents = [SimAgent(i) for i in range(n_agents)]
        self.frameworks = [SimFramework(0, partition_aware=False), SimFramework(1, True)]
        self.truth: dict[Key, Truth] = {}
        self.task_agent: dict[Key, int] = {}  # where each task was launched
        self.removed: set[str] = set()  # agent ids an operator removed
        self.violations: list[str] = []
        self._links = itertools.count(1)
        self._tasks = itertools.count(1)
        self._uuids = itertools.count(1)

    def _new_master(self) -> Master:
        self.generation += 1
        info = pb.MasterInfo(id=f"{self.generation:08d}-master", hostname="master.test")
        return Master(info, self.config, self.now)

    # ------------------------------------------------------------ carrying out effects

    def carry_out(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, PersistRegistry):
                self.persisted = master_pb2.Registry()
                self.persisted.CopyFrom(self.master.registry())
            elif isinstance(effect, SendToAgent):
                agent = self._linked_agent(effect.agent_id)
                if agent is not None:
                    self._agent_receives(agent, effect.message)
            elif isinstance(effect, SendToFramework):
                fw = self._framework(effect.framework_id)
                if fw is not None and fw.header is not None:
                    self._framework_receives(fw, effect.event)
            elif isinstance(effect, CloseAgentLink):
                agent = self._agent_by_id(effect.agent_id)
                if agent is not None and agent.link == effect.link_id:
                    agent.link = 0
                    if effect.shutdown:
                        self._shut_down(agent)
            elif isinstance(effect, CloseFrameworkStream):
                fw = self._framework(effect.framework_id)
                if fw is not None and fw.header and fw.header.stream_id == effect.stream_id:
                    self._framework_gone(fw)

    def _agent_by_id(self, agent_id: str) -> SimAgent | None:
        return next((a for a in self.agents if a.id and a.id == agent_id), None)

    def _linked_agent(self, agent_id: str) -> SimAgent | None:
        """The agent, if the link the master would send on is the one the agent holds."""
        agent = self._agent_by_id(agent_id)
        known = self.master.agents.get(agent_id)
        if agent is None or known is None or not agent.link or agent.link != known.link_id:
            return None
        return agent

    def _framework(self, framework_id: str) -> SimFramework | None:
        return next((f for f in self.frameworks if f.id and f.id == framework_id), None)

    # ------------------------------------------------------------ agent side

    def _agent_receives(self, agent: SimAgent, msg: agent_pb2.MasterMessage) -> None:
        kind = msg.WhichOneof("message")
        if kind == "run_tasks":
            fw_id = msg.run_tasks.framework_id
            for info in msg.run_tasks.tasks:
                key = (fw_id, info.task_id)
                if key in agent.tasks:
                    continue
                agent.tasks[key] = AgentTask(fw_id, info, TS.TASK_RUNNING)
                self.truth[key] = RUNNING
                self._agent_update(
                    agent, key, TS.TASK_RUNNING, pb.SOURCE_EXECUTOR, pb.REASON_UNSPECIFIED
                )
        elif kind == "kill_tasks":
            for kill in msg.kill_tasks.kills:
                key = (kill.framework_id, kill.task_id)
                task = agent.tasks.get(key)
                if task is None:
                    self._agent_update(
                        agent, key, TS.TASK_LOST, pb.SOURCE_AGENT, pb.REASON_TASK_UNKNOWN
                    )
                elif task.state not in TERMINAL_STATES:
                    self._task_ends(
                        agent, key, TS.TASK_KILLED, kill.reason or pb.REASON_TASK_KILLED
                    )
        elif kind == "status_acks":
            for ack in msg.status_acks.acks:
                key = (ack.framework_id, ack.task_id)
                acked = agent.updates.acknowledge(ack.framework_id, ack.task_id, ack.uuid)
                task = agent.tasks.get(key)
                if (
                    acked is not None
                    and task is not None
                    and task.state in TERMINAL_STATES
                    and not agent.updates.unacknowledged(*key)
                ):
                    del agent.tasks[key]
        elif kind == "shutdown":
            self._shut_down(agent)

    def _agent_update(
        self, agent: SimAgent, key: Key, state: int, source: int, reason: int
    ) -> None:
        status = pb.TaskStatus(
            task_id=key[1],
            agent_id=agent.id,
            state=state,
            source=source,
            reason=reason,
            uuid=next(self._uuids).to_bytes(16, "big"),
            timestamp=self.now,
        )
        agent.updates.add(key[0], status)

    def _task_ends(self, agent: SimAgent, key: Key, state: int, reason: int) -> None:
        agent.tasks[key].state = state
        self.truth[key] = state
        self._agent_update(agent, key, state, pb.SOURCE_AGENT, reason)

    def _lose_tasks(self, agent: SimAgent) -> None:
        """The agent's tasks are gone without a word (kill -9 without recovery, machine lost)."""
        for key, task in agent.tasks.items():
            if task.state not in TERMINAL_STATES:
                self.truth[key] = VANISHED
        agent.tasks.clear()
        agent.updates = StatusUpdateManager()

    def _shut_down(self, agent: SimAgent) -> None:
        agent.link = 0
        agent.alive = False
        self._lose_tasks(agent)

    def agent_connects(self, i: int) -> None:
        """(Re-)register on a new link, reporting every task held (terminal ones too)."""
        agent = self.agents[i]
        if not agent.alive or agent.link:
            return
        info = pb.AgentInfo(
            id=agent.id, hostname=agent.name, http_address=agent.address, version="test"
        )
        info.resources.extend(Resources.parse(AGENT_RESOURCES).to_proto())
        msg = agent_pb2.AgentMessage.Register(info=info)
        for task in agent.tasks.values():
            msg.tasks.add(framework_id=task.framework_id, task=task.info, state=task.state)
        link = next(self._links)
        try:
            agent_id, effects = self.master.agent_register(link, msg, self.now)
        except RegistrationRefused:
            self._shut_down(agent)  # as the real agent does: it stops
            return
        agent.id, agent.link = agent_id, link
        self.carry_out(effects)

    def agent_link_drops(self, i: int) -> None:
        agent = self.agents[i]
        if agent.link:
            link, agent.link = agent.link, 0
            self.carry_out(self.master.agent_disconnected(agent.id, link, self.now))

    def agent_partitioned(self, i: int) -> None:
        """The agent goes silent; the master is not told and finds out by its timeout."""
        self.agents[i].link = 0

    def agent_sends_updates(self, i: int) -> None:
        """Send the head of every unacknowledged update queue (a reconnect makes all due)."""
        agent = self.agents[i]
        if not agent.link:
            return
        agent.updates.resend_all()
        due = agent.updates.due(self.now)
        if due:
            self.carry_out(self.master.status_updates(agent.id, agent.link, due, self.now))

    def task_ends_on_its_own(self, pick: int, state: int) -> None:
        """A running task finishes or fails, whether or not its agent is connected."""
        running = [
            (agent, key)
            for agent in self.agents
            for key, task in sorted(agent.tasks.items())
            if task.state not in TERMINAL_STATES
        ]
        if running:
            agent, key = running[pick % len(running)]
            self._task_ends(agent, key, state, pb.REASON_COMMAND_EXITED)

    def agent_restarts_without_tasks(self, i: int) -> None:
        """kill -9 of the agent and no recovery: its tasks are gone, it keeps its id."""
        agent = self.agents[i]
        if not agent.alive or not agent.id:
            return
        self.agent_link_drops(i)
        self._lose_tasks(agent)
        self.agent_connects(i)

    def agent_restarts_and_recovers(self, i: int) -> None:
        """The agent restarts and recovers from its checkpoints, as orbiter/agent does:
        ended tasks resend their (checkpointed) end; running ones could not be
        reattached, so they are killed and reported FAILED."""
        agent = self.agents[i]
        if not agent.alive or not agent.id:
            return
        self.agent_link_drops(i)
        ends = {
            (fw_id, s.task_id): s
            for fw_id, s in agent.updates.pending()
            if s.state in TERMINAL_STATES
        }
        agent.updates = StatusUpdateManager()
        for key, task in list(agent.tasks.items()):
            if key in ends:
                agent.updates.add(key[0], ends[key])
            elif task.state in TERMINAL_STATES:
                del agent.tasks[key]  # its end was acknowledged: the checkpoint is gone
            else:
                self._task_ends(agent, key, TS.TASK_FAILED, pb.REASON_AGENT_RESTARTED)
        self.agent_connects(i)

    def agent_dies(self, i: int) -> None:
        """The machine is gone for good; the master only notices by the timeout."""
        agent = self.agents[i]
        if agent.alive and agent.id:
            self._shut_down(agent)

    def operator_removes_agent(self, i: int) -> None:
        agent = self.agents[i]
        remove = getattr(self.master, "remove_agent", None)
        if remove is None or not agent.id:
            return
        try:
            effects = remove(agent.id, "operator", "decommissioned", self.now)
        except OrbiterError:
            return
        self.removed.add(agent.id)
        self.carry_out(effects)

    # ------------------------------------------------------------ framework side

    def _framework_receives(self, fw: SimFramework, event: scheduler_pb2.Event) -> None:
        if event.type == Event.OFFERS:
            for offer in event.offers.offers:
                fw.offers[offer.id] = offer
        elif event.type == Event.RESCIND:
            fw.offers.pop(event.rescind.offer_id, None)
        elif event.type == Event.UPDATE:
            for status in event.update.statuses:
                self._check_status(fw, status)
                fw.seen.setdefault(status.task_id, []).append(
                    Received(status.state, status.source, status.reason, status.uuid)
                )
                if status.uuid:
                    fw.to_ack.append(
                        scheduler_pb2.Acknowledgement(
                            agent_id=status.agent_id, task_id=status.task_id, uuid=status.uuid
                        )
                    )

    def _framework_gone(self, fw: SimFramework) -> None:
        fw.header = None
        fw.offers.clear()
        fw.to_ack.clear()  # acknowledgements not sent yet die with the stream

    def _call(
        self, fw: SimFramework, fn: Callable[[scheduler_pb2.CallHeader], list[Effect]]
    ) -> None:
        if fw.header is None:
            return
        try:
            effects = fn(fw.header)
        except OrbiterError:
            return  # as the SDK sees a refused call: nothing happened
        self.carry_out(effects)

    def framework_subscribes(self, j: int) -> None:
        """(Re)subscribe with the framework's id, then reconcile every open task."""
        fw = self.frameworks[j]
        if fw.header is not None:
            return
        fw_id, stream_id, effects = self.master.subscribe(fw.info(), self.now)
        fw.id = fw_id
        fw.header = scheduler_pb2.CallHeader(framework_id=fw_id, stream_id=stream_id)
        self.carry_out(effects)
        self.framework_reconciles(j)

    def framework_disconnects(self, j: int) -> None:
        fw = self.frameworks[j]
        if fw.header is not None:
            stream = fw.header.stream_id
            self._framework_gone(fw)
            self.carry_out(self.master.framework_disconnected(fw.id, stream, self.now))

    def framework_launches(self, j: int, n: int = 1) -> None:
        """Launch n tasks on the framework's oldest offer and decline the rest.

        The framework (re)subscribes first if it has to and revives; the others, idle,
        decline what they hold for a second, so this one is offered whatever is free.
        """
        fw = self.frameworks[j]
        self.framework_subscribes(j)
        self._call(fw, lambda h: self.master.revive(h, ()))  # it has work again
        self.allocate()
        for other in self.frameworks:
            held = list(other.offers)
            if other is not fw and held:
                other.offers.clear()
                refuse = scheduler_pb2.Filters(refuse_seconds=1.0)
                self._call(
                    other, lambda h, o=held, r=refuse: self.master.decline(h, o, r, self.now)
                )
        self.allocate()
        if fw.header is None or not fw.offers:
            return
        offer = fw.offers.pop(min(fw.offers))
        op = scheduler_pb2.Operation(type=scheduler_pb2.Operation.LAUNCH)
        for _ in range(n):
            info = pb.TaskInfo(
                task_id=f"t{next(self._tasks)}",
                command=pb.CommandInfo(shell=True, value="sleep 1d"),
            )
            info.resources.extend(Resources.parse(TASK_RESOURCES).to_proto())
            op.launch.task_infos.append(info)
        no_filter = scheduler_pb2.Filters(refuse_seconds=0)
        try:
            effects = self.master.accept(fw.header, [offer.id], [op], no_filter, self.now)
        except OrbiterError:
            return
        for info in op.launch.task_infos:
            fw.launched[info.task_id] = offer.agent_id
            self.task_agent[(fw.id, info.task_id)] = next(
                a.index for a in self.agents if a.id == offer.agent_id
            )
        self.carry_out(effects)
        rest, fw.offers = list(fw.offers), {}
        if rest:
            self._call(fw, lambda h: self.master.decline(h, rest, no_filter, self.now))

    def framework_acknowledges(self, j: int) -> None:
        fw = self.frameworks[j]
        acks, fw.to_ack = fw.to_ack, []
        if acks:
            self._call(fw, lambda h: self.master.acknowledge(h, acks))

    def framework_reconciles(self, j: int) -> None:
        """Explicit reconciliation of every task the framework believes is not over."""
        fw = self.frameworks[j]
        tasks = [
            scheduler_pb2.ReconcileRequest.Task(task_id=t, agent_id=fw.launched[t])
            for t in fw.open_tasks()
        ]
        if tasks:
            self._call(fw, lambda h: self.master.reconcile(h, tasks, self.now))

    def framework_kills(self, j: int, pick: int) -> None:
        fw = self.frameworks[j]
        open_tasks = fw.open_tasks()
        if open_tasks:
            task_id = open_tasks[pick % len(open_tasks)]
            agent_id = fw.launched[task_id]
            self._call(fw, lambda h: self.master.kill(h, task_id, agent_id, None, self.now))

    # ------------------------------------------------------------ master and time

    def allocate(self) -> None:
        self.carry_out(self.master.allocate(self.now))

    def time_passes(self, seconds: float) -> None:
        """Connected agents keep heartbeating; then the master's timers run."""
        self.now += seconds
        for agent in self.agents:
            if agent.link and not self.master.agent_message_seen(agent.id, agent.link, self.now):
                agent.link = 0  # the shell closes a link the master calls stale
        self.carry_out(self.master.tick(self.now))

    def master_restarts(self) -> None:
        """A new master recovers from the last persisted registry; every link drops."""
        self.master = self._new_master()
        self.master.recover(self.persisted, self.now)
        for agent in self.agents:
            agent.link = 0
        for fw in self.frameworks:
            self._framework_gone(fw)

    # ------------------------------------------------------------ quiescence

    def reconnect_everything(self) -> None:
        for fw in self.frameworks:
            self.framework_subscribes(fw.index)
        for agent in self.agents:
            self.agent_connects(agent.index)

    def flow(self, rounds: int = 8) -> None:
        """Let updates, acknowledgements and reconciliation go back and forth."""
        for _ in range(rounds):
            for agent in self.agents:
                self.agent_sends_updates(agent.index)
            for fw in self.frameworks:
                self.framework_acknowledges(fw.index)
                self.framework_reconciles(fw.index)

    def settle(self) -> None:
        """Bring everything back, run time past every timeout, let it all flow."""
        steps = [0.0, self.config.agent_heartbeat_interval]
        steps += [t + 1.0 for t in timeouts(self.config)]
        steps += [self.config.agent_heartbeat_interval] * 2
        for seconds in steps:
            self.time_passes(seconds)
            self.reconnect_everything()
            self.flow()

    # ------------------------------------------------------------ the invariants

    def _check_status(self, fw: SimFramework, status: pb.TaskStatus) -> None:
        """Invariants 1 and 2, as the status arrives."""
        task_id = status.task_id
        got = Received(status.state, status.source, status.reason, status.uuid)
        before = fw.seen.get(task_id, [])
        first_end = next((r for r in before if r.state in TERMINAL_STATES), None)
        # The same end again is no news (a reconciliation answer, a resent update, or the
        # agent's own update after the master answered a reconciliation with it).
        if first_end is not None and got.state != first_end.state:
            self.violations.append(
                f"[1] framework {fw.name} task {task_id}: {got} after it ended; "
                f"it saw {history([*before, got])}"
            )
        if status.state not in TERMINAL_STATES:
            return
        key = (fw.id, task_id)
        truth = self.truth.get(key)
        where = self.task_agent.get(key)
        agent = self.agents[where] if where is not None else None
        if status.source != pb.SOURCE_MASTER:
            unknown_there = status.state == TS.TASK_LOST and status.reason == pb.REASON_TASK_UNKNOWN
            if truth != status.state and not (unknown_there and truth != RUNNING):
                self.violations.append(
                    f"[2] framework {fw.name} task {task_id}: the agent said {got} but the task "
                    f"is really {_truth_name(truth)}"
                )
            return
        really_running = truth == RUNNING
        reachable = agent is not None and agent.link != 0 and agent.alive
        removed = agent is not None and agent.id in self.removed
        if really_running and reachable and not removed:
            self.violations.append(
                f"[2] framework {fw.name} task {task_id}: the master said {got} but the task is "
                f"running on {agent.name}, which is connected"
            )

    def unsettled(self) -> list[str]:
        """Invariant 3, at quiescence: every launched task ended in its framework's view,
        or runs on a connected agent and is seen RUNNING. Also: no task the framework
        saw end still runs on a connected agent, and no agent still retries updates."""
        out = []
        for fw in self.frameworks:
            for task_id in fw.launched:
                key = (fw.id, task_id)
                where = self.task_agent.get(key)
                agent = self.agents[where] if where is not None else None
                runs = (
                    agent is not None
                    and agent.alive
                    and agent.link != 0
                    and self.truth.get(key) == RUNNING
                    and key in agent.tasks
                )
                told = history(fw.seen.get(task_id, [])) or "nothing"
                where = "nowhere" if agent is None else agent.name
                if agent is not None and not agent.alive:
                    where += " (dead)"
                if fw.ended(task_id) and runs:
                    out.append(
                        f"[3] framework {fw.name} task {task_id} still runs on {where} after "
                        f"the framework was told {told}"
                    )
                elif not fw.ended(task_id) and not (runs and fw.view(task_id) == TS.TASK_RUNNING):
                    out.append(
                        f"[3] framework {fw.name} task {task_id} on {where}: really "
                        f"{_truth_name(self.truth.get(key))}, but the framework was told only "
                        f"{told}"
                    )
        for agent in self.agents:
            if agent.alive and len(agent.updates):
                pending = ", ".join(
                    f"{s.task_id} {state_name(s.state)}" for _, s in agent.updates.pending()
                )
                out.append(f"[3] {agent.name} still retries updates nobody acknowledges: {pending}")
        return out

    def resource_problems(self) -> list[str]:
        """Invariant 4: nothing negative, and used/offered add up to tasks/offers."""
        m = self.master
        out = []
        for agent in m.agents.values():
            used = _milli_sum(
                t.resources for t in agent.tasks.values() if t.state not in TERMINAL_STATES
            )
            if _milli(agent.used) != used:
                out.append(f"[4] agent {agent.id}: used {agent.used.format()} != its tasks {used}")
            offered = _milli_sum(m.offers[o].resources for o in agent.offers)
            if _milli(agent.offered) != offered:
                out.append(f"[4] agent {agent.id}: offered {agent.offered.format()} != {offered}")
            for name, q in (*agent.used.quantities().items(), *agent.offered.quantities().items()):
                if q < 0:
                    out.append(f"[4] agent {agent.id}: negative {name}")
        for fw in m.frameworks.values():
            for role, held in fw.allocated.items():
                for name, q in held.items():
                    if q < -1e-9:
                        out.append(f"[4] framework {fw.id} role {role}: negative {name} {q}")
            holds = _milli_sum(
                [t.resources for t in fw.tasks.values() if t.state not in TERMINAL_STATES]
                + [m.offers[o].resources for o in fw.offers]
            )
            allocated: dict[str, int] = {}
            for held in fw.allocated.values():
                for name, q in held.items():
                    allocated[name] = allocated.get(name, 0) + round(q * 1000)
            if {k: v for k, v in allocated.items() if v} != holds:
                out.append(f"[4] framework {fw.id}: allocated {allocated} != tasks+offers {holds}")
        return out


def _truth_name(truth: Truth | None) -> str:
    if truth is None:
        return "never started"
    return truth if isinstance(truth, str) else state_name(truth)


def _milli(r: Resources) -> dict[str, int]:
    return {k: round(v * 1000) for k, v in r.quantities().items() if round(v * 1000)}


def _milli_sum(parts) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in parts:
        for k, v in _milli(r).items():
            out[k] = out.get(k, 0) + v
    return {k: v for k, v in out.items() if v}


__all__ = ["CONFIG", "TS", "World", "timeouts"]
