"""How much one client may ask of the master: call rates and registry caps (pure).

The rates (`api_rate`, `api_burst`) are enforced by the shell per principal@host
(`orbiter.security.bindings.ApiLimiter`); the caps by the state machine, before it
changes anything, so one principal cannot fill the registry every master keeps and
writes on each change:

- frameworks registered (not torn down) per authenticated principal;
- agents admitted (not removed) per authenticated principal;
- silences active or pending, whoever made them.

Unauthenticated callers (the single-node default, loopback only) have no per-principal
caps: there everyone on the host is one trusted user. Set under `master:` in the
configuration file.
"""

from __future__ import annotations

from dataclasses import dataclass

from orbiter.errors import Code, OrbiterError


class CapReached(OrbiterError):
    """A create that would take a principal (or the cluster) over a registry cap;
    `cap` names the setting."""

    code = Code.RESOURCE_EXHAUSTED

    def __init__(self, message: str, cap: str) -> None:
        super().__init__(message)
        self.cap = cap


@dataclass(frozen=True)
class Limits:
    api_rate: float = 500.0
    """API calls per second per principal@host, after the burst; 0: no limit. A busy
    framework makes one Accept per offer and one Acknowledge per UPDATE event: hundreds
    a second while it launches thousands of tasks."""
    api_burst: float = 2000.0
    """API calls a client may make at once (a framework answering one offer per agent)."""
    max_frameworks_per_principal: int = 100
    max_agents_per_principal: int = 10_000
    """All agents often share one principal: at least the cluster's size."""
    max_silences: int = 10_000

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong) for each value that cannot be used."""
        out = []
        if not self.api_rate >= 0:
            out.append(("api_rate", f"must be a number >= 0 (0: no limit), got {self.api_rate}"))
        if not self.api_burst >= 1:
            out.append(("api_burst", f"must be a number >= 1, got {self.api_burst}"))
        for key in ("max_frameworks_per_principal", "max_agents_per_principal", "max_silences"):
            value = getattr(self, key)
            if value < 1:
                out.append((key, f"must be a whole number >= 1, got {value}"))
        return out


def check_new_framework(limits: Limits, principal: str, registered: int) -> None:
    """Refuse a principal's new framework when it has `registered` at the cap already."""
    cap = limits.max_frameworks_per_principal
    if principal and registered >= cap:
        raise CapReached(
            f"principal {principal!r} has {registered} frameworks registered, the most one "
            f"principal may have (master.max_frameworks_per_principal = {cap}); tear down "
            "frameworks it no longer needs (Teardown), or subscribe again with an existing "
            "framework id",
            "max_frameworks_per_principal",
        )


def check_new_agent(limits: Limits, principal: str, registered: int) -> None:
    """Refuse a principal's new agent when it has `registered` at the cap already."""
    cap = limits.max_agents_per_principal
    if principal and registered >= cap:
        raise CapReached(
            f"principal {principal!r} has {registered} agents registered, the most one "
            f"principal may have (master.max_agents_per_principal = {cap}); remove agents "
            "that are gone (`orbiter agents remove AGENT`), re-register existing ones with their "
            "--work-dir, or raise the cap",
            "max_agents_per_principal",
        )


def check_new_silence(limits: Limits, live: int) -> None:
    """Refuse a new silence when `live` (active or pending) silences are at the cap."""
    cap = limits.max_silences
    if live >= cap:
        raise CapReached(
            f"{live} silences are active or pending, the most this master keeps "
            f"(master.max_silences = {cap}); expire silences no longer needed "
            "(`orbiter silence expire ID`, amtool silence expire) and retry",
            "max_silences",
        )
