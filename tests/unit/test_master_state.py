"""The master's state machine as a specification: events in, effects out, no I/O.

Each test drives `Master` through its public event methods with an explicit
`now` and asserts what the shell would be asked to do (the effects) and what
an operator would see (agents, frameworks, tasks, offers, the registry).
A refused event must raise an `OrbiterError` and leave the state exactly as
it was; `snapshot()` captures everything a refusal could have touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orbiter.errors import (
    Code,
    InvalidCall,
    OrbiterError,
    RegistrationRefused,
    StaleStream,
    UnknownFramework,
    UnknownOffer,
)
from orbiter.master.effects import (
    CloseAgentLink,
    CloseFrameworkStream,
    Effect,
    PersistRegistry,
    SendToAgent,
    SendToFramework,
)
from orbiter.master.state import (
    TERMINAL_STATES,
    AgentStatus,
    Framework,
    FrameworkStatus,
    Master,
    MasterConfig,
)
from orbiter.proto import agent_pb2, messages_pb2, scheduler_pb2
from orbiter.resources import Resources

pb = messages_pb2
TS = pb.TaskState
Event = scheduler_pb2.Event

CONFIG = MasterConfig(offer_timeout=30.0, agent_timeout=15.0)
AGENT_RES = "cpus:4;mem:4096"
TASK_RES = "cpus:1;mem:128"

# ---------------------------------------------------------------- builders


def make_master(now: float = 0.0, master_id: str = "aaaaaaaa0000") -> Master:
    return Master(pb.MasterInfo(id=master_id, hostname="master.test"), CONFIG, now)


def register_msg(
    address: str = "10.0.0.1:5051",
    resources: str = AGENT_RES,
    agent_id: str = "",
    hostname: str = "",
    tasks: tuple[agent_pb2.TaskRecord, ...] = (),
) -> agent_pb2.AgentMessage.Register:
    info = pb.AgentInfo(
        id=agent_id,
        hostname=hostname or address.split(":")[0],
        http_address=address,
    )
    info.resources.extend(Resources.parse(resources).to_proto())
    msg = agent_pb2.AgentMessage.Register(info=info)
    msg.tasks.extend(tasks)
    return msg


def fw_info(
    name: str = "fw",
    roles: tuple[str, ...] = (),
    failover_timeout: float = 60.0,
    partition_aware: bool = False,
    fw_id: str = "",
) -> pb.FrameworkInfo:
    info = pb.FrameworkInfo(id=fw_id, name=name, failover_timeout=failover_timeout)
    info.roles.extend(roles)
    if partition_aware:
        info.capabilities.append(pb.PARTITION_AWARE)
    return info


def subscribe(master: Master, now: float = 0.0, **kw: object) -> scheduler_pb2.CallHeader:
    fw_id, stream_id, _ = master.subscribe(fw_info(**kw), now)  # type: ignore[arg-type]
    return scheduler_pb2.CallHeader(framework_id=fw_id, stream_id=stream_id)


def task(task_id: str, resources: str = TASK_RES, command: str = "sleep 60") -> pb.TaskInfo:
    t = pb.TaskInfo(task_id=task_id, command=pb.CommandInfo(shell=True, value=command))
    t.resources.extend(Resources.parse(resources).to_proto())
    return t


def launch(*tasks: pb.TaskInfo) -> scheduler_pb2.Operation:
    op = scheduler_pb2.Operation(type=scheduler_pb2.Operation.LAUNCH)
    op.launch.task_infos.extend(tasks)
    return op


def refuse(seconds: float) -> scheduler_pb2.Filters:
    return scheduler_pb2.Filters(refuse_seconds=seconds)


NO_FILTERS = scheduler_pb2.Filters()


def update(
    fw_id: str, agent_id: str, task_id: str, state: int, uuid: bytes | None = None
) -> agent_pb2.StatusUpdate:
    status = pb.TaskStatus(
        task_id=task_id,
        agent_id=agent_id,
        state=state,
        source=pb.SOURCE_AGENT,
        uuid=uuid if uuid is not None else bytes([state]) * 16,
    )
    return agent_pb2.StatusUpdate(framework_id=fw_id, status=status)


def ack(agent_id: str, task_id: str, uuid: bytes) -> scheduler_pb2.Acknowledgement:
    return scheduler_pb2.Acknowledgement(agent_id=agent_id, task_id=task_id, uuid=uuid)


def to_framework(effects: list[Effect], fw_id: str, kind: int) -> list[scheduler_pb2.Event]:
    return [
        e.event
        for e in effects
        if isinstance(e, SendToFramework) and e.framework_id == fw_id and e.event.type == kind
    ]


def offers_for(effects: list[Effect], fw_id: str) -> list[pb.Offer]:
    return [o for ev in to_framework(effects, fw_id, Event.OFFERS) for o in ev.offers.offers]


def statuses_for(effects: list[Effect], fw_id: str) -> list[pb.TaskStatus]:
    return [s for ev in to_framework(effects, fw_id, Event.UPDATE) for s in ev.update.statuses]


def to_agent(effects: list[Effect], agent_id: str, kind: str) -> list[agent_pb2.MasterMessage]:
    return [
        e.message
        for e in effects
        if isinstance(e, SendToAgent)
        and e.agent_id == agent_id
        and e.message.WhichOneof("message") == kind
    ]


def held_quantities(fw: Framework) -> dict[str, dict[str, int]]:
    """A framework's DRF allocation per role in thousandths, zeros left out."""
    out = {}
    for role, held in fw.allocated.items():
        milli = {k: round(v * 1000) for k, v in held.items() if round(v * 1000)}
        if milli:
            out[role] = milli
    return out


def snapshot(m: Master) -> object:
    """Everything a refused event could have changed, in comparable form."""

    def tasks(d):
        return {
            tid: (t.state, t.kill_pending, t.terminal_uuid, t.resources) for tid, t in d.items()
        }

    return (
        m.registry().SerializeToString(deterministic=True),
        m.registry_version,
        {
            aid: (
                a.status,
                a.info.SerializeToString(deterministic=True),
                a.total,
                a.used,
                a.offered,
                a.link_id,
                a.last_seen,
                tasks(a.tasks),
                frozenset(a.offers),
            )
            for aid, a in m.agents.items()
        },
        {
            fid: (
                f.status,
                f.stream_id,
                f.info.SerializeToString(deterministic=True),
                tasks(f.tasks),
                len(f.completed),
                frozenset(f.offers),
                held_quantities(f),
                frozenset(f.suppressed_roles),
                tuple(f.filters),
            )
            for fid, f in m.frameworks.items()
        },
        {
            oid: (o.framework_id, o.agent_id, o.role, o.resources, o.expires)
            for oid, o in m.offers.items()
        },
    )


@dataclass
class Cluster:
    """A master with agents and one subscribed framework holding one offer per agent."""

    master: Master
    agents: list[str]
    fw: scheduler_pb2.CallHeader
    offers: dict[str, pb.Offer] = field(default_factory=dict)  # by agent id
    now: float = 1.0

    def offer_on(self, agent_index: int) -> pb.Offer:
        return self.offers[self.agents[agent_index]]


def cluster(n_agents: int = 2, agent_res: str = AGENT_RES, **fw_kw: object) -> Cluster:
    m = make_master()
    agents = [
        m.agent_register(i + 1, register_msg(f"10.0.0.{i + 1}:5051", agent_res), 0.0)[0]
        for i in range(n_agents)
    ]
    fw = subscribe(m, 0.0, **fw_kw)
    effects = m.allocate(1.0)
    offers = {o.agent_id: o for o in offers_for(effects, fw.framework_id)}
    return Cluster(m, agents, fw, offers)


def launch_on(c: Cluster, agent_index: int, *tasks: pb.TaskInfo) -> list[Effect]:
    return c.master.accept(c.fw, [c.offer_on(agent_index).id], [launch(*tasks)], NO_FILTERS, c.now)


def running(c: Cluster, task_id: str = "t1", agent_index: int = 0) -> str:
    """Launch one task on the given agent and report it RUNNING; returns the agent id."""
    launch_on(c, agent_index, task(task_id))
    agent_id = c.agents[agent_index]
    c.master.status_updates(
        agent_id,
        agent_index + 1,
        [update(c.fw.framework_id, agent_id, task_id, TS.TASK_RUNNING)],
        2.0,
    )
    return agent_id


# ================================================================ agents


def test_first_registration_assigns_an_id_and_persists_before_answering():
    m = make_master()
    agent_id, effects = m.agent_register(7, register_msg(), 0.0)

    assert agent_id
    assert m.agents[agent_id].status is AgentStatus.CONNECTED
    assert m.agents[agent_id].total == Resources.parse(AGENT_RES)
    assert [type(e) for e in effects] == [PersistRegistry, SendToAgent]
    persist, registered = effects
    assert persist.version == m.registry_version == m.registry().version
    assert registered.agent_id == agent_id
    assert registered.message.registered.agent_id == agent_id
    assert [a.info.id for a in m.registry().agents] == [agent_id]


def test_two_new_agents_get_distinct_ids():
    m = make_master()
    a, _ = m.agent_register(1, register_msg("10.0.0.1:5051"), 0.0)
    b, _ = m.agent_register(2, register_msg("10.0.0.2:5051"), 0.0)
    assert a != b


def test_reregistration_with_the_same_id_keeps_it():
    m = make_master()
    agent_id, _ = m.agent_register(1, register_msg(), 0.0)
    m.agent_disconnected(agent_id, 1, 3.0)
    assert m.agents[agent_id].status is AgentStatus.DISCONNECTED

    again, effects = m.agent_register(2, register_msg(agent_id=agent_id), 5.0)

    assert again == agent_id
    assert list(m.agents) == [agent_id]
    assert m.agents[agent_id].status is AgentStatus.CONNECTED
    assert m.agents[agent_id].link_id == 2
    kinds = [type(e) for e in effects]
    assert kinds.index(PersistRegistry) < kinds.index(SendToAgent)
    assert to_agent(effects, agent_id, "registered")[0].registered.agent_id == agent_id


def test_reregistration_on_a_new_link_closes_the_old_link():
    m = make_master()
    agent_id, _ = m.agent_register(1, register_msg(), 0.0)
    _, effects = m.agent_register(2, register_msg(agent_id=agent_id), 1.0)
    closes = [e for e in effects if isinstance(e, CloseAgentLink)]
    assert [(c.agent_id, c.link_id) for c in closes] == [(agent_id, 1)]
    assert m.agent_message_seen(agent_id, 1, 2.0) is False
    assert m.agent_message_seen(agent_id, 2, 2.0) is True


def test_second_agent_at_the_same_address_is_refused_while_the_first_is_connected():
    m = make_master()
    first, _ = m.agent_register(1, register_msg("10.0.0.1:5051"), 0.0)
    before = snapshot(m)

    with pytest.raises(RegistrationRefused, match=first):
        m.agent_register(2, register_msg("10.0.0.1:5051", agent_id="someone-else"), 1.0)
    with pytest.raises(RegistrationRefused):
        m.agent_register(3, register_msg("10.0.0.1:5051"), 1.0)

    assert snapshot(m) == before


