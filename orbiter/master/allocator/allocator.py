"""The allocator: a pure function from cluster state to the offers to make.

Hierarchical weighted DRF: roles are sorted by their weighted dominant share,
then the frameworks inside the chosen role. Each agent's available resources
go, whole, to the first framework in that order that wants them (not
suppressed, not filtered); shares are updated after each offer so the next
agent goes to whoever is now furthest behind. Reserved resources go only to
their role. Deactivated, draining and disconnected agents are never offered:
the caller leaves them out of `agents`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orbiter.master.allocator.sorter import DRFSorter
from orbiter.resources import Resources

MIN_CPUS = 0.01
MIN_MEM = 32.0


@dataclass(frozen=True, slots=True)
class OfferFilter:
    """Do not offer `resources` (or less) on `agent_id` until `expires`."""

    agent_id: str
    resources: Resources
    expires: float


@dataclass(frozen=True, slots=True)
class AgentView:
    id: str
    available: Resources


@dataclass(frozen=True, slots=True)
class FrameworkView:
    id: str
    roles: tuple[str, ...]
    # Quantities held per role (see Framework.allocated).
    allocated: Mapping[str, Mapping[str, float]]
    suppressed_roles: frozenset[str] = frozenset()
    filters: tuple[OfferFilter, ...] = ()


@dataclass(frozen=True, slots=True)
class OfferPlan:
    framework_id: str
    agent_id: str
    role: str
    resources: Resources


@dataclass(frozen=True, slots=True)
class _Candidate:
    framework: FrameworkView
    role: str
    filters_by_agent: dict[str, list[OfferFilter]] = field(default_factory=dict)


def allocatable(resources: Resources) -> bool:
    """Whether an offer of these resources is worth making (Mesos's minimum)."""
    return resources.scalar("cpus") >= MIN_CPUS or resources.scalar("mem") >= MIN_MEM


def _filtered(filters: Sequence[OfferFilter], resources: Resources, now: float) -> bool:
    return any(f.expires > now and f.resources.contains(resources) for f in filters)


def allocate(
    agents: Sequence[AgentView],
    frameworks: Sequence[FrameworkView],
    total: Mapping[str, float],
    now: float,
    role_weights: Mapping[str, float] | None = None,
) -> list[OfferPlan]:
    """The offers to make now, at most one per agent and role."""
    weights = role_weights or {}
    role_sorter = DRFSorter(total)
    framework_sorters: dict[str, DRFSorter] = {}
    candidates: dict[tuple[str, str], _Candidate] = {}
    for fw in frameworks:
        for role in fw.roles:
            if role in fw.suppressed_roles:
                continue
            if role not in framework_sorters:
                framework_sorters[role] = DRFSorter(total)
                role_sorter.add(role, weights.get(role, 1.0))
            sorter = framework_sorters[role]
            sorter.add(fw.id)
            held = fw.allocated.get(role)
            if held:
                sorter.allocate(fw.id, held)
                role_sorter.allocate(role, held)
            by_agent: dict[str, list[OfferFilter]] = {}
            for f in fw.filters:
                by_agent.setdefault(f.agent_id, []).append(f)
            candidates[(role, fw.id)] = _Candidate(fw, role, by_agent)
    if not candidates:
        return []

    plans: list[OfferPlan] = []
    for agent in agents:
        remaining = agent.available
        for role in role_sorter.sort():
            if not allocatable(remaining):
                break
            offerable = remaining.allocatable_to(role)
            if not allocatable(offerable):
                continue
            sorter = framework_sorters[role]
            for fw_id in sorter.sort():
                cand = candidates[(role, fw_id)]
                if _filtered(cand.filters_by_agent.get(agent.id, ()), offerable, now):
                    continue
                plans.append(OfferPlan(fw_id, agent.id, role, offerable))
                quantities = offerable.quantities()
                sorter.allocate(fw_id, quantities)
                role_sorter.allocate(role, quantities)
                remaining = remaining - offerable
                break
    return plans
