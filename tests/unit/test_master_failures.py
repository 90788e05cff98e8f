"""Every task ends exactly once, truthfully, as the framework sees it, whatever fails.

A hypothesis state machine drives the real `Master` inside a simulated world
(tests/unit/master_model.py):

- 2-3 agents, each with its own truth (the tasks it runs, how they really
  ended) and unacknowledged status-update queues (the agent's own
  `StatusUpdateManager`: resent until the framework's ack comes back through
  the master). Agents register and re-register with every task they hold
  (terminal but unacknowledged ones too); their tasks finish or fail on their
  own; a kill makes a task KILLED; links drop (the master is told) or go
  silent (it finds out by its timeout); an agent restarts and loses its tasks
  (kill -9 without recovery, same id), restarts and recovers (ended tasks
  resend their end, running ones are reported FAILED), dies for good, or is
  removed by an operator (`Master.remove_agent`, when the master has it).
- 2 frameworks, one PARTITION_AWARE and one not, behaving as the SDK does:
  subscribe and resubscribe with their id, launch on the offers they got,
  acknowledge every update that has a uuid, and reconcile (explicitly, task
  and agent id) every task they believe open after each subscription and
  from time to time.
- The master restarts: a new one recovers from the last registry the shell
  persisted, and every link drops.
- Time passes in small steps and past every timeout in MasterConfig.

Checked after every step:

1. Per (framework, task), at most one terminal state is received; after it
   only the same state again (a reconciliation answer, a resent update, or
   the agent's own update for an end the master already answered with).
2. A terminal state from an agent is how the task really ended; one the
   master makes up is only sent for a task that is not really running on an
   agent that is connected (unreachable, removed, restarted without it, or
   never started).
3. `settle` (a rule, and the end of every run): reconnect everything that
   is alive, run time past every timeout, let updates, acks and
   reconciliation flow; then every launched task has ended in its
   framework's view, or runs on a connected agent and the framework sees it
   RUNNING; no task the framework saw end still runs on a connected agent;
   no agent still retries an update.
4. Resources never go negative; an agent's `used` is the sum of its open
   tasks, `offered` of its offers; a framework holds its tasks plus offers.

The deterministic tests at the end are shrunk examples the machine found.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from master_model import CONFIG, TS, World, timeouts

from orbiter.taskstates import TERMINAL_STATES as TERMINAL

AGENT_FAILURES = {
    "link_drops": World.agent_link_drops,
    "goes_silent": World.agent_partitioned,
    "restarts_without_tasks": World.agent_restarts_without_tasks,
    "restarts_and_recovers": World.agent_restarts_and_recovers,
    "dies": World.agent_dies,
    "is_removed_by_operator": World.operator_removes_agent,
}

AGENT = st.integers(0, 2)
FRAMEWORK = st.integers(0, 1)
PICK = st.integers(0, 7)
# A heartbeat, a few seconds, and just past each timeout the master has.
SECONDS = st.sampled_from(
    sorted({1.0, CONFIG.agent_heartbeat_interval, *(t + 1.0 for t in timeouts(CONFIG))})
)


class MasterUnderFailures(RuleBasedStateMachine):
    world: World

    @initialize(n_agents=st.integers(2, 3))
    def start(self, n_agents: int) -> None:
        self.world = World(n_agents)
        for agent in self.world.agents:
            self.world.agent_connects(agent.index)
        for fw in self.world.frameworks:
            self.world.framework_subscribes(fw.index)

    def _agent(self, i: int) -> int:
        return i % len(self.world.agents)

    # ------------------------------------------------------------ agents

    @rule(i=AGENT)
    def agent_connects(self, i: int) -> None:
        self.world.agent_connects(self._agent(i))

    @rule(i=AGENT)
    def agent_sends_updates(self, i: int) -> None:
        self.world.agent_sends_updates(self._agent(i))

    @rule(pick=PICK, state=st.sampled_from([TS.TASK_FINISHED, TS.TASK_FAILED]))
    def task_ends_on_its_own(self, pick: int, state: int) -> None:
        self.world.task_ends_on_its_own(pick, state)

    @rule(i=AGENT, how=st.sampled_from(sorted(AGENT_FAILURES)))
    def agent_fails(self, i: int, how: str) -> None:
        """One rule for every kind of agent failure, so failures don't crowd out the work."""
        AGENT_FAILURES[how](self.world, self._agent(i))

    # ------------------------------------------------------------ frameworks

    @rule(j=FRAMEWORK)
    def framework_subscribes(self, j: int) -> None:
        self.world.framework_subscribes(j)

    @rule(j=FRAMEWORK)
    def framework_disconnects(self, j: int) -> None:
        self.world.framework_disconnects(j)

    @rule(j=FRAMEWORK, n=st.integers(1, 2))
    def framework_launches(self, j: int, n: int) -> None:
        self.world.framework_launches(j, n)

    @rule(j=FRAMEWORK)
    def framework_acknowledges(self, j: int) -> None:
        self.world.framework_acknowledges(j)

    @rule(j=FRAMEWORK)
    def framework_reconciles(self, j: int) -> None:
        self.world.framework_reconciles(j)

    @rule(j=FRAMEWORK, pick=PICK)
    def framework_kills(self, j: int, pick: int) -> None:
        self.world.framework_kills(j, pick)

    # ------------------------------------------------------------ master and time

    @rule()
    def allocate(self) -> None:
        self.world.allocate()

    @rule(seconds=SECONDS)
    def time_passes(self, seconds: float) -> None:
        self.world.time_passes(seconds)

    @rule()
    def master_restarts(self) -> None:
        self.world.master_restarts()

    @rule()
    def settle(self) -> None:
        self.world.settle()
        unsettled = self.world.unsettled()
        assert not unsettled, "\n".join(unsettled)

    def teardown(self) -> None:
        """Every run ends by settling, so liveness is checked even if `settle` was not drawn."""
        if hasattr(self, "world"):
            self.settle()
            self.frameworks_were_told_one_true_end()

    # ------------------------------------------------------------ invariants

    @invariant()
    def frameworks_were_told_one_true_end(self) -> None:
        assert not self.world.violations, "\n".join(self.world.violations)

    @invariant()
    def resources_add_up(self) -> None:
        problems = self.world.resource_problems()
        assert not problems, "\n".join(problems)


