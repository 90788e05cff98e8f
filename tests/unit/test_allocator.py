"""The allocator as a specification: who gets which agent's resources, and why.

`allocate` is a pure function from agents (what each has available), frameworks
(roles, what they hold, filters, suppression) and the cluster total to a list of
offers. The DRF sorter that orders roles and frameworks is tested on its own.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbiter.master.allocator import (
    AgentView,
    DRFSorter,
    FrameworkView,
    OfferFilter,
    OfferPlan,
    allocate,
)
from orbiter.master.allocator.allocator import MIN_CPUS, MIN_MEM, allocatable
from orbiter.resources import Resources

R = Resources.parse
NOW = 100.0


def agent(agent_id: str, resources: str = "cpus:4;mem:4096") -> AgentView:
    return AgentView(agent_id, R(resources))


def fw(
    fw_id: str,
    roles: tuple[str, ...] = ("*",),
    held: dict[str, dict[str, float]] | None = None,
    suppressed: frozenset[str] = frozenset(),
    filters: tuple[OfferFilter, ...] = (),
) -> FrameworkView:
    return FrameworkView(fw_id, roles, held or {}, suppressed, filters)


def total_of(*agents: AgentView, extra: str = "") -> dict[str, float]:
    out: Counter[str] = Counter()
    for a in agents:
        out.update(a.available.quantities())
    if extra:
        out.update(R(extra).quantities())
    return dict(out)


def owners(plans: list[OfferPlan]) -> dict[str, str]:
    """agent id -> framework id, for plans of one role per agent."""
    return {p.agent_id: p.framework_id for p in plans}


# ================================================================ DRF sorter


@pytest.mark.parametrize(
    ("held", "weight", "share"),
    [
        ({}, 1.0, 0.0),
        ({"cpus": 2}, 1.0, 0.2),
        ({"cpus": 2, "mem": 500}, 1.0, 0.5),  # the dominant resource is mem
        ({"cpus": 5, "mem": 100}, 1.0, 0.5),  # the dominant resource is cpus
        ({"cpus": 4}, 2.0, 0.2),  # a weight divides the share
        ({"gpus": 1}, 1.0, 0.0),  # a resource the cluster does not have counts nothing
        ({"disk": 5}, 1.0, 0.0),  # ... nor one with zero total
    ],
)
def test_dominant_share_is_the_largest_fraction_held_divided_by_weight(held, weight, share):
    sorter = DRFSorter({"cpus": 10, "mem": 1000, "disk": 0})
    sorter.add("a", weight)
    sorter.allocate("a", held)
    assert sorter.share("a") == pytest.approx(share)


def test_sorter_orders_lowest_share_first_and_breaks_ties_by_name():
    sorter = DRFSorter({"cpus": 10, "mem": 1000})
    for name, held in [("c", {"cpus": 1}), ("b", {"mem": 500}), ("a", {"cpus": 1}), ("d", {})]:
        sorter.add(name)
        sorter.allocate(name, held)
    assert sorter.sort() == ["d", "a", "c", "b"]
    assert sorter.sort(["b", "c"]) == ["c", "b"]


def test_allocations_accumulate():
    sorter = DRFSorter({"cpus": 10})
    sorter.add("a")
    sorter.allocate("a", {"cpus": 1})
    sorter.allocate("a", {"cpus": 2})
    assert sorter.share("a") == pytest.approx(0.3)


@pytest.mark.parametrize("weight", [0.0, -1.0])
def test_sorter_refuses_a_non_positive_weight(weight):
    with pytest.raises(ValueError, match="positive"):
        DRFSorter({"cpus": 1}).add("a", weight)


# ================================================================ fairness


@pytest.mark.parametrize(
    ("held_a", "held_b", "winner"),
    [
        ({"cpus": 2}, {"cpus": 1}, "b"),
        ({"cpus": 1}, {"cpus": 2}, "a"),
        ({"cpus": 1}, {"mem": 3000}, "a"),  # b's dominant share is memory: 0.3 > 0.1
        ({"mem": 2000}, {"cpus": 1}, "b"),  # a holds 0.2 of the memory, b 0.1 of the cpus
        ({}, {}, "a"),  # a tie goes to the first by id
        ({"cpus": 1}, {"cpus": 1}, "a"),
    ],
)
def test_the_framework_with_the_lower_dominant_share_gets_the_next_agent(held_a, held_b, winner):
    a1 = agent("s1", "cpus:4;mem:4096")
    total = total_of(a1, extra="cpus:6;mem:5904")  # cpus 10, mem 10000
    plans = allocate([a1], [fw("a", held={"*": held_a}), fw("b", held={"*": held_b})], total, NOW)
    assert owners(plans) == {"s1": winner}


def test_shares_are_updated_after_each_offer_so_agents_alternate():
    agents = [agent(f"s{i}") for i in range(1, 7)]
    plans = allocate(agents, [fw("a"), fw("b"), fw("c")], total_of(*agents), NOW)
    assert [p.framework_id for p in plans] == ["a", "b", "c", "a", "b", "c"]


def test_a_framework_far_behind_gets_several_agents_in_a_row():
    agents = [agent(f"s{i}", "cpus:1;mem:1024") for i in range(1, 5)]
    total = total_of(*agents, extra="cpus:6;mem:6000")  # cpus 10, mem ~10000
    plans = allocate(agents, [fw("a", held={"*": {"cpus": 4}}), fw("b")], total, NOW)
    # b starts with nothing; after three agents it holds 0.3 of the cpus, still below a's 0.4
    assert [p.framework_id for p in plans] == ["b", "b", "b", "b"]


@pytest.mark.parametrize(
    ("weights", "winner"),
    [
        (None, "b"),  # unweighted: a holds 0.3, b holds 0.2
        ({"ra": 3.0}, "a"),  # a's share is 0.3 / 3 = 0.1
        ({"ra": 1.0, "rb": 0.5}, "a"),  # b's share is 0.2 / 0.5 = 0.4
        ({"rb": 2.0}, "b"),  # b's share is 0.1
    ],
)
def test_role_weights_scale_the_shares(weights, winner):
    a1 = agent("s1", "cpus:1;mem:100")
    total = {"cpus": 10.0, "mem": 1000.0}
    frameworks = [
        fw("a", roles=("ra",), held={"ra": {"cpus": 3}}),
        fw("b", roles=("rb",), held={"rb": {"cpus": 2}}),
    ]
    plans = allocate([a1], frameworks, total, NOW, weights)
    assert owners(plans) == {"s1": winner}
    assert plans[0].role == {"a": "ra", "b": "rb"}[winner]


def test_roles_are_sorted_before_frameworks_inside_them():
    """Hierarchical DRF: a busy role's lightest framework waits for an idle role."""
    a1 = agent("s1")
    frameworks = [
        fw("a1", roles=("ra",), held={}),
        fw("a2", roles=("ra",), held={"ra": {"cpus": 5}}),
        fw("b1", roles=("rb",), held={"rb": {"cpus": 1}}),
    ]
    plans = allocate([a1], frameworks, {"cpus": 10.0, "mem": 10000.0}, NOW)
    assert owners(plans) == {"s1": "b1"}