def test_new_agent_at_the_address_of_a_disconnected_one_replaces_it():
    m = make_master()
    old, _ = m.agent_register(1, register_msg("10.0.0.1:5051"), 0.0)
    m.agent_disconnected(old, 1, 1.0)

    new, effects = m.agent_register(2, register_msg("10.0.0.1:5051"), 2.0)

    assert new != old
    assert m.agents[old].status is AgentStatus.GONE
    assert [a.info.id for a in m.registry().agents] == [new]
    assert any(isinstance(e, PersistRegistry) for e in effects)


@pytest.mark.parametrize(
    ("resource", "why"),
    [
        (pb.Resource(name="cpus", type=pb.Resource.SCALAR, scalar=-1), "negative"),
        (pb.Resource(name="cpus", type=pb.Resource.SCALAR, scalar=float("nan")), "finite"),
        (pb.Resource(name="", type=pb.Resource.SCALAR, scalar=1), "empty name"),
        (pb.Resource(name="ports", type=pb.Resource.SCALAR, scalar=1), "ranges"),
        (pb.Resource(name="cpus", type=pb.Resource.SCALAR, scalar=1, role="-x"), "bad role"),
    ],
)
def test_agent_with_invalid_resources_is_refused_and_nothing_changes(resource, why):
    m = make_master()
    m.agent_register(1, register_msg("10.0.0.1:5051"), 0.0)
    before = snapshot(m)
    msg = register_msg("10.0.0.2:5051")
    msg.info.resources.append(resource)

    with pytest.raises(RegistrationRefused, match=why) as err:
        m.agent_register(2, msg, 1.0)

    assert err.value.code is Code.INVALID_ARGUMENT
    assert snapshot(m) == before


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda msg: msg.info.ClearField("hostname"), "hostname"),
        (lambda msg: msg.info.ClearField("http_address"), "http_address"),
        (lambda msg: msg.tasks.add(framework_id="f"), "task id"),
    ],
)
def test_agent_with_incomplete_info_is_refused(change, why):
    m = make_master()
    before = snapshot(m)
    msg = register_msg()
    change(msg)
    with pytest.raises(RegistrationRefused, match=why):
        m.agent_register(1, msg, 0.0)
    assert snapshot(m) == before


def test_removed_agent_cannot_come_back_with_its_old_id():
    m = make_master()
    old, _ = m.agent_register(1, register_msg("10.0.0.1:5051"), 0.0)
    m.agent_disconnected(old, 1, 1.0)
    m.agent_register(2, register_msg("10.0.0.1:5051"), 2.0)  # replaces `old`
    before = snapshot(m)
    with pytest.raises(RegistrationRefused, match="removed"):
        m.agent_register(3, register_msg("10.0.0.9:5051", agent_id=old), 3.0)
    assert snapshot(m) == before


def test_messages_on_a_stale_link_are_not_taken_as_signs_of_life():
    m = make_master()
    agent_id, _ = m.agent_register(1, register_msg(), 0.0)
    assert m.agent_message_seen(agent_id, 99, 5.0) is False
    assert m.agents[agent_id].last_seen == 0.0
    assert m.agent_disconnected(agent_id, 99, 5.0) == []
    assert m.agents[agent_id].status is AgentStatus.CONNECTED


# ================================================================ subscribe


def test_subscribe_assigns_an_id_and_sends_subscribed_with_the_stream_id():
    m = make_master()
    fw_id, stream_id, effects = m.subscribe(fw_info(name="web"), 0.0)

    assert fw_id and stream_id
    assert m.frameworks[fw_id].status is FrameworkStatus.CONNECTED
    assert [type(e) for e in effects] == [PersistRegistry, SendToFramework]
    (event,) = to_framework(effects, fw_id, Event.SUBSCRIBED)
    assert event.subscribed.framework_id == fw_id
    assert event.subscribed.stream_id == stream_id
    assert [f.info.id for f in m.registry().frameworks] == [fw_id]


def test_resubscribing_with_the_id_fails_over_and_closes_the_old_stream():
    c = cluster(n_agents=1)
    m, old = c.master, c.fw
    assert m.offers

    fw_id, stream_id, effects = m.subscribe(fw_info(fw_id=old.framework_id), 5.0)

    assert fw_id == old.framework_id
    assert stream_id != old.stream_id
    closes = [e for e in effects if isinstance(e, CloseFrameworkStream)]
    assert [(e.framework_id, e.stream_id) for e in closes] == [(fw_id, old.stream_id)]
    assert to_framework(effects, fw_id, Event.SUBSCRIBED)[0].subscribed.stream_id == stream_id
    assert not m.offers, "offers sent on the old stream are withdrawn"
    with pytest.raises(StaleStream):
        m.revive(old, [])
    m.revive(scheduler_pb2.CallHeader(framework_id=fw_id, stream_id=stream_id), [])


def test_disconnected_framework_resubscribes_and_keeps_its_tasks():
    c = cluster(n_agents=1)
    running(c)
    m = c.master
    m.framework_disconnected(c.fw.framework_id, c.fw.stream_id, 3.0)
    assert m.frameworks[c.fw.framework_id].status is FrameworkStatus.DISCONNECTED

    _, _, effects = m.subscribe(fw_info(fw_id=c.fw.framework_id), 4.0)

    assert not [e for e in effects if isinstance(e, CloseFrameworkStream)]
    assert list(m.frameworks[c.fw.framework_id].tasks) == ["t1"]


@pytest.mark.parametrize(
    ("info", "error", "why"),
    [
        (fw_info(fw_id="no-such-framework"), UnknownFramework, "unknown"),
        (fw_info(name=""), InvalidCall, "name"),
        (fw_info(roles=("bad role",)), InvalidCall, "role"),
        (fw_info(roles=("..",)), InvalidCall, "role"),
        (fw_info(roles=("a", "a")), InvalidCall, "twice"),
        (fw_info(failover_timeout=-1), InvalidCall, "failover_timeout"),
        (fw_info(failover_timeout=float("inf")), InvalidCall, "failover_timeout"),
        (fw_info(failover_timeout=float("nan")), InvalidCall, "failover_timeout"),
    ],
    ids=[
        "unknown-id",
        "empty-name",
        "space-in-role",
        "dotdot-role",
        "role-twice",
        "negative-failover",
        "infinite-failover",
        "nan-failover",
    ],
)
def test_bad_subscriptions_are_refused_and_change_nothing(info, error, why):
    c = cluster(n_agents=1)
    before = snapshot(c.master)
    with pytest.raises(error, match=why):
        c.master.subscribe(info, 2.0)
    assert snapshot(c.master) == before


# ================================================================ stale callers


CALLS: dict[str, Callable[[Master, scheduler_pb2.CallHeader, Cluster], object]] = {
    "accept": lambda m, h, c: m.accept(h, [c.offer_on(0).id], [launch(task("x"))], NO_FILTERS, 2.0),
    "decline": lambda m, h, c: m.decline(h, [c.offer_on(0).id], NO_FILTERS, 2.0),
    "revive": lambda m, h, c: m.revive(h, []),
    "suppress": lambda m, h, c: m.suppress(h, []),
    "kill": lambda m, h, c: m.kill(h, "t1", c.agents[0], None, 2.0),
    "acknowledge": lambda m, h, c: m.acknowledge(h, [ack(c.agents[0], "t1", b"\x01" * 16)]),
    "reconcile": lambda m, h, c: m.reconcile(h, [], 2.0),
    "teardown": lambda m, h, c: m.teardown(h, 2.0),
}

HEADERS: dict[str, tuple[Callable[[scheduler_pb2.CallHeader], scheduler_pb2.CallHeader], type]] = {
    "wrong-stream": (
        lambda h: scheduler_pb2.CallHeader(framework_id=h.framework_id, stream_id="stale"),
        StaleStream,
    ),
    "no-stream": (lambda h: scheduler_pb2.CallHeader(framework_id=h.framework_id), StaleStream),
    "unknown-framework": (
        lambda h: scheduler_pb2.CallHeader(framework_id="nobody", stream_id=h.stream_id),
        UnknownFramework,
    ),
    "no-framework": (lambda h: scheduler_pb2.CallHeader(), UnknownFramework),
}


@pytest.mark.parametrize("header", list(HEADERS))
@pytest.mark.parametrize("call", list(CALLS))
def test_calls_from_a_stale_or_unknown_caller_are_refused_and_change_nothing(call, header):
    c = cluster(n_agents=1)
    running(c, "t1")
    c.master.allocate(2.0)
    make_header, error = HEADERS[header]
    before = snapshot(c.master)

    with pytest.raises(error):
        CALLS[call](c.master, make_header(c.fw), c)

    assert snapshot(c.master) == before


@pytest.mark.parametrize("call", list(CALLS))
def test_calls_from_a_disconnected_framework_are_refused(call):
    c = cluster(n_agents=1)
    c.master.framework_disconnected(c.fw.framework_id, c.fw.stream_id, 2.0)
    before = snapshot(c.master)
    with pytest.raises(StaleStream, match="disconnected"):
        CALLS[call](c.master, c.fw, c)
    assert snapshot(c.master) == before


# ================================================================ offers


def test_allocate_offers_each_connected_agent_once():
    m = make_master()
    a, _ = m.agent_register(1, register_msg("10.0.0.1:5051"), 0.0)
    b, _ = m.agent_register(2, register_msg("10.0.0.2:5051"), 0.0)
    down, _ = m.agent_register(3, register_msg("10.0.0.3:5051"), 0.0)
    m.agent_disconnected(down, 3, 0.5)
    fw = subscribe(m)

    offers = offers_for(m.allocate(1.0), fw.framework_id)

    assert sorted(o.agent_id for o in offers) == sorted([a, b])
    for o in offers:
        assert Resources.from_proto(o.resources) == Resources.parse(AGENT_RES)
    assert offers_for(m.allocate(2.0), fw.framework_id) == [], "nothing left to offer"


def test_one_agent_is_offered_to_one_framework_only():
    m = make_master()
    agent_id, _ = m.agent_register(1, register_msg(), 0.0)
    f1, f2 = subscribe(m, name="a"), subscribe(m, name="b")
    effects = m.allocate(1.0)
    got = offers_for(effects, f1.framework_id) + offers_for(effects, f2.framework_id)
    assert [o.agent_id for o in got] == [agent_id]
    assert m.agents[agent_id].offered == Resources.parse(AGENT_RES)


def test_no_offers_without_connected_frameworks():
    m = make_master()
    m.agent_register(1, register_msg(), 0.0)
    fw = subscribe(m)
    m.framework_disconnected(fw.framework_id, fw.stream_id, 0.5)
    assert m.allocate(1.0) == []
    assert not m.offers


def test_offers_are_rescinded_when_their_agent_disconnects():
    c = cluster(n_agents=2)
    offer = c.offer_on(0)

    effects = c.master.agent_disconnected(c.agents[0], 1, 2.0)

    rescinds = to_framework(effects, c.fw.framework_id, Event.RESCIND)
    assert [r.rescind.offer_id for r in rescinds] == [offer.id]
    assert offer.id not in c.master.offers
    assert c.offer_on(1).id in c.master.offers
    assert c.master.agents[c.agents[0]].offered.is_empty()


