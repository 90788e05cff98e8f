"""Satellite's safety policy: which agent actions are taken, refused or only reported.

`decide` is a pure function. Plain data and `now` go in (the policy's config and its own
history, a snapshot of every agent, the action requests of the alerts firing now); the
new history, the decisions and the cluster alerts come out. It reads no clock and does
no I/O; the Satellite loop applies TAKEN decisions through the master's maintenance
calls before the next evaluation, archives every decision as an event and feeds the
cluster alerts to the alert pipeline.

Semantics, in the order `decide` applies them:

- **Requests.** `firing` is the full set of requests of the alerts firing *now*; an
  alert that stops firing simply stops appearing. Several requests for one agent
  collapse into the strongest (drain beats deactivate; on a tie, the first rule by
  name). Agents are handled in id order, so the outcome does not depend on the order
  of `firing`.
- **The budget: who counts.** `AgentSnapshot.status` is the master's view of the
  agent's link: "connected", "disconnected" (link lost, the master waits for it),
  "recovering" (known from the registry after a master failover, not re-registered
  yet), "unreachable" (the master gave up on it and reported its tasks lost) or
  "gone" (removed). An agent counts as *out of service* when its maintenance state is
  not "active" (whoever took it out: Satellite, an operator) *or* it is unreachable.
  A disconnected or recovering agent is in service: the master has not given up on
  it, and counting it would let a master failover (every agent is "recovering" for a
  few seconds) or a network blip fill the budget, refuse every take-out and turn a
  couple of firing alerts into a panic freeze. Gone agents are not counted at all,
  neither as out nor in the total, so machines that died for good and were removed
  cannot switch automation off forever; a request for one is refused. The total (the
  denominator of `max_unhealthy_fraction`) is every agent that is not gone. Every
  decision, taken or refused, ends with what was counted, e.g. "budget: 2 of 10
  agents out of service (deactivated: a1 by satellite; unreachable: a7); max 30%
  allows 3; not counted: 1 recovering".
- **Nothing to do.** An agent whose maintenance state is already as strong as the
  request (deactivated/draining/drained for deactivate; draining/drained for drain)
  gets no decision, so a long-firing alert does not spam events. A deactivated agent
  that Satellite took out may be upgraded to drain.
- **Not Satellite's.** An agent out of service by anyone but Satellite
  (`taken_out_by != "satellite"`) is never touched: no upgrade, no reactivation.
- **Pins.** An unexpired operator pin beats automation. Pinned "active": never taken
  out, and if Satellite has it out, it is reactivated at once (no cool-down, no flap
  hold). Pinned "inactive": never reactivated (Satellite may still take it out, which
  agrees with the pin). A pin whose `until` has passed is ignored.
- **Panic freeze.** Before acting, the policy counts the requests that would put an
  in-service agent out (known agent, not already out, not the operator's, not pinned
  active). If there are more of them than the fraction limit leaves room for, and at
  least two (a single request that does not fit is an ordinary fraction refusal), it
  acts on none: each is REFUSED "panic freeze: ..." and the cluster alert
  `SatellitePanicFreeze` is raised. The freeze is sticky: it holds, for every take-out
  including drain upgrades, until an evaluation sees no such request at all. A flood of
  alerts means the signal is suspect (a bad rule, a broken scrape, a partition), and
  acting on the tail of the flood as it drains away is what the freeze is there to
  prevent. To lift it by hand, an operator deals with the remaining agents (takes them
  out, or pins them active) or fixes the rule.
- **Limits on each take-out** (deactivate, drain, or drain upgrade), checked in this
  order, the first one that fails is named in the refusal with its numbers:
  1. fraction: after the action, at most floor(max_unhealthy_fraction x agents) agents
     may be out of service. This holds even when the action would not change the count
     (an unreachable agent, an upgrade): when the cluster is already over the limit,
     Satellite adds nothing, so that a healed partition does not come back with its
     agents deactivated.
  2. minimum: after the action, at least `min_active_agents` agents are in service
     (maintenance active and not unreachable, as above).
  3. rate: at most `max_actions_per_window` take-outs in any window of `window_seconds`
     (an action at `now - window_seconds` is just outside). Reactivations do not count:
     the limit guards against removing capacity too fast, and reactivations restore it;
     counting them would let a wave of recoveries starve an urgent take-out. Flap
     damping and the cool-down are what limit reactivations.
  Take-outs taken earlier in the same evaluation count against the next one's limits.
  Reactivations decided in the same evaluation free no room until the next snapshot
  shows them applied.
- **Reactivation.** Only agents Satellite took out. An agent becomes eligible once no
  request has fired for it for `cooldown_seconds` continuously (the timer starts at the
  first evaluation that sees it out with no request; a request resets it; a restarted
  Satellite with an empty state starts the timer afresh). The fraction and minimum
  limits do not apply (reactivating only makes the cluster healthier), nor does the
  panic freeze. The decision's `rule` is the rule that last asked for the agent to go
  out, when known.
- **Flap damping.** Each reactivation closes one out-and-back cycle. An agent with
  `flap_limit` reactivations in the last `flap_window_seconds` stays out (REFUSED
  "flapping: ...", cluster alert `SatelliteAgentFlapping` naming it) until the oldest
  of those cycles leaves the window, so an agent comes back at most `flap_limit` times
  per window, or until an operator pins it active.
- **Dry run.** The same reasoning, with DRY_RUN where the outcome would be TAKEN;
  refusals stay REFUSED. Within one evaluation, the dry-run actions count against the
  next one's limits exactly as real ones would. Nothing pretends they happened: the
  history records no action, so each evaluation answers "what would Satellite do now,
  with the cluster as it is". Observations (cool-down timers, the freeze) are still kept.
- **Events, once.** Every TAKEN decision is emitted. A REFUSED or DRY_RUN decision is
  emitted when it first appears for an (agent, action) or when its rule or the limit
  that stops it changes; while it stays the same it is not repeated, and the request is
  still re-examined every evaluation, so it is taken as soon as the limits allow.
- **Cluster alerts are levels.** `PolicyResult.alerts` holds the alerts true *now*
  (the freeze, each agent held for flapping), every evaluation, like a rule's output:
  they resolve when they stop appearing. A flapping alert carries the agent's id.

The policy trusts that a TAKEN decision is applied before the next evaluation: if the
master refused it, the agent still looks untouched, the request is decided again, and
the retry counts against the rate limit once more. `PolicyState.to_dict`/`from_dict`
give a JSON form so the shell can keep the history (rate window, flap cycles, cool-down
timers, the freeze) across a restart or a leader failover; without it, the cool-downs
start afresh and the rate and flap history is forgotten.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from orbiter.durations import time_left
from orbiter.satellite.rules import format_duration

SATELLITE = "satellite"
"""The `taken_out_by` value of agents Satellite took out itself."""

MAINTENANCE_STATES = ("active", "deactivated", "draining", "drained")
AGENT_STATUSES = ("connected", "disconnected", "recovering", "unreachable", "gone")
"""The master's AgentStatus values; see "The budget" in the module doc for what counts."""
PIN_STATES = ("active", "inactive")

