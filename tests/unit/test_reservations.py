"""Dynamic reservations and persistent volumes in the master's state machine (issue 13).

A framework in role `db` (principal `dbp`) holds one offer of one agent
(`cpus:4;mem:4096;disk:1000`). Operations of one Accept apply in order, as in
Mesos; a refused Accept changes nothing (`snapshot`).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orbiter.errors import OrbiterError
from orbiter.master.effects import PersistRegistry, SendToAgent
from orbiter.master.state import Master, MasterConfig
from orbiter.proto import agent_pb2, messages_pb2, scheduler_pb2
from orbiter.resources import Resources
from orbiter.security import acl
from orbiter.security.acl import Acls, Rule
from tests.unit.test_master_state import (
    NO_FILTERS,
    launch,
    offers_for,
    register_msg,
    snapshot,
    statuses_for,
    task,
    to_agent,
    update,
)

pb = messages_pb2
Op = scheduler_pb2.Operation
TS = pb.TaskState
AGENT = "cpus:4;mem:4096;disk:1000"


def reserve(text: str, **labels: str) -> Op:
    op = Op(type=Op.RESERVE)
    op.reserve.resources.extend(Resources.parse(text).to_proto())
    op.reserve.labels.update(labels)
    return op


def unreserve(text: str) -> Op:
    op = Op(type=Op.UNRESERVE)
    op.unreserve.resources.extend(Resources.parse(text).to_proto())
    return op


def create(pid: str, size: float = 100, path: str = "data", role: str = "db") -> Op:
    op = Op(type=Op.CREATE)
    op.create.volumes.add(persistence_id=pid, role=role, size=size, container_path=path)
    return op


def destroy(pid: str) -> Op:
    op = Op(type=Op.DESTROY)
    op.destroy.volumes.add(persistence_id=pid)
    return op


def with_volume(t: pb.TaskInfo, pid: str) -> pb.TaskInfo:
    t.volumes.add(persistence_id=pid)
    return t


class World:
    def __init__(self, acls: Acls | None = None, principal: str = "dbp", role: str = "db") -> None:
        config = MasterConfig(acls=acls) if acls is not None else MasterConfig()
        self.m = Master(pb.MasterInfo(id="aaaaaaaa0000", hostname="m"), config, 0.0)
        self.agent, _ = self.m.agent_register(1, register_msg(resources=AGENT), 0.0)
        self.fw = self.subscribe(principal, role)
        self.now = 1.0

    def subscribe(self, principal: str, role: str) -> scheduler_pb2.CallHeader:
        info = pb.FrameworkInfo(name=principal, roles=[role], failover_timeout=60)
        fw_id, stream_id, _ = self.m.subscribe(info, 0.0, principal)
        return scheduler_pb2.CallHeader(framework_id=fw_id, stream_id=stream_id)

    def offer(self, fw: scheduler_pb2.CallHeader | None = None) -> pb.Offer:
        fw = fw or self.fw
        held = [o.id for o in self.m.offers.values() if o.framework_id == fw.framework_id]
        if held:  # a refused Accept leaves its offer: decline it for a fresh one
            self.m.decline(fw, held, scheduler_pb2.Filters(refuse_seconds=0), self.now)
        self.now += 10
        effects = self.m.allocate(self.now)
        (offer,) = offers_for(effects, fw.framework_id)
        return offer

    def accept(self, *ops: Op, fw: scheduler_pb2.CallHeader | None = None) -> list:
        fw = fw or self.fw
        offer = self.offer(fw)
        return self.m.accept(
            fw, [offer.id], list(ops), scheduler_pb2.Filters(refuse_seconds=0), self.now
        )

    def finish(self, task_id: str) -> None:
        self.m.status_updates(
            self.agent,
            1,
            [update(self.fw.framework_id, self.agent, task_id, TS.TASK_FINISHED)],
            self.now,
        )

    @property
    def total(self) -> str:
        return self.m.agents[self.agent].total.format()


def test_reserve_then_launch_on_the_reservation_in_one_accept() -> None:
    w = World()
    effects = w.accept(
        reserve("cpus(db):2;mem(db):512", team="a"), launch(task("t1", "cpus(db):1"))
    )
    agent = w.m.agents[w.agent]
    assert w.total == "cpus:2;cpus(db):2;mem:3584;mem(db):512;disk:1000"
    assert agent.used == Resources.parse("cpus(db):1")
    (r,) = agent.reservations
    assert (r.role, r.principal, dict(r.labels)) == ("db", "dbp", {"team": "a"})
    assert any(isinstance(e, PersistRegistry) for e in effects)
    (run,) = to_agent(effects, w.agent, "run_tasks")
    assert run.run_tasks.tasks[0].task_id == "t1"


def test_reserved_resources_are_offered_only_to_their_role_with_who_reserved_them() -> None:
    w = World()
    w.accept(reserve("cpus(db):2"))
    mine = w.offer()
    w.m.decline(w.fw, [mine.id], scheduler_pb2.Filters(refuse_seconds=0), w.now)
    w.m.suppress(w.fw, [])
    other = w.subscribe("web", "web")
    theirs = w.offer(other)
    assert Resources.from_proto(mine.resources).get("cpus", "db") == 2
    assert [(r.role, r.principal) for r in mine.reservations] == [("db", "dbp")]
    assert Resources.from_proto(theirs.resources).reserved() == Resources.empty()
    assert not theirs.reservations


def test_reservations_and_volumes_survive_a_master_failover() -> None:
    w = World()
    w.accept(reserve("cpus(db):1;disk(db):200"), create("v1", 150))
    registry = w.m.registry()
    m2 = Master(pb.MasterInfo(id="bbbbbbbb0000", hostname="m2"), MasterConfig(), 100.0)
    m2.recover(registry, 100.0)
    assert m2.agents[w.agent].total.format() == "cpus:3;cpus(db):1;mem:4096;disk:800;disk(db):50"
    msg = register_msg(resources=AGENT, agent_id=w.agent)
    msg.volumes.add(persistence_id="v1", role="db")
    _, effects = m2.agent_register(7, msg, 101.0)
    (volumes,) = to_agent(effects, w.agent, "volumes")
    assert [v.persistence_id for v in volumes.volumes.volumes] == ["v1"]
    assert m2.agents[w.agent].total.format() == "cpus:3;cpus(db):1;mem:4096;disk:800;disk(db):50"


@pytest.mark.parametrize(
    ("ops", "error"),
    [
        ([reserve("cpus(db):8")], r"reserving cpus\(db\):8 needs cpus:8 unreserved"),
        ([reserve("cpus(web):1")], r"must all be reserved for the offer's role 'db'"),
        ([reserve("cpus:1")], r"names no role"),
        ([unreserve("cpus(db):1")], r"not all in the offers"),
        ([create("v1")], r"needs disk\(db\):100 \(disk reserved for 'db'; RESERVE it first\)"),
        ([reserve("disk(db):50"), create("v1")], r"needs disk\(db\):100"),
        ([reserve("disk(db):100"), create("v1", path="../x")], r"must not contain '\.\.'"),
        ([reserve("disk(db):100"), create("v1", path=" data")], r"starts or ends with white"),
        ([reserve("disk(db):100"), create("v1", path="")], r"container_path is empty"),
        ([reserve("disk(db):100"), create("v1", path="/data")], None),
        (
            [
                reserve("disk(db):100"),
                create("v1", path="/data"),
                launch(with_volume(task("t1"), "v1")),
            ],
            r"absolute, which only DOCKER tasks can mount",
        ),
        ([reserve("disk(db):200"), create("v1"), create("v1")], r"a volume with this id exists"),
        # The id names the volume's directory on the agent: volumes/db/.. is every volume.
        ([reserve("disk(db):100"), create("..")], r"'\.' and '\.\.' are not ids"),
        ([reserve("disk(db):100"), create(".")], r"persistence_id is invalid"),
        ([launch(task(".."))], r"task id '\.\.' is invalid"),
        ([launch(with_volume(task("t1"), "nope"))], r"no such persistent volume"),
        ([destroy("nope")], r"no such persistent volume"),
        ([Op(type=Op.TYPE_UNSPECIFIED)], r"type 0 is not supported"),
        ([reserve("cpus(db):1"), launch(task("t1", "cpus(db):2"))], r"asks for cpus\(db\):2"),
    ],
)
def test_refused_operations_change_nothing(ops: list[Op], error: str | None) -> None:
    w = World()
    offer = w.offer()
    before = snapshot(w.m)
    if error is None:
        w.m.accept(w.fw, [offer.id], ops, NO_FILTERS, w.now)
        return
    with pytest.raises(OrbiterError, match=error):
        w.m.accept(w.fw, [offer.id], ops, NO_FILTERS, w.now)
    assert snapshot(w.m) == before
    assert not w.m.agents[w.agent].reservations


def test_unreserve_of_resources_a_task_uses_is_refused_and_of_the_rest_allowed() -> None:
    w = World()
    w.accept(reserve("cpus(db):2"), launch(task("t1", "cpus(db):2")))
    with pytest.raises(OrbiterError, match=r"cpus\(db\):2 is not all in the offers"):
        w.accept(unreserve("cpus(db):2"))
    w.finish("t1")
    w.accept(unreserve("cpus(db):1"))
    assert w.total == "cpus:3;cpus(db):1;mem:4096;disk:1000"
    assert [r.resources.format() for r in w.m.agents[w.agent].reservations] == ["cpus(db):1"]


def test_static_reservations_cannot_be_unreserved() -> None:
    m = Master(pb.MasterInfo(id="aaaaaaaa0000", hostname="m"), MasterConfig(), 0.0)
    m.agent_register(1, register_msg(resources="cpus:1;mem:64;cpus(db):2"), 0.0)
    w = World.__new__(World)
    w.m, w.now = m, 1.0
    w.agent = next(iter(m.agents))
    w.fw = w.subscribe("dbp", "db")
    with pytest.raises(OrbiterError, match=r"static reservations .* cannot be unreserved"):
        w.accept(unreserve("cpus(db):1"))


def test_a_volume_outlives_its_task_and_comes_back_in_the_next_offer() -> None:
    w = World()
    effects = w.accept(
        reserve("cpus(db):1;mem(db):64;disk(db):100"),
        create("v1", 100, "data"),
        launch(with_volume(task("t1", "cpus(db):1;mem(db):64"), "v1")),
    )
    (vols,) = to_agent(effects, w.agent, "volumes")
    (run,) = to_agent(effects, w.agent, "run_tasks")
    sent = run.run_tasks.tasks[0].volumes[0]
    assert (sent.persistence_id, sent.role, sent.size, sent.container_path, sent.principal) == (
        "v1",
        "db",
        100,
        "data",
        "dbp",
    )
    assert [v.persistence_id for v in vols.volumes.volumes] == ["v1"]
    kinds = [e.message.WhichOneof("message") for e in effects if isinstance(e, SendToAgent)]
    assert kinds == ["volumes", "run_tasks"]  # the agent knows the volume before the task
    assert not w.offer().volumes  # in use: not offered
    w.finish("t1")
    offer = w.offer()
    assert [v.persistence_id for v in offer.volumes] == ["v1"]
    effects = w.m.accept(
        w.fw, [offer.id], [launch(with_volume(task("t2"), "v1"))], NO_FILTERS, w.now
    )
    assert to_agent(effects, w.agent, "run_tasks")[0].run_tasks.tasks[0].volumes[0].size == 100


def test_a_volume_is_offered_only_to_its_role() -> None:
    w = World()
    w.accept(reserve("disk(db):100"), create("v1"))
    w.m.suppress(w.fw, [])
    other = w.subscribe("web", "web")
    theirs = w.offer(other)
    assert not theirs.volumes
    w.m.decline(other, [theirs.id], scheduler_pb2.Filters(refuse_seconds=0), w.now)
    w.m.suppress(other, [])
    w.m.revive(w.fw, [])
    assert [v.persistence_id for v in w.offer().volumes] == ["v1"]


def test_destroy_of_a_volume_in_use_is_refused_and_after_its_task_returns_the_disk() -> None:
    w = World()
    w.accept(reserve("disk(db):100"), create("v1"), launch(with_volume(task("t1"), "v1")))
    with pytest.raises(OrbiterError, match=r"in use by task t1"):
        w.accept(destroy("v1"))
    w.finish("t1")
    effects = w.accept(destroy("v1"), unreserve("disk(db):100"))
    (vols,) = to_agent(effects, w.agent, "volumes")
    assert not vols.volumes.volumes  # the agent removes the data
    assert w.total == AGENT.replace(";disk:", ";disk:")
    assert not w.m.agents[w.agent].volumes and not w.m.agents[w.agent].reservations


def test_one_launch_cannot_give_a_volume_to_two_tasks() -> None:
    w = World()
    with pytest.raises(OrbiterError, match=r"already used by a task launched earlier"):
        w.accept(
            reserve("disk(db):100"),
            create("v1"),
            launch(with_volume(task("t1"), "v1"), with_volume(task("t2"), "v1")),
        )


def test_a_task_learned_after_failover_holds_its_volume_again() -> None:
    w = World()
    effects = w.accept(reserve("disk(db):100"), create("v1"), launch(with_volume(task("t1"), "v1")))
    (run,) = to_agent(effects, w.agent, "run_tasks")
    m2 = Master(pb.MasterInfo(id="bbbbbbbb0000", hostname="m2"), MasterConfig(), 100.0)
    m2.recover(w.m.registry(), 100.0)
    msg = register_msg(resources=AGENT, agent_id=w.agent)
    msg.tasks.add(
        framework_id=w.fw.framework_id, task=run.run_tasks.tasks[0], state=TS.TASK_RUNNING
    )
    m2.agent_register(7, msg, 101.0)
    assert m2.agents[w.agent].volume_users == {"v1": (w.fw.framework_id, "t1")}


def test_an_unknown_volume_reported_by_an_agent_is_left_alone_and_named() -> None:
    w = World()
    msg = register_msg(resources=AGENT, agent_id=w.agent)
    msg.volumes.add(persistence_id="stray", role="db")
    _, effects = w.m.agent_register(2, msg, 5.0)
    (vols,) = to_agent(effects, w.agent, "volumes")
    assert not vols.volumes.volumes
    assert any("stray" in e.message for e in w.m.events if e.kind == "volume_unknown")


# ---------------------------------------------------------------- operator


def test_operator_reserve_rescinds_offers_only_when_needed_and_unreserve_gives_back() -> None:
    w = World()
    w.offer()
    effects = w.m.operator_reserve(
        w.agent, Resources.parse("cpus(db):1"), {"by": "ops"}, 5.0, "ops"
    )
    assert not w.m.offers  # the agent's whole offer held the cpus: rescinded
    assert [e for e in effects if isinstance(e, PersistRegistry)]
    (r,) = w.m.agents[w.agent].reservations
    assert (r.principal, dict(r.labels)) == ("ops", {"by": "ops"})
    w.m.operator_unreserve(w.agent, Resources.parse("cpus(db):1"), 6.0, "ops")
    assert w.total == "cpus:4;mem:4096;disk:1000"
    assert [e.action for e in w.m.events if e.kind == "reservation"] == ["reserve", "unreserve"]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda m, a: m.operator_reserve(a, Resources.parse("cpus:1"), {}, 5.0), r"with a role"),
        (
            lambda m, a: m.operator_reserve(a, Resources.parse("cpus(db):5"), {}, 5.0),
            r"cpus:5 is not free",
        ),
        (
            lambda m, a: m.operator_reserve("nope", Resources.parse("cpus(db):1"), {}, 5.0),
            r"no agent 'nope'",
        ),
        (
            lambda m, a: m.operator_unreserve(a, Resources.parse("cpus(db):1"), 5.0),
            r"cpus\(db\):1 is not free",
        ),
        (
            lambda m, a: m.operator_unreserve(a, Resources.parse("cpus(db):3"), 5.0),
            r"not dynamically reserved",
        ),
    ],
)
def test_refused_operator_calls_change_nothing(call, error: str) -> None:
    w = World()
    w.accept(reserve("cpus(db):2"), launch(task("t1", "cpus(db):2")))
    before = snapshot(w.m)
    with pytest.raises(OrbiterError, match=error):
        call(w.m, w.agent)
    assert snapshot(w.m) == before


def test_operator_unreserve_of_used_resources_is_refused() -> None:
    w = World()
    w.accept(reserve("cpus(db):2"), launch(task("t1", "cpus(db):2")))
    with pytest.raises(OrbiterError, match=r"cpus\(db\):2 is not free"):
        w.m.operator_unreserve(w.agent, Resources.parse("cpus(db):2"), 5.0, "ops")


# ---------------------------------------------------------------- ACLs

ACLS = Acls(
    enabled=True,
    rules={
        acl.REGISTER_FRAMEWORK: (Rule(("*",), ("*",)),),
        acl.RESERVE: (Rule(("dbp", "ops"), ("db",)),),
        acl.CREATE_VOLUME: (Rule(("dbp",), ("db",)),),
        acl.UNRESERVE: (Rule(("ops",), ("*",)),),
        acl.DESTROY_VOLUME: (Rule(("ops",), ("*",)),),
    },
)


@pytest.mark.parametrize(
    ("principal", "ops", "error"),
    [
        (
            "intruder",
            [reserve("cpus(db):1")],
            r"'intruder' may not reserve resources for role 'db'",
        ),
        ("dbp", [reserve("disk(db):100"), create("v1")], None),
        ("dbp", [reserve("cpus(db):1"), unreserve("cpus(db):1")], None),  # its own: always
    ],
)
def test_acls_decide_who_reserves_and_creates(
    principal: str, ops: list[Op], error: str | None
) -> None:
    w = World(ACLS, principal=principal)
    if error is None:
        w.accept(*ops)
        return
    with pytest.raises(acl.Forbidden, match=error):
        w.accept(*ops)


def test_acls_keep_others_from_undoing_reservations_and_volumes() -> None:
    w = World(ACLS)
    w.accept(reserve("cpus(db):1;disk(db):100"), create("v1"))
    other = w.subscribe("dbq", "db")
    w.m.frameworks[w.fw.framework_id].status = w.m.frameworks[other.framework_id].status
    w.m.teardown(w.fw, w.now)
    with pytest.raises(
        acl.Forbidden,
        match=r"'dbq' may not unreserve resources reserved by "
        r"principal 'dbp'",
    ):
        w.accept(unreserve("cpus(db):1"), fw=other)
    with pytest.raises(acl.Forbidden, match=r"'dbq' may not destroy persistent volumes created"):
        w.accept(destroy("v1"), fw=other)
    with pytest.raises(acl.Forbidden, match=r"'intruder' may not unreserve"):
        w.m.operator_unreserve(w.agent, Resources.parse("cpus(db):1"), 5.0, "intruder")
    with pytest.raises(acl.Forbidden, match=r"'intruder' may not reserve"):
        w.m.operator_reserve(w.agent, Resources.parse("cpus(db):1"), {}, 5.0, "intruder")
    w.m.operator_unreserve(w.agent, Resources.parse("cpus(db):1"), 5.0, "ops")


def test_a_framework_in_the_default_role_cannot_reserve() -> None:
    w = World(role="*")
    with pytest.raises(OrbiterError, match=r"role '\*' cannot reserve"):
        w.accept(reserve("cpus(db):1"))


def test_statuses_still_flow_for_tasks_on_reserved_resources() -> None:
    w = World()
    w.accept(reserve("cpus(db):1"), launch(task("t1", "cpus(db):1")))
    effects = w.m.status_updates(
        w.agent, 1, [update(w.fw.framework_id, w.agent, "t1", TS.TASK_FINISHED)], w.now
    )
    assert [s.state for s in statuses_for(effects, w.fw.framework_id)] == [TS.TASK_FINISHED]
    assert w.m.agents[w.agent].used == Resources.empty()
    _ = agent_pb2


# ---------------------------------------------------------------- properties

STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("reserve"), st.sampled_from(["cpus(db):1", "disk(db):100", "mem(db):64"])
        ),
        st.tuples(st.just("unreserve"), st.sampled_from(["cpus(db):1", "disk(db):100"])),
        st.tuples(st.just("create"), st.sampled_from(["v1", "v2"])),
        st.tuples(st.just("destroy"), st.sampled_from(["v1", "v2"])),
        st.tuples(st.just("launch"), st.sampled_from(["v1", "v2", ""])),
        st.tuples(st.just("finish"), st.just("")),
        st.tuples(st.just("operator_reserve"), st.sampled_from(["cpus(db):1", "disk(db):50"])),
        st.tuples(st.just("operator_unreserve"), st.sampled_from(["cpus(db):1", "disk(db):50"])),
        st.tuples(st.just("failover"), st.just("")),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=STEPS)
def test_no_sequence_of_operations_loses_or_invents_resources(steps: list[tuple[str, str]]) -> None:
    """Whatever is reserved, unreserved, put in volumes, used and given back, and across
    failovers: the agent's total plus its volumes is what it advertises, per resource
    name, and what tasks use and offers hold always fits in the total."""
    w = World()
    static = Resources.parse(AGENT).quantities()
    launched = 0
    for kind, arg in steps:
        try:
            if kind == "reserve":
                w.accept(reserve(arg))
            elif kind == "unreserve":
                w.accept(unreserve(arg))
            elif kind == "create":  # on disk reserved earlier, or in the same call
                w.accept(create(arg)) if launched % 2 else w.accept(
                    reserve("disk(db):100"), create(arg)
                )
            elif kind == "destroy":
                w.accept(destroy(arg))
            elif kind == "launch":
                launched += 1
                t = task(f"t{launched}", "cpus:0.5;mem:32")
                w.accept(launch(with_volume(t, arg) if arg else t))
            elif kind == "finish":
                for key in list(w.m.agents[w.agent].tasks):
                    w.finish(key[1])
            elif kind == "operator_reserve":
                w.m.operator_reserve(w.agent, Resources.parse(arg), {}, w.now, "ops")
            elif kind == "operator_unreserve":
                w.m.operator_unreserve(w.agent, Resources.parse(arg), w.now, "ops")
            elif kind == "failover":
                m2 = Master(pb.MasterInfo(id="bbbbbbbb0000", hostname="m2"), MasterConfig(), w.now)
                m2.recover(w.m.registry(), w.now)
                agent = w.m.agents[w.agent]
                msg = register_msg(resources=AGENT, agent_id=w.agent)
                for t in agent.tasks.values():
                    msg.tasks.add(framework_id=t.framework_id, task=t.info, state=t.state)
                m2.agent_register(9, msg, w.now)
                info = w.m.frameworks[w.fw.framework_id].info
                _, stream, _ = m2.subscribe(info, w.now, "dbp")
                w.fw = scheduler_pb2.CallHeader(framework_id=info.id, stream_id=stream)
                w.m = m2
        except OrbiterError:
            pass
        agent = w.m.agents[w.agent]
        volume_disk = sum(v.size for v in agent.volumes.values())
        have = agent.total.quantities()
        have["disk"] = have.get("disk", 0.0) + volume_disk
        assert {k: round(v, 3) for k, v in have.items()} == static
        assert agent.total.contains(agent.used + agent.offered)
        used_by = set(agent.volume_users)
        assert used_by <= set(agent.volumes)
        assert all(key in agent.tasks for key in agent.volume_users.values())