def test_offers_time_out_after_offer_timeout():
    c = cluster(n_agents=1)
    offer = c.offer_on(0)
    made_at = 1.0
    c.master.agent_message_seen(c.agents[0], 1, made_at + CONFIG.offer_timeout - 1)

    assert c.master.tick(made_at + CONFIG.offer_timeout - 0.001) == []
    effects = c.master.tick(made_at + CONFIG.offer_timeout)

    assert [
        r.rescind.offer_id for r in to_framework(effects, c.fw.framework_id, Event.RESCIND)
    ] == [offer.id]
    assert not c.master.offers
    assert c.master.agents[c.agents[0]].offered.is_empty()
    assert offers_for(c.master.allocate(made_at + CONFIG.offer_timeout), c.fw.framework_id)


# ================================================================ accept


def test_accept_launches_tasks_on_the_offers_agent():
    c = cluster(n_agents=1)
    agent_id = c.agents[0]

    effects = launch_on(c, 0, task("t1"), task("t2", "cpus:2;mem:1024"))

    (run,) = to_agent(effects, agent_id, "run_tasks")
    assert run.run_tasks.framework_id == c.fw.framework_id
    assert [t.task_id for t in run.run_tasks.tasks] == ["t1", "t2"]
    assert all(t.agent_id == agent_id for t in run.run_tasks.tasks)
    assert len(effects) == 1
    agent = c.master.agents[agent_id]
    assert agent.used == Resources.parse("cpus:3;mem:1152")
    assert agent.offered.is_empty()
    assert {tid for _, tid in agent.tasks} == set(c.master.frameworks[c.fw.framework_id].tasks)
    assert set(c.master.frameworks[c.fw.framework_id].tasks) == {"t1", "t2"}
    assert not c.master.offers


def test_accept_of_two_offers_of_one_agent_pools_them():
    m = make_master()
    agent_id, _ = m.agent_register(1, register_msg(resources="cpus:2;mem:512"), 0.0)
    fw = subscribe(m)
    (first,) = offers_for(m.allocate(1.0), fw.framework_id)
    m.accept(fw, [first.id], [launch(task("t1", "cpus:1;mem:256"))], refuse(0), 1.0)
    (rest,) = offers_for(m.allocate(2.0), fw.framework_id)
    m.status_updates(agent_id, 1, [update(fw.framework_id, agent_id, "t1", TS.TASK_FINISHED)], 3.0)
    (freed,) = offers_for(m.allocate(4.0), fw.framework_id)
    assert freed.agent_id == rest.agent_id == agent_id

    effects = m.accept(
        fw, [rest.id, freed.id], [launch(task("big", "cpus:2;mem:512"))], NO_FILTERS, 5.0
    )

    assert [t.task_id for t in to_agent(effects, agent_id, "run_tasks")[0].run_tasks.tasks] == [
        "big"
    ]
    assert m.agents[agent_id].used == Resources.parse("cpus:2;mem:512")
    assert m.agents[agent_id].offered.is_empty()


@dataclass(frozen=True)
class Refusal:
    """One way to get accept wrong: prepare the state, then the call that must be refused."""

    prepare: Callable[[Cluster], Callable[[], object]]
    error: type[OrbiterError] = InvalidCall
    why: str = ""


def _stale_offer(c: Cluster):
    used = c.offer_on(1)
    c.master.decline(c.fw, [used.id], refuse(0), c.now)
    return lambda: c.master.accept(c.fw, [used.id], [launch(task("t1"))], NO_FILTERS, c.now)


def _other_framework(c: Cluster):
    other = subscribe(c.master, 1.0, name="other")
    return lambda: c.master.accept(
        other, [c.offer_on(0).id], [launch(task("t1"))], NO_FILTERS, c.now
    )


def _task_id_in_use(c: Cluster):
    launch_on(c, 1, task("t1"))
    return lambda: launch_on(c, 0, task("t1"))


def _accept0(*ops, filters=NO_FILTERS, offer_ids=None):
    def prepare(c: Cluster):
        ids = offer_ids(c) if offer_ids else [c.offer_on(0).id]
        return lambda: c.master.accept(c.fw, ids, list(ops), filters, c.now)

    return prepare


def _with(**fields: object) -> pb.TaskInfo:
    """Task t1 with some fields changed; `resource` appends one more Resource."""
    t = task("t1")
    extra = fields.pop("resource", None)
    if extra is not None:
        t.resources.append(extra)
    if fields.pop("docker", False):
        t.container.type = pb.ContainerInfo.DOCKER
    for name, value in fields.items():
        setattr(t, name, value)
    return t


LEFT = "is left of the offers"

ACCEPT_REFUSALS = {
    "unknown-offer": Refusal(
        _accept0(launch(task("t1")), offer_ids=lambda c: ["nope"]), UnknownOffer, "unknown"
    ),
    "stale-offer": Refusal(_stale_offer, UnknownOffer, "no longer valid"),
    "offer-of-another-framework": Refusal(_other_framework, UnknownOffer, "another framework"),
    "no-offer-ids": Refusal(_accept0(launch(task("t1")), offer_ids=lambda c: []), why="no offer"),
    "offer-id-twice": Refusal(
        _accept0(launch(task("t1")), offer_ids=lambda c: [c.offer_on(0).id] * 2), why="twice"
    ),
    "offers-from-two-agents": Refusal(
        _accept0(launch(task("t1")), offer_ids=lambda c: [c.offer_on(0).id, c.offer_on(1).id]),
        why="different agents",
    ),
    "duplicate-task-id-in-call": Refusal(_accept0(launch(task("t1"), task("t1"))), why="twice"),
    "duplicate-task-id-across-operations": Refusal(
        _accept0(launch(task("t1")), launch(task("t1"))), why="twice"
    ),
    "task-id-already-used": Refusal(_task_id_in_use, why="already has a task"),
    "beyond-the-offer": Refusal(_accept0(launch(task("t1", "cpus:5;mem:128"))), why=LEFT),
    "beyond-the-offer-in-sum": Refusal(
        _accept0(launch(task("t1", "cpus:3;mem:128"), task("t2", "cpus:2;mem:128"))), why=LEFT
    ),
    "beyond-the-offer-across-operations": Refusal(
        _accept0(launch(task("t1", "cpus:3;mem:128")), launch(task("t2", "cpus:2;mem:128"))),
        why=LEFT,
    ),
    "resource-not-offered": Refusal(_accept0(launch(task("t1", "cpus:1;gpus:1"))), why=LEFT),
    "reserved-resource-not-offered": Refusal(
        _accept0(launch(task("t1", "cpus(db):1;mem:128"))), why=LEFT
    ),
    "port-not-offered": Refusal(_accept0(launch(task("t1", "cpus:1;ports:[80-80]"))), why=LEFT),
    "same-port-for-two-tasks": Refusal(
        _accept0(
            launch(
                task("t1", "cpus:1;ports:[31000-31000]"), task("t2", "cpus:1;ports:[31000-31000]")
            )
        ),
        why=LEFT,
    ),
    "negative-resource": Refusal(
        _accept0(
            launch(_with(resource=pb.Resource(name="mem", type=pb.Resource.SCALAR, scalar=-64)))
        ),
        why="negative",
    ),
    "malformed-resource": Refusal(
        _accept0(
            launch(_with(resource=pb.Resource(name="ports", type=pb.Resource.SCALAR, scalar=1)))
        ),
        why="ports",
    ),
    "no-cpus-or-mem": Refusal(_accept0(launch(task("t1", "disk:10"))), why="cpus or mem"),
    "no-command": Refusal(_accept0(launch(task("t1", command=""))), why="command"),
    "docker-without-image": Refusal(_accept0(launch(_with(docker=True))), why="image"),
    "empty-task-id": Refusal(_accept0(launch(task(""))), why="invalid"),
    "task-id-with-space": Refusal(_accept0(launch(task("my task"))), why="invalid"),
    "task-id-with-slash": Refusal(_accept0(launch(task("a/b"))), why="invalid"),
    "task-id-too-long": Refusal(_accept0(launch(task("x" * 201))), why="invalid"),
    "task-for-another-agent": Refusal(_accept0(launch(_with(agent_id="elsewhere"))), why="differs"),
    "negative-grace-period": Refusal(
        _accept0(launch(_with(kill_grace_period=-1.0))), why="kill_grace_period"
    ),
    "unsupported-operation": Refusal(
        _accept0(scheduler_pb2.Operation(type=scheduler_pb2.Operation.TYPE_UNSPECIFIED)),
        why="not supported",
    ),
    "bad-refuse-seconds": Refusal(
        _accept0(launch(task("t1")), filters=refuse(-1)), why="refuse_seconds"
    ),
}


@pytest.mark.parametrize("case", list(ACCEPT_REFUSALS))
def test_refused_accept_changes_nothing_and_the_offer_stays_usable(case):
    refusal = ACCEPT_REFUSALS[case]
    c = cluster(n_agents=2, agent_res=AGENT_RES + ";ports:[31000-31009]")
    call = refusal.prepare(c)
    before = snapshot(c.master)

    with pytest.raises(refusal.error, match=refusal.why):
        call()

    assert snapshot(c.master) == before
    offer = c.offer_on(0)
    assert offer.id in c.master.offers
    effects = c.master.accept(c.fw, [offer.id], [launch(task("ok"))], NO_FILTERS, c.now)
    assert [t.task_id for t in to_agent(effects, c.agents[0], "run_tasks")[0].run_tasks.tasks] == [
        "ok"
    ]


def test_two_half_cpu_tasks_fill_a_one_cpu_offer_exactly():
    """Regression: Resources.__add__ once added a stray thousandth (0.5 + 0.5 = 1.001)."""
    c = cluster(n_agents=1, agent_res="cpus:1;mem:1024")
    effects = launch_on(c, 0, task("a", "cpus:0.5;mem:256"), task("b", "cpus:0.5;mem:256"))
    assert to_agent(effects, c.agents[0], "run_tasks")
    assert c.master.agents[c.agents[0]].used == Resources.parse("cpus:1;mem:512")


def test_accept_without_operations_gives_the_offers_back_under_a_filter():
    c = cluster(n_agents=1)
    m, fw = c.master, c.fw

    assert m.accept(fw, [c.offer_on(0).id], [], refuse(10), 1.0) == []

    assert not m.offers
    assert m.agents[c.agents[0]].offered.is_empty()
    assert offers_for(m.allocate(2.0), fw.framework_id) == []
    assert len(offers_for(m.allocate(11.0), fw.framework_id)) == 1


def test_declined_resources_are_not_reoffered_until_refuse_seconds_expire():
    c = cluster(n_agents=1)
    m, fw = c.master, c.fw
    m.decline(fw, [c.offer_on(0).id], refuse(10), 1.0)

    assert offers_for(m.allocate(2.0), fw.framework_id) == []
    assert offers_for(m.allocate(10.999), fw.framework_id) == []
    assert len(offers_for(m.allocate(11.0), fw.framework_id)) == 1


def test_leftovers_of_an_accept_are_filtered_for_refuse_seconds():
    c = cluster(n_agents=1)
    m, fw = c.master, c.fw
    m.accept(fw, [c.offer_on(0).id], [launch(task("t1"))], refuse(20), 1.0)

    assert offers_for(m.allocate(2.0), fw.framework_id) == []
    (again,) = offers_for(m.allocate(21.0), fw.framework_id)
    assert Resources.from_proto(again.resources) == Resources.parse(AGENT_RES) - Resources.parse(
        TASK_RES
    )


