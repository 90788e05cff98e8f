"""Role weights and quota, as values, with the checks that keep them consistent.

Mesos 1.9+ semantics. A role's quota has a *guarantee* (resources the
allocator keeps aside for the role, as headroom, even if that leaves other
roles unoffered) and a *limit* (the role is never allocated beyond it,
counting what it is offered and what it uses). Both bound the role's whole
subtree: `eng`'s limit caps `eng/web` and `eng/db` together. A child's
guarantees must fit in its parent's guarantee, a child's limit in its
parent's limit, and a guarantee in the role's own limit. Pure: the master
calls these before changing anything, so a refusal changes nothing.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from orbiter import roles
from orbiter.errors import OrbiterError
from orbiter.resources import MAX_SCALAR

# Quota is for scalars; these are always known, others once an agent offers them.
STANDARD_NAMES = ("cpus", "mem", "disk", "gpus")
# Non-scalar resources cannot be counted against a quota.
NON_SCALAR_NAMES = ("ports",)


class InvalidQuota(OrbiterError):
    """A quota or weight the master refuses; nothing was changed."""


Quantities = Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Quota:
    """Guarantees and limits of one role, by resource name (absent: none, unlimited)."""

    guarantees: Quantities = field(default_factory=dict)
    limits: Quantities = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not self.guarantees and not self.limits


def format_quantities(q: Quantities) -> str:
    """`cpus:2;mem:1024`, names sorted; "" for none."""
    return ";".join(f"{n}:{v:g}" for n, v in sorted(q.items()))


def parse_quantities(text: str, where: str = "quantities") -> dict[str, float]:
    """`cpus:2;mem:1024` (the CLI's form) as a dict; InvalidQuota says what is wrong."""
    out: dict[str, float] = {}
    for token in filter(None, (t.strip() for t in text.split(";"))):
        name, sep, value = token.partition(":")
        name = name.strip()
        if not sep or not name:
            raise InvalidQuota(f"{where}: {token!r} is not name:amount (e.g. cpus:2;mem:1024)")
        if "(" in name:
            raise InvalidQuota(f"{where}: {name!r}: quota is per role already; drop the '(role)'")
        if name in out:
            raise InvalidQuota(f"{where}: {name!r} given twice")
        try:
            out[name] = float(value)
        except ValueError:
            raise InvalidQuota(f"{where}: {value.strip()!r} for {name!r} is not a number") from None
    return out


def check_quantities(q: Quantities, where: str, known: Iterable[str]) -> None:
    """Names known and scalar, amounts finite and >= 0."""
    known_names = sorted(set(known) | set(STANDARD_NAMES))
    for name, amount in q.items():
        if not isinstance(name, str) or not name:
            raise InvalidQuota(f"{where}: resource names must be non-empty strings")
        if name in NON_SCALAR_NAMES:
            raise InvalidQuota(f"{where}: {name!r} is not a scalar; quota takes scalars only")
        if name not in known_names:
            close = difflib.get_close_matches(name, known_names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InvalidQuota(
                f"{where}: unknown resource {name!r}; {hint}known: {', '.join(known_names)}"
            )
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise InvalidQuota(f"{where}: the amount of {name!r} must be a number")
        if not (math.isfinite(amount) and 0 <= amount <= MAX_SCALAR):
            raise InvalidQuota(
                f"{where}: the amount of {name!r} must be between 0 and {MAX_SCALAR:.0f}, "
                f"got {amount}"
            )


def check_role(role: str, what: str) -> None:
    if role == roles.DEFAULT:
        raise InvalidQuota(f"{what} cannot be set for the default role '*'; name a role")
    why = roles.problem(role)
    if why is not None:
        raise InvalidQuota(f"bad role {role!r}: {why}")


def check_weight(role: str, weight: object) -> float:
    check_role(role, "a weight")
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise InvalidQuota(f"the weight of {role!r} must be a number, got {weight!r}")
    if not (math.isfinite(weight) and 0 < weight <= 1e6):
        raise InvalidQuota(f"the weight of {role!r} must be > 0 and at most 1e6, got {weight}")
    return float(weight)


def _exceeds(small: Quantities, big: Quantities) -> list[str]:
    """Names where `small` asks for more than `big` allows (absent in big: unlimited)."""
    return [n for n, v in sorted(small.items()) if n in big and v > big[n] + 1e-9]


def _nearest_guaranteed(role: str, quotas: Mapping[str, Quota]) -> str | None:
    for ancestor in reversed(roles.ancestors(role)):
        if ancestor in quotas and quotas[ancestor].guarantees:
            return ancestor
    return None


def _nearest_limit(role: str, name: str, quotas: Mapping[str, Quota]) -> str | None:
    for ancestor in reversed(roles.ancestors(role)):
        if ancestor in quotas and name in quotas[ancestor].limits:
            return ancestor
    return None


def check_quotas(
    quotas: Mapping[str, Quota],
    total: Quantities,
    force: bool = False,
) -> None:
    """The whole set of quotas after a change: consistent, or InvalidQuota saying why.

    Checked: guarantee <= limit per role, and within every ancestor's limit; a
    child's limit within its nearest ancestor's limit of that resource; the
    guarantees of a role's nearest guaranteed descendants together within its
    guarantee (an ancestor without a guarantee constrains nothing); and,
    unless `force`, the topmost guarantees together within the cluster's
    total (Mesos's capacity check).
    """
    for role, q in sorted(quotas.items()):
        over = _exceeds(q.guarantees, q.limits)
        if over:
            raise InvalidQuota(
                f"role {role!r}: the guarantee of {', '.join(over)} is above its limit "
                f"({format_quantities(q.guarantees)} > {format_quantities(q.limits)})"
            )
        for name in sorted(set(q.limits) | set(q.guarantees)):
            parent = _nearest_limit(role, name, quotas)
            if parent is None:
                continue
            cap = quotas[parent].limits[name]
            mine = q.limits.get(name, q.guarantees.get(name, 0.0))
            if mine > cap + 1e-9:
                what = "limit" if name in q.limits else "guarantee"
                raise InvalidQuota(
                    f"role {role!r}: its {what} of {name} ({mine:g}) is above its parent "
                    f"{parent!r}'s limit ({cap:g}): a parent's limit bounds its subtree"
                )
    children: dict[str | None, dict[str, float]] = {}
    for role, q in quotas.items():
        if not q.guarantees:
            continue
        sums = children.setdefault(_nearest_guaranteed(role, quotas), {})
        for n, v in q.guarantees.items():
            sums[n] = sums.get(n, 0.0) + v
    for parent, sums in sorted(children.items(), key=lambda kv: kv[0] or ""):
        if parent is None:
            continue
        own = quotas[parent].guarantees
        over = sorted(n for n, v in sums.items() if v > own.get(n, 0.0) + 1e-9)
        if over:
            raise InvalidQuota(
                f"the guarantees of {parent!r}'s subroles come to {format_quantities(sums)}, "
                f"more than {parent!r}'s own guarantee ({format_quantities(own)}) for "
                f"{', '.join(over)}: a child's guarantee must fit its parent's"
            )
    if not force:
        top = children.get(None, {})
        over = [n for n, v in sorted(top.items()) if v > total.get(n, 0.0) + 1e-9]
        if over:
            have = format_quantities({n: total.get(n, 0.0) for n in over})
            raise InvalidQuota(
                f"the guarantees come to {format_quantities({n: top[n] for n in over})}, "
                f"more than the cluster has ({have}); add agents, or force it "
                "(force: true, `--force`) to hold the headroom anyway"
            )