PANIC_ALERT = "SatellitePanicFreeze"
FLAPPING_ALERT = "SatelliteAgentFlapping"


class Action(Enum):
    DEACTIVATE = "deactivate"
    DRAIN = "drain"
    REACTIVATE = "reactivate"


class Outcome(Enum):
    TAKEN = "taken"
    REFUSED = "refused"
    DRY_RUN = "dry-run"


_STRENGTH = {"active": 0, "deactivated": 1, "draining": 2, "drained": 2}
_ACTION_STRENGTH = {Action.DEACTIVATE: 1, Action.DRAIN: 2}


class InvalidPolicyConfig(ValueError):
    """A policy setting out of range; the message names the field and what it expects."""


@dataclass(frozen=True)
class Pin:
    """An operator override: keep the agent in `state` until the epoch time `until`."""

    state: str
    until: float
    reason: str

    def __post_init__(self) -> None:
        if self.state not in PIN_STATES:
            raise ValueError(f"pin state must be 'active' or 'inactive', got {self.state!r}")

    def holds(self, now: float) -> bool:
        return now < self.until


@dataclass(frozen=True)
class AgentSnapshot:
    """What the policy needs to know about one agent at evaluation time.

    `status` is the master's AgentStatus value (one of AGENT_STATUSES).
    """

    id: str
    maintenance: str
    taken_out_by: str
    status: str = "connected"
    pin: Pin | None = None

    def __post_init__(self) -> None:
        if self.maintenance not in MAINTENANCE_STATES:
            raise ValueError(
                f"agent {self.id}: maintenance must be one of {', '.join(MAINTENANCE_STATES)},"
                f" got {self.maintenance!r}"
            )
        if self.status not in AGENT_STATUSES:
            raise ValueError(
                f"agent {self.id}: status must be one of {', '.join(AGENT_STATUSES)},"
                f" got {self.status!r}"
            )

    @property
    def connected(self) -> bool:
        return self.status == "connected"

    @property
    def in_service(self) -> bool:
        """Counted as in service by the budget: active and not given up on by the master."""
        return self.maintenance == "active" and self.status not in ("unreachable", "gone")

    def pinned(self, state: str, now: float) -> Pin | None:
        """The operator's pin to `state`, if one is in force at `now`."""
        pin = self.pin
        return pin if pin is not None and pin.state == state and pin.holds(now) else None


