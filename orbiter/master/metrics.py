"""The master's Prometheus metrics: gauges read from the state at scrape time,
counters and histograms bumped by the shell."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orbiter.master.state import AgentStatus, FrameworkStatus
from orbiter.proto import master_pb2, messages_pb2

if TYPE_CHECKING:
    from orbiter.master.server import MasterServer


class _StateCollector(Collector):
    def __init__(self, server: MasterServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        core = self.server.core
        if core is None:
            return
        agents = GaugeMetricFamily(
            "orbiter_master_agents", "Agents known to the master, by status", labels=["status"]
        )
        tally = Tally(a.status.value for a in core.agents.values())
        for status in AgentStatus:
            agents.add_metric([status.value], tally[status.value])
        yield agents
        yield GaugeMetricFamily(
            "orbiter_master_agents_registered",
            "Agents admitted and not removed, whatever their link or maintenance mode",
            value=sum(1 for a in core.agents.values() if a.status is not AgentStatus.GONE),
        )
        yield GaugeMetricFamily(
            "orbiter_master_agents_active",
            "Agents in service: connected and not deactivated, draining or drained",
            value=sum(1 for a in core.agents.values() if a.in_service),
        )
        modes = GaugeMetricFamily(
            "orbiter_master_agents_maintenance",
            "Agents by maintenance mode and who set it",
            labels=["mode", "by"],
        )
        tally_m = Tally(
            (master_pb2.MaintenanceMode.Name(a.maintenance.mode).lower(), a.maintenance.by)
            for a in core.agents.values()
            if a.status is not AgentStatus.GONE
        )
        for (mode, by), n in sorted(tally_m.items()):
            modes.add_metric([mode, by], n)
        yield modes
        frameworks = GaugeMetricFamily(
            "orbiter_master_frameworks", "Frameworks by status", labels=["status"]
        )
        tally = Tally(f.status.value for f in core.frameworks.values())
        for status in FrameworkStatus:
            frameworks.add_metric([status.value], tally[status.value])
        yield frameworks
        tasks = GaugeMetricFamily("orbiter_master_tasks", "Active tasks by state", labels=["state"])
        tally = Tally(t.state for fw in core.frameworks.values() for t in fw.tasks.values())
        # Every state, zeros included, so a dashboard or rule never sees a gap.
        for name, state in messages_pb2.TaskState.items():
            if state:
                tasks.add_metric([name], tally[state])
        yield tasks
        yield GaugeMetricFamily(
            "orbiter_master_offers_outstanding",
            "Offers made and not yet answered",
            value=len(core.offers),
        )
        total = GaugeMetricFamily(
            "orbiter_master_resources_capacity",
            "Resources of connected agents",
            labels=["resource"],
        )
        used = GaugeMetricFamily(
            "orbiter_master_resources_used", "Resources used by tasks", labels=["resource"]
        )
        total_q: dict[str, float] = {}
        used_q: dict[str, float] = {}
        for agent in core.agents.values():
            if agent.status.value != "connected":
                continue
            for k, v in agent.total.quantities().items():
                total_q[k] = total_q.get(k, 0.0) + v
            for k, v in agent.used.quantities().items():
                used_q[k] = used_q.get(k, 0.0) + v
        for k in sorted(total_q):
            total.add_metric([k], total_q[k])
            used.add_metric([k], used_q.get(k, 0.0))
        yield total
        yield used
        yield from _role_metrics(core.role_view())


def _role_metrics(roles: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    """Weights, quota and holdings per role (Mesos: allocator/mesos/roles/..., quota/...)."""
    weight = GaugeMetricFamily(
        "orbiter_master_role_weight", "A role's weight in hierarchical DRF", labels=["role"]
    )
    held = GaugeMetricFamily(
        "orbiter_master_role_allocated",
        "What a role's subtree is offered and uses, by resource",
        labels=["role", "resource"],
    )
    guarantee = GaugeMetricFamily(
        "orbiter_master_role_quota_guarantee",
        "A role's quota guarantee, by resource",
        labels=["role", "resource"],
    )
    limit = GaugeMetricFamily(
        "orbiter_master_role_quota_limit", "A role's quota limit, by resource",
        labels=["role", "resource"],
    )  # fmt: skip
    for role, view in roles.items():
        weight.add_metric([role], view["weight"])
        for family, key in ((held, "allocated"), (guarantee, "guarantees"), (limit, "limits")):
            for name, q in sorted(view[key].items()):
                family.add_metric([role, name], q)
    yield from (weight, held, guarantee, limit)


class MasterMetrics:
    """One registry per master, so several masters can live in one test process."""

    def __init__(self, server: MasterServer) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StateCollector(server))
        self.allocation_runs = Counter(
            "orbiter_master_allocation_runs", "Allocation rounds run", registry=self.registry
        )
        self.allocation_seconds = Histogram(
            "orbiter_master_allocation_duration_seconds",
            "Time one allocation round takes",
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
        )
        self.registry_writes = Counter(
            "orbiter_master_registry_writes", "Registry snapshots written", registry=self.registry
        )
        self.registry_write_failures = Counter(
            "orbiter_master_registry_write_failures",
            "Registry writes that failed and were retried",
            registry=self.registry,
        )
        self.registry_write_seconds = Histogram(
            "orbiter_master_registry_write_duration_seconds",
            "Time one registry write takes, fsync included",
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
        )
        self.agent_messages_sent = Counter(
            "orbiter_master_agent_messages_sent", "Messages sent to agents", registry=self.registry
        )
        self.rate_limited = Counter(
            "orbiter_master_rate_limited_calls",
            "Calls refused for going over a client's rate limit (master.api_rate, api_burst; "
            "agent registrations), by API",
            ["api"],
            registry=self.registry,
        )
        self.cap_refusals = Counter(
            "orbiter_master_cap_refusals",
            "Creates refused at a registry cap (frameworks or agents per principal, silences), "
            "by the cap's setting",
            ["cap"],
            registry=self.registry,
        )
        # Every label from the start, so a rate() over them never sees a gap.
        for api in ("http", "grpc", "agent_registration"):
            self.rate_limited.labels(api)
        for cap in ("max_frameworks_per_principal", "max_agents_per_principal", "max_silences"):
            self.cap_refusals.labels(cap)
