"""Satellite's safety policy, read as a specification: tables of cases, then properties."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbiter.satellite.policy import (
    AGENT_STATUSES,
    FLAPPING_ALERT,
    PANIC_ALERT,
    PIN_STATES,
    SATELLITE,
    Action,
    ActionRequest,
    AgentSnapshot,
    ClusterAlert,
    Decision,
    InvalidPolicyConfig,
    Outcome,
    Pin,
    PolicyConfig,
    PolicyResult,
    PolicyState,
    allowed_out,
    decide,
)

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z

# ---------------------------------------------------------------------------
# Building blocks


def ok(i: str, pin: Pin | None = None, status: str = "connected") -> AgentSnapshot:
    return AgentSnapshot(i, "active", "", status, pin)


def down(i: str) -> AgentSnapshot:
    """An agent the master gave up on: unreachable, its tasks reported lost."""
    return AgentSnapshot(i, "active", "", "unreachable")


def sat(i: str, maintenance: str = "deactivated", pin: Pin | None = None) -> AgentSnapshot:
    return AgentSnapshot(i, maintenance, SATELLITE, "connected", pin)


def op(i: str, maintenance: str = "deactivated") -> AgentSnapshot:
    return AgentSnapshot(i, maintenance, "operator", "connected")


def gone(i: str) -> AgentSnapshot:
    return AgentSnapshot(i, "active", "", "gone")


def fleet(n: int, *special: AgentSnapshot) -> list[AgentSnapshot]:
    """`n` agents: the special ones, then healthy ones named h0, h1, ..."""
    return [*special, *(ok(f"h{i}") for i in range(n - len(special)))]


def req(agent: str, action: str = "deactivate", rule: str = "NodeUnhealthy") -> ActionRequest:
    return ActionRequest(agent, Action(action), rule, f"{agent} looks unwell")


def pin(state: str, until: float = T0 + 7200) -> Pin:
    return Pin(state, until, "kernel test")


def seen(result: PolicyResult) -> list[tuple[str, str, str]]:
    return [(d.agent_id, d.action.value, d.outcome.value) for d in result.decisions]


# ---------------------------------------------------------------------------
# One evaluation from an empty history


def case(
    name: str,
    agents: list[AgentSnapshot],
    firing: list[ActionRequest],
    *expected: str,
    **config: object,
) -> object:
    """One row: `expected` are "agent action outcome: fragment of the reason"."""
    return pytest.param(config, agents, firing, expected, id=name)


# fmt: off
ONE_STEP = [
    case("takes out an unhealthy agent when the cluster has room",
         fleet(10), [req("h0")],
         "h0 deactivate taken: 1 of 10 agents out of service after this (10%"),
    case("counts agents out for every reason against the fraction limit",
         fleet(10, sat("s", "drained"), op("o"), down("d")), [req("h0")],
         "h0 deactivate refused: would put 4 of 10 agents (40%) out of service;"
         " limit is 30% (3 agents)"),
    case("an agent already out with the same action gets no new decision",
         fleet(10, sat("s", "deactivated")), [req("s", "deactivate")]),
    case("an agent already draining gets no decision for a deactivate request",
         fleet(10, sat("s", "draining")), [req("s", "deactivate")]),
    case("drain is stronger than deactivate so a deactivated agent may be drained",
         fleet(10, sat("s", "deactivated")), [req("s", "drain")],
         "s drain taken: NodeUnhealthy firing (s looks unwell)"),
    case("never touches an agent an operator took out",
         fleet(10, op("o", "deactivated")), [req("o", "drain")],
         "o drain refused: agent is deactivated by operator"),
    case("an operator-drained agent with a drain alert needs no decision",
         fleet(10, op("o", "drained")), [req("o", "drain")]),
    case("an agent pinned active is never taken out",
         fleet(10, ok("p", pin("active"))), [req("p")],
         "p deactivate refused: pinned active by operator (2h left):"
         " kernel test"),
    case("an expired pin is ignored",
         fleet(10, ok("p", pin("active", until=T0))), [req("p")],
         "p deactivate taken: NodeUnhealthy firing"),
    case("never leaves fewer than min_active_agents active",
         fleet(2), [req("h0")],
         "h0 deactivate refused: would leave 1 active agent(s); min_active_agents is 2",
         max_unhealthy_fraction=1.0, min_active_agents=2),
    case("unreachable agents do not count as active",
         fleet(3, down("d")), [req("h0"), req("h1")],
         "h0 deactivate taken: 1 active (minimum 1)",
         "h1 deactivate refused: would leave 0 active agent(s)",
         max_unhealthy_fraction=1.0),
    case("a single request that does not fit is a fraction refusal, not a panic",
         fleet(3), [req("h0")],
         "h0 deactivate refused: would put 1 of 3 agents (33.3%) out of service"),
    case("the rate limit counts the take-outs of the same evaluation",
         fleet(6), [req("h0"), req("h1"), req("h2")],
         "h0 deactivate taken: take-out 1 of 2 in 10m",
         "h1 deactivate taken: take-out 2 of 2 in 10m",
         "h2 deactivate refused: rate limit: 2 take-outs in the last 10m, at most 2;"
         " next possible at 2023-11-14T22:23:20Z",
         max_unhealthy_fraction=1.0, max_actions_per_window=2),
    case("max_actions_per_window 0 turns take-outs off",
         fleet(10), [req("h0")],
         "h0 deactivate refused: rate limit: 0 take-outs in the last 10m, at most 0",
         max_actions_per_window=0),
    case("several alerts on one agent collapse into the strongest, first rule by name",
         fleet(10), [req("h0", "deactivate", "B"), req("h0", "drain", "C"),
                     req("h0", "drain", "A")],
         "h0 drain taken: A firing"),
    case("a request for an unknown agent is refused",
         fleet(10), [req("ghost")],
         "ghost deactivate refused: no agent 'ghost' is registered"),
    case("takes nothing out while the cluster is over the limit, even an unreachable agent",
         fleet(10, down("d0"), down("d1"), down("d2"), down("d3")), [req("d0")],
         "d0 deactivate refused: 4 of 10 agents (40%) are already out of service;"
         " limit is 30% (3 agents)"),
    case("deactivating an unreachable agent does not add to the out-of-service count",
         fleet(10, down("d0"), down("d1"), down("d2")), [req("d0")],
         "d0 deactivate taken: 3 of 10 agents out of service after this (30%"),
    case("unreachable agents count against the budget, and the event says so",
         fleet(10, down("u0"), down("u1"), down("u2")), [req("h0")],
         "h0 deactivate refused: would put 4 of 10 agents (40%) out of service; limit is 30%"
         " (3 agents); budget: 3 of 10 agents out of service (unreachable: u0, u1, u2);"
         " max 30% allows 3"),
    case("recovering and disconnected agents do not count against the budget",
         fleet(10, ok("r0", status="recovering"), ok("r1", status="recovering"),
               ok("r2", status="recovering"), ok("x", status="disconnected")), [req("h0")],
         "h0 deactivate taken: take-out 1 of 5 in 10m; budget: 0 of 10 agents out of service;"
         " max 30% allows 3; not counted: 1 disconnected, 3 recovering"),
    case("a failover (every agent recovering) is no panic: two requests fit the budget",
         [ok(f"r{i}", status="recovering") for i in range(10)], [req("r0"), req("r1")],
         "r0 deactivate taken: 1 of 10 agents out of service after this",
         "r1 deactivate taken: budget: 1 of 10 agents out of service (deactivated: r0 by"
         " satellite (this round)); max 30% allows 3; not counted: 9 recovering"),
    case("gone agents are neither out nor in the total; a request for one is refused",
         [*fleet(10), gone("g0"), gone("g1"), gone("g2"), gone("g3")], [req("g0"), req("h0")],
         "g0 deactivate refused: agent g0 is gone (removed from the cluster)",
         "h0 deactivate taken: budget: 0 of 10 agents out of service; max 30% allows 3;"
         " 4 gone agent(s) left out"),
    case("the budget names who is out and why, a few at a time",
         fleet(10, sat("s"), op("o", "drained"),
               AgentSnapshot("x", "deactivated", "operator", "unreachable"),
               *(down(f"d{i}") for i in range(6))), [req("h0")],
         "h0 deactivate refused: budget: 9 of 10 agents out of service (deactivated: s by"
         " satellite, x by operator (unreachable); drained: o by operator; unreachable: d0, d1,"
         " d2, d3, d4 and 1 more); max 100% allows 10",
         max_unhealthy_fraction=1.0),
    case("panic freeze: more requests than room means acting on none",
         fleet(10), [req("h0", "drain"), req("h1"), req("h2"), req("h3")],
         "h0 drain refused: panic freeze: 4 in-service agent(s) asked to be taken out,"
         " room for 3 (3 of 10 agents may be out at 30%, 0 already are)",
         "h1 deactivate refused: panic freeze",
         "h2 deactivate refused: panic freeze",
         "h3 deactivate refused: panic freeze"),
    case("dry run reasons like a real run and reports dry-run instead of taken",
         fleet(10), [req("h0", "drain"), req("h1"), req("h2")],
         "h0 drain dry-run: NodeUnhealthy firing",
         "h1 deactivate dry-run: 2 of 10 agents out of service after this",
         "h2 deactivate dry-run: 3 of 10 agents out of service after this",
         dry_run=True),
]
# fmt: on


@pytest.mark.parametrize(("config", "agents", "firing", "expected"), ONE_STEP)
def test_one_evaluation(config, agents, firing, expected) -> None:  # type: ignore[no-untyped-def]
    result = decide(PolicyConfig(**config), PolicyState(), agents, firing, T0)
    rows = [e.split(": ", 1) for e in expected]
    assert [" ".join(row) for row in seen(result)] == [head for head, _ in rows]
    for d, (_, fragment) in zip(result.decisions, rows, strict=True):
        assert fragment in d.reason
        assert d.time == T0


def test_panic_freeze_raises_a_cluster_alert_and_a_fraction_refusal_does_not() -> None:
    panic = decide(PolicyConfig(), PolicyState(), fleet(10), [req(f"h{i}") for i in range(4)], T0)
    assert [a.name for a in panic.alerts] == [PANIC_ALERT]
    assert panic.state.frozen
    single = decide(PolicyConfig(), PolicyState(), fleet(3), [req("h0")], T0)
    assert single.alerts == ()
    assert not single.state.frozen


def test_decision_carries_rule_action_and_time() -> None:
    result = decide(
        PolicyConfig(), PolicyState(), fleet(10), [req("h3", "drain", "DiskFull")], T0 + 5
    )
    assert result.decisions == (
        Decision(
            T0 + 5,
            "h3",
            Action.DRAIN,
            "DiskFull",
            Outcome.TAKEN,
            "DiskFull firing (h3 looks unwell); within limits: 1 of 10 agents out of service after"
            " this (10%, limit 30%), 9 active (minimum 1), take-out 1 of 5 in 10m;"
            " budget: 0 of 10 agents out of service; max 30% allows 3",
        ),
    )


# ---------------------------------------------------------------------------
# Over time: a little world that applies TAKEN decisions between evaluations


@dataclass
class World:
    agents: dict[str, AgentSnapshot]
    config: PolicyConfig = field(default_factory=PolicyConfig)
    state: PolicyState = field(default_factory=PolicyState)
    log: list[Decision] = field(default_factory=list)

    def step(self, now: float, firing: list[ActionRequest]) -> PolicyResult:
        result = decide(self.config, self.state, list(self.agents.values()), firing, now)
        self.state = result.state
        self.log.extend(result.decisions)
        for d in result.decisions:
            if d.outcome is Outcome.TAKEN:
                self.agents[d.agent_id] = applied(self.agents[d.agent_id], d.action)
        return result


def by_id(agents: list[AgentSnapshot]) -> dict[str, AgentSnapshot]:
    return {a.id: a for a in agents}


def applied(agent: AgentSnapshot, action: Action) -> AgentSnapshot:
    """What the master does when the Satellite loop applies a TAKEN decision."""
    if action is Action.REACTIVATE:
        return replace(agent, maintenance="active", taken_out_by="")
    state = "deactivated" if action is Action.DEACTIVATE else "draining"
    return replace(agent, maintenance=state, taken_out_by=SATELLITE)


def play(world: World, timeline: list[tuple[float, list[ActionRequest]]]) -> list[list[tuple]]:
    """Run evaluations at T0 + t with the given firing requests; decisions per step."""
    return [seen(world.step(T0 + t, firing)) for t, firing in timeline]


TAKEN_A = [("h0", "deactivate", "taken")]
BACK_A = [("h0", "reactivate", "taken")]


def test_reactivates_after_the_alert_stays_resolved_for_the_cooldown() -> None:
    world = World(by_id(fleet(10)))
    steps = play(world, [(0, [req("h0")]), (30, [req("h0")]), (60, []), (359, []), (360, [])])
    assert steps == [TAKEN_A, [], [], [], BACK_A]
    assert "no action alert firing for 5m (cool-down 5m)" in world.log[-1].reason
    assert world.log[-1].rule == "NodeUnhealthy"
    assert world.agents["h0"].maintenance == "active"


def test_an_alert_firing_again_restarts_the_cooldown() -> None:
    world = World(by_id(fleet(10)))
    steps = play(
        world,
        [
            (0, [req("h0")]),
            (60, []),
            (200, [req("h0")]),
            (300, []),
            (420, []),
            (599, []),
            (600, []),
        ],
    )
    assert steps == [TAKEN_A, [], [], [], [], [], BACK_A]


def test_cooldown_zero_reactivates_at_the_first_quiet_evaluation() -> None:
    world = World(by_id(fleet(10)), PolicyConfig(cooldown_seconds=0))
    assert play(world, [(0, [req("h0")]), (15, [])]) == [TAKEN_A, BACK_A]


def test_never_reactivates_an_agent_an_operator_took_out() -> None:
    world = World(by_id(fleet(10, op("o"))), PolicyConfig(cooldown_seconds=0))
    assert play(world, [(0, [req("o", "drain")]), (15, []), (4000, [])]) == [
        [("o", "drain", "refused")],
        [],
        [],
    ]


def test_flapping_agent_stays_out_and_raises_an_alert_until_the_window_passes() -> None:
    cfg = PolicyConfig(cooldown_seconds=0, flap_limit=2, flap_window_seconds=1000)
    world = World(by_id(fleet(10)), cfg)
    bad, good = [req("h0")], []
    steps = play(world, [(0, bad), (10, good), (20, bad), (30, good), (40, bad), (50, good)])
    assert steps == [TAKEN_A, BACK_A, TAKEN_A, BACK_A, TAKEN_A, [("h0", "reactivate", "refused")]]
    flapping = (
        "flapping: agent h0 went out and came back 2 times in the last 16m40s (flap_limit 2);"
        " kept out until 2023-11-14T22:30:10Z"
    )
    assert world.log[-1].reason == (
        f"{flapping}; budget: 1 of 10 agents out of service (deactivated: h0 by satellite);"
        " max 30% allows 3"
    )
    held = world.step(T0 + 60, good)
    assert held.decisions == ()
    assert held.alerts == (ClusterAlert(FLAPPING_ALERT, flapping, "h0"),)
    assert seen(world.step(T0 + 1009, good)) == []
    released = world.step(T0 + 1010, good)
    assert seen(released) == BACK_A
    assert released.alerts == ()


def test_rate_limit_is_a_sliding_window() -> None:
    cfg = PolicyConfig(
        max_unhealthy_fraction=1.0,
        max_actions_per_window=2,
        window_seconds=600,
        cooldown_seconds=3600,
    )
    world = World(by_id(fleet(10)), cfg)
    steps = play(
        world,
        [
            (0, [req("h0")]),
            (100, [req("h1")]),
            (200, [req("h2")]),
            (599, [req("h2")]),
            (600, [req("h2")]),
            (650, [req("h3")]),
            (700, [req("h3")]),
        ],
    )
    assert steps == [
        [("h0", "deactivate", "taken")],
        [("h1", "deactivate", "taken")],
        [("h2", "deactivate", "refused")],
        [],
        [("h2", "deactivate", "taken")],
        [("h3", "deactivate", "refused")],
        [("h3", "deactivate", "taken")],
    ]


def test_reactivations_do_not_use_up_the_rate_limit() -> None:
    cfg = PolicyConfig(max_actions_per_window=1, cooldown_seconds=0)
    world = World(by_id(fleet(10, sat("s0"), sat("s1"))), cfg)
    assert play(world, [(0, [])]) == [
        [("s0", "reactivate", "taken"), ("s1", "reactivate", "taken")]
    ]


def test_a_refusal_is_reported_once_while_it_stays_the_same() -> None:
    world = World(by_id(fleet(3)))
    steps = play(
        world,
        [
            (0, [req("h0")]),
            (15, [req("h0")]),
            (30, [req("h0", rule="Other")]),
            (45, []),
            (60, [req("h0")]),
        ],
    )
    assert steps == [
        [("h0", "deactivate", "refused")],
        [],
        [("h0", "deactivate", "refused")],
        [],
        [("h0", "deactivate", "refused")],
    ]


def test_a_refused_request_is_taken_as_soon_as_the_limit_allows() -> None:
    world = World(by_id(fleet(10, op("o0"), op("o1"), op("o2"))))
    assert play(world, [(0, [req("h0")]), (15, [req("h0")])]) == [
        [("h0", "deactivate", "refused")],
        [],
    ]
    world.agents["o2"] = ok("o2")
    assert play(world, [(30, [req("h0")])]) == [TAKEN_A]


def test_panic_freeze_holds_until_no_take_out_request_is_firing() -> None:
    world = World(by_id(fleet(10)))
    flood = [req(f"h{i}") for i in range(5)]
    first = world.step(T0, flood)
    assert {d.outcome for d in first.decisions} == {Outcome.REFUSED}
    assert len(first.decisions) == 5
    tail = world.step(T0 + 15, flood[:1])
    assert tail.decisions == ()  # already reported as refused by the freeze
    assert [a.name for a in tail.alerts] == [PANIC_ALERT]
    assert "1 in-service agent(s) asked to be taken out, room for 3" in tail.alerts[0].summary
    cleared = world.step(T0 + 30, [])
    assert cleared.alerts == ()
    assert not cleared.state.frozen
    assert seen(world.step(T0 + 45, flood[:1])) == TAKEN_A


def test_panic_freeze_also_holds_drain_upgrades() -> None:
    flood = [req("s", "drain"), *(req(f"h{i}") for i in range(3))]
    result = decide(PolicyConfig(), PolicyState(), fleet(10, sat("s")), flood, T0)
    assert seen(result) == [
        ("h0", "deactivate", "refused"),
        ("h1", "deactivate", "refused"),
        ("h2", "deactivate", "refused"),
        ("s", "drain", "refused"),
    ]
    assert all(d.reason.startswith("panic freeze: 3 in-service agent(s)") for d in result.decisions)


def test_reactivations_go_on_during_a_panic_freeze() -> None:
    world = World(by_id(fleet(10, sat("s"))), PolicyConfig(cooldown_seconds=0))
    result = world.step(T0, [req(f"h{i}") for i in range(4)])
    assert ("s", "reactivate", "taken") in seen(result)
    assert [a.name for a in result.alerts] == [PANIC_ALERT]


def test_pinned_inactive_is_not_reactivated_until_the_pin_expires() -> None:
    agent = sat("s", pin=pin("inactive", until=T0 + 1000))
    world = World(by_id([agent, *fleet(9)]), PolicyConfig(cooldown_seconds=0))
    steps = play(world, [(0, []), (500, []), (1000, [])])
    assert steps == [[("s", "reactivate", "refused")], [], [("s", "reactivate", "taken")]]
    assert world.log[0].reason.startswith(
        "pinned inactive by operator (16m40s left): kernel test; budget: "
    )


def test_pinned_active_brings_back_an_agent_satellite_took_out_at_once() -> None:
    world = World(by_id([sat("s", pin=pin("active")), *fleet(9)]))
    assert play(world, [(0, [req("s", "drain")])]) == [
        [("s", "drain", "refused"), ("s", "reactivate", "taken")]
    ]


def test_dry_run_changes_nobody_and_reports_once() -> None:
    world = World(by_id(fleet(10, sat("s"))), PolicyConfig(dry_run=True, cooldown_seconds=0))
    steps = play(world, [(0, [req("h0")]), (15, [req("h0")]), (30, [])])
    assert steps == [[("h0", "deactivate", "dry-run"), ("s", "reactivate", "dry-run")], [], []]
    assert world.agents == by_id(fleet(10, sat("s")))
    assert world.state.history == ()


def test_satellite_restart_restarts_the_cooldown() -> None:
    world = World(by_id(fleet(10)))
    play(world, [(0, [req("h0")]), (10, [])])
    world.state = PolicyState()
    assert play(world, [(300, []), (599, []), (600, [])]) == [[], [], BACK_A]


def test_state_survives_a_round_trip_through_json() -> None:
    world = World(by_id(fleet(4)))
    play(world, [(0, [req("h0")]), (10, [req("h1"), req("h2")]), (20, [req("h1")])])
    state = world.state
    assert state.history and state.tracked and state.reported and state.frozen
    assert PolicyState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


# ---------------------------------------------------------------------------
# Config validation


@pytest.mark.parametrize(
    ("field_name", "value", "message"),
    [
        ("max_unhealthy_fraction", 1.5, "max_unhealthy_fraction must be a number from 0 to 1"),
        ("max_unhealthy_fraction", -0.1, "max_unhealthy_fraction must be a number from 0 to 1"),
        ("max_unhealthy_fraction", float("nan"), "max_unhealthy_fraction"),
        ("max_actions_per_window", -1, "max_actions_per_window must be a whole number >= 0"),
        ("max_actions_per_window", 2.5, "max_actions_per_window must be a whole number >= 0"),
        ("window_seconds", 0, "window_seconds must be a number of seconds > 0, got 0"),
        ("min_active_agents", True, "min_active_agents must be a whole number >= 0, got True"),
        ("cooldown_seconds", -5, "cooldown_seconds must be a number of seconds >= 0"),
        ("flap_limit", 0, "flap_limit must be a whole number >= 1, got 0"),
        ("flap_window_seconds", "1h", "flap_window_seconds must be a number of seconds > 0"),
        ("dry_run", "yes", "dry_run must be true or false, got 'yes'"),
    ],
)
def test_config_validation_names_the_field_and_what_it_expects(
    field_name: str, value: object, message: str
) -> None:
    bad = PolicyConfig(**{field_name: value})  # type: ignore[arg-type]
    with pytest.raises(InvalidPolicyConfig, match=message.replace("(", r"\(")):
        bad.validate()
    with pytest.raises(InvalidPolicyConfig):
        decide(bad, PolicyState(), fleet(3), [], T0)


def test_defaults_are_valid_and_match_the_issue() -> None:
    cfg = PolicyConfig()
    cfg.validate()
    assert (cfg.max_unhealthy_fraction, cfg.cooldown_seconds, cfg.dry_run) == (0.3, 300, False)


def test_bad_snapshots_and_requests_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="maintenance must be one of"):
        AgentSnapshot("a", "broken", "", "connected")
    with pytest.raises(ValueError, match="status must be one of connected, disconnected"):
        AgentSnapshot("a", "active", "", True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pin state must be 'active' or 'inactive'"):
        Pin("maybe", T0, "")
    with pytest.raises(ValueError, match="not reactivate"):
        ActionRequest("a", Action.REACTIVATE, "R", "")
    with pytest.raises(ValueError, match="appears twice"):
        decide(PolicyConfig(), PolicyState(), [ok("a"), ok("a")], [], T0)


@pytest.mark.parametrize(
    ("fraction", "total", "allowed"),
    [
        (0.3, 10, 3),
        (0.29, 100, 29),
        (0.3, 3, 0),
        (1.0, 7, 7),
        (0.0, 50, 0),
        (0.5, 5, 2),
    ],
)
def test_allowed_out_rounds_down_without_float_surprises(
    fraction: float, total: int, allowed: int
) -> None:
    assert allowed_out(PolicyConfig(max_unhealthy_fraction=fraction), total) == allowed


# ---------------------------------------------------------------------------
# Properties over random clusters and random sequences of evaluations

IDS = [f"a{i}" for i in range(10)]
TAKE_OUTS = (Action.DEACTIVATE, Action.DRAIN)

# Each agent, step and config is drawn from flat tables (simplest first, so that
# hypothesis shrinks towards them): one draw per choice keeps generation cheap.
MAINTENANCE = [("active", "")] + [
    (m, by) for m in ("deactivated", "draining", "drained") for by in (SATELLITE, "operator", "")
]
PINS = [None] + [Pin(state, T0 + t, "test") for state in PIN_STATES for t in (500, 2000)]
FIRING = [(i, a) for i in range(10) for a in TAKE_OUTS]
OPERATOR = [(i, what) for i in range(10) for what in ("deactivate", "reactivate")]
STATUS_CHANGES = [((i, status),) for i in range(10) for status in AGENT_STATUSES]


@dataclass(frozen=True)
class Step:
    dt: float
    toggle: tuple[tuple[int, Action], ...]  # alerts that start or stop firing
    all_clear: bool  # every alert resolves
    status_change: tuple[tuple[int, str], ...]  # (agent index, new status)
    failover: bool  # a new master: every connected or disconnected agent is recovering
    operator: tuple[int, str] | None  # (agent index, "deactivate" | "reactivate")


configs = st.builds(
    PolicyConfig,
    max_unhealthy_fraction=st.sampled_from([0.5, 0.3, 0.2, 0.7, 1.0, 0.0]),
    max_actions_per_window=st.sampled_from([3, 2, 1, 4, 0]),
    window_seconds=st.sampled_from([50.0, 300.0, 600.0]),
    min_active_agents=st.sampled_from([1, 0, 2, 4]),
    cooldown_seconds=st.sampled_from([0.0, 30.0, 300.0]),
    flap_limit=st.integers(1, 3),
    flap_window_seconds=st.sampled_from([100.0, 3600.0]),
    dry_run=st.booleans(),
)
# Mostly healthy clusters, so that take-outs happen and the limits are reached from below.
agent_rows = st.lists(
    st.tuples(
        st.sampled_from([MAINTENANCE[0]] * 20 + MAINTENANCE[1:]),
        st.sampled_from(["connected"] * 12 + list(AGENT_STATUSES[1:])),
        st.sampled_from([None] * 4 + PINS[1:]),
    ),
    min_size=1,
    max_size=10,
)
steps = st.builds(
    Step,
    dt=st.sampled_from([0.0, 15.0, 30.0, 60.0, 299.0, 300.0, 1000.0]),
    toggle=st.lists(st.sampled_from(FIRING), max_size=2).map(tuple),
    all_clear=st.sampled_from([False] * 4 + [True]),
    status_change=st.sampled_from([()] * 40 + STATUS_CHANGES),
    failover=st.sampled_from([False] * 6 + [True]),
    operator=st.sampled_from([None] * 20 + OPERATOR),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[PolicyConfig, list[AgentSnapshot], list[Step]]:
    agents = [
        AgentSnapshot(i, maintenance, by, status, pin_)
        for i, ((maintenance, by), status, pin_) in zip(IDS, draw(agent_rows), strict=False)
    ]
    return draw(configs), agents, draw(st.lists(steps, min_size=1, max_size=8))


@dataclass(frozen=True)
class Observed:
    """One evaluation as the properties see it: before, what was decided, after."""

    now: float
    state: PolicyState
    before: dict[str, AgentSnapshot]
    firing: tuple[ActionRequest, ...]
    result: PolicyResult
    after: dict[str, AgentSnapshot]


def simulate(
    config: PolicyConfig, agents: list[AgentSnapshot], script: list[Step]
) -> list[Observed]:
    """Run the script: operators and the network change agents, then the policy decides."""
    world = {a.id: a for a in agents}
    ids = list(world)
    state, now, out = PolicyState(), T0, []
    alerts: set[tuple[str, Action]] = set()
    for s in script:
        now += s.dt
        for i, status in s.status_change:
            a = world[ids[i % len(ids)]]
            world[a.id] = replace(a, status=status)
        if s.failover:
            world = {k: recovering(a) for k, a in world.items()}
        if s.operator is not None:
            i, what = s.operator
            a = world[ids[i % len(ids)]]
            world[a.id] = (
                replace(a, maintenance="deactivated", taken_out_by="operator")
                if what == "deactivate"
                else replace(a, maintenance="active", taken_out_by="")
            )
        if s.all_clear:
            alerts.clear()
        alerts ^= {(ids[i % len(ids)], action) for i, action in s.toggle}
        firing = tuple(req(agent, action.value) for agent, action in sorted(alerts, key=str))
        before = dict(world)
        frozen_state = copy.deepcopy(state)
        result = decide(config, state, list(before.values()), firing, now)
        assert state == frozen_state, "decide must not mutate its input state"
        for d in result.decisions:
            if d.outcome is Outcome.TAKEN:
                world[d.agent_id] = applied(world[d.agent_id], d.action)
        out.append(Observed(now, state, before, firing, result, dict(world)))
        state = result.state
    return out


def taken(o: Observed, *actions: Action) -> list[Decision]:
    return [d for d in o.result.decisions if d.outcome is Outcome.TAKEN and d.action in actions]


def recovering(agent: AgentSnapshot) -> AgentSnapshot:
    """The agent as a new master sees it before it re-registers (unreachable ones stay so)."""
    if agent.status in ("connected", "disconnected"):
        return replace(agent, status="recovering")
    return agent


def live(agents: dict[str, AgentSnapshot]) -> int:
    """The denominator of the budget: every agent that is not gone."""
    return sum(a.status != "gone" for a in agents.values())


def count_out(agents: dict[str, AgentSnapshot]) -> int:
    """The documented budget, spelled out rather than read from `in_service`."""
    return sum(
        a.status != "gone" and (a.maintenance != "active" or a.status == "unreachable")
        for a in agents.values()
    )


PROPERTY = settings(max_examples=100, deadline=None)


@PROPERTY
@given(scenarios())
def test_never_takes_out_more_than_the_allowed_share(scenario) -> None:  # type: ignore[no-untyped-def]
    config, agents, script = scenario
    for o in simulate(config, agents, script):
        if taken(o, *TAKE_OUTS):
            assert count_out(o.after) <= allowed_out(config, live(o.after))


@PROPERTY
@given(scenarios())
def test_never_leaves_fewer_than_min_active_agents(scenario) -> None:  # type: ignore[no-untyped-def]
    config, agents, script = scenario
    for o in simulate(config, agents, script):
        if taken(o, *TAKE_OUTS):
            assert live(o.after) - count_out(o.after) >= config.min_active_agents


@PROPERTY
@given(scenarios())
def test_never_more_than_n_take_outs_in_any_window(scenario) -> None:  # type: ignore[no-untyped-def]
    config, agents, script = scenario
    times = [o.now for o in simulate(config, agents, script) for _ in taken(o, *TAKE_OUTS)]
    n = config.max_actions_per_window
    assert all(
        later - first >= config.window_seconds
        for first, later in zip(times, times[n:], strict=False)
    )
    if n == 0:
        assert times == []


@PROPERTY
@given(scenarios())
def test_never_touches_an_agent_someone_else_took_out(scenario) -> None:  # type: ignore[no-untyped-def]
    config, agents, script = scenario
    for o in simulate(config, agents, script):
        for d in o.result.decisions:
            agent = o.before.get(d.agent_id)
            if d.outcome is not Outcome.REFUSED and agent is not None:
                assert agent.maintenance == "active" or agent.taken_out_by == SATELLITE
            if d.action is Action.REACTIVATE and d.outcome is not Outcome.REFUSED:
                assert agent is not None and agent.taken_out_by == SATELLITE


@PROPERTY
@given(scenarios())
def test_dry_run_never_changes_who_is_out(scenario) -> None:  # type: ignore[no-untyped-def]
    config, agents, script = scenario
    for o in simulate(replace(config, dry_run=True), agents, script):
        assert taken(o, *Action) == []
        assert o.after == o.before
        assert o.result.state.history == ()


@PROPERTY
@given(scenarios())
def test_dry_run_decides_exactly_what_a_real_run_would(scenario) -> None:  # type: ignore[no-untyped-def]
    config, agents, script = scenario
    real = replace(config, dry_run=False)
    history = simulate(real, agents, script)
    last = history[-1]
    state_before = history[-2].result.state if len(history) > 1 else PolicyState()
    dry = decide(
        replace(real, dry_run=True), state_before, list(last.before.values()), last.firing, last.now
    )
    assert dry.decisions == tuple(
        replace(d, outcome=Outcome.DRY_RUN) if d.outcome is Outcome.TAKEN else d
        for d in last.result.decisions
    )
    assert dry.alerts == last.result.alerts


@PROPERTY
@given(scenarios())
def test_pins_beat_automation(scenario) -> None:  # type: ignore[no-untyped-def]
    config, agents, script = scenario
    for o in simulate(config, agents, script):
        for d in taken(o, *TAKE_OUTS):
            assert not o.before[d.agent_id].pinned("active", o.now)
        for d in taken(o, Action.REACTIVATE):
            assert not o.before[d.agent_id].pinned("inactive", o.now)


@PROPERTY
@given(scenarios())
def test_reactivation_waits_for_the_cooldown_and_respects_flap_damping(scenario) -> None:  # type: ignore[no-untyped-def]
    config, agents, script = scenario
    observed = simulate(config, agents, script)
    back: dict[str, list[float]] = {}
    for k, o in enumerate(observed):
        for d in taken(o, Action.REACTIVATE):
            if not o.before[d.agent_id].pinned("active", o.now):
                recent = [
                    t for t in back.get(d.agent_id, []) if t > o.now - config.flap_window_seconds
                ]
                assert len(recent) < config.flap_limit
                # quiet since the first evaluation after the last one that asked for it
                asked = [
                    j
                    for j, p in enumerate(observed[: k + 1])
                    if d.agent_id in {r.agent_id for r in p.firing}
                ]
                quiet_from = asked[-1] + 1 if asked else 0
                assert quiet_from <= k
                assert observed[quiet_from].now <= o.now - config.cooldown_seconds
            back.setdefault(d.agent_id, []).append(o.now)


@PROPERTY
@given(scenarios())
def test_state_round_trips_and_decisions_are_deterministic(scenario) -> None:  # type: ignore[no-untyped-def]
    config, agents, script = scenario
    observed = simulate(config, agents, script)
    assert simulate(config, agents, script) == observed
    final = observed[-1].result.state
    assert PolicyState.from_dict(final.to_dict()) == final


def outcomes(result: PolicyResult) -> list[tuple[str, str, str, str]]:
    return [(d.agent_id, d.action.value, d.rule, d.outcome.value) for d in result.decisions]


@PROPERTY
@given(scenarios())
def test_a_failover_never_causes_an_action_or_a_panic_freeze(scenario) -> None:  # type: ignore[no-untyped-def]
    """Every agent recovering (a new master, before they re-register) decides as before."""
    config, agents, script = scenario
    for o in simulate(config, agents, script):
        during = {k: recovering(a) for k, a in o.before.items()}
        failover = decide(config, o.state, list(during.values()), o.firing, o.now)
        assert outcomes(failover) == outcomes(o.result)
        assert failover.state.frozen == o.result.state.frozen
        assert [a.name for a in failover.alerts] == [a.name for a in o.result.alerts]


@PROPERTY
@given(scenarios())
def test_every_decision_says_what_the_budget_counted(scenario) -> None:  # type: ignore[no-untyped-def]
    config, agents, script = scenario
    for o in simulate(config, agents, script):
        if not o.result.decisions:
            continue
        first = o.result.decisions[0].reason
        n, total = count_out(o.before), live(o.before)
        # Agents taken out earlier in the same round count too, marked "(this round)";
        # a repeated refusal or dry-run is not emitted again, so the first decision
        # shown may come after some. An agent already out (unreachable) that is also
        # taken out this round counts once.
        taken = set(re.findall(r"(\S+) by \S+ \(this round\)", first))
        already = {i for i, a in o.before.items() if count_out({i: a})}
        this_round = len(taken - already)
        assert f"; budget: {n + this_round} of {total} agents out of service" in first
        assert f"allows {allowed_out(config, total)}" in first
        assert all("; budget: " in d.reason for d in o.result.decisions)