# ================================================================ reservations


def test_resources_reserved_for_a_role_go_only_to_that_role():
    a1 = agent("s1", "cpus(db):2;mem(db):1024")
    plans = allocate([a1], [fw("web", roles=("web",))], total_of(a1), NOW)
    assert plans == []
    plans = allocate([a1], [fw("web", roles=("web",)), fw("pg", roles=("db",))], total_of(a1), NOW)
    assert [(p.framework_id, p.role, p.resources) for p in plans] == [
        ("pg", "db", R("cpus(db):2;mem(db):1024"))
    ]


def test_a_role_is_offered_its_reservation_together_with_unreserved_resources():
    a1 = agent("s1", "cpus:1;mem:512;cpus(db):2;mem(db):1024")
    plans = allocate([a1], [fw("pg", roles=("db",))], total_of(a1), NOW)
    assert [p.resources for p in plans] == [a1.available]


def test_another_role_gets_the_unreserved_part_and_the_reserved_part_stays():
    a1 = agent("s1", "cpus:1;mem:512;cpus(db):2;mem(db):1024")
    plans = allocate([a1], [fw("web", roles=("web",))], total_of(a1), NOW)
    assert [(p.role, p.resources) for p in plans] == [("web", R("cpus:1;mem:512"))]


def test_each_role_gets_what_is_left_for_it_on_the_same_agent():
    a1 = agent("s1", "cpus:1;mem:512;cpus(db):2;mem(db):1024")
    web = fw("web", roles=("web",), held={"web": {"cpus": 5}})  # web is served second
    plans = allocate([a1], [web, fw("pg", roles=("db",))], {"cpus": 10.0, "mem": 10000.0}, NOW)
    assert [(p.framework_id, p.resources) for p in plans] == [
        ("pg", R("cpus:1;mem:512;cpus(db):2;mem(db):1024"))
    ]
    unreserved_first = fw("web", roles=("web",))
    pg = fw("pg", roles=("db",), held={"db": {"cpus": 5}})
    plans = allocate([a1], [unreserved_first, pg], {"cpus": 10.0, "mem": 10000.0}, NOW)
    assert [(p.framework_id, p.resources) for p in plans] == [
        ("web", R("cpus:1;mem:512")),
        ("pg", R("cpus(db):2;mem(db):1024")),
    ]