@dataclass(frozen=True)
class ActionRequest:
    """A firing alert with `action` and `agent` labels; `reason` is its summary."""

    agent_id: str
    action: Action
    rule: str
    reason: str

    def __post_init__(self) -> None:
        if self.action not in _ACTION_STRENGTH:
            raise ValueError(
                f"an alert can ask for deactivate or drain, not {self.action.value}: "
                "Satellite reactivates on its own once the alert has resolved"
            )


@dataclass(frozen=True)
class PolicyConfig:
    max_unhealthy_fraction: float = 0.3
    max_actions_per_window: int = 5
    window_seconds: float = 600
    min_active_agents: int = 1
    cooldown_seconds: float = 300
    flap_limit: int = 3
    flap_window_seconds: float = 3600
    dry_run: bool = False

    def validate(self) -> None:
        """Raise InvalidPolicyConfig naming the first bad field and what it expects."""

        def number(name: str, *, positive: bool) -> float:
            v = getattr(self, name)
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or v < 0 or (positive and v == 0):
                want = "a number of seconds > 0" if positive else "a number of seconds >= 0"
                raise InvalidPolicyConfig(f"{name} must be {want}, got {v!r}")
            return float(v)

        def count(name: str, least: int) -> None:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < least:
                raise InvalidPolicyConfig(f"{name} must be a whole number >= {least}, got {v!r}")

        f = self.max_unhealthy_fraction
        if (
            isinstance(f, bool)
            or not isinstance(f, int | float)
            or not math.isfinite(f)
            or not 0 <= f <= 1
        ):
            raise InvalidPolicyConfig(
                f"max_unhealthy_fraction must be a number from 0 to 1 (0.3 = 30%), got {f!r}"
            )
        count("max_actions_per_window", 0)
        number("window_seconds", positive=True)
        count("min_active_agents", 0)
        number("cooldown_seconds", positive=False)
        count("flap_limit", 1)
        number("flap_window_seconds", positive=True)
        if not isinstance(self.dry_run, bool):
            raise InvalidPolicyConfig(f"dry_run must be true or false, got {self.dry_run!r}")


@dataclass(frozen=True)
class ActionRecord:
    """An action Satellite really took (dry-run actions are never recorded)."""

    time: float
    agent_id: str
    action: Action


@dataclass(frozen=True)
class Tracked:
    """An agent Satellite has out: the rule that last asked, and since when none has."""

    rule: str
    quiet_since: float | None