def test_declined_resources_go_to_another_framework_meanwhile():
    c = cluster(n_agents=1)
    m = c.master
    other = subscribe(m, 1.0, name="other")
    m.decline(c.fw, [c.offer_on(0).id], refuse(60), 1.0)
    assert [o.agent_id for o in offers_for(m.allocate(2.0), other.framework_id)] == [c.agents[0]]


def test_unset_refuse_seconds_means_five_seconds():
    c = cluster(n_agents=1)
    m, fw = c.master, c.fw
    m.decline(fw, [c.offer_on(0).id], NO_FILTERS, 1.0)
    assert offers_for(m.allocate(5.9), fw.framework_id) == []
    assert offers_for(m.allocate(6.0), fw.framework_id)


def test_revive_clears_filters():
    c = cluster(n_agents=1)
    m, fw = c.master, c.fw
    m.decline(fw, [c.offer_on(0).id], refuse(3600), 1.0)
    assert offers_for(m.allocate(2.0), fw.framework_id) == []

    m.revive(fw, [])

    assert len(offers_for(m.allocate(3.0), fw.framework_id)) == 1


def test_suppress_stops_offers_and_revive_restores_them():
    c = cluster(n_agents=1)
    m, fw = c.master, c.fw
    m.decline(fw, [c.offer_on(0).id], refuse(0), 1.0)
    m.suppress(fw, [])
    assert offers_for(m.allocate(2.0), fw.framework_id) == []
    assert offers_for(m.allocate(100.0), fw.framework_id) == []

    m.revive(fw, [])

    assert len(offers_for(m.allocate(101.0), fw.framework_id)) == 1


def test_suppress_of_one_role_keeps_offers_for_the_others():
    m = make_master()
    m.agent_register(1, register_msg("10.0.0.1:5051"), 0.0)
    m.agent_register(2, register_msg("10.0.0.2:5051"), 0.0)
    fw = subscribe(m, roles=("a", "b"))
    m.suppress(fw, ["a"])
    offers = offers_for(m.allocate(1.0), fw.framework_id)
    assert {o.role for o in offers} == {"b"}
    assert len(offers) == 2


@pytest.mark.parametrize("call", ["suppress", "revive"])
def test_suppress_and_revive_refuse_roles_the_framework_does_not_have(call):
    c = cluster(n_agents=1, roles=("a",))
    before = snapshot(c.master)
    with pytest.raises(InvalidCall, match="not one of the framework's roles"):
        getattr(c.master, call)(c.fw, ["b"])
    assert snapshot(c.master) == before


def test_decline_of_an_unknown_offer_is_refused_and_the_known_one_stays():
    c = cluster(n_agents=1)
    before = snapshot(c.master)
    with pytest.raises(UnknownOffer):
        c.master.decline(c.fw, [c.offer_on(0).id, "nope"], refuse(5), 1.0)
    assert snapshot(c.master) == before


# ================================================================ status updates


def test_running_update_is_forwarded_to_the_framework():
    c = cluster(n_agents=1)
    launch_on(c, 0, task("t1"))
    agent_id = c.agents[0]

    effects = c.master.status_updates(
        agent_id, 1, [update(c.fw.framework_id, agent_id, "t1", TS.TASK_RUNNING)], 2.0
    )

    assert [(s.task_id, s.state) for s in statuses_for(effects, c.fw.framework_id)] == [
        ("t1", TS.TASK_RUNNING)
    ]
    assert c.master.frameworks[c.fw.framework_id].tasks["t1"].state == TS.TASK_RUNNING
    assert c.master.agents[agent_id].used == Resources.parse(TASK_RES)


def test_updates_are_batched_into_one_event_per_framework():
    c = cluster(n_agents=1)
    launch_on(c, 0, task("t1"), task("t2"))
    a = c.agents[0]
    effects = c.master.status_updates(
        a,
        1,
        [update(c.fw.framework_id, a, t, TS.TASK_RUNNING) for t in ("t1", "t2")],
        2.0,
    )
    (event,) = to_framework(effects, c.fw.framework_id, Event.UPDATE)
    assert [s.task_id for s in event.update.statuses] == ["t1", "t2"]


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_terminal_update_frees_the_tasks_resources(state):
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    fw = c.master.frameworks[c.fw.framework_id]

    effects = c.master.status_updates(
        agent_id, 1, [update(c.fw.framework_id, agent_id, "t1", state)], 3.0
    )

    assert [s.state for s in statuses_for(effects, c.fw.framework_id)] == [state]
    assert c.master.agents[agent_id].used.is_empty()
    assert held_quantities(fw) == {}
    assert "t1" in fw.tasks, "kept until the framework acknowledges the terminal update"


def test_retried_terminal_update_frees_resources_once():
    c = cluster(n_agents=1)
    launch_on(c, 0, task("t1"), task("t2"))
    a, f = c.agents[0], c.fw.framework_id
    for _ in range(3):
        c.master.status_updates(a, 1, [update(f, a, "t1", TS.TASK_FINISHED)], 3.0)
    assert c.master.agents[a].used == Resources.parse(TASK_RES)


def test_update_after_a_terminal_one_is_ignored_and_frees_nothing_twice():
    """A non-terminal update after a terminal one (a bug elsewhere) must not revive the
    task, or its next terminal update would free its resources twice. Mesos ignores it too."""
    c = cluster(n_agents=1)
    launch_on(c, 0, task("t1"), task("t2"))
    a, f = c.agents[0], c.fw.framework_id
    m = c.master
    m.status_updates(a, 1, [update(f, a, "t1", TS.TASK_FINISHED, uuid=b"\x01" * 16)], 2.0)
    m.status_updates(a, 1, [update(f, a, "t1", TS.TASK_RUNNING, uuid=b"\x02" * 16)], 3.0)
    m.status_updates(a, 1, [update(f, a, "t1", TS.TASK_FINISHED, uuid=b"\x03" * 16)], 4.0)

    assert m.agents[a].used == Resources.parse(TASK_RES), "t2 still runs"


def test_acknowledging_the_terminal_update_forgets_the_task_and_tells_the_agent():
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    done = update(c.fw.framework_id, agent_id, "t1", TS.TASK_FINISHED, uuid=b"\x09" * 16)
    c.master.status_updates(agent_id, 1, [done], 3.0)
    fw = c.master.frameworks[c.fw.framework_id]

    effects = c.master.acknowledge(c.fw, [ack(agent_id, "t1", b"\x09" * 16)])

    (msg,) = to_agent(effects, agent_id, "status_acks")
    assert [(a.framework_id, a.task_id, a.uuid) for a in msg.status_acks.acks] == [
        (fw.id, "t1", b"\x09" * 16)
    ]
    assert "t1" not in fw.tasks
    assert "t1" not in c.master.agents[agent_id].tasks
    assert [t.id for t in fw.completed] == ["t1"]


def test_acknowledging_a_non_terminal_update_keeps_the_task():
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    effects = c.master.acknowledge(c.fw, [ack(agent_id, "t1", bytes([TS.TASK_RUNNING]) * 16)])
    assert to_agent(effects, agent_id, "status_acks")
    assert "t1" in c.master.frameworks[c.fw.framework_id].tasks


def test_acknowledgement_with_a_malformed_uuid_is_refused():
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    before = snapshot(c.master)
    with pytest.raises(InvalidCall, match="16 bytes"):
        c.master.acknowledge(c.fw, [ack(agent_id, "t1", b"short")])
    with pytest.raises(InvalidCall, match="required"):
        c.master.acknowledge(c.fw, [ack("", "t1", b"\x01" * 16)])
    assert snapshot(c.master) == before


def test_updates_for_a_completed_framework_are_acknowledged_by_the_master():
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    c.master.teardown(c.fw, 3.0)
    killed = update(c.fw.framework_id, agent_id, "t1", TS.TASK_KILLED, uuid=b"\x07" * 16)

    effects = c.master.status_updates(agent_id, 1, [killed], 4.0)

    assert not [e for e in effects if isinstance(e, SendToFramework)]
    (msg,) = to_agent(effects, agent_id, "status_acks")
    assert [(a.task_id, a.uuid) for a in msg.status_acks.acks] == [("t1", b"\x07" * 16)]


def test_updates_for_an_unknown_framework_are_acknowledged_by_the_master():
    m = make_master()
    agent_id, _ = m.agent_register(1, register_msg(), 0.0)
    effects = m.status_updates(
        agent_id, 1, [update("ghost", agent_id, "t9", TS.TASK_FAILED, uuid=b"\x05" * 16)], 1.0
    )
    (msg,) = to_agent(effects, agent_id, "status_acks")
    assert msg.status_acks.acks[0].framework_id == "ghost"


def test_updates_on_a_stale_link_are_ignored():
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    before = snapshot(c.master)
    effects = c.master.status_updates(
        agent_id, 99, [update(c.fw.framework_id, agent_id, "t1", TS.TASK_FINISHED)], 3.0
    )
    assert effects == []
    assert snapshot(c.master) == before


def test_updates_for_a_disconnected_framework_are_recorded_but_not_sent():
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    c.master.framework_disconnected(c.fw.framework_id, c.fw.stream_id, 3.0)
    effects = c.master.status_updates(
        agent_id, 1, [update(c.fw.framework_id, agent_id, "t1", TS.TASK_FINISHED)], 4.0
    )
    assert effects == [], "no forward and no master ack: the framework acknowledges on return"
    assert c.master.agents[agent_id].used.is_empty()


# ================================================================ agent timeout


@pytest.mark.parametrize(
    ("partition_aware", "state"),
    [(False, TS.TASK_LOST), (True, TS.TASK_UNREACHABLE)],
    ids=["plain", "partition-aware"],
)
def test_silent_agent_becomes_unreachable_and_its_tasks_are_reported(partition_aware, state):
    c = cluster(n_agents=2, partition_aware=partition_aware)
    agent_id = running(c, "t1")  # last heard of at t=2.0
    m, fw_id = c.master, c.fw.framework_id
    late = 2.0 + CONFIG.agent_timeout + 0.1
    m.agent_message_seen(c.agents[1], 2, late)  # the other agent stays alive

    assert m.tick(2.0 + CONFIG.agent_timeout) == []
    first = m.tick(late)
    effects = first + m.tick(late + 1.0)

    closes = [e for e in first if isinstance(e, CloseAgentLink)]
    assert [(e.agent_id, e.link_id) for e in closes] == [(agent_id, 1)]
    assert m.agents[agent_id].status is AgentStatus.UNREACHABLE
    assert m.agents[c.agents[1]].status is AgentStatus.CONNECTED
    (status,) = statuses_for(effects, fw_id)
    assert (status.task_id, status.state, status.reason, status.source) == (
        "t1",
        state,
        pb.REASON_AGENT_DISCONNECTED,
        pb.SOURCE_MASTER,
    )
    failures = to_framework(effects, fw_id, Event.FAILURE)
    assert [f.failure.agent_id for f in failures] == [agent_id]
    assert m.agents[agent_id].used.is_empty()
    assert "t1" not in m.frameworks[fw_id].tasks


