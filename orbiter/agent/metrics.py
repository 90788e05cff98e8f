"""The agent's Prometheus metrics: task counters bumped as things happen,
resource and task-state gauges read at scrape time."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orbiter import __version__
from orbiter.proto import messages_pb2

if TYPE_CHECKING:
    from orbiter.agent.agent import Agent


class _StateCollector(Collector):
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "orbiter_agent_info",
            "Always 1; names this agent (agent_id, empty until the master registered it), its"
            " hostname and Orbiter's version, for scrapes that do not discover agents",
            labels=["agent_id", "hostname", "version"],
        )
        settings = self.agent.settings
        info.add_metric(
            [self.agent.agent_id, settings.hostname or socket.gethostname(), __version__], 1
        )
        yield info
        total = GaugeMetricFamily(
            "orbiter_agent_resources_capacity", "Resources this agent offers", labels=["resource"]
        )
        used = GaugeMetricFamily(
            "orbiter_agent_resources_used", "Resources held by active tasks", labels=["resource"]
        )
        used_q = self.agent.used().quantities()
        for name, q in sorted(self.agent.resources.quantities().items()):
            total.add_metric([name], q)
            used.add_metric([name], used_q.get(name, 0.0))
        yield total
        yield used
        tasks = GaugeMetricFamily(
            "orbiter_agent_tasks", "Tasks on this agent by state", labels=["state"]
        )
        counts = self.agent.state_counts()
        for name, state in messages_pb2.TaskState.items():
            if state:  # every state, zeros included, so rules never see a gap
                tasks.add_metric([name], counts[name])
        yield tasks
        yield GaugeMetricFamily(
            "orbiter_agent_status_updates_pending",
            "Status updates not yet acknowledged by their framework",
            value=len(self.agent.updates),
        )


class AgentMetrics:
    """One registry per agent, so many agents can share a process (orbiter up, benchmarks)."""

    def __init__(self, agent: Agent) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StateCollector(agent))
        self.launches = Counter(
            "orbiter_agent_task_launches",
            "Tasks the master asked this agent to run",
            registry=self.registry,
        )
        self.launch_failures = Counter(
            "orbiter_agent_task_launch_failures",
            "Tasks whose launch failed",
            registry=self.registry,
        )
        # One counter per outcome, named as the alert rules use them (black-hole agent).
        self._transitions = {
            messages_pb2.TASK_RUNNING: "started",
            messages_pb2.TASK_FINISHED: "finished",
            messages_pb2.TASK_FAILED: "failed",
            messages_pb2.TASK_ERROR: "failed",
            messages_pb2.TASK_KILLED: "killed",
            messages_pb2.TASK_LOST: "lost",
        }
        self._counters = {
            name: Counter(
                f"orbiter_agent_tasks_{name}",
                f"Tasks on this agent that {'started running' if name == 'started' else name}",
                registry=self.registry,
            )
            for name in ("started", "finished", "failed", "killed", "lost")
        }
        self.registered = Gauge(
            "orbiter_agent_registered",
            "1 while registered with a master",
            registry=self.registry,
        )

    def count_transition(self, state: int) -> None:
        name = self._transitions.get(state)
        if name is not None:
            self._counters[name].inc()