@dataclass(frozen=True)
class PolicyState:
    """The policy's memory between evaluations; `decide` never mutates it.

    history: actions taken within the longer of the rate and flap windows.
    tracked: agents Satellite has out, by id.
    reported: (agent, action) -> (rule, why) of the refusals and dry runs already
    emitted, so that they are not repeated every evaluation.
    frozen: the panic freeze holds.
    """

    history: tuple[ActionRecord, ...] = ()
    tracked: Mapping[str, Tracked] = field(default_factory=dict)
    reported: Mapping[tuple[str, Action], tuple[str, str]] = field(default_factory=dict)
    frozen: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, so the shell can keep the history across a leader failover."""
        return {
            "history": [
                {"time": r.time, "agent": r.agent_id, "action": r.action.value}
                for r in self.history
            ],
            "tracked": {
                a: {"rule": t.rule, "quiet_since": t.quiet_since} for a, t in self.tracked.items()
            },
            "reported": [
                {"agent": a, "action": act.value, "rule": rule, "why": why}
                for (a, act), (rule, why) in self.reported.items()
            ],
            "frozen": self.frozen,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyState:
        return cls(
            history=tuple(
                ActionRecord(float(r["time"]), r["agent"], Action(r["action"]))
                for r in data.get("history", ())
            ),
            tracked={
                a: Tracked(t["rule"], t["quiet_since"]) for a, t in data.get("tracked", {}).items()
            },
            reported={
                (r["agent"], Action(r["action"])): (r["rule"], r["why"])
                for r in data.get("reported", ())
            },
            frozen=bool(data.get("frozen", False)),
        )


@dataclass(frozen=True)
class Decision:
    """One event: what the policy decided about one agent, and why, with the numbers."""

    time: float
    agent_id: str
    action: Action
    rule: str
    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class ClusterAlert:
    name: str
    summary: str
    agent_id: str = ""


@dataclass(frozen=True)
class PolicyResult:
    state: PolicyState
    decisions: tuple[Decision, ...]
    alerts: tuple[ClusterAlert, ...]


def allowed_out(config: PolicyConfig, total: int) -> int:
    """How many of `total` agents may be out of service at once."""
    # The epsilon keeps 0.29 x 100 at 29, not 28.999999999999996 -> 28.
    return math.floor(config.max_unhealthy_fraction * total + 1e-9)


@dataclass(frozen=True)
class Budget:
    """How much of the fraction and rate limits is used now (the web UI's overview)."""

    total: int
    allowed: int
    out: tuple[str, ...]
    satellite_out: tuple[str, ...]
    actions_in_window: int
    max_actions_per_window: int
    window_seconds: float
    min_active_agents: int
    frozen: bool
    dry_run: bool

    @property
    def room(self) -> int:
        """How many more agents Satellite may take out before the fraction limit refuses."""
        return max(0, self.allowed - len(self.out))


def budget(
    config: PolicyConfig, state: PolicyState, agents: Sequence[AgentSnapshot], now: float
) -> Budget:
    """The budget as `decide` would count it at `now` (gone agents left out)."""
    counted = [a for a in agents if a.status != "gone"]
    out = tuple(sorted(a.id for a in counted if not a.in_service))
    return Budget(
        total=len(counted),
        allowed=allowed_out(config, len(counted)),
        out=out,
        satellite_out=tuple(sorted(a.id for a in counted if a.id in state.tracked)),
        actions_in_window=sum(
            1
            for r in state.history
            if r.action is not Action.REACTIVATE and r.time > now - config.window_seconds
        ),
        max_actions_per_window=config.max_actions_per_window,
        window_seconds=config.window_seconds,
        min_active_agents=config.min_active_agents,
        frozen=state.frozen,
        dry_run=config.dry_run,
    )


def decide(
    config: PolicyConfig,
    state: PolicyState,
    agents: Sequence[AgentSnapshot],
    firing: Sequence[ActionRequest],
    now: float,
) -> PolicyResult:
    """Decide which requested actions and reactivations happen now (see module doc)."""
    config.validate()
    run = _Run(config, state, agents, now)
    requests = _strongest(firing)
    run.take_outs(requests)
    run.reactivations(requests)
    return run.result()


def _strongest(firing: Sequence[ActionRequest]) -> dict[str, ActionRequest]:
    """One request per agent, in agent id order: the strongest, ties to the first rule."""
    best: dict[str, ActionRequest] = {}
    for r in firing:
        cur = best.get(r.agent_id)
        if cur is None or (-_ACTION_STRENGTH[r.action], r.rule) < (
            -_ACTION_STRENGTH[cur.action],
            cur.rule,
        ):
            best[r.agent_id] = r
    return dict(sorted(best.items()))


class _Run:
    """The scratch of one evaluation; only `decide` sees it, so `decide` stays pure."""

    def __init__(
        self, config: PolicyConfig, state: PolicyState, agents: Sequence[AgentSnapshot], now: float
    ) -> None:
        self.config, self.state, self.now = config, state, now
        self.agents: dict[str, AgentSnapshot] = {}
        self.gone: set[str] = set()
        seen: set[str] = set()
        for a in agents:
            if a.id in seen:
                raise ValueError(f"agent {a.id} appears twice in the snapshot")
            seen.add(a.id)
            if a.status == "gone":
                self.gone.add(a.id)
            else:
                self.agents[a.id] = a
        self.total = len(self.agents)
        self.allowed = allowed_out(config, self.total)
        self.out = {a.id for a in self.agents.values() if not a.in_service}
        self.active = self.total - len(self.out)
        self.taken_now: dict[str, Action] = {}
        self._budget: str | None = None
        horizon = now - max(config.window_seconds, config.flap_window_seconds)
        self.history = [r for r in state.history if r.time > horizon]
        self.takeout_times = sorted(
            r.time
            for r in self.history
            if r.action is not Action.REACTIVATE and r.time > now - config.window_seconds
        )
        self.tracked: dict[str, Tracked] = {}
        self.reported: dict[tuple[str, Action], tuple[str, str]] = {}
        self.decisions: list[Decision] = []
        self.alerts: list[ClusterAlert] = []
        self.frozen = False

    # -- emitting

    def emit(
        self, agent_id: str, action: Action, rule: str, outcome: Outcome, why: str, reason: str
    ) -> None:
        if outcome is Outcome.TAKEN and self.config.dry_run:
            outcome, why = Outcome.DRY_RUN, "dry-run"
        if outcome is not Outcome.TAKEN:
            key = (agent_id, action)
            self.reported[key] = (rule, why)
            if self.state.reported.get(key) == (rule, why):
                return
        reason = f"{reason}; {self.budget()}"
        self.decisions.append(Decision(self.now, agent_id, action, rule, outcome, reason))

    def budget(self) -> str:
        """What the fraction limit counts right now, for the end of every decision's reason."""
        if self._budget is not None:
            return self._budget
        out: dict[str, list[str]] = {}
        for agent_id in sorted(self.out):
            a = self.agents[agent_id]
            if agent_id in self.taken_now:
                kind = (
                    "deactivated" if self.taken_now[agent_id] is Action.DEACTIVATE else "draining"
                )
                out.setdefault(kind, []).append(f"{agent_id} by {SATELLITE} (this round)")
            elif a.maintenance != "active":
                who = f"{agent_id} by {a.taken_out_by or 'someone'}"
                if a.status == "unreachable":
                    who += " (unreachable)"
                out.setdefault(a.maintenance, []).append(who)
            else:
                out.setdefault(a.status, []).append(agent_id)
        order = [*MAINTENANCE_STATES, *AGENT_STATUSES]
        counted = "; ".join(f"{k}: {_listed(out[k])}" for k in sorted(out, key=order.index))
        text = f"budget: {len(self.out)} of {self.total} agents out of service"
        if counted:
            text += f" ({counted})"
        text += f"; max {_pct(self.config.max_unhealthy_fraction)} allows {self.allowed}"
        waiting: dict[str, int] = {}
        for a in self.agents.values():
            if a.id not in self.out and a.status in ("disconnected", "recovering"):
                waiting[a.status] = waiting.get(a.status, 0) + 1
        if waiting:
            text += "; not counted: " + ", ".join(f"{n} {s}" for s, n in sorted(waiting.items()))
        if self.gone:
            text += f"; {len(self.gone)} gone agent(s) left out"
        self._budget = text
        return text

    def refuse(self, req: ActionRequest, why: str, reason: str) -> None:
        self.emit(req.agent_id, req.action, req.rule, Outcome.REFUSED, why, reason)

    # -- take-outs

    def take_outs(self, requests: Mapping[str, ActionRequest]) -> None:
        candidates: list[tuple[AgentSnapshot, ActionRequest]] = []
        for agent_id, req in requests.items():
            agent = self.agents.get(agent_id)
            if agent_id in self.gone:
                self.refuse(req, "gone", f"agent {agent_id} is gone (removed from the cluster)")
            elif agent is None:
                self.refuse(req, "unknown-agent", f"no agent {agent_id!r} is registered")
            elif _STRENGTH[agent.maintenance] >= _ACTION_STRENGTH[req.action]:
                continue
            elif agent.maintenance != "active" and agent.taken_out_by != SATELLITE:
                by = agent.taken_out_by or "someone other than Satellite"
                self.refuse(
                    req,
                    "not-satellites",
                    f"agent is {agent.maintenance} by {by}; Satellite only acts on"
                    " agents that are active or that it took out itself",
                )
            elif pin := agent.pinned("active", self.now):
                self.refuse(req, "pinned", _pin_text(pin, self.now))
            else:
                candidates.append((agent, req))

        adding = sum(1 for a, _ in candidates if a.in_service)
        room = self.allowed - len(self.out)
        self.frozen = (self.state.frozen and adding > 0) or adding > max(room, 1)
        if self.frozen:
            summary = (
                f"panic freeze: {adding} in-service agent(s) asked to be taken out, room for"
                f" {max(room, 0)} ({self.allowed} of {self.total} agents may be out at"
                f" {_pct(self.config.max_unhealthy_fraction)}, {len(self.out)} already are);"
                " Satellite takes no agent out until no such request is firing"
            )
            self.alerts.append(ClusterAlert(PANIC_ALERT, summary))
            for _, req in candidates:
                self.refuse(req, "panic", summary)
            return
        for agent, req in candidates:
            self.take_out(agent, req)

    def take_out(self, agent: AgentSnapshot, req: ActionRequest) -> None:
        c = self.config
        adds = agent.in_service
        out_after = len(self.out) + adds
        active_after = self.active - adds
        n = len(self.takeout_times)
        window = _dur(c.window_seconds)
        if out_after > self.allowed:
            share = f"{out_after} of {self.total} agents ({_pct(out_after / self.total)})"
            limit = f"limit is {_pct(c.max_unhealthy_fraction)} ({self.allowed} agents)"
            if adds:
                self.refuse(req, "fraction", f"would put {share} out of service; {limit}")
            else:
                self.refuse(req, "fraction", f"{share} are already out of service; {limit}")
        elif active_after < c.min_active_agents:
            self.refuse(
                req,
                "min-active",
                f"would leave {active_after} active agent(s);"
                f" min_active_agents is {c.min_active_agents}",
            )
        elif n >= c.max_actions_per_window:
            more = ""
            if c.max_actions_per_window:
                oldest = self.takeout_times[-c.max_actions_per_window]
                more = f"; next possible at {_time(oldest + c.window_seconds)}"
            self.refuse(
                req,
                "rate",
                f"rate limit: {n} take-outs in the last {window}, at most"
                f" {c.max_actions_per_window}{more}",
            )
        else:
            fired = f"{req.rule} firing" + (f" ({req.reason})" if req.reason else "")
            self.emit(
                agent.id,
                req.action,
                req.rule,
                Outcome.TAKEN,
                "taken",
                f"{fired}; within limits: {out_after} of {self.total} agents out of"
                f" service after this ({_pct(out_after / self.total)}, limit"
                f" {_pct(c.max_unhealthy_fraction)}), {active_after} active (minimum"
                f" {c.min_active_agents}), take-out {n + 1} of"
                f" {c.max_actions_per_window} in {window}",
            )
            self.out.add(agent.id)
            self.taken_now[agent.id] = req.action
            self._budget = None
            self.active = active_after
            self.takeout_times.append(self.now)
            if not c.dry_run:
                self.history.append(ActionRecord(self.now, agent.id, req.action))
                self.tracked[agent.id] = Tracked(req.rule, None)

    # -- reactivations

    def reactivations(self, requests: Mapping[str, ActionRequest]) -> None:
        c, now = self.config, self.now
        for agent in sorted(self.agents.values(), key=lambda a: a.id):
            if agent.maintenance == "active" or agent.taken_out_by != SATELLITE:
                continue
            prev = self.state.tracked.get(agent.id)
            req = requests.get(agent.id)
            if req is not None:
                track = Tracked(req.rule, None)
            elif prev is not None and prev.quiet_since is not None:
                track = prev
            else:
                track = Tracked(prev.rule if prev is not None else "", now)
            self.tracked[agent.id] = track
            if pin := agent.pinned("active", now):
                self.reactivate(agent, track.rule, _pin_text(pin, now))
                continue
            if track.quiet_since is None or now - track.quiet_since < c.cooldown_seconds:
                continue
            if pin := agent.pinned("inactive", now):
                why = _pin_text(pin, now)
                self.emit(agent.id, Action.REACTIVATE, track.rule, Outcome.REFUSED, "pinned", why)
                continue
            cycles = sorted(
                r.time
                for r in self.history
                if r.agent_id == agent.id
                and r.action is Action.REACTIVATE
                and r.time > now - c.flap_window_seconds
            )
            if len(cycles) >= c.flap_limit:
                until = _time(cycles[-c.flap_limit] + c.flap_window_seconds)
                text = (
                    f"flapping: agent {agent.id} went out and came back {len(cycles)} times"
                    f" in the last {_dur(c.flap_window_seconds)} (flap_limit"
                    f" {c.flap_limit}); kept out until {until}"
                )
                self.emit(
                    agent.id, Action.REACTIVATE, track.rule, Outcome.REFUSED, "flapping", text
                )
                self.alerts.append(ClusterAlert(FLAPPING_ALERT, text, agent.id))
                continue
            quiet = _dur(now - track.quiet_since)
            self.reactivate(
                agent,
                track.rule,
                f"no action alert firing for {quiet} (cool-down"
                f" {_dur(c.cooldown_seconds)}); Satellite took it out",
            )

    def reactivate(self, agent: AgentSnapshot, rule: str, reason: str) -> None:
        self.emit(agent.id, Action.REACTIVATE, rule, Outcome.TAKEN, "taken", reason)
        if not self.config.dry_run:
            self.history.append(ActionRecord(self.now, agent.id, Action.REACTIVATE))
            del self.tracked[agent.id]

    def result(self) -> PolicyResult:
        state = PolicyState(tuple(self.history), self.tracked, self.reported, self.frozen)
        return PolicyResult(state, tuple(self.decisions), tuple(self.alerts))


def _pin_text(pin: Pin, now: float) -> str:
    return f"pinned {pin.state} by operator ({time_left(pin.until, now)}): {pin.reason}"


def _listed(items: Sequence[str], most: int = 5) -> str:
    """The first `most` items, then how many more: a failover must not make a huge event."""
    shown = ", ".join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def _pct(x: float) -> str:
    return f"{x * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _dur(seconds: float) -> str:
    return format_duration(max(0, round(seconds * 1000)))


def _time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