def test_disconnected_agent_becomes_unreachable_after_agent_timeout():
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    m = c.master
    m.agent_disconnected(agent_id, 1, 10.0)

    assert m.tick(10.0 + CONFIG.agent_timeout) == []
    assert m.agents[agent_id].status is AgentStatus.DISCONNECTED
    effects = m.tick(10.0 + CONFIG.agent_timeout + 0.01)

    assert m.agents[agent_id].status is AgentStatus.UNREACHABLE
    assert [s.state for s in statuses_for(effects, c.fw.framework_id)] == [TS.TASK_LOST]
    assert to_framework(effects, c.fw.framework_id, Event.FAILURE)


def test_heartbeats_keep_an_agent_connected():
    c = cluster(n_agents=1)
    agent_id = c.agents[0]
    for t in range(10, 100, 10):
        assert c.master.agent_message_seen(agent_id, 1, float(t))
        c.master.tick(float(t) + CONFIG.agent_timeout - 1)
    assert c.master.agents[agent_id].status is AgentStatus.CONNECTED


def test_tasks_of_an_unreachable_agent_come_back_only_for_partition_aware_frameworks():
    m = make_master()
    agent_id, _ = m.agent_register(1, register_msg(), 0.0)
    plain = subscribe(m, name="plain")
    aware = subscribe(m, name="aware", partition_aware=True)
    m.agent_disconnected(agent_id, 1, 1.0)
    m.tick(1.0 + CONFIG.agent_timeout + 1)
    assert m.agents[agent_id].status is AgentStatus.UNREACHABLE
    records = [
        agent_pb2.TaskRecord(framework_id=fw.framework_id, task=task(tid), state=TS.TASK_RUNNING)
        for fw, tid in ((plain, "p1"), (aware, "a1"))
    ]

    _, effects = m.agent_register(2, register_msg(agent_id=agent_id, tasks=tuple(records)), 30.0)

    (kill,) = to_agent(effects, agent_id, "kill_tasks")
    assert [k.task_id for k in kill.kill_tasks.kills] == ["p1"]
    assert [tid for _, tid in m.agents[agent_id].tasks] == ["a1"]
    assert m.agents[agent_id].used == Resources.parse(TASK_RES)


# ================================================================ kill


def test_kill_of_a_known_task_is_sent_to_its_agent():
    c = cluster(n_agents=2)
    agent_id = running(c, "t1", agent_index=1)

    effects = c.master.kill(c.fw, "t1", agent_id, 3.0, 5.0)

    (msg,) = to_agent(effects, agent_id, "kill_tasks")
    (k,) = msg.kill_tasks.kills
    assert (k.framework_id, k.task_id, k.grace_period) == (c.fw.framework_id, "t1", 3.0)
    assert len(effects) == 1


def test_kill_of_an_unknown_task_answers_task_unknown():
    c = cluster(n_agents=1)
    effects = c.master.kill(c.fw, "nope", "some-agent", None, 5.0)
    (status,) = statuses_for(effects, c.fw.framework_id)
    assert (status.task_id, status.state, status.source) == (
        "nope",
        TS.TASK_UNKNOWN,
        pb.SOURCE_MASTER,
    )
    assert not [e for e in effects if isinstance(e, SendToAgent)]


def test_kill_for_a_disconnected_agent_is_sent_when_it_reregisters():
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    c.master.agent_disconnected(agent_id, 1, 3.0)

    assert c.master.kill(c.fw, "t1", agent_id, None, 4.0) == []

    record = agent_pb2.TaskRecord(
        framework_id=c.fw.framework_id, task=task("t1"), state=TS.TASK_RUNNING
    )
    _, effects = c.master.agent_register(2, register_msg(agent_id=agent_id, tasks=(record,)), 5.0)
    (msg,) = to_agent(effects, agent_id, "kill_tasks")
    assert [k.task_id for k in msg.kill_tasks.kills] == ["t1"]


@pytest.mark.parametrize(("task_id", "grace"), [("", None), ("t1", -1.0), ("t1", float("nan"))])
def test_bad_kill_is_refused(task_id, grace):
    c = cluster(n_agents=1)
    running(c, "t1")
    before = snapshot(c.master)
    with pytest.raises(InvalidCall):
        c.master.kill(c.fw, task_id, c.agents[0], grace, 5.0)
    assert snapshot(c.master) == before


# ================================================================ reconcile


def req(task_id: str, agent_id: str = "") -> scheduler_pb2.ReconcileRequest.Task:
    return scheduler_pb2.ReconcileRequest.Task(task_id=task_id, agent_id=agent_id)


def test_implicit_reconciliation_returns_every_task():
    c = cluster(n_agents=2)
    running(c, "t1", 0)
    launch_on(c, 1, task("t2"))

    effects = c.master.reconcile(c.fw, [], 9.0)

    got = {(s.task_id, s.state, s.reason) for s in statuses_for(effects, c.fw.framework_id)}
    assert got == {
        ("t1", TS.TASK_RUNNING, pb.REASON_RECONCILIATION),
        ("t2", TS.TASK_STAGING, pb.REASON_RECONCILIATION),
    }


def test_implicit_reconciliation_without_tasks_sends_nothing():
    c = cluster(n_agents=1)
    assert c.master.reconcile(c.fw, [], 9.0) == []


def test_explicit_reconciliation_of_a_known_task_gives_its_state():
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    (status,) = statuses_for(
        c.master.reconcile(c.fw, [req("t1", agent_id)], 9.0), c.fw.framework_id
    )
    assert (status.task_id, status.state) == ("t1", TS.TASK_RUNNING)


@pytest.mark.parametrize(
    ("partition_aware", "where", "state"),
    [
        (False, "connected", TS.TASK_LOST),
        (True, "connected", TS.TASK_GONE),
        (False, "unreachable", TS.TASK_LOST),
        (True, "unreachable", TS.TASK_UNREACHABLE),
        (False, "unknown", TS.TASK_UNKNOWN),
        (True, "unknown", TS.TASK_UNKNOWN),
        (False, "none", TS.TASK_UNKNOWN),
    ],
)
def test_explicit_reconciliation_of_an_unknown_task(partition_aware, where, state):
    c = cluster(n_agents=2, partition_aware=partition_aware)
    m = c.master
    agent_id = {"connected": c.agents[0], "unreachable": c.agents[1], "unknown": "ghost"}.get(
        where, ""
    )
    if where == "unreachable":
        m.agent_disconnected(agent_id, 2, 1.0)
        m.tick(1.0 + CONFIG.agent_timeout + 1)
        assert m.agents[agent_id].status is AgentStatus.UNREACHABLE

    effects = m.reconcile(c.fw, [req("nope", agent_id)], 40.0)

    (status,) = statuses_for(effects, c.fw.framework_id)
    assert (status.task_id, status.agent_id, status.state, status.source) == (
        "nope",
        agent_id,
        state,
        pb.SOURCE_MASTER,
    )


def test_explicit_reconciliation_waits_for_a_disconnected_agent():
    c = cluster(n_agents=1)
    c.master.agent_disconnected(c.agents[0], 1, 1.0)
    assert c.master.reconcile(c.fw, [req("nope", c.agents[0])], 2.0) == []


def test_reconciliation_with_an_empty_task_id_is_refused():
    c = cluster(n_agents=1)
    with pytest.raises(InvalidCall, match="empty task_id"):
        c.master.reconcile(c.fw, [req("")], 2.0)


# ================================================================ teardown and failover


def test_teardown_kills_running_tasks_and_completes_the_framework():
    c = cluster(n_agents=2)
    running(c, "t1", 0)
    launch_on(c, 1, task("t2"))
    m, fw_id = c.master, c.fw.framework_id

    effects = m.teardown(c.fw, 5.0)

    killed = {
        (msg_agent, k.task_id)
        for msg_agent in c.agents
        for msg in to_agent(effects, msg_agent, "kill_tasks")
        for k in msg.kill_tasks.kills
    }
    assert killed == {(c.agents[0], "t1"), (c.agents[1], "t2")}
    closes = [e for e in effects if isinstance(e, CloseFrameworkStream)]
    assert [(e.framework_id, e.stream_id) for e in closes] == [(fw_id, c.fw.stream_id)]
    assert isinstance(effects[-1], PersistRegistry)
    assert m.frameworks[fw_id].status is FrameworkStatus.COMPLETED
    assert fw_id not in [f.info.id for f in m.registry().frameworks]
    assert all(m.agents[a].used.is_empty() for a in c.agents)
    assert not m.offers


def test_teardown_kills_a_task_on_a_disconnected_agent_when_it_comes_back():
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    c.master.agent_disconnected(agent_id, 1, 3.0)

    effects = c.master.teardown(c.fw, 4.0)

    assert not to_agent(effects, agent_id, "kill_tasks")
    assert c.master.agents[agent_id].used.is_empty()
    record = agent_pb2.TaskRecord(
        framework_id=c.fw.framework_id, task=task("t1"), state=TS.TASK_RUNNING
    )
    _, effects = c.master.agent_register(2, register_msg(agent_id=agent_id, tasks=(record,)), 5.0)
    (msg,) = to_agent(effects, agent_id, "kill_tasks")
    assert [(k.task_id, k.reason) for k in msg.kill_tasks.kills] == [
        ("t1", pb.REASON_FRAMEWORK_REMOVED)
    ]
    assert c.master.agents[agent_id].used.is_empty()


def test_after_teardown_calls_and_resubscription_are_refused():
    c = cluster(n_agents=1)
    c.master.teardown(c.fw, 5.0)
    with pytest.raises(StaleStream):
        c.master.reconcile(c.fw, [], 6.0)
    with pytest.raises(UnknownFramework, match="torn down") as err:
        c.master.subscribe(fw_info(fw_id=c.fw.framework_id), 6.0)
    assert err.value.code is Code.FAILED_PRECONDITION


def test_disconnected_framework_is_removed_after_failover_timeout():
    c = cluster(n_agents=1, failover_timeout=100.0)
    agent_id = running(c, "t1")
    m, fw_id = c.master, c.fw.framework_id
    m.framework_disconnected(fw_id, c.fw.stream_id, 10.0)

    m.agent_message_seen(agent_id, 1, 109.0)
    assert m.tick(110.0) == []
    assert m.frameworks[fw_id].status is FrameworkStatus.DISCONNECTED
    effects = m.tick(110.5)

    assert m.frameworks[fw_id].status is FrameworkStatus.COMPLETED
    (msg,) = to_agent(effects, agent_id, "kill_tasks")
    assert [(k.task_id, k.reason) for k in msg.kill_tasks.kills] == [
        ("t1", pb.REASON_FRAMEWORK_REMOVED)
    ]
    assert m.agents[agent_id].used.is_empty()


def test_framework_disconnect_on_a_stale_stream_is_ignored():
    c = cluster(n_agents=1)
    assert c.master.framework_disconnected(c.fw.framework_id, "old", 2.0) == []
    assert c.master.frameworks[c.fw.framework_id].status is FrameworkStatus.CONNECTED