MasterUnderFailures.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=35,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
TestMasterUnderFailures = MasterUnderFailures.TestCase


# ================================================================ found by the machine


def launched_and_running(world: World, framework: int, agent: int = 0) -> str:
    """Launch one task for the framework on the given agent, RUNNING on both sides."""
    # Which agent an offer comes from is the allocator's choice: try a few times.
    for _ in range(4 * len(world.agents)):
        world.framework_launches(framework)
        task_id = max(world.frameworks[framework].launched, key=lambda t: int(t[1:]), default="")
        if task_id and world.task_agent[(world.frameworks[framework].id, task_id)] == agent:
            break
    else:
        raise AssertionError(f"could not launch on agent{agent}")
    world.agent_sends_updates(agent)
    world.framework_acknowledges(framework)
    assert world.frameworks[framework].view(task_id) == TS.TASK_RUNNING
    return task_id


def started(n_agents: int = 2) -> World:
    world = World(n_agents)
    for agent in world.agents:
        world.agent_connects(agent.index)
    for fw in world.frameworks:
        world.framework_subscribes(fw.index)
    return world


def ends_seen(world: World, framework: int, task_id: str) -> list[str]:
    return [str(r) for r in world.frameworks[framework].seen[task_id] if r.state in TERMINAL]


def test_task_lost_with_its_agent_does_not_end_again_when_the_agent_comes_back():
    """The known bug: TASK_LOST when the agent went silent, then the master's kill of
    the returning task made the agent report TASK_KILLED, and the master passed it on."""
    world = started()
    task_id = launched_and_running(world, framework=0)
    world.agent_partitioned(0)
    world.time_passes(CONFIG.agent_timeout + 1)  # the master closes the silent link
    world.time_passes(CONFIG.agent_timeout + 1)  # ... and reports the task lost
    assert ends_seen(world, 0, task_id) == ["LOST(master, AGENT_DISCONNECTED)"]

    world.agent_connects(0)  # the task still runs there; the master kills it
    world.flow()

    assert world.violations == []
    assert ends_seen(world, 0, task_id) == ["LOST(master, AGENT_DISCONNECTED)"]
    assert not world.agents[0].tasks, "the killed task's update was acknowledged"


def test_task_lost_after_a_failover_does_not_come_back_running():
    """Shrunk: framework_launches(j=0), master_restarts, time_passes(16), settle.
    The new master knew no tasks, marked the silent agent unreachable, answered the
    reconciliation with TASK_LOST; the agent then came back with the task RUNNING,
    and its RUNNING and the kill's TASK_KILLED reached the framework."""
    world = started()
    world.framework_launches(0)
    world.master_restarts()
    world.time_passes(CONFIG.agent_timeout + 1)
    world.settle()

    assert world.violations == []
    assert world.unsettled() == []


def test_stale_running_update_does_not_follow_an_end_after_a_failover():
    """Shrunk: framework_launches(j=0), master_restarts, task_ends_on_its_own(FINISHED),
    agent_connects(i=0), settle. The agent re-registered with the task FINISHED, the
    reconciliation answer said FINISHED, and then the agent's older, unacknowledged
    RUNNING update was forwarded: RUNNING after the end."""
    world = started()
    world.framework_launches(0)  # the agent's RUNNING update is not sent yet
    world.master_restarts()
    world.task_ends_on_its_own(0, TS.TASK_FINISHED)
    world.agent_connects(world.task_agent[(world.frameworks[0].id, "t1")])
    world.settle()

    assert world.violations == []
    assert world.unsettled() == []
    assert ends_seen(world, 0, "t1")[0] == "FINISHED(master, RECONCILIATION)"


def test_task_on_a_dead_agent_ends_for_a_partition_aware_framework():
    """Shrunk: agent_fails(how='dies', i=0), framework_launches(j=1), settle.
    TASK_UNREACHABLE is not an end: without removal of long-unreachable agents the
    framework waits forever."""
    world = started()
    world.agent_dies(0)
    world.framework_launches(1)
    world.settle()

    assert world.violations == []
    assert world.unsettled() == []


@pytest.mark.parametrize("framework", [0, 1], ids=["plain", "partition-aware"])
def test_tasks_of_an_agent_that_is_down_through_a_failover_end(framework):
    """The master restarts while the agent is down, and the agent never comes back."""
    world = started()
    task_id = launched_and_running(world, framework)
    world.agent_link_drops(0)
    world.agent_dies(0)
    world.master_restarts()
    world.settle()

    assert world.violations == []
    assert world.unsettled() == []
    assert ends_seen(world, framework, task_id)
