"""Pins, as the README documents them: a pin puts the agent in its state now and holds
Satellite off it until it expires; operators' own commands still act, and say the pin
still holds; unpin removes only the hold. Each row: what the operator does, in order,
and what the master then says and leaves."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from orbiter.durations import format_duration, time_left
from orbiter.master.state import Master, MasterConfig
from orbiter.proto import agent_pb2, master_pb2, messages_pb2
from orbiter.resources import Resources

NOW = 1000.0
HOURS_2 = NOW + 7200.0

Step = Callable[[Master, str], object]


def master_with_agent() -> tuple[Master, str]:
    m = Master(messages_pb2.MasterInfo(id="bbbbbbbb0000"), MasterConfig(), 0.0)
    msg = agent_pb2.AgentMessage.Register()
    msg.info.hostname = "h"
    msg.info.http_address = "h:1"
    msg.info.resources.extend(Resources.parse("cpus:4;mem:1024").to_proto())
    agent_id, _ = m.agent_register(1, msg, 0.0)
    return m, agent_id


def deactivate(by: str = "operator", t: float = NOW) -> Step:
    return lambda m, a: m.deactivate(a, by, "disk", t, "alice" if by == "operator" else "")


def drain(m: Master, a: str) -> object:
    return m.drain(a, 30.0, "operator", "retire", NOW, "alice")


def pin(state: str) -> Step:
    return lambda m, a: m.set_pin(a, state, HOURS_2, "kernel test", NOW, "alice")


def unpin(t: float = NOW + 60) -> Step:
    return lambda m, a: m.clear_pin(a, t, "bob")


MODE = {
    "active": master_pb2.ACTIVE,
    "deactivated": master_pb2.DEACTIVATED,
    "draining": master_pb2.DRAINING,
    "drained": master_pb2.DRAINED,
}

CASES = [
    # (steps, mode after, by, pin after, what the last step says)
    (
        [deactivate(), pin("active")],
        "active", "operator", "active",
        "reactivated (was deactivated) and pinned active (2h left): Satellite will not "
        "deactivate or drain it until the pin expires: kernel test",
    ),
    (
        [deactivate("satellite"), pin("active")],
        "active", "operator", "active",
        "reactivated (was deactivated) and pinned active (2h left)",
    ),
    (
        [pin("active")],
        "active", "", "active",
        "pinned active (2h left): Satellite will not deactivate or drain it until the pin "
        "expires: kernel test",
    ),
    (
        [pin("inactive")],
        "deactivated", "operator", "inactive",
        "deactivated and pinned inactive (2h left): Satellite will not reactivate it until "
        "the pin expires: kernel test",
    ),
    (
        [drain, pin("inactive")],
        "drained", "operator", "inactive",
        "stays drained, pinned inactive (2h left): Satellite will not reactivate it",
    ),
    (
        [pin("inactive"), unpin()],
        "deactivated", "operator", None,
        "unpinned, stays deactivated by operator: `orbiter reactivate` puts it back",
    ),
    (
        [pin("active"), unpin()],
        "active", "", None,
        "unpinned, stays active: Satellite's automation applies to it again",
    ),
    ([unpin()], "active", "", None, "was not pinned; nothing changed"),
    ([pin("active"), unpin(HOURS_2 + 1)], "active", "", None, "was not pinned; nothing changed"),
    (
        [pin("active"), deactivate(t=NOW + 1800)],
        "deactivated", "operator", "active",
        "deactivated by operator (alice): disk (the pin active, 1h30m left, still holds "
        "Satellite off it)",
    ),
    (
        [pin("inactive"), lambda m, a: m.reactivate(a, "operator", "fixed", NOW + 60, "alice")],
        "active", "operator", "inactive",
        "reactivated by operator (alice): fixed (the pin inactive, 1h59m left, still holds "
        "Satellite off it)",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("steps", "mode", "by", "pinned", "says"), CASES)
def test_pin_commands_do_and_say_what_the_readme_says(
    steps: list[Step], mode: str, by: str, pinned: str | None, says: str
) -> None:
    m, agent_id = master_with_agent()
    for step in steps:
        step(m, agent_id)
    agent = m.agents[agent_id]
    assert agent.mode == MODE[mode]
    assert agent.maintenance.by == by
    assert (agent.pin.state if agent.pin is not None else None) == pinned
    last = m.events[-1]
    assert says in last.message
    assert last.by == "operator" and last.action in ("pin", "unpin", "deactivate", "reactivate")
    assert last.principal in ("alice", "bob")


def test_every_operator_action_is_an_event_with_its_principal() -> None:
    m, agent_id = master_with_agent()
    m.deactivate(agent_id, "operator", "disk", NOW, "alice")
    m.reactivate(agent_id, "operator", "fixed", NOW + 1, "")
    m.deactivate(agent_id, "satellite", "rule fired", NOW + 1.5)  # Satellite's: not an operator's
    m.drain(agent_id, 5.0, "operator", "retire", NOW + 2, "carol")
    m.set_pin(agent_id, "inactive", HOURS_2, "hold", NOW + 3, "alice")
    m.clear_pin(agent_id, NOW + 4, "alice")
    silence = master_pb2.Silence(id="s1", starts_at=NOW, ends_at=HOURS_2, created_by="dave")
    silence.matchers.add(name="agent", value=agent_id)
    m.put_silence(silence, NOW + 6, "dave")
    m.expire_silence("s1", NOW + 7, "dave")
    m.remove_agent(agent_id, "operator", "dead", NOW + 8, "erin")
    actions = [(e.action, e.principal) for e in m.events if e.action]
    assert actions == [
        ("deactivate", "alice"),
        ("reactivate", ""),
        ("drain", "carol"),
        ("pin", "alice"),
        ("unpin", "alice"),
        ("silence add", "dave"),
        ("silence expire", "dave"),
        ("remove", "erin"),
    ]
    assert all(e.by == "operator" for e in m.events if e.action)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45, "45s"), (90, "1m30s"), (600, "10m"), (5400, "1h30m"), (5430, "1h30m"),
     (3600, "1h"), (86400 + 3 * 3600, "1d3h"), (59.6, "1m")],
)  # fmt: skip
def test_a_length_of_time_is_shown_one_way(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_time_left_says_how_long_or_expired() -> None:
    assert time_left(NOW + 5400, NOW) == "1h30m left"
    assert time_left(NOW, NOW) == "expired"
    assert time_left(float("inf"), NOW) == "no end"  # an old registry's pin
    assert format_duration(float("inf")) == "forever"


def test_the_cli_help_states_the_same_model() -> None:
    from orbiter import cli

    sub = next(a for a in cli.parser()._actions if a.dest == "subcommand")
    pin_help = sub.choices["pin"].description
    assert "overrides Satellite only" in pin_help and "keeps holding Satellite off" in pin_help
    assert "stays as it is" in sub.choices["unpin"].description