def test_framework_disconnect_withdraws_its_offers():
    c = cluster(n_agents=1)
    c.master.framework_disconnected(c.fw.framework_id, c.fw.stream_id, 2.0)
    assert not c.master.offers
    assert c.master.agents[c.agents[0]].offered.is_empty()


# ================================================================ recovery


def test_registry_round_trip_restores_agents_and_frameworks():
    c = cluster(n_agents=2, name="web", roles=("web",))
    running(c, "t1")
    old = c.master
    registry = old.registry()

    new = make_master(now=100.0, master_id="bbbbbbbb0000")
    new.recover(registry, 100.0)

    assert set(new.agents) == set(c.agents)
    for agent_id in c.agents:
        agent = new.agents[agent_id]
        assert agent.status is AgentStatus.RECOVERING
        assert agent.info == old.agents[agent_id].info
        assert agent.total == Resources.parse(AGENT_RES)
    fw = new.frameworks[c.fw.framework_id]
    assert fw.status is FrameworkStatus.DISCONNECTED
    assert fw.info == old.frameworks[c.fw.framework_id].info
    assert new.registry().agents == registry.agents
    assert new.registry().frameworks == registry.frameworks
    header = subscribe(new, 101.0, fw_id=c.fw.framework_id, name="web", roles=("web",))
    assert offers_for(new.allocate(102.0), header.framework_id) == [], (
        "recovering agents are not offered before they re-register"
    )


def test_recovered_master_takes_agents_and_frameworks_back():
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    new = make_master(now=100.0, master_id="bbbbbbbb0000")
    new.recover(c.master.registry(), 100.0)
    record = agent_pb2.TaskRecord(
        framework_id=c.fw.framework_id, task=task("t1"), state=TS.TASK_RUNNING
    )

    _, effects = new.agent_register(5, register_msg(agent_id=agent_id, tasks=(record,)), 101.0)
    fw_id, _, _ = new.subscribe(fw_info(fw_id=c.fw.framework_id), 102.0)

    assert not to_agent(effects, agent_id, "kill_tasks")
    assert new.agents[agent_id].status is AgentStatus.CONNECTED
    assert new.agents[agent_id].used == Resources.parse(TASK_RES)
    assert list(new.frameworks[fw_id].tasks) == ["t1"]
    assert new.frameworks[fw_id].status is FrameworkStatus.CONNECTED


def test_recovering_agent_that_does_not_come_back_becomes_unreachable():
    c = cluster(n_agents=2)
    new = make_master(now=100.0, master_id="bbbbbbbb0000")
    new.recover(c.master.registry(), 100.0)
    new.agent_register(5, register_msg("10.0.0.2:5051", agent_id=c.agents[1]), 101.0)
    fw_id, _, _ = new.subscribe(fw_info(fw_id=c.fw.framework_id), 101.0)

    assert new.tick(100.0 + CONFIG.agent_timeout) == []
    new.agent_message_seen(c.agents[1], 5, 115.0)
    effects = new.tick(100.0 + CONFIG.agent_timeout + 0.5)

    assert new.agents[c.agents[0]].status is AgentStatus.UNREACHABLE
    assert new.agents[c.agents[1]].status is AgentStatus.CONNECTED
    assert [f.failure.agent_id for f in to_framework(effects, fw_id, Event.FAILURE)] == [
        c.agents[0]
    ]


def test_recovered_framework_that_does_not_come_back_is_removed_after_its_failover_timeout():
    c = cluster(n_agents=1, failover_timeout=50.0)
    new = make_master(now=100.0, master_id="bbbbbbbb0000")
    new.recover(c.master.registry(), 100.0)
    new.tick(150.0)
    assert new.frameworks[c.fw.framework_id].status is FrameworkStatus.DISCONNECTED
    new.tick(150.1)
    assert new.frameworks[c.fw.framework_id].status is FrameworkStatus.COMPLETED


# ================================================================ known bugs


def _shrunk_with_an_offer_outstanding(c: Cluster) -> agent_pb2.AgentMessage.Register:
    return register_msg(agent_id=c.agents[0], resources="cpus:2;mem:1024")


def _shrunk_with_a_task_running(c: Cluster) -> agent_pb2.AgentMessage.Register:
    launch_on(c, 0, task("t1", "cpus:3;mem:128"))
    c.master.agent_disconnected(c.agents[0], 1, 2.0)
    record = agent_pb2.TaskRecord(
        framework_id=c.fw.framework_id, task=task("t1", "cpus:3;mem:128"), state=TS.TASK_RUNNING
    )
    return register_msg(agent_id=c.agents[0], resources="cpus:2;mem:1024", tasks=(record,))


@pytest.mark.parametrize(
    "prepare",
    [_shrunk_with_an_offer_outstanding, _shrunk_with_a_task_running],
    ids=["offer-outstanding", "task-running"],
)
def test_bug_agent_reregistering_with_fewer_resources_than_in_use_breaks_allocation(prepare):
    """BUG (orbiter/master/state.py, Master.agent_register, re-registration branch): an
    agent that comes back with a smaller total than it has in use (restarted with a
    smaller --resources, its tasks still running) is taken back as is; Agent.available
    then subtracts more than there is and Master.allocate raises InvalidResources (not an
    OrbiterError), which ends the server's timer loop (server.py _run_timers): no more
    ticks or offers for anyone. Expected: refuse the re-registration, or take it back so
    that used + offered stays within total. (With offers outstanding, rescinding them on
    re-registration, as state.py now does, is enough; that case is kept as a regression.)"""
    c = cluster(n_agents=1)
    msg = prepare(c)
    try:
        c.master.agent_register(5, msg, 3.0)
    except RegistrationRefused:
        return
    agent = c.master.agents[c.agents[0]]
    c.master.allocate(4.0)
    c.master.tick(4.0)
    assert agent.total.contains(agent.used) and agent.total.contains(agent.offered)


# ================================================================ property


@dataclass
class SimAgent:
    """What a well-behaved agent knows: the tasks it runs, in order of their updates."""

    link: int
    tasks: dict[str, tuple[str, pb.TaskInfo, int]] = field(
        default_factory=dict
    )  # id -> fw, info, state
    connected: bool = True


SIZES = st.sampled_from(["cpus:0.1;mem:32", "cpus:0.5;mem:256", "cpus:1;mem:128", "cpus:2;mem:512"])
# Repeats weigh the choice: mostly launches, updates and acks, with failures in between.
KINDS = (
    ["launch"] * 6
    + ["update"] * 6
    + ["ack"] * 4
    + ["kill", "decline", "allocate", "tick", "tick", "agent_down", "agent_up", "fw_down", "fw_up"]
)
STEP = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 50),
    st.lists(SIZES, min_size=1, max_size=3),
    st.sampled_from([TS.TASK_RUNNING, TS.TASK_FINISHED, TS.TASK_FAILED, TS.TASK_KILLED]),
    st.sampled_from([0.0, 0.5, 3.0, 10.0, 20.0]),
)


def _milli(q: dict[str, float]) -> dict[str, int]:
    return {k: round(v * 1000) for k, v in q.items() if round(v * 1000)}


def _sum(parts: list[Resources]) -> dict[str, int]:
    """Sum quantities without Resources.__add__, so the check does not trust what it checks."""
    out: dict[str, int] = {}
    for r in parts:
        for k, v in _milli(r.quantities()).items():
            out[k] = out.get(k, 0) + v
    return {k: v for k, v in out.items() if v}


def check_accounting(m: Master) -> None:
    for agent in m.agents.values():
        used = _sum([t.resources for t in agent.tasks.values() if t.state not in TERMINAL_STATES])
        assert _milli(agent.used.quantities()) == used, f"agent {agent.id} used"
        offered = _sum([m.offers[o].resources for o in agent.offers])
        assert _milli(agent.offered.quantities()) == offered, f"agent {agent.id} offered"
        total = _milli(agent.total.quantities())
        both = _sum([agent.used, agent.offered])
        assert all(v <= total.get(k, 0) for k, v in both.items()), f"agent {agent.id} overcommitted"
        assert agent.total.contains(agent.used) and agent.total.contains(agent.offered)
    for fw in m.frameworks.values():
        held = _sum([t.resources for t in fw.tasks.values() if t.state not in TERMINAL_STATES])
        offered = _sum([m.offers[o].resources for o in fw.offers])
        expected = {k: held.get(k, 0) + offered.get(k, 0) for k in held.keys() | offered.keys()}
        assert _add(held_quantities(fw).values()) == expected, f"framework {fw.id} allocation"
    frameworks = _add(h for fw in m.frameworks.values() for h in held_quantities(fw).values())
    agents = _sum([r for a in m.agents.values() for r in (a.used, a.offered)])
    assert frameworks == agents, "framework allocations differ from what agents have given out"


def _add(parts) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in parts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return {k: v for k, v in out.items() if v}