def test_default_role_framework_gets_only_unreserved_resources():
    a1 = agent("s1", "cpus:1;mem:512;cpus(db):2")
    plans = allocate([a1], [fw("any")], total_of(a1), NOW)
    assert [(p.role, p.resources) for p in plans] == [("*", R("cpus:1;mem:512"))]


# ================================================================ filters


@pytest.mark.parametrize(
    ("refused", "expires", "offered"),
    [
        ("cpus:4;mem:4096", NOW + 1, False),  # the same resources, not expired
        ("cpus:8;mem:8192", NOW + 1, False),  # more than is there: still refused
        ("cpus:4;mem:4096", NOW, True),  # expired at now
        ("cpus:4;mem:4096", NOW - 5, True),
        ("cpus:2;mem:4096", NOW + 1, True),  # more is available than was refused
        ("cpus:4", NOW + 1, True),  # mem was not refused
    ],
)
def test_refused_resources_are_not_offered_again_until_the_filter_expires(
    refused, expires, offered
):
    a1 = agent("s1", "cpus:4;mem:4096")
    f = fw("a", filters=(OfferFilter("s1", R(refused), expires),))
    plans = allocate([a1], [f], total_of(a1), NOW)
    assert bool(plans) is offered


def test_a_filter_applies_to_its_agent_only():
    a1, a2 = agent("s1"), agent("s2")
    f = fw("a", filters=(OfferFilter("s1", R("cpus:4;mem:4096"), NOW + 10),))
    plans = allocate([a1, a2], [f], total_of(a1, a2), NOW)
    assert owners(plans) == {"s2": "a"}


def test_a_filtered_framework_is_passed_over_for_the_next():
    a1 = agent("s1")
    first = fw("a", filters=(OfferFilter("s1", R("cpus:4;mem:4096"), NOW + 10),))
    plans = allocate([a1], [first, fw("b", held={"*": {"cpus": 2}})], total_of(a1), NOW)
    assert owners(plans) == {"s1": "b"}


# ================================================================ suppression


def test_a_suppressed_framework_gets_no_offers():
    a1 = agent("s1")
    assert allocate([a1], [fw("a", suppressed=frozenset({"*"}))], total_of(a1), NOW) == []


def test_a_suppressed_framework_leaves_the_agent_to_others():
    a1 = agent("s1")
    plans = allocate(
        [a1],
        [fw("a", suppressed=frozenset({"*"})), fw("b", held={"*": {"cpus": 3}})],
        total_of(a1),
        NOW,
    )
    assert owners(plans) == {"s1": "b"}


def test_suppressing_one_role_keeps_offers_for_the_others():
    agents = [agent("s1"), agent("s2")]
    f = fw("a", roles=("ra", "rb"), suppressed=frozenset({"ra"}))
    plans = allocate(agents, [f], total_of(*agents), NOW)
    assert {(p.agent_id, p.role) for p in plans} == {("s1", "rb"), ("s2", "rb")}


# ================================================================ minimum


@pytest.mark.parametrize(
    ("available", "offered"),
    [
        ("cpus:0.009;mem:31.999", False),
        ("cpus:0.005", False),
        ("mem:16", False),
        ("disk:1000;ports:[31000-32000]", False),  # no cpus or mem worth offering
        ("cpus:0.01", True),
        ("mem:32", True),
        ("cpus:0.009;mem:32", True),
        ("cpus:0.01;mem:1", True),
    ],
)
def test_nothing_below_the_minimum_is_offered(available, offered):
    assert (MIN_CPUS, MIN_MEM) == (0.01, 32.0)
    a1 = agent("s1", available)
    plans = allocate([a1], [fw("a")], {"cpus": 10.0, "mem": 10000.0}, NOW)
    assert bool(plans) is offered
    assert allocatable(R(available)) is offered


