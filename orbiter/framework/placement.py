"""Why a task cannot be placed: a pure function of the agents the operator API shows.

`orbiter execute` waits for offers; when none fits for a few seconds it asks the
master for its agents and says why in words an operator can act on ("no agent
has mem 10,000,000; the largest has 23,000", "every agent is deactivated").
The master itself never says why it does not offer; this is the client's guess
from the same data, so it speaks of agents' resources, not of offers it cannot see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AgentSnapshot:
    """What placement depends on, from one agent of GET /api/v1/agents."""

    id: str
    status: str = "connected"  # connected, disconnected, unreachable, gone
    mode: str = "active"  # active, deactivated, draining, drained
    total: Mapping[str, float] = field(default_factory=dict)
    used: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_view(cls, view: Mapping[str, Any]) -> AgentSnapshot:
        return cls(
            id=view["id"],
            status=view["status"],
            mode=view["maintenance"]["mode"],
            total=dict(view["resources"]["quantities"]),
            used=dict(view["used"]["quantities"]),
        )

    def free(self, name: str) -> float:
        return self.total.get(name, 0.0) - self.used.get(name, 0.0)


def _amount(value: float) -> str:
    """23000 -> '23,000'; 0.5 -> '0.5'."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def _wants(want: Mapping[str, float]) -> str:
    return " and ".join(f"{name} {_amount(v)}" for name, v in want.items())


def _count(items: Sequence[AgentSnapshot], attr: str) -> str:
    counts: dict[str, int] = {}
    for a in items:
        counts[getattr(a, attr)] = counts.get(getattr(a, attr), 0) + 1
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))


def why_unplaced(want: Mapping[str, float], agents: Sequence[AgentSnapshot]) -> str | None:
    """Why no agent can take a task needing `want` (name -> amount), or None when one
    could (its offer may be with another framework, or on its way)."""
    want = {name: v for name, v in want.items() if v > 0}
    present = [a for a in agents if a.status != "gone"]
    if not present:
        return "no agents registered; start one with `orbiter agent` (or `orbiter up`)"
    connected = [a for a in present if a.status == "connected"]
    if not connected:
        return f"no agent is connected ({_count(present, 'status')})"
    active = [a for a in connected if a.mode == "active"]
    if not active:
        modes = {a.mode for a in connected}
        if len(modes) == 1:
            (mode,) = modes
            return f"every agent is {mode}; `orbiter reactivate AGENT` puts one back"
        return (
            f"every agent is out of service ({_count(connected, 'mode')}); "
            "`orbiter reactivate AGENT` puts one back"
        )
    for name, amount in want.items():
        largest = max(a.total.get(name, 0.0) for a in active)
        if largest < amount:
            if largest == 0:
                return f"no agent offers {name} at all (wanted {_amount(amount)})"
            return f"no agent offers {name} {_amount(amount)}; the largest has {_amount(largest)}"
    if not any(all(a.total.get(n, 0.0) >= v for n, v in want.items()) for a in active):
        return f"no single agent has {_wants(want)} together"
    fits_now = [a for a in active if all(a.free(n) >= v for n, v in want.items())]
    if not fits_now:
        short = [n for n, v in want.items() if max(a.free(n) for a in active) < v]
        most = ", ".join(f"{n} {_amount(max(a.free(n) for a in active))}" for n in short)
        if short:
            return (
                f"the agents are busy: the most free is {most} (wanted {_wants(want)}); "
                "waiting for running tasks to end"
            )
        return f"the agents are busy: none has {_wants(want)} free together; waiting"
    return None