class Sim:
    """Drives the master the way well-behaved agents and frameworks would, plus failures."""

    def __init__(self) -> None:
        self.m = make_master()
        self.now = 0.0
        self.agents: dict[str, SimAgent] = {}
        self.order: list[str] = []
        for i in range(2):
            agent_id, _ = self.m.agent_register(i + 1, register_msg(f"10.0.0.{i + 1}:5051"), 0.0)
            self.agents[agent_id] = SimAgent(link=i + 1)
            self.order.append(agent_id)
        self.fws = [
            subscribe(self.m, name=f"fw{i}", failover_timeout=30.0, partition_aware=bool(i))
            for i in range(2)
        ]
        self.next_link = 10
        self.next_task = 0
        self.unacked: dict[str, tuple[int, str, str, bytes]] = {}  # task -> fw index, agent, uuid

    def carry_out(self, effects: list[Effect]) -> None:
        for e in effects:
            if isinstance(e, SendToAgent) and e.agent_id in self.agents:
                sim = self.agents[e.agent_id]
                kind = e.message.WhichOneof("message")
                if kind == "run_tasks":
                    for t in e.message.run_tasks.tasks:
                        sim.tasks[t.task_id] = (
                            e.message.run_tasks.framework_id,
                            t,
                            TS.TASK_STAGING,
                        )

    def call(self, fn: Callable[[], list[Effect]]) -> None:
        before = snapshot(self.m)
        try:
            effects = fn()
        except OrbiterError:
            assert snapshot(self.m) == before, "a refused call changed the state"
            return
        self.carry_out(effects)

    def send_update(self, agent_id: str, task_id: str, state: int) -> None:
        sim = self.agents[agent_id]
        fw_id, info, old = sim.tasks[task_id]
        if old in TERMINAL_STATES and state not in TERMINAL_STATES:
            return  # a real agent never goes back
        if old in TERMINAL_STATES:
            state = old  # a retry of the terminal update
        sim.tasks[task_id] = (fw_id, info, state)
        uuid = bytes([state]) * 8 + task_id.encode().ljust(8, b"_")[:8]
        fw_index = next(i for i, h in enumerate(self.fws) if h.framework_id == fw_id)
        self.unacked[task_id] = (fw_index, agent_id, task_id, uuid)
        self.call(
            lambda: self.m.status_updates(
                agent_id, sim.link, [update(fw_id, agent_id, task_id, state, uuid)], self.now
            )
        )

    def all_tasks(self) -> list[tuple[str, str]]:
        return [(a, t) for a in self.order for t in sorted(self.agents[a].tasks)]

    def step(self, action: tuple) -> None:
        kind, pick, sizes, state, seconds = action
        m = self.m
        fw_index = agent_index = pick % 2
        if kind == "allocate":
            self.carry_out(m.allocate(self.now))
        elif kind == "launch":
            fw = self.fws[fw_index]
            if not m.frameworks[fw.framework_id].offers:
                self.carry_out(m.allocate(self.now))
            offers = sorted(m.frameworks[fw.framework_id].offers)
            if not offers:
                return
            ids = []
            for size in sizes:
                self.next_task += 1
                ids.append(task(f"t{self.next_task}", size))
            self.call(lambda: m.accept(fw, offers[:1], [launch(*ids)], refuse(1.0), self.now))
        elif kind == "decline":
            fw = self.fws[fw_index]
            offers = sorted(m.frameworks[fw.framework_id].offers)
            self.call(lambda: m.decline(fw, offers[:1], refuse(seconds), self.now))
        elif kind in ("update", "kill", "ack"):
            tasks = self.all_tasks()
            if not tasks:
                return
            agent_id, task_id = tasks[pick % len(tasks)]
            sim = self.agents[agent_id]
            fw_id = sim.tasks[task_id][0]
            fw = next(h for h in self.fws if h.framework_id == fw_id)
            if kind == "update" and sim.connected:
                self.send_update(agent_id, task_id, state)
            elif kind == "kill":
                self.call(lambda: m.kill(fw, task_id, agent_id, None, self.now))
            elif kind == "ack" and task_id in self.unacked:
                _, a, t, uuid = self.unacked.pop(task_id)
                self.call(lambda: m.acknowledge(fw, [ack(a, t, uuid)]))
                if sim.tasks[task_id][2] in TERMINAL_STATES:
                    del sim.tasks[task_id]
        elif kind == "agent_down":
            agent_id = self.order[agent_index]
            sim = self.agents[agent_id]
            if sim.connected:
                sim.connected = False
                self.carry_out(m.agent_disconnected(agent_id, sim.link, self.now))
        elif kind == "agent_up":
            agent_id = self.order[agent_index]
            sim = self.agents[agent_id]
            if m.agents[agent_id].status is AgentStatus.GONE:
                return
            self.next_link += 1
            records = tuple(
                agent_pb2.TaskRecord(framework_id=f, task=info, state=s)
                for tid, (f, info, s) in sorted(sim.tasks.items())
            )
            msg = register_msg(f"10.0.0.{agent_index + 1}:5051", agent_id=agent_id, tasks=records)
            before = snapshot(m)
            try:
                _, effects = m.agent_register(self.next_link, msg, self.now)
            except OrbiterError:
                assert snapshot(m) == before
                return
            sim.link, sim.connected = self.next_link, True
            self.carry_out(effects)
        elif kind == "fw_down":
            fw = self.fws[fw_index]
            self.carry_out(m.framework_disconnected(fw.framework_id, fw.stream_id, self.now))
        elif kind == "fw_up":
            fw = self.fws[fw_index]
            info = m.frameworks[fw.framework_id].info
            if m.frameworks[fw.framework_id].status is FrameworkStatus.COMPLETED:
                return
            fw_id, stream, effects = m.subscribe(info, self.now)
            self.fws[fw_index] = scheduler_pb2.CallHeader(framework_id=fw_id, stream_id=stream)
            self.carry_out(effects)
        elif kind == "tick":
            self.now += seconds
            for agent_id, sim in self.agents.items():
                if sim.connected:
                    m.agent_message_seen(agent_id, sim.link, self.now)
            effects = m.tick(self.now)
            for e in effects:
                if isinstance(e, CloseAgentLink) and e.agent_id in self.agents:
                    self.agents[e.agent_id].connected = False
            self.carry_out(effects)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(STEP, min_size=1, max_size=40))
def test_resources_are_never_overcommitted_and_allocations_add_up(steps):
    sim = Sim()
    check_accounting(sim.m)
    for action in steps:
        sim.step(action)
        check_accounting(sim.m)


# ================================================================ one end per task


def _unreachable(c: Cluster, agent_index: int = 0, at: float = 3.0) -> str:
    agent_id = c.agents[agent_index]
    c.master.agent_disconnected(agent_id, agent_index + 1, at)
    c.master.tick(at + CONFIG.agent_timeout + 1)
    assert c.master.agents[agent_id].status is AgentStatus.UNREACHABLE
    return agent_id


def test_a_task_lost_with_an_unreachable_agent_never_ends_a_second_time():
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    _unreachable(c)
    record = agent_pb2.TaskRecord(
        framework_id=c.fw.framework_id, task=task("t1"), state=TS.TASK_RUNNING
    )
    _, effects = c.master.agent_register(9, register_msg(agent_id=agent_id, tasks=(record,)), 40.0)
    assert [k.task_id for k in to_agent(effects, agent_id, "kill_tasks")[0].kill_tasks.kills] == [
        "t1"
    ]

    # The kill ends it on the agent; the master drops that end and acknowledges it itself.
    effects = c.master.status_updates(
        agent_id, 9, [update(c.fw.framework_id, agent_id, "t1", TS.TASK_KILLED)], 41.0
    )

    assert statuses_for(effects, c.fw.framework_id) == []
    (acks,) = to_agent(effects, agent_id, "status_acks")
    assert [a.task_id for a in acks.status_acks.acks] == ["t1"]


def test_a_new_leader_remembers_which_tasks_it_reported_lost():
    c = cluster(n_agents=1)
    agent_id = running(c, "t1")
    _unreachable(c)
    new = make_master(now=100.0, master_id="bbbbbbbb0000")
    new.recover(c.master.registry(), 100.0)
    assert new.agents[agent_id].status is AgentStatus.UNREACHABLE
    new.subscribe(fw_info(fw_id=c.fw.framework_id), 100.5)
    record = agent_pb2.TaskRecord(
        framework_id=c.fw.framework_id, task=task("t1"), state=TS.TASK_FINISHED
    )

    new.agent_register(3, register_msg(agent_id=agent_id, tasks=(record,)), 101.0)
    effects = new.status_updates(
        agent_id, 3, [update(c.fw.framework_id, agent_id, "t1", TS.TASK_FINISHED)], 102.0
    )

    assert statuses_for(effects, c.fw.framework_id) == []
    assert new.agents[agent_id].tasks == {}


def test_a_partition_aware_framework_gets_its_task_back_with_its_state():
    c = cluster(n_agents=1, partition_aware=True)
    agent_id = running(c, "t1")
    _unreachable(c)
    record = agent_pb2.TaskRecord(
        framework_id=c.fw.framework_id, task=task("t1"), state=TS.TASK_RUNNING
    )

    _, effects = c.master.agent_register(9, register_msg(agent_id=agent_id, tasks=(record,)), 40.0)

    (status,) = statuses_for(effects, c.fw.framework_id)
    assert (status.state, status.reason) == (TS.TASK_RUNNING, pb.REASON_AGENT_REREGISTERED)
    assert not to_agent(effects, agent_id, "kill_tasks")


def test_an_agent_that_does_not_come_back_after_failover_is_unreachable_after_its_timeout():
    cfg = MasterConfig(agent_timeout=15.0, agent_reregister_timeout=5.0)
    c = cluster(n_agents=1)
    running(c, "t1")
    new = Master(pb.MasterInfo(id="bbbbbbbb0000"), cfg, 100.0)
    new.recover(c.master.registry(), 100.0)
    fw_id, stream, _ = new.subscribe(fw_info(fw_id=c.fw.framework_id), 100.0)
    header = scheduler_pb2.CallHeader(framework_id=fw_id, stream_id=stream)
    req = scheduler_pb2.ReconcileRequest.Task(task_id="t1", agent_id=c.agents[0])
    assert new.reconcile(header, [req], 101.0) == [], "no answer while the agent may come back"

    effects = new.tick(105.5)

    assert new.agents[c.agents[0]].status is AgentStatus.UNREACHABLE
    assert any(isinstance(e, PersistRegistry) for e in effects)
    (status,) = statuses_for(new.reconcile(header, [req], 106.0), fw_id)
    assert (status.task_id, status.state) == ("t1", TS.TASK_LOST)


def test_an_update_for_a_task_the_master_does_not_hold_is_acknowledged_not_forwarded():
    c = cluster(n_agents=1)
    agent_id = c.agents[0]
    effects = c.master.status_updates(
        agent_id, 1, [update(c.fw.framework_id, agent_id, "never", TS.TASK_FAILED)], 5.0
    )
    assert statuses_for(effects, c.fw.framework_id) == []
    assert to_agent(effects, agent_id, "status_acks")


def test_a_task_adopted_as_ended_is_forgotten_once_its_end_is_acknowledged():
    c = cluster(n_agents=1)
    running(c, "t1")
    new = make_master(now=100.0, master_id="bbbbbbbb0000")
    new.recover(c.master.registry(), 100.0)
    agent_id = c.agents[0]
    record = agent_pb2.TaskRecord(
        framework_id=c.fw.framework_id, task=task("t1"), state=TS.TASK_FINISHED
    )
    new.agent_register(2, register_msg(agent_id=agent_id, tasks=(record,)), 101.0)
    fw_id, stream, effects = new.subscribe(fw_info(fw_id=c.fw.framework_id), 102.0)
    (resend,) = to_agent(effects, agent_id, "resend_updates")
    assert resend.resend_updates.framework_id == fw_id
    header = scheduler_pb2.CallHeader(framework_id=fw_id, stream_id=stream)
    u = update(fw_id, agent_id, "t1", TS.TASK_FINISHED)
    (status,) = statuses_for(new.status_updates(agent_id, 2, [u], 103.0), fw_id)

    new.acknowledge(header, [ack(agent_id, "t1", status.uuid)])

    assert new.frameworks[fw_id].tasks == {}
    assert new.agents[agent_id].tasks == {}


@pytest.mark.parametrize(
    ("partition_aware", "state"), [(False, TS.TASK_LOST), (True, TS.TASK_GONE_BY_OPERATOR)]
)
def test_an_operator_removes_an_agent_for_good(partition_aware, state):
    c = cluster(n_agents=1, partition_aware=partition_aware)
    agent_id = running(c, "t1")

    effects = c.master.remove_agent(agent_id, "operator", "disk died", 10.0)

    (status,) = statuses_for(effects, c.fw.framework_id)
    assert status.state == state
    assert [g.id for g in c.master.registry().gone_agents] == [agent_id]
    assert agent_id not in [a.info.id for a in c.master.registry().agents]
    assert c.master.events[-1].kind == "agent_removed"
    with pytest.raises(RegistrationRefused, match="removed"):
        c.master.agent_register(5, register_msg(agent_id=agent_id), 11.0)
    with pytest.raises(InvalidCall, match="was removed"):
        c.master.remove_agent(agent_id, "operator", "again", 12.0)


def test_removing_an_agent_needs_a_reason_and_changes_nothing_without_one():
    c = cluster(n_agents=1)
    before = c.master.registry()
    with pytest.raises(InvalidCall, match="reason is required"):
        c.master.remove_agent(c.agents[0], "operator", " ", 12.0)
    assert c.master.registry() == before
    assert c.master.agents[c.agents[0]].status is AgentStatus.CONNECTED


