"""The allocator: a pure function from cluster state to the offers to make.

Hierarchical weighted DRF: roles are sorted level by level by their weighted
dominant share (a parent's share is its subtree's), then the frameworks
inside the chosen role. Each agent's available resources go to the first
framework in that order that wants them (not suppressed, not filtered);
shares are updated after each agent so the next goes to whoever is now
furthest behind. Reserved resources go only to their role and its subroles.
Deactivated, draining and disconnected agents are never offered: the caller
leaves them out of `agents`.

Quota, as in Mesos 1.9+, in two stages:

1. Guarantees first: roles whose subtree holds less than a guarantee are
   offered what brings them up to it (scalars cut to what is missing).
2. Then everyone, in DRF order, while the unreserved resources left stay
   enough for the guarantees still unmet (the headroom): what would eat
   into it is held back, even if that leaves a role unoffered.

In both, a role is never offered beyond its limit, nor beyond any
ancestor's, counting what its subtree is offered and uses and the
reservations nobody holds yet. A role offered part of an agent in the first
stage is not offered that agent again in the second (one offer per agent
and role).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orbiter import roles as role_names
from orbiter.master.allocator.sorter import DRFSorter, RoleSorter
from orbiter.master.quota import Quota
from orbiter.resources import Resources

MIN_CPUS = 0.01
MIN_MEM = 32.0
_DUST = 1e-9


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
    # A disconnected framework is offered nothing, but what it holds still counts.
    connected: bool = True


@dataclass(frozen=True, slots=True)
class OfferPlan:
    framework_id: str
    agent_id: str
    role: str
    resources: Resources


def allocatable(resources: Resources) -> bool:
    """Whether an offer of these resources is worth making (Mesos's minimum)."""
    return resources.scalar("cpus") >= MIN_CPUS or resources.scalar("mem") >= MIN_MEM


def _worth(cpus: float, mem: float, caps: Mapping[str, float]) -> bool:
    """Whether unreserved `cpus` and `mem`, cut to `caps`, would still make an offer."""
    return (
        min(cpus, caps.get("cpus", cpus)) >= MIN_CPUS or min(mem, caps.get("mem", mem)) >= MIN_MEM
    )


def _filtered(filters: Sequence[OfferFilter], resources: Resources, now: float) -> bool:
    # Most often the agent is as it was when declined: equality is the cheap answer.
    return any(
        f.expires > now and (f.resources == resources or f.resources.contains(resources))
        for f in filters
    )


def _add(into: dict[str, float], quantities: Mapping[str, float], sign: float = 1.0) -> None:
    for name, q in quantities.items():
        into[name] = into.get(name, 0.0) + sign * q


def _cut(resources: Resources, caps: Mapping[str, float]) -> Resources:
    """`resources` with each unreserved scalar named in `caps` cut down to its cap."""
    if not caps or all(resources.scalar(name) <= cap for name, cap in caps.items()):
        return resources
    values: dict[tuple[str, str], object] = {}
    for (name, role), value in resources.items():
        cap = caps.get(name)
        if cap is not None and not role and isinstance(value, float):
            value = min(value, max(cap, 0.0))
            value = int(value * 1000 + _DUST) / 1000  # never round up past a cap
            if value <= 0:
                continue
        values[(name, role)] = value
    return Resources(values)  # type: ignore[arg-type]


@dataclass(slots=True)
class _Candidate:
    framework: FrameworkView
    filters_by_agent: dict[str, list[OfferFilter]] = field(default_factory=dict)


class _Quotas:
    """What quota allows each role now, kept up to date as offers are made."""

    def __init__(
        self,
        quotas: Mapping[str, Quota],
        held: Mapping[str, Mapping[str, float]],
        agents: Sequence[AgentView],
    ) -> None:
        self.quotas = quotas
        # Per role with a quota: what its subtree consumes (held + unheld reservations).
        self.consumed: dict[str, dict[str, float]] = {r: {} for r in quotas}
        # Unreserved resources on offer this cycle, for the headroom.
        self.unreserved: dict[str, float] = {}
        for role, quantities in held.items():
            for node in role_names.lineage(role):
                if node in self.consumed:
                    _add(self.consumed[node], quantities)
        for agent in agents:
            available = agent.available
            _add(self.unreserved, available.unreserved().quantities())
            for role in available.roles() - {""}:
                for node in role_names.lineage(role):
                    if node in self.consumed:
                        _add(self.consumed[node], available.reserved(role).quantities())
        # Each guaranteed role's nearest guaranteed descendants: theirs come out of its own.
        self.children: dict[str, list[str]] = {}
        # The topmost roles with a guarantee: theirs cover their subtrees'.
        self.tops: list[str] = []
        for role, q in sorted(quotas.items()):
            if not q.guarantees:
                continue
            above = [a for a in role_names.ancestors(role) if a in quotas and quotas[a].guarantees]
            if above:
                self.children.setdefault(above[-1], []).append(role)
            else:
                self.tops.append(role)
        self._lineages: dict[str, list[str]] = {}
        self._tops: dict[str, str | None] = {}
        # What the unmet guarantees need, over all top guaranteed roles: the headroom.
        self.required: dict[str, float] = {}
        self._require()

    def _require(self) -> None:
        required: dict[str, float] = {}
        for top in self.tops:
            for name in self.quotas[top].guarantees:
                required[name] = required.get(name, 0.0) + self._gap(top, name)
        self.required = {n: q for n, q in required.items() if q > _DUST}

    def lineage(self, role: str) -> list[str]:
        """The role and its ancestors that have a quota, top first."""
        line = self._lineages.get(role)
        if line is None:
            line = self._lineages[role] = [r for r in role_names.lineage(role) if r in self.quotas]
        return line

    def _top(self, role: str) -> str | None:
        if role not in self._tops:
            self._tops[role] = next((t for t in self.tops if role_names.is_within(role, t)), None)
        return self._tops[role]

    def _gap(self, role: str, name: str) -> float:
        return max(
            self.quotas[role].guarantees.get(name, 0.0) - self.consumed[role].get(name, 0.0), 0.0
        )

    def unmet(self, role: str) -> dict[str, float]:
        """What `role` may still take for the guarantees above it: the smallest gap per name.

        Guaranteed subroles' gaps are set aside within their parent's: `eng`'s
        guarantee goes to `eng/db` only where `eng/web`'s own does not claim it.
        """
        need: dict[str, float] = {}
        line = self.lineage(role)
        for r in line:
            for name in self.quotas[r].guarantees:
                gap = self._gap(r, name) - sum(
                    self._gap(c, name) for c in self.children.get(r, ()) if c not in line
                )
                need[name] = min(need.get(name, gap), gap)
        return {n: q for n, q in need.items() if q > _DUST}

    def caps(self, role: str, guaranteed: Mapping[str, float] | None = None) -> dict[str, float]:
        """How much of each unreserved scalar `role` may be offered now.

        Limits of the role and its ancestors; and the headroom: what the unmet
        guarantees of other subtrees need stays unoffered. `guaranteed` (the
        first stage) is exempt from the headroom: it is the headroom.
        """
        caps: dict[str, float] = {}
        for r in self.lineage(role):
            consumed = self.consumed[r]
            for name, limit in self.quotas[r].limits.items():
                room = limit - consumed.get(name, 0.0)
                caps[name] = min(caps.get(name, room), room)
        top = self._top(role) if self.required else None
        for name, need in self.required.items():
            if guaranteed is not None and name in guaranteed:
                room = guaranteed[name]
            else:
                own = self._gap(top, name) if top is not None else 0.0
                room = self.unreserved.get(name, 0.0) - (need - own)
            caps[name] = min(caps.get(name, room), room)
        if guaranteed is not None:
            for name, need in guaranteed.items():
                caps[name] = min(caps.get(name, need), need)
        return caps

    def offered(self, role: str, resources: Resources) -> None:
        """`role` is offered `resources`: its unreserved part counts now, and is gone."""
        unreserved = resources.unreserved().quantities()
        for r in self.lineage(role):
            _add(self.consumed[r], unreserved)
        _add(self.unreserved, unreserved, -1.0)
        if self.required:
            self._require()


def allocate(
    agents: Sequence[AgentView],
    frameworks: Sequence[FrameworkView],
    total: Mapping[str, float],
    now: float,
    role_weights: Mapping[str, float] | None = None,
    quotas: Mapping[str, Quota] | None = None,
) -> list[OfferPlan]:
    """The offers to make now, at most one per agent and role."""
    held: dict[str, dict[str, float]] = {}
    framework_sorters: dict[str, DRFSorter] = {}
    candidates: dict[tuple[str, str], _Candidate] = {}
    for fw in frameworks:
        for role, quantities in fw.allocated.items():
            if quantities:
                _add(held.setdefault(role, {}), quantities)
        if not fw.connected:
            continue
        by_agent: dict[str, list[OfferFilter]] = {}
        for f in fw.filters:
            if f.expires > now:
                by_agent.setdefault(f.agent_id, []).append(f)
        for role in fw.roles:
            if role in fw.suppressed_roles:
                continue
            sorter = framework_sorters.get(role)
            if sorter is None:
                sorter = framework_sorters[role] = DRFSorter(total)
            sorter.add(fw.id)
            own = fw.allocated.get(role)
            if own:
                sorter.allocate(fw.id, own)
            candidates[(role, fw.id)] = _Candidate(fw, by_agent)
    if not candidates:
        return []
    role_sorter = RoleSorter(total, role_weights or {}, framework_sorters, held)
    quota = _Quotas(quotas, held, agents) if quotas else None

    plans: list[OfferPlan] = []
    remaining = {agent.id: agent.available for agent in agents}
    offered_in_stage_1: set[tuple[str, str]] = set()
    # Roles offered something on the agent at hand: their shares move once it is done.
    changed: list[tuple[str, dict[str, float]]] = []

    def offer(agent_id: str, resources: Resources, role: str) -> bool:
        """Offer to the first framework of `role` that wants `resources` on this agent."""
        sorter = framework_sorters[role]
        for fw_id in sorter.ordered():
            filters = candidates[(role, fw_id)].filters_by_agent.get(agent_id)
            if filters and _filtered(filters, resources, now):
                continue
            plans.append(OfferPlan(fw_id, agent_id, role, resources))
            quantities = resources.quantities()
            sorter.allocate(fw_id, quantities)
            changed.append((role, quantities))
            remaining[agent_id] = remaining[agent_id] - resources
            if quota is not None:
                quota.offered(role, resources)
            return True
        return False

    if quota is not None and quota.tops:
        guaranteed = [r for r in framework_sorters if quota.unmet(r)]
        stage_1 = RoleSorter(total, role_weights or {}, guaranteed, held)
        met: list[str] = []
        for agent in agents:
            for role in stage_1.ordered():
                left = remaining[agent.id]
                if not allocatable(left):
                    break
                need = quota.unmet(role)
                if not need:
                    met.append(role)  # consumption only grows: it stays met this cycle
                    continue
                offerable = _cut(left.allocatable_to(role), quota.caps(role, need))
                if not any(offerable.scalar(n) > 0 for n in need) or not allocatable(offerable):
                    continue
                if offer(agent.id, offerable, role):
                    offered_in_stage_1.add((agent.id, role))
            for role, quantities in changed:
                stage_1.allocate(role, quantities)
                role_sorter.allocate(role, quantities)
            changed.clear()
            for role in met:
                stage_1.remove(role)
            met.clear()
            if not quota.required:
                break

    for agent in agents:
        left = remaining[agent.id]
        if not allocatable(left):
            continue
        # Without reservations every role may be offered the same: skip the per-role copy.
        plain = not left.has_reserved()
        if quota is not None:
            left_cpus, left_mem = left.scalar("cpus"), left.scalar("mem")
        for role in role_sorter.ordered():
            if offered_in_stage_1 and (agent.id, role) in offered_in_stage_1:
                continue
            offerable = left if plain else left.allocatable_to(role)
            if quota is not None:
                caps = quota.caps(role)
                if plain and caps and not _worth(left_cpus, left_mem, caps):
                    continue  # a role at its limit: known without cutting a copy
                offerable = _cut(offerable, caps)
            if offerable is not left and not allocatable(offerable):  # `left` is, checked above
                continue
            if offer(agent.id, offerable, role):
                left = remaining[agent.id]
                if not allocatable(left):
                    break
                plain = not left.has_reserved()
                if quota is not None:
                    left_cpus, left_mem = left.scalar("cpus"), left.scalar("mem")
        for role, quantities in changed:
            role_sorter.allocate(role, quantities)
        changed.clear()
    return plans