def test_an_agent_with_nothing_left_is_skipped():
    plans = allocate(
        [AgentView("s1", Resources.empty()), agent("s2")], [fw("a")], {"cpus": 4.0}, NOW
    )
    assert owners(plans) == {"s2": "a"}


def test_no_frameworks_no_offers():
    assert allocate([agent("s1")], [], {"cpus": 4.0}, NOW) == []


# ================================================================ properties

SCALARS = st.sampled_from([0, 0.005, 0.5, 1, 4])
MEMS = st.sampled_from([0, 16, 32, 512])
ROLES = st.sampled_from(["*", "ra", "rb"])


@st.composite
def agent_views(draw, index: int) -> AgentView:
    parts = []
    for role in ("*", "ra", "rb"):
        cpus, mem = draw(SCALARS), draw(MEMS)
        name = "" if role == "*" else f"({role})"
        if cpus:
            parts.append(f"cpus{name}:{cpus}")
        if mem:
            parts.append(f"mem{name}:{mem}")
    if draw(st.booleans()):
        parts.append("ports:[31000-31009]")
    return AgentView(f"s{index}", R(";".join(parts)))


@st.composite
def framework_views(draw, index: int, agent_ids: list[str]) -> FrameworkView:
    roles = tuple(sorted(draw(st.sets(ROLES, min_size=1, max_size=3))))
    suppressed = frozenset(draw(st.sets(st.sampled_from(roles), max_size=1)))
    held = {r: {"cpus": draw(st.sampled_from([0, 1, 3]))} for r in roles}
    filters = tuple(
        OfferFilter(
            draw(st.sampled_from(agent_ids)),
            R(draw(st.sampled_from(["cpus:4;mem:512", "cpus:1;mem:32", "cpus(ra):4;mem(ra):512"]))),
            draw(st.sampled_from([NOW - 1, NOW, NOW + 1])),
        )
        for _ in range(draw(st.integers(0, 2)))
    )
    return FrameworkView(f"f{index}", roles, held, suppressed, filters)


@st.composite
def clusters(draw):
    agents = [draw(agent_views(i)) for i in range(draw(st.integers(1, 4)))]
    ids = [a.id for a in agents]
    frameworks = [draw(framework_views(i, ids)) for i in range(draw(st.integers(0, 3)))]
    weights = draw(st.sampled_from([None, {"ra": 2.0}, {"rb": 0.5, "*": 3.0}]))
    return agents, frameworks, weights


@settings(max_examples=100, deadline=None)
@given(clusters())
def test_offers_respect_availability_roles_filters_and_suppression(cluster):
    agents, frameworks, weights = cluster
    total = total_of(*agents, extra="cpus:10;mem:10000")
    plans = allocate(agents, frameworks, total, NOW, weights)

    by_id = {f.id: f for f in frameworks}
    available = {a.id: a.available for a in agents}
    seen: set[tuple[str, str]] = set()
    for p in plans:
        f = by_id[p.framework_id]
        assert p.role in f.roles and p.role not in f.suppressed_roles
        assert (p.agent_id, p.role) not in seen, "at most one offer per agent and role"
        seen.add((p.agent_id, p.role))
        assert allocatable(p.resources)
        assert p.resources.roles() <= {"", "" if p.role == "*" else p.role}
        assert available[p.agent_id].contains(p.resources), "offers never overlap"
        available[p.agent_id] = available[p.agent_id] - p.resources
        assert not any(
            flt.agent_id == p.agent_id and flt.expires > NOW and flt.resources.contains(p.resources)
            for flt in f.filters
        )


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.integers(1, 4))
def test_identical_frameworks_get_identical_agents_evenly(n_agents, n_frameworks):
    agents = [agent(f"s{i:02d}") for i in range(n_agents)]
    frameworks = [fw(f"f{i}") for i in range(n_frameworks)]
    plans = allocate(agents, frameworks, total_of(*agents), NOW)
    assert len(plans) == n_agents
    counts = Counter(p.framework_id for p in plans)
    got = [counts.get(f.id, 0) for f in frameworks]
    assert max(got) - min(got) <= 1