def test_an_agent_unreachable_longer_than_the_removal_age_is_removed():
    cfg = MasterConfig(agent_timeout=15.0, agent_removal_age=100.0)
    m = Master(pb.MasterInfo(id="aaaaaaaa0000"), cfg, 0.0)
    agent_id, _ = m.agent_register(1, register_msg(), 0.0)
    m.agent_disconnected(agent_id, 1, 1.0)
    m.tick(20.0)
    assert m.agents[agent_id].status is AgentStatus.UNREACHABLE

    m.tick(110.0)
    assert m.agents[agent_id].status is AgentStatus.UNREACHABLE
    m.tick(121.0)

    assert m.agents[agent_id].status is AgentStatus.GONE
    assert m.registry().gone_agents[0].by == "master"
    assert "unreachable for more than 100s" in m.events[-1].message


def test_a_newly_registered_agent_counts_in_the_cluster_total_for_fair_shares():
    m = make_master()
    m.agent_register(1, register_msg(), 0.0)
    assert m.total_quantities() == Resources.parse(AGENT_RES).quantities()


def test_an_end_the_master_makes_itself_is_persisted_before_it_is_sent():
    c = cluster(n_agents=1)
    running(c, "t1")
    c.master.agent_disconnected(c.agents[0], 1, 3.0)

    effects = c.master.tick(3.0 + CONFIG.agent_timeout + 1)

    kinds = [type(e) for e in effects]
    assert kinds.index(PersistRegistry) < kinds.index(SendToFramework)
    (status,) = statuses_for(effects, c.fw.framework_id)
    assert status.state == TS.TASK_LOST


@pytest.mark.parametrize(
    ("how", "state"),
    [("removed", TS.TASK_GONE_BY_OPERATOR), ("back without it", TS.TASK_GONE)],
)
def test_an_unreachable_partition_aware_task_gets_an_end_when_its_agent_is_gone(how, state):
    c = cluster(n_agents=1, partition_aware=True)
    agent_id = _unreachable_after(running(c, "t1"), c)

    if how == "removed":
        effects = c.master.remove_agent(agent_id, "operator", "dead disk", 40.0)
    else:
        _, effects = c.master.agent_register(9, register_msg(agent_id=agent_id), 40.0)

    (status,) = statuses_for(effects, c.fw.framework_id)
    assert (status.task_id, status.state) == ("t1", state)


def _unreachable_after(agent_id: str, c: Cluster) -> str:
    c.master.agent_disconnected(agent_id, 1, 3.0)
    (status,) = statuses_for(c.master.tick(3.0 + CONFIG.agent_timeout + 1), c.fw.framework_id)
    assert status.state == TS.TASK_UNREACHABLE
    return agent_id


def test_an_acknowledged_end_reported_again_does_not_replace_a_relaunched_task():
    c = cluster(n_agents=2)
    a = running(c, "t1")
    (finished,) = statuses_for(
        c.master.status_updates(a, 1, [update(c.fw.framework_id, a, "t1", TS.TASK_FINISHED)], 3.0),
        c.fw.framework_id,
    )
    c.master.agent_disconnected(a, 1, 4.0)
    c.master.acknowledge(c.fw, [ack(a, "t1", finished.uuid)])  # the ack cannot reach agent a
    assert "t1" not in c.master.frameworks[c.fw.framework_id].tasks
    c.now = 5.0
    launch_on(c, 1, task("t1"))  # the id is free again: relaunched on the other agent
    record = agent_pb2.TaskRecord(
        framework_id=c.fw.framework_id, task=task("t1"), state=TS.TASK_FINISHED
    )

    _, effects = c.master.agent_register(7, register_msg(agent_id=a, tasks=(record,)), 6.0)
    again = c.master.status_updates(
        a, 7, [update(c.fw.framework_id, a, "t1", TS.TASK_FINISHED, finished.uuid)], 6.5
    )

    assert statuses_for(effects + again, c.fw.framework_id) == []
    assert c.master.frameworks[c.fw.framework_id].tasks["t1"].agent_id == c.agents[1]
    assert to_agent(again, a, "status_acks"), "the old end is acknowledged so a stops resending"


# ================================================================ executors


def executor_task(
    task_id: str, executor_id: str = "e1", res: str = "cpus:0.5;mem:64"
) -> pb.TaskInfo:
    t = pb.TaskInfo(task_id=task_id)
    t.resources.extend(Resources.parse(TASK_RES).to_proto())
    t.executor.executor_id = executor_id
    t.executor.command.value = "my-executor"
    t.executor.resources.extend(Resources.parse(res).to_proto())
    return t


def test_an_executors_resources_are_charged_once_with_the_first_task_that_starts_it():
    c = cluster(n_agents=1)

    launch_on(c, 0, executor_task("t1"), executor_task("t2"))

    used = c.master.agents[c.agents[0]].used
    assert used == Resources.parse("cpus:2.5;mem:320")  # two tasks and one executor


def reoffer(c: Cluster) -> None:
    """Offer what is left of every agent again."""
    c.now += 1
    for o in offers_for(c.master.allocate(c.now), c.fw.framework_id):
        c.offers[o.agent_id] = o


def end_task(c: Cluster, task_id: str, agent_index: int = 0) -> None:
    agent_id = c.agents[agent_index]
    c.master.status_updates(
        agent_id,
        agent_index + 1,
        [update(c.fw.framework_id, agent_id, task_id, TS.TASK_FINISHED)],
        c.now,
    )


def test_an_executor_holds_its_resources_until_the_agent_says_it_ended():
    c = cluster(n_agents=1)
    agent_id = c.agents[0]
    launch_on(c, 0, executor_task("t1"), executor_task("t2"))
    end_task(c, "t1")  # the task that started the executor ends first
    end_task(c, "t2")
    agent = c.master.agents[agent_id]
    assert agent.used == Resources.parse("cpus:0.5;mem:64"), "the executor still runs"
    assert held_quantities(c.master.frameworks[c.fw.framework_id])["*"] == {
        "cpus": 500, "mem": 64000
    }  # fmt: skip

    # A later task of the running executor adds only its own resources.
    reoffer(c)
    launch_on(c, 0, executor_task("t3"))
    assert agent.used == Resources.parse("cpus:1.5;mem:192")

    exited = agent_pb2.ExecutorExited(
        framework_id=c.fw.framework_id, executor_id="e1", message="executor exited with status 3",
        status=3,
    )  # fmt: skip
    effects = c.master.executor_exited(agent_id, 1, exited, c.now)

    assert agent.used == Resources.parse("cpus:1;mem:128"), "t3 still runs; the executor is gone"
    (failure,) = to_framework(effects, c.fw.framework_id, Event.FAILURE)
    assert (failure.failure.executor_id, failure.failure.status) == ("e1", 3)
    assert failure.failure.message == "executor exited with status 3"
    # Said twice (or of an unknown executor): nothing more happens.
    assert c.master.executor_exited(agent_id, 1, exited, c.now) == []
    assert agent.used == Resources.parse("cpus:1;mem:128")
    # A stale link is not believed.
    reoffer(c)
    launch_on(c, 0, executor_task("t4", executor_id="e2"))
    before = agent.used
    stale = agent_pb2.ExecutorExited(framework_id=c.fw.framework_id, executor_id="e2")
    assert c.master.executor_exited(agent_id, 99, stale, c.now) == []
    assert agent.used == before


def test_reregistration_holds_exactly_the_executors_the_agent_still_runs():
    c = cluster(n_agents=1)
    agent_id = c.agents[0]
    launch_on(c, 0, executor_task("t1", executor_id="e1"), executor_task("t2", executor_id="e2"))
    end_task(c, "t1")
    end_task(c, "t2")
    agent = c.master.agents[agent_id]
    assert agent.used == Resources.parse("cpus:1;mem:128")  # both executors
    c.master.agent_disconnected(agent_id, 1, c.now)

    # e1 ended while the link was down; e3 is one the master never knew of.
    msg = register_msg(c.master.agents[agent_id].info.http_address, agent_id=agent_id)
    for eid, res in (("e2", "cpus:0.5;mem:64"), ("e3", "cpus:0.25;mem:32")):
        info = pb.ExecutorInfo(executor_id=eid)
        info.resources.extend(Resources.parse(res).to_proto())
        msg.executors.add(framework_id=c.fw.framework_id, executor=info)
    _, effects = c.master.agent_register(2, msg, c.now)

    assert sorted(eid for _, eid in agent.executors) == ["e2", "e3"]
    (lost,) = to_framework(effects, c.fw.framework_id, Event.FAILURE)
    assert lost.failure.executor_id == "e1" and not lost.failure.HasField("status")
    assert agent.used == Resources.parse("cpus:0.75;mem:96")
    assert held_quantities(c.master.frameworks[c.fw.framework_id])["*"] == {
        "cpus": 750, "mem": 96000
    }  # fmt: skip


def test_an_unreachable_agents_executors_are_freed_with_its_tasks():
    c = cluster(n_agents=1)
    agent_id = c.agents[0]
    launch_on(c, 0, executor_task("t1"))
    c.master.agent_disconnected(agent_id, 1, c.now)

    c.master.tick(c.now + 1000)

    agent = c.master.agents[agent_id]
    assert agent.status is AgentStatus.UNREACHABLE
    assert agent.executors == {} and agent.used.is_empty()
    assert held_quantities(c.master.frameworks[c.fw.framework_id]) == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: setattr(t.executor, "executor_id", "bad id"), "executor id 'bad id' is invalid"),
        (lambda t: t.executor.command.ClearField("value"), "has no command.value"),
        (lambda t: setattr(t.command, "value", "also a command"), "not both"),
    ],
    ids=["bad-id", "no-command", "both"],
)
def test_a_bad_executor_is_refused_and_nothing_changes(change, message):
    c = cluster(n_agents=1)
    t = executor_task("t1")
    change(t)
    before = c.master.registry()
    with pytest.raises(InvalidCall, match=message):
        launch_on(c, 0, t)
    assert c.master.registry() == before
    assert c.master.agents[c.agents[0]].used.is_empty()


def test_framework_messages_go_to_the_agent_and_come_back_as_events():
    c = cluster(n_agents=1)
    agent_id = c.agents[0]

    (sent,) = to_agent(
        c.master.message(c.fw, agent_id, "e1", b"ping"), agent_id, "framework_message"
    )
    back = agent_pb2.FrameworkMessage(
        framework_id=c.fw.framework_id, executor_id="e1", data=b"pong"
    )
    (event,) = to_framework(
        c.master.framework_message(agent_id, 1, back, 2.0), c.fw.framework_id, Event.MESSAGE
    )

    assert (sent.framework_message.executor_id, sent.framework_message.data) == ("e1", b"ping")
    assert (event.message.agent_id, event.message.executor_id, event.message.data) == (
        agent_id,
        "e1",
        b"pong",
    )
    with pytest.raises(InvalidCall, match="over the"):
        c.master.message(c.fw, agent_id, "e1", b"x" * (4 * 1024 * 1024 + 1))
    with pytest.raises(InvalidCall, match="not connected"):
        c.master.message(c.fw, "nowhere", "e1", b"ping")
