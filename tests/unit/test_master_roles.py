"""Roles, weights and quota through the master's state machine: set by
operators, kept in the registry, checked as a whole (a refusal changes
nothing), ACL-checked, and used by the allocator."""

from __future__ import annotations

import pytest

from orbiter.errors import InvalidCall, OrbiterError
from orbiter.master.effects import PersistRegistry, SendToFramework
from orbiter.master.quota import InvalidQuota, Quota
from orbiter.master.state import Master, MasterConfig
from orbiter.proto import agent_pb2, messages_pb2, scheduler_pb2
from orbiter.resources import Resources
from orbiter.security import acl

pb = messages_pb2


def master(acls: acl.Acls | None = None) -> Master:
    config = MasterConfig(acls=acls) if acls is not None else MasterConfig()
    return Master(pb.MasterInfo(id="aaaaaaaa0000", hostname="m"), config, 0.0)


def add_agent(m: Master, n: int, resources: str = "cpus:4;mem:4096") -> None:
    info = pb.AgentInfo(hostname=f"h{n}", http_address=f"10.0.0.{n}:5051")
    info.resources.extend(Resources.parse(resources).to_proto())
    m.agent_register(n, agent_pb2.AgentMessage.Register(info=info), 0.0)


def subscribe(m: Master, name: str, *roles: str) -> str:
    info = pb.FrameworkInfo(name=name, failover_timeout=60)
    info.roles.extend(roles)
    fw_id, _, _ = m.subscribe(info, 0.0)
    return fw_id


def offered(effects) -> list[tuple[str, str, str]]:
    out = []
    for e in effects:
        if isinstance(e, SendToFramework) and e.event.type == scheduler_pb2.Event.OFFERS:
            for o in e.event.offers.offers:
                out.append((o.framework_id, o.role, Resources.from_proto(o.resources).format()))
    return sorted(out)


def test_weights_and_quotas_survive_a_restart_through_the_registry():
    m = master()
    add_agent(m, 1)
    effects = m.update_weights({"eng": 2.5, "ops": 1}, 1.0)
    assert isinstance(effects[-1], PersistRegistry)
    m.update_quotas({"eng/web": Quota({"cpus": 1}, {"cpus": 2, "mem": 1024})}, 1.0)
    registry = m.registry()
    again = master()
    again.recover(registry, 2.0)
    assert again.weights == {"eng": 2.5}  # weight 1 is the default, not kept
    assert again.quotas == {"eng/web": Quota({"cpus": 1.0}, {"cpus": 2.0, "mem": 1024.0})}


def test_an_empty_quota_removes_the_roles_quota():
    m = master()
    add_agent(m, 1)
    m.update_quotas({"eng": Quota({"cpus": 1})}, 1.0)
    m.update_quotas({"eng": Quota()}, 2.0)
    assert m.quotas == {}


@pytest.mark.parametrize(
    ("quotas", "error"),
    [
        ({"eng": Quota({"cpus": 3}, {"cpus": 2})}, "above its limit"),
        ({"eng/web": Quota({"cpus": 3})}, "a child's guarantee must fit its parent's"),
        ({"eng": Quota({"cpu": 1})}, "did you mean 'cpus'"),
        ({"eng": Quota({"cpus": 100})}, "more than the cluster has"),
        ({"*": Quota({"cpus": 1})}, "default role"),
        ({"eng//x": Quota({"cpus": 1})}, "'//'"),
    ],
)
def test_a_bad_quota_is_refused_and_changes_nothing(quotas, error):
    m = master()
    add_agent(m, 1)
    m.update_quotas({"eng": Quota({"cpus": 2}, {"cpus": 4})}, 1.0)
    before, version = dict(m.quotas), m.registry_version
    with pytest.raises(InvalidQuota, match=error):
        m.update_quotas({**quotas, "ops": Quota({"cpus": 1})}, 2.0)
    assert m.quotas == before and m.registry_version == version


def test_force_holds_a_guarantee_larger_than_the_cluster():
    m = master()
    add_agent(m, 1)
    m.update_quotas({"eng": Quota({"cpus": 100})}, 1.0, force=True)
    assert m.quotas["eng"].guarantees == {"cpus": 100}


def test_a_bad_weight_is_refused_and_changes_nothing():
    m = master()
    m.update_weights({"eng": 2}, 1.0)
    with pytest.raises(InvalidQuota, match="must be > 0"):
        m.update_weights({"ops": 3, "eng": 0}, 2.0)
    assert m.weights == {"eng": 2.0}


def test_acls_decide_who_may_set_weights_and_quotas_of_which_roles():
    rules = {
        acl.UPDATE_WEIGHTS: (acl.Rule(("ops",), ("*",)),),
        acl.UPDATE_QUOTAS: (acl.Rule(("lead",), ("eng", "eng/*")),),
    }
    m = master(acl.Acls(enabled=True, rules=rules))
    add_agent(m, 1)
    m.update_weights({"eng": 2}, 1.0, principal="ops")
    m.update_quotas({"eng/web": Quota(limits={"cpus": 1})}, 1.0, principal="lead")
    with pytest.raises(acl.Forbidden, match="'lead' may not set the weight of role 'eng'"):
        m.update_weights({"eng": 3}, 1.0, principal="lead")
    with pytest.raises(acl.Forbidden, match="update_quotas"):
        m.update_quotas({"ops": Quota(limits={"cpus": 1})}, 1.0, principal="lead")
    assert m.weights == {"eng": 2.0} and set(m.quotas) == {"eng/web"}


def test_frameworks_may_subscribe_in_subroles_with_valid_names():
    m = master()
    subscribe(m, "web", "eng/web")
    with pytest.raises(InvalidCall, match="'//'"):
        subscribe(m, "bad", "eng//web")


def test_the_master_offers_within_a_limit_and_holds_a_guarantees_headroom():
    m = master()
    add_agent(m, 1)
    add_agent(m, 2)
    web = subscribe(m, "web", "eng/web")
    m.update_quotas({"eng": Quota(limits={"cpus": 3}), "ops": Quota({"cpus": 4})}, 1.0)
    assert offered(m.allocate(2.0)) == [
        (web, "eng/web", "cpus:3;mem:4096"),
        (web, "eng/web", "mem:4096"),
    ]


def test_a_weight_gives_a_role_more_agents():
    m = master()
    for n in range(1, 7):
        add_agent(m, n)
    a = subscribe(m, "a", "a")
    subscribe(m, "b", "b")
    m.update_weights({"a": 2}, 1.0)
    got = [fw for fw, _, _ in offered(m.allocate(2.0))]
    assert got.count(a) == 4


def test_the_role_view_lists_roles_with_parents_weights_quota_and_allocation():
    m = master()
    add_agent(m, 1)
    subscribe(m, "web", "eng/web")
    m.update_weights({"eng": 2}, 1.0)
    m.update_quotas({"ops": Quota({"cpus": 1})}, 1.0)
    m.allocate(2.0)
    view = m.role_view()
    assert sorted(view) == ["eng", "eng/web", "ops"]
    assert view["eng"]["weight"] == 2.0 and view["eng"]["allocated"] == {"cpus": 3.0, "mem": 4096.0}
    assert view["ops"]["guarantees"] == {"cpus": 1.0}


def test_no_weights_or_quotas_is_an_error():
    m = master()
    with pytest.raises(OrbiterError, match="no weights"):
        m.update_weights({}, 1.0)
    with pytest.raises(OrbiterError, match="no quotas"):
        m.update_quotas({}, 1.0)
