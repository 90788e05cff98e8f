"""`orbiter execute` says why nothing is placed: a table of agents and what a task needs
against the sentence an operator reads."""

from __future__ import annotations

import pytest

from orbiter.framework.placement import AgentSnapshot, why_unplaced

CPU_MEM = {"cpus": 0.1, "mem": 32.0}


def agent(
    mode: str = "active", status: str = "connected", used: dict | None = None, **total: float
) -> AgentSnapshot:
    return AgentSnapshot(
        id="a", status=status, mode=mode, total=total or {"cpus": 4, "mem": 23000}, used=used or {}
    )


CASES = [
    # (what the task wants, the agents, the reason or None when it fits)
    (CPU_MEM, [], "no agents registered"),
    (CPU_MEM, [agent(status="gone")], "no agents registered"),
    (CPU_MEM, [agent(status="unreachable")], "no agent is connected (1 unreachable)"),
    (
        CPU_MEM,
        [agent(status="unreachable"), agent(status="disconnected")],
        "no agent is connected (1 disconnected, 1 unreachable)",
    ),
    (CPU_MEM, [agent("deactivated"), agent("deactivated")], "every agent is deactivated"),
    (CPU_MEM, [agent("drained")], "every agent is drained"),
    (
        CPU_MEM,
        [agent("deactivated"), agent("draining"), agent(status="unreachable")],
        "every agent is out of service (1 deactivated, 1 draining)",
    ),
    (
        {"cpus": 0.1, "mem": 10_000_000},
        [agent(cpus=4, mem=23000), agent(cpus=4, mem=8000)],
        "no agent offers mem 10,000,000; the largest has 23,000",
    ),
    (
        {"cpus": 0.1, "mem": 10_000_000},
        [agent(cpus=4, mem=99_999_999, mode="deactivated"), agent(cpus=4, mem=23000)],
        "no agent offers mem 10,000,000; the largest has 23,000",
    ),
    ({"cpus": 8.5}, [agent(cpus=4, mem=100)], "no agent offers cpus 8.5; the largest has 4"),
    ({"gpus": 1}, [agent(cpus=4, mem=100)], "no agent offers gpus at all (wanted 1)"),
    (
        {"cpus": 4, "mem": 4000},
        [agent(cpus=4, mem=100), agent(cpus=1, mem=8000)],
        "no single agent has cpus 4 and mem 4,000 together",
    ),
    (
        CPU_MEM,
        [agent(cpus=4, mem=1000, used={"cpus": 4, "mem": 100})],
        "the agents are busy: the most free is cpus 0 (wanted cpus 0.1 and mem 32)",
    ),
    (
        {"cpus": 1, "mem": 500},
        [
            agent(cpus=4, mem=1000, used={"cpus": 3.5, "mem": 0}),
            agent(cpus=4, mem=1000, used={"cpus": 0, "mem": 900}),
        ],
        "none has cpus 1 and mem 500 free together",
    ),
    (CPU_MEM, [agent(cpus=4, mem=1000, used={"cpus": 3.9, "mem": 968})], None),
    (CPU_MEM, [agent("deactivated"), agent()], None),
    ({"cpus": 0.1, "disk": 0.0}, [agent(cpus=1, mem=1)], None),
]


@pytest.mark.parametrize(("want", "agents", "reason"), CASES)
def test_the_reason_names_what_is_missing(
    want: dict[str, float], agents: list[AgentSnapshot], reason: str | None
) -> None:
    said = why_unplaced(want, agents)
    if reason is None:
        assert said is None
    else:
        assert said is not None and reason in said, said


def test_a_snapshot_reads_the_operator_api_agent_view() -> None:
    view = {
        "id": "S1",
        "status": "connected",
        "maintenance": {"mode": "draining"},
        "resources": {"text": "cpus:2", "quantities": {"cpus": 2.0}},
        "used": {"text": "", "quantities": {}},
    }
    assert AgentSnapshot.from_view(view) == AgentSnapshot(
        "S1", "connected", "draining", {"cpus": 2.0}, {}
    )
