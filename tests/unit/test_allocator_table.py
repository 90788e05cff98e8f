"""The allocator's depth as a table: role trees, weights, quota guarantees and
limits, suppression and filters. Each case is a small cluster and the offers
`allocate` makes for it, written `agent fw role resources`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbiter import roles
from orbiter.master.allocator import AgentView, FrameworkView, OfferFilter, RoleSorter, allocate
from orbiter.master.quota import Quota
from orbiter.resources import Resources

R = Resources.parse
NOW = 100.0


@dataclass
class Case:
    agents: dict[str, str]
    frameworks: list[FrameworkView]
    offers: list[str]
    weights: dict[str, float] = field(default_factory=dict)
    quotas: dict[str, Quota] = field(default_factory=dict)
    # Added to the agents' total for shares (what is in use elsewhere).
    extra: str = ""


def fw(fw_id, *roles_, held=None, suppressed=(), filters=(), connected=True):
    return FrameworkView(
        fw_id, tuple(roles_) or ("*",), held or {}, frozenset(suppressed), tuple(filters), connected
    )


def q(guarantees=None, limits=None):
    return Quota(dict(guarantees or {}), dict(limits or {}))


def run(case: Case) -> list[str]:
    agents = [AgentView(a, R(r)) for a, r in case.agents.items()]
    total: Counter[str] = Counter()
    for a in agents:
        total.update(a.available.quantities())
    if case.extra:
        total.update(R(case.extra).quantities())
    plans = allocate(agents, case.frameworks, dict(total), NOW, case.weights, case.quotas)
    return [f"{p.agent_id} {p.framework_id} {p.role} {p.resources.format()}" for p in plans]


S4 = "cpus:4;mem:4096"
CASES = {
    # ------------------------------------------------------------ role tree
    "a subrole competes inside its parent, the parent with its siblings": Case(
        {"s1": S4, "s2": S4, "s3": S4},
        [fw("w", "eng/web"), fw("d", "eng/db"), fw("o", "ops")],
        ["s1 d eng/db cpus:4;mem:4096", "s2 o ops cpus:4;mem:4096",
         "s3 w eng/web cpus:4;mem:4096"],  # ties go by name, level by level
    ),
    "a busy parent's idle child waits for an idle top-level role": Case(
        {"s1": S4},
        [fw("w", "eng/web"), fw("d", "eng/db", held={"eng/db": {"cpus": 8}}), fw("o", "ops",
         held={"ops": {"cpus": 2}})],
        ["s1 o ops cpus:4;mem:4096"], extra="cpus:10;mem:10000",
    ),
    "a parent with frameworks of its own is a leaf beside its children": Case(
        {"s1": S4, "s2": S4},
        [fw("e", "eng"), fw("w", "eng/web", held={"eng/web": {"cpus": 1}})],
        ["s1 e eng cpus:4;mem:4096", "s2 w eng/web cpus:4;mem:4096"], extra="cpus:10",
    ),
    "what a suppressed or disconnected framework holds still counts for its role": Case(
        {"s1": S4},
        [fw("a1", "a"), fw("a2", "a", held={"a": {"cpus": 5}}, suppressed={"a"}),
         fw("b1", "b", held={"b": {"cpus": 1}}), fw("b2", "b", held={"b": {"cpus": 1}},
         connected=False)],
        ["s1 b1 b cpus:4;mem:4096"], extra="cpus:10;mem:10000",
    ),
    "a parent's reservation goes to its subroles, not to siblings": Case(
        {"s1": "cpus(eng):2;mem(eng):512"},
        [fw("o", "ops"), fw("w", "eng/web")],
        ["s1 w eng/web cpus(eng):2;mem(eng):512"],
    ),
    "a child's reservation does not go to its parent": Case(
        {"s1": "cpus(eng/web):2;mem(eng/web):512"},
        [fw("e", "eng")],
        [],
    ),
    # ------------------------------------------------------------ weights
    "a weight divides a role's share": Case(
        {"s1": S4},
        [fw("a", "a", held={"a": {"cpus": 3}}), fw("b", "b", held={"b": {"cpus": 2}})],
        ["s1 a a cpus:4;mem:4096"], weights={"a": 3.0}, extra="cpus:10;mem:10000",
    ),
    "a parent's weight stands for its whole subtree": Case(
        {"s1": S4},
        [fw("w", "eng/web", held={"eng/web": {"cpus": 3}}), fw("o", "ops", held={"ops":
         {"cpus": 2}})],
        ["s1 w eng/web cpus:4;mem:4096"], weights={"eng": 2.0}, extra="cpus:10;mem:10000",
    ),
    "a child's weight orders it among its siblings only": Case(
        {"s1": S4},
        [fw("w", "eng/web", held={"eng/web": {"cpus": 3}}), fw("o", "ops", held={"ops":
         {"cpus": 2}})],
        ["s1 o ops cpus:4;mem:4096"], weights={"eng/web": 10.0}, extra="cpus:10;mem:10000",
    ),
    "weights share agents out 2:1": Case(
        {f"s{i}": S4 for i in range(1, 7)},
        [fw("a", "a"), fw("b", "b")],
        ["s1 a a cpus:4;mem:4096", "s2 b b cpus:4;mem:4096", "s3 a a cpus:4;mem:4096",
         "s4 a a cpus:4;mem:4096", "s5 b b cpus:4;mem:4096", "s6 a a cpus:4;mem:4096"],
        weights={"a": 2.0},
    ),
    # ------------------------------------------------------------ guarantees
    "a guarantee is offered first, cut to what is missing": Case(
        {"s1": S4},
        [fw("a", "a", held={"a": {"cpus": 5}}), fw("b", "b")],
        ["s1 a a cpus:1;mem:1024", "s1 b b cpus:3;mem:3072"],
        quotas={"a": q({"cpus": 6, "mem": 1024})}, extra="cpus:10;mem:10000",
    ),
    "a guarantee's headroom is held back from other roles": Case(
        {"s1": S4, "s2": S4},
        [fw("b", "b")],
        ["s1 b b cpus:2;mem:4096", "s2 b b mem:4096"],  # mem is not guaranteed
        quotas={"a": q({"cpus": 6})},
    ),
    "headroom is held back even with no framework in the role": Case(
        {"s1": S4},
        [fw("b", "b")],
        [],
        quotas={"a": q({"cpus": 4, "mem": 4096})},
    ),
    "a met guarantee holds nothing back": Case(
        {"s1": S4},
        [fw("a", "a", held={"a": {"cpus": 2}}, suppressed={"a"}), fw("b", "b")],
        ["s1 b b cpus:4;mem:4096"],
        quotas={"a": q({"cpus": 2})}, extra="cpus:2",
    ),
    "a reservation counts toward the guarantee": Case(
        {"s1": "cpus(a):2;mem(a):512", "s2": S4},
        [fw("b", "b")],
        ["s2 b b cpus:4;mem:4096"],
        quotas={"a": q({"cpus": 2})},
    ),
    "a child's use counts toward its parent's guarantee": Case(
        {"s1": S4},
        [fw("w", "eng/web", held={"eng/web": {"cpus": 3}}), fw("o", "ops")],
        ["s1 w eng/web cpus:1;mem:4096", "s1 o ops cpus:3"],
        quotas={"eng": q({"cpus": 4})}, extra="cpus:3",
    ),
    "a child's guarantee is served before its parent's other children": Case(
        {"s1": S4},
        [fw("w", "eng/web", held={"eng/web": {"cpus": 1}}), fw("d", "eng/db")],
        ["s1 w eng/web cpus:2;mem:4096", "s1 d eng/db cpus:2"],
        quotas={"eng": q({"cpus": 3}), "eng/web": q({"cpus": 3})}, extra="cpus:1",
    ),
    "a suppressed role's guarantee is still held back": Case(
        {"s1": S4},
        [fw("a", "a", suppressed={"a"}), fw("b", "b")],
        ["s1 b b cpus:1;mem:4096"],
        quotas={"a": q({"cpus": 3})},
    ),
    "guarantees are met in DRF order while the cluster lasts": Case(
        {"s1": S4},
        [fw("a", "a", held={"a": {"cpus": 1}}), fw("b", "b")],
        ["s1 b b cpus:3;mem:4096", "s1 a a cpus:1"],
        quotas={"a": q({"cpus": 3}), "b": q({"cpus": 3})}, extra="cpus:1",
    ),
    # ------------------------------------------------------------ limits
    "a limit caps the offer": Case(
        {"s1": S4},
        [fw("a", "a")],
        ["s1 a a cpus:1.5;mem:4096"],
        quotas={"a": q(limits={"cpus": 1.5})},
    ),
    "a limit counts what the role already holds": Case(
        {"s1": S4, "s2": S4},
        [fw("a", "a", held={"a": {"cpus": 2}})],
        ["s1 a a cpus:1;mem:4096", "s2 a a mem:4096"],
        quotas={"a": q(limits={"cpus": 3})}, extra="cpus:2",
    ),
    "a role at its limit gets only what the limit does not name": Case(
        {"s1": S4},
        [fw("a", "a", held={"a": {"cpus": 3}}), fw("b", "b", held={"b": {"cpus": 5}})],
        ["s1 a a mem:4096", "s1 b b cpus:4"],
        quotas={"a": q(limits={"cpus": 3})}, extra="cpus:8",
    ),
    "a zero limit keeps the role out, others get the agent": Case(
        {"s1": S4},
        [fw("a", "a"), fw("b", "b", held={"b": {"cpus": 1}})],
        ["s1 b b cpus:4;mem:4096"],
        quotas={"a": q(limits={"cpus": 0, "mem": 0})}, extra="cpus:10;mem:10000",
    ),
    "a parent's limit caps its children together": Case(
        {"s1": S4, "s2": S4},
        [fw("w", "eng/web"), fw("d", "eng/db")],
        ["s1 d eng/db cpus:3;mem:4096", "s2 w eng/web mem:4096"],
        quotas={"eng": q(limits={"cpus": 3})},
    ),
    "a limit does not cap the role's reservation": Case(
        {"s1": "cpus:2;cpus(a):2;mem(a):512"},
        [fw("a", "a")],
        ["s1 a a cpus(a):2;mem(a):512"],
        quotas={"a": q(limits={"cpus": 2})},
    ),
    "guarantee and limit together: first the guarantee, then up to the limit": Case(
        {"s1": S4, "s2": S4},
        [fw("a", "a"), fw("b", "b")],
        ["s1 a a cpus:2;mem:4096", "s1 b b cpus:2", "s2 b b cpus:4;mem:4096"],
        quotas={"a": q({"cpus": 2}, {"cpus": 2})},
    ),
    # ------------------------------------------------------------ suppression, filters
    "a suppressed role is offered nothing, its framework's other role is": Case(
        {"s1": S4},
        [fw("a", "ra", "rb", suppressed={"ra"})],
        ["s1 a rb cpus:4;mem:4096"],
    ),
    "a role whose frameworks are all suppressed leaves agents to others": Case(
        {"s1": S4},
        [fw("a", "a", suppressed={"a"}), fw("b", "b", held={"b": {"cpus": 9}})],
        ["s1 b b cpus:4;mem:4096"], extra="cpus:10",
    ),
    "a filter passes the agent on to the next framework in the role": Case(
        {"s1": S4},
        [fw("a1", "a", filters=[OfferFilter("s1", R(S4), NOW + 5)]),
         fw("a2", "a", held={"a": {"cpus": 1}})],
        ["s1 a2 a cpus:4;mem:4096"], extra="cpus:10",
    ),
    "a filter for more than the capped offer still filters it": Case(
        {"s1": S4},
        [fw("a", "a", filters=[OfferFilter("s1", R(S4), NOW + 5)])],
        [],
        quotas={"a": q(limits={"cpus": 1})},
    ),
    "an expired filter filters nothing": Case(
        {"s1": S4},
        [fw("a", "a", filters=[OfferFilter("s1", R(S4), NOW)])],
        ["s1 a a cpus:4;mem:4096"],
    ),
    "a filter on the guarantee's cut offer passes it to the role's next framework": Case(
        {"s1": S4},
        [fw("a1", "a", filters=[OfferFilter("s1", R("cpus:2;mem:4096"), NOW + 5)]),
         fw("a2", "a", held={"a": {"cpus": 0.5}})],
        ["s1 a2 a cpus:1.5;mem:4096"],
        quotas={"a": q({"cpus": 2}, {"cpus": 2})}, extra="cpus:1",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_allocation_table(case: Case) -> None:
    assert run(case) == case.offers


# ------------------------------------------------------------ role names


@pytest.mark.parametrize(
    ("role", "ok"),
    [
        ("eng", True), ("eng/web", True), ("a.b-c_d/e", True), ("*", True),
        ("", False), ("/eng", False), ("eng/", False), ("eng//web", False), ("..", False),
        ("eng/../x", False), ("eng/.", False), ("-eng", False), ("eng/-web", False),
        ("eng/*", False), ("e ng", False), ("x" * 257, False),
    ],
)
def test_role_names_follow_mesos_rules(role: str, ok: bool) -> None:
    assert (roles.problem(role) is None) is ok


def test_role_lineage() -> None:
    assert roles.ancestors("a/b/c") == ["a", "a/b"]
    assert roles.lineage("a") == ["a"]
    assert roles.parent("a/b") == "a" and roles.parent("a") is None
    assert roles.is_within("a/b", "a") and not roles.is_within("ab", "a")


def test_role_sorter_walks_levels_depth_first() -> None:
    total = {"cpus": 10.0}
    held = {"a/x": {"cpus": 1.0}, "a/y": {"cpus": 2.0}, "b": {"cpus": 4.0}, "c/z": {"cpus": 0.5}}
    sorter = RoleSorter(total, {}, ["a/x", "a/y", "b", "c/z"], held)
    assert list(sorter.ordered()) == ["c/z", "a/x", "a/y", "b"]
    sorter.allocate("c/z", {"cpus": 5.0})
    assert list(sorter.ordered()) == ["a/x", "a/y", "b", "c/z"]


# ------------------------------------------------------------ properties


@st.composite
def quota_clusters(draw):
    names = ["a", "a/x", "a/y", "b"]
    agents = [
        AgentView(f"s{i}", R(draw(st.sampled_from([S4, "cpus:1;mem:512", "cpus:2;cpus(a):1"]))))
        for i in range(draw(st.integers(1, 4)))
    ]
    frameworks = [
        fw(f"f{i}", draw(st.sampled_from(names)))
        for i in range(draw(st.integers(1, 4)))
    ]
    quotas = {}
    for role in draw(st.sets(st.sampled_from(names), max_size=3)):
        limit = draw(st.sampled_from([None, 0.5, 2, 5]))
        quotas[role] = q(limits={} if limit is None else {"cpus": limit})
    return agents, frameworks, quotas


@settings(max_examples=150, deadline=None)
@given(quota_clusters())
def test_no_role_is_offered_beyond_its_or_an_ancestors_limit(cluster) -> None:
    agents, frameworks, quotas = cluster
    total: Counter[str] = Counter()
    for a in agents:
        total.update(a.available.quantities())
    plans = allocate(agents, frameworks, dict(total), NOW, None, quotas)
    offered: Counter[str] = Counter()
    for p in plans:
        for node in roles.lineage(p.role):
            offered[node] += p.resources.unreserved().scalar("cpus")
    for role, quota in quotas.items():
        assert offered[role] <= quota.limits.get("cpus", float("inf")) + 1e-9


@st.composite
def guarantee_clusters(draw):
    agents = [
        AgentView(f"s{i}", R(draw(st.sampled_from([S4, "cpus:1;mem:512", "cpus:0.5;mem:64"]))))
        for i in range(draw(st.integers(1, 5)))
    ]
    frameworks = [
        fw(f"f{i}", draw(st.sampled_from(["a", "a/x", "b", "c"])),
           suppressed=draw(st.sampled_from([(), ("a",), ("a/x",)])))
        for i in range(draw(st.integers(1, 4)))
    ]  # fmt: skip
    guarantee = draw(st.sampled_from([0.5, 2, 6, 40]))
    return agents, frameworks, {"a": q({"cpus": guarantee})}


@settings(max_examples=150, deadline=None)
@given(guarantee_clusters())
def test_other_roles_never_eat_into_an_unmet_guarantees_headroom(cluster) -> None:
    agents, frameworks, quotas = cluster
    total: Counter[str] = Counter()
    for a in agents:
        total.update(a.available.quantities())
    plans = allocate(agents, frameworks, dict(total), NOW, None, quotas)
    others = sum(p.resources.scalar("cpus") for p in plans if not roles.is_within(p.role, "a"))
    headroom = min(quotas["a"].guarantees["cpus"], total["cpus"])
    assert others <= total["cpus"] - headroom + 1e-9
