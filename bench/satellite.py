"""Satellite at cluster scale: scrape ingestion, one rule evaluation round, memory per series.

Figures (medians of 3 runs, CPU seconds of this process via `time.process_time`,
so other work on a shared machine does not count against us):

- scrape path in samples/s on one core, side by side with prometheus-client's
  text parser on the same agent expositions: `ScrapeCache.parse_into` alone,
  and parse + target labels + `TSDB.append_scrape` exactly as
  `Scraper.scrape` does it (aim: >= 500,000 samples/s);
- one full evaluation round of 100 rules (alerts/default.rules.yml plus
  generated rules using rate, sum by, histogram_quantile, *_over_time) over
  1,000 targets x 300 series, run as `Satellite.evaluate` runs it
  (`engine_query` + `evaluate_group` per group; `TSDB.gc` timed apart) (aim: < 1 s);
- memory per active series holding 1 hour of 15-second samples (tracemalloc,
  through the real text -> ScrapeCache -> TSDB path);
- a cProfile of one evaluation round: where the time goes, by function and by rule.

The cluster TSDB is loaded with `--samples` scrapes per target (default 64:
16 minutes, enough for the longest range any rule reads, 15m, plus one
sample); evaluation reads only [t - range, t] windows, so more history
changes the figures little (try `--samples 240` for the full hour, about 4x
the load time and memory). Loading feeds rows built from each target's own
ScrapeCache entries straight to `append_scrape` (no text), and its rate is
reported as the append-only figure.

Run: python bench/satellite.py [--quick] [--targets N] [--samples K] [--no-profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families

from orbiter.satellite.cluster import agent_target
from orbiter.satellite.exposition import ScrapeCache
from orbiter.satellite.promql import engine
from orbiter.satellite.rules import (
    GroupState,
    RuleGroup,
    engine_query,
    evaluate_group,
    load_rule_files,
)
from orbiter.satellite.scrape import Target, _WithTargetLabels, with_target_labels
from orbiter.satellite.series import labels_of
from orbiter.satellite.service import GC_THRESHOLDS, LOOKBACK_MS, gc_paused, tune_gc
from orbiter.satellite.tsdb import TSDB

RUNS = 3
STEP_MS = 15_000
T0_MS = 1_700_000_000_000
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RULES = ROOT / "alerts" / "default.rules.yml"
RULES_WANTED = 100
SERIES_PER_TARGET = 300

# --- an agent's exposition ---------------------------------------------------------

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class _Line:
    """One exposed series: the text before its value, and how its value moves per scrape."""

    series: str
    start: float
    slope: float
    wobble: float


def _fmt(v: float) -> str:
    return "+Inf" if v == float("inf") else repr(float(v))


class AgentExposition:
    """What one agent's /metrics shows: 300 series of host, check, agent, task, HTTP metrics.

    Names and labels follow orbiter/agent (hostmetrics, checks, metrics) as
    prometheus-client writes them (`_total` counters, `_created` lines); the
    two histograms are the kind an agent's HTTP server and launcher expose.
    Values move like the real ones: counters grow, gauges wander, histogram
    buckets stay cumulative. Agent `index` decides which agents look unhealthy.
    """

    def __init__(self, index: int, seed: int = 7) -> None:
        rng = random.Random(seed * 100_003 + index)
        self.header: list[tuple[int, str]] = []  # (line position, comment block)
        lines: list[_Line] = []
        sick = index % 50 == 3  # 2% of agents: full disk, high load, critical checks

        def family(name: str, kind: str, text: str) -> None:
            self.header.append((len(lines), f"# HELP {name} {text}\n# TYPE {name} {kind}\n"))

        def add(name: str, labels: dict[str, str], start: float, slope=0.0, wobble=0.0) -> None:
            body = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lines.append(_Line(f"{name}{{{body}}}" if body else name, start, slope, wobble))

        cpus = float(rng.choice((8, 16, 32, 64)))
        family("orbiter_host_cpus", "gauge", "Logical CPUs of the host")
        add("orbiter_host_cpus", {}, cpus)
        family("orbiter_host_cpu_seconds_total", "counter", "Seconds the host's CPUs spent")
        for mode in ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"):
            share = 0.6 if mode == "idle" else rng.uniform(0.001, 0.1)
            add(
                "orbiter_host_cpu_seconds_total",
                {"mode": mode},
                rng.uniform(1e5, 1e6),
                cpus * 15 * share,
            )
        for w in ("1", "5", "15"):
            family(f"orbiter_host_load{w}", "gauge", f"{w}-minute load average")
            add(
                f"orbiter_host_load{w}",
                {},
                cpus * (5.0 if sick else rng.uniform(0.1, 1.5)),
                0.0,
                0.3,
            )
        mem = cpus * 4 * 2**30
        for name, start in (
            ("memory_total_bytes", mem),
            ("memory_available_bytes", mem * rng.uniform(0.1, 0.8)),
            ("swap_total_bytes", 2.0**33),
            ("swap_used_bytes", 2.0**33 * rng.uniform(0.0, 0.3)),
        ):
            family(f"orbiter_host_{name}", "gauge", name.replace("_", " "))
            add(f"orbiter_host_{name}", {}, start, 0.0, 0.0 if "total" in name else 2**20)
        paths = ("/", "/var/lib/orbiter", "/srv/sandboxes")
        totals = {p: rng.choice((1e11, 5e11, 2e12)) for p in paths}
        for what in ("total_bytes", "used_bytes", "free_bytes", "inodes", "inodes_free"):
            family(f"orbiter_host_disk_{what}", "gauge", f"disk {what}")
            for p in paths:
                used = totals[p] * (0.95 if sick and p != "/" else rng.uniform(0.2, 0.7))
                value = {
                    "total_bytes": totals[p],
                    "used_bytes": used,
                    "free_bytes": totals[p] - used,
                    "inodes": 6.5e6,
                    "inodes_free": 6.5e6 * rng.uniform(0.3, 0.9),
                }[what]
                slope = {"used_bytes": 1e6, "free_bytes": -1e6}.get(what, 0.0)
                add(f"orbiter_host_disk_{what}", {"path": p}, value, slope)
        family("orbiter_host_disk_errors_total", "counter", "Scrapes in which path was unreadable")
        for p in paths:
            add("orbiter_host_disk_errors_total", {"path": p}, 0.0)
        family("orbiter_host_processes_blocked", "gauge", "Processes in D state")
        add("orbiter_host_processes_blocked", {}, 20.0 if sick else 0.0, 0.0, 1.0)
        for d in ("receive", "transmit"):
            family(f"orbiter_host_network_{d}_bytes_total", "counter", f"Bytes {d}d")
            for iface in ("eth0", "eth1", "lo"):
                add(
                    f"orbiter_host_network_{d}_bytes_total",
                    {"interface": iface},
                    rng.uniform(1e9, 1e12),
                    rng.uniform(1e5, 1e8),
                )
        family("orbiter_host_boot_time_seconds", "gauge", "When the host booted")
        add("orbiter_host_boot_time_seconds", {}, 1.69e9 + rng.randrange(10**6))
        family("orbiter_host_collect_errors_total", "counter", "Sections left out")
        for section in ("cpu", "memory", "disk", "network"):
            add("orbiter_host_collect_errors_total", {"section": section}, 0.0)
        checks = [
            f"check-{name}"
            for name in ("ntp", "dns", "docker", "disk-smart", "nfs", "kernel", "raid", "ecc")
        ]
        for name, kind in (
            ("status", "gauge"),
            ("duration_seconds", "gauge"),
            ("last_run_timestamp_seconds", "gauge"),
        ):
            family(f"orbiter_check_{name}", kind, f"check {name}")
            for c in checks:
                start = {
                    "status": 2.0 if sick and c == "check-raid" else 0.0,
                    "duration_seconds": rng.uniform(0.01, 2.0),
                    "last_run_timestamp_seconds": T0_MS / 1000,
                }[name]
                slope = 15.0 if name == "last_run_timestamp_seconds" else 0.0
                add(
                    f"orbiter_check_{name}",
                    {"check": c},
                    start,
                    slope,
                    0.01 if name == "duration_seconds" else 0.0,
                )
        family("orbiter_check_runs_total", "counter", "Runs of the check by status")
        for c in checks:
            for status in ("ok", "warning", "critical"):
                rate = {"ok": 0.5, "warning": 0.01, "critical": 0.5 if sick else 0.0}[status]
                add(
                    "orbiter_check_runs_total",
                    {"check": c, "status": status},
                    rng.uniform(0, 1e4) if status == "ok" else 0.0,
                    rate,
                )
        resources = ("cpus", "mem", "disk", "ports", "gpus")
        for name in ("resources_capacity", "resources_used"):
            family(f"orbiter_agent_{name}", "gauge", f"agent {name}")
            for r in resources:
                add(
                    f"orbiter_agent_{name}",
                    {"resource": r},
                    rng.uniform(0, 1e4) if name.endswith("used") else 1e4,
                )
        family("orbiter_agent_tasks", "gauge", "Tasks on this agent by state")
        for state in (
            "TASK_STAGING",
            "TASK_STARTING",
            "TASK_RUNNING",
            "TASK_FINISHED",
            "TASK_FAILED",
            "TASK_KILLED",
            "TASK_LOST",
            "TASK_ERROR",
            "TASK_KILLING",
            "TASK_DROPPED",
            "TASK_UNREACHABLE",
            "TASK_GONE",
            "TASK_UNKNOWN",
        ):
            add(
                "orbiter_agent_tasks",
                {"state": state},
                float(rng.randrange(40)) if state == "TASK_RUNNING" else 0.0,
            )
        family("orbiter_agent_status_updates_pending", "gauge", "Unacknowledged updates")
        add("orbiter_agent_status_updates_pending", {}, 0.0, 0.0, 1.0)
        for name in (
            "task_launches",
            "task_launch_failures",
            "tasks_started",
            "tasks_finished",
            "tasks_failed",
            "tasks_killed",
            "tasks_lost",
        ):
            family(f"orbiter_agent_{name}", "counter", name.replace("_", " "))
            rate = rng.uniform(0.5, 1.0)  # failures stay rare except on the sick agents
            if name in ("tasks_failed", "task_launch_failures"):
                rate = 0.9 if sick else rng.uniform(0.0, 0.02)
            add(f"orbiter_agent_{name}_total", {}, rng.uniform(0, 1e4), rate)
            add(f"orbiter_agent_{name}_created", {}, 1.69e9)
        family("orbiter_agent_registered", "gauge", "1 while registered with a master")
        add("orbiter_agent_registered", {}, 1.0)
        for hist, label, values in (
            (
                "orbiter_agent_http_request_duration_seconds",
                "path",
                ("/metrics", "/state", "/files/read", "/files/browse"),
            ),
            (
                "orbiter_agent_task_launch_duration_seconds",
                "containerizer",
                ("process", "docker", "null"),
            ),
        ):
            family(hist, "histogram", "latency")
            for v in values:
                rate = rng.uniform(0.1, 20.0)
                mean = 1.0 if sick else rng.uniform(0.01, 0.2)
                count0 = rng.uniform(1e3, 1e6)
                for le in (*_BUCKETS, float("inf")):
                    share = 1.0 - 2.718281828 ** (-le / mean) if le != float("inf") else 1.0
                    add(
                        f"{hist}_bucket",
                        {label: v, "le": _fmt(le)},
                        count0 * share,
                        rate * 15 * share,
                    )
                add(f"{hist}_count", {label: v}, count0, rate * 15)
                add(f"{hist}_sum", {label: v}, count0 * mean, rate * 15 * mean)
                add(f"{hist}_created", {label: v}, 1.69e9)
        for name, start, slope in (
            ("process_virtual_memory_bytes", 9e8, 0.0),
            ("process_resident_memory_bytes", 1.2e8, 1e3),
            ("process_start_time_seconds", 1.69e9, 0.0),
            ("process_cpu_seconds_total", 1e3, 2.0),
            ("process_open_fds", 40.0, 0.0),
            ("process_max_fds", 65536.0, 0.0),
        ):
            family(name, "counter" if name.endswith("_total") else "gauge", name)
            add(name, {}, start, slope, 0.0 if slope else 1.0)
        for name in (
            "python_gc_objects_collected_total",
            "python_gc_objects_uncollectable_total",
            "python_gc_collections_total",
        ):
            family(name, "counter", name)
            for generation in "012":
                add(name, {"generation": generation}, 1e4, 3.0 if "uncoll" not in name else 0.0)
        family("python_info", "gauge", "Python platform information")
        add(
            "python_info",
            {
                "implementation": "CPython",
                "major": "3",
                "minor": "11",
                "patchlevel": "9",
                "version": "3.11.9",
            },
            1.0,
        )
        rest = SERIES_PER_TARGET - len(lines)
        family("orbiter_task_cpu_seconds_total", "counter", "CPU seconds used by a task")
        tasks = [
            (f"fw-{rng.randrange(5)}", f"task-{index:04d}-{t:03d}-{rng.randrange(16**8):08x}")
            for t in range(rest // 2)
        ]
        for fw, task in tasks:
            add(
                "orbiter_task_cpu_seconds_total",
                {"framework": fw, "task_id": task},
                rng.uniform(0, 1e4),
                rng.uniform(0, 15),
            )
        family("orbiter_task_mem_rss_bytes", "gauge", "Resident memory of a task")
        for fw, task in tasks[: rest - len(tasks)]:
            add(
                "orbiter_task_mem_rss_bytes",
                {"framework": fw, "task_id": task},
                rng.uniform(1e7, 1e9),
                0.0,
                1e5,
            )
        assert len(lines) == SERIES_PER_TARGET, len(lines)
        self.lines = lines
        self.starts = [ln.start for ln in lines]
        self.slopes = [ln.slope for ln in lines]
        self.wobbles = [ln.wobble for ln in lines]

    def values(self, k: int) -> list[float]:
        """Every series' value at scrape k (text order)."""
        w = (0.0, 1.0, -1.0, 0.5, -0.5)[k % 5]
        return [
            a + b * k + c * w
            for a, b, c in zip(self.starts, self.slopes, self.wobbles, strict=True)
        ]

    def text(self, k: int) -> str:
        """The exposition text at scrape k, as prometheus-client would write it."""
        out: list[str] = []
        headers = iter(self.header)
        pos, block = next(headers, (-1, ""))
        for i, (line, v) in enumerate(zip(self.lines, self.values(k), strict=True)):
            while i == pos:
                out.append(block)
                pos, block = next(headers, (-1, ""))
            out.append(f"{line.series} {_fmt(v)}\n")
        return "".join(out)


def target_of(index: int) -> Target:
    agent_id = f"{index:08x}-5f3a-4c1e-9b7d-{index * 7919 % 16**12:012x}-S{index % 7}"
    return agent_target(agent_id, f"10.{index // 250 % 250}.{index % 250}.{index % 7 + 10}:5051")


# --- the scrape path, as Scraper.scrape runs it (minus HTTP) --------------------------


class ScrapedTarget:
    """One target's ScrapeCache and merged-label refs, used exactly as `Scraper.scrape` does."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.cache = ScrapeCache()
        self.merged: dict = {}
        self.base = dict(target.labels)
        self.refs: list[_WithTargetLabels] = []

    def rows(self, text: str) -> list:
        return with_target_labels(self.cache.parse_into(text), self.merged, self.target.labels)

    def record_up(self, tsdb: TSDB, t_ms: int, up: bool, samples: int) -> None:
        for name, value in (
            ("up", 1.0 if up else 0.0),
            ("scrape_duration_seconds", 0.004),
            ("scrape_samples_scraped", float(samples)),
        ):
            tsdb.append(labels_of({**self.base, "__name__": name}), t_ms, value)


def interleaved_rates(works: dict[str, Callable[[], int]], min_seconds: float) -> dict[str, float]:
    """Median over RUNS of samples/s per work; runs interleave so machine load hits all alike."""
    rates: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(RUNS):
        for name, work in works.items():
            gc.collect()
            done = 0
            start = time.process_time()
            elapsed = 0.0
            while elapsed < min_seconds:
                done += work()
                elapsed = time.process_time() - start
            rates[name].append(done / elapsed)
    return {name: statistics.median(values) for name, values in rates.items()}


def scrape_throughput(n_targets: int, min_seconds: float) -> dict[str, float]:
    """samples/s: prometheus-client's parser, parse_into warm, and the whole scrape path."""
    agents = [AgentExposition(i) for i in range(n_targets)]
    scrapes = 8
    texts = [[a.text(k) for k in range(scrapes)] for a in agents]
    assert (
        sum(len(f.samples) for f in text_string_to_metric_families(texts[0][0]))
        == SERIES_PER_TARGET
    ), "prometheus-client disagrees on the sample count"
    counter = iter(range(10**12))

    def client() -> int:
        n = next(counter)
        text = texts[n % n_targets][n // n_targets % scrapes]
        return sum(len(f.samples) for f in text_string_to_metric_families(text))

    caches = [ScrapeCache() for _ in agents]
    for cache, t in zip(caches, texts, strict=True):
        cache.parse_into(t[0])

    def warm() -> int:
        n = next(counter)
        return len(caches[n % n_targets].parse_into(texts[n % n_targets][n // n_targets % scrapes]))

    tsdb = TSDB()
    scraped = [ScrapedTarget(target_of(i)) for i in range(n_targets)]
    clock = {i: T0_MS for i in range(n_targets)}
    for i, s in enumerate(scraped):
        tsdb.append_scrape(s.target.url, s.rows(texts[i][0]), T0_MS)

    def ingest() -> int:
        n = next(counter)
        i = n % n_targets
        clock[i] += STEP_MS
        s = scraped[i]
        rows = s.rows(texts[i][n // n_targets % scrapes])
        tsdb.append_scrape(s.target.url, rows, clock[i])
        return len(rows)

    return interleaved_rates(
        {
            "prometheus-client text parser": client,
            "ScrapeCache.parse_into (warm)": warm,
            "parse + target labels + TSDB.append_scrape": ingest,
        },
        min_seconds,
    )


# --- the cluster TSDB and the rules -------------------------------------------------


@dataclass
class Cluster:
    tsdb: TSDB
    targets: list[ScrapedTarget]
    agents: list[AgentExposition]
    down: set[int]
    down_from: int  # the scrape from which the `down` targets fail
    k: int  # scrapes done so far
    append_seconds: float = 0.0
    appended: int = 0

    @property
    def now_ms(self) -> int:
        return T0_MS + (self.k - 1) * STEP_MS

    def scrape_round(self) -> float:
        """Every target scraped once more (rows straight from each cache, no text); CPU s."""
        t_ms = T0_MS + self.k * STEP_MS
        tsdb = self.tsdb
        spent = 0.0
        for i, (s, agent) in enumerate(zip(self.targets, self.agents, strict=True)):
            if i in self.down and self.k >= self.down_from:
                start = time.process_time()
                tsdb.mark_target_down(s.target.url, t_ms)
                s.record_up(tsdb, t_ms, False, 0)
                spent += time.process_time() - start
                continue
            rows = list(zip(s.refs, agent.values(self.k), repeat(None)))
            start = time.process_time()
            tsdb.append_scrape(s.target.url, rows, t_ms)
            s.record_up(tsdb, t_ms, True, len(rows))
            spent += time.process_time() - start
            self.appended += len(rows)
        self.append_seconds += spent
        self.k += 1
        return spent


def build_cluster(n_targets: int, samples: int) -> Cluster:
    agents = [AgentExposition(i) for i in range(n_targets)]
    targets = []
    for i, agent in enumerate(agents):
        s = ScrapedTarget(target_of(i))
        s.refs = [ref for ref, _, _ in s.rows(agent.text(0))]
        targets.append(s)
    down = {i for i in range(n_targets) if i % 200 == 17}
    cluster = Cluster(TSDB(), targets, agents, down, max(0, samples - 16), 0)  # down 4 min ago
    for _ in range(samples):
        cluster.scrape_round()
    return cluster


def generated_rules(count: int) -> dict:
    """`count` rules in the style of real Prometheus rule files for such agents."""
    hist = "orbiter_agent_http_request_duration_seconds"
    launch = "orbiter_agent_task_launch_duration_seconds"
    launch_rate = f"rate({launch}_bucket[5m])"
    rec_hist = "agent_path_le:http_request_duration_seconds_bucket:rate5m"
    recording: list[tuple[str, str]] = [
        (
            "agent:cpu_busy:rate5m",
            'sum by (agent) (rate(orbiter_host_cpu_seconds_total{mode!="idle"}[5m]))',
        ),
        ("agent:cpu_busy:ratio", "agent:cpu_busy:rate5m / on (agent) orbiter_host_cpus"),
        *[
            (
                f"agent:cpu_{m}:rate5m",
                f'sum by (agent) (rate(orbiter_host_cpu_seconds_total{{mode="{m}"}}[5m]))',
            )
            for m in ("user", "system", "iowait", "steal")
        ],
        *[
            (
                f"agent:network_{d}_bytes:rate{r}",
                f"sum by (agent) (rate(orbiter_host_network_{d}_bytes_total[{r}]))",
            )
            for d in ("receive", "transmit")
            for r in ("1m", "5m")
        ],
        (
            "agent_path:disk_used:ratio",
            "orbiter_host_disk_used_bytes / orbiter_host_disk_total_bytes",
        ),
        (
            "agent_path:disk_inodes_free:ratio",
            "orbiter_host_disk_inodes_free / orbiter_host_disk_inodes",
        ),
        ("agent_path:disk_used_bytes:deriv15m", "deriv(orbiter_host_disk_used_bytes[15m])"),
        (
            "agent_path:disk_free_bytes:predict4h",
            "predict_linear(orbiter_host_disk_free_bytes[15m], 4 * 3600)",
        ),
        (
            "agent_check:runs_critical:increase15m",
            'sum by (agent, check) (increase(orbiter_check_runs_total{status="critical"}[15m]))',
        ),
        ("cluster_state:tasks:sum", "sum by (state) (orbiter_agent_tasks)"),
        (
            "cluster_resource:used:ratio",
            "sum by (resource) (orbiter_agent_resources_used)"
            " / sum by (resource) (orbiter_agent_resources_capacity)",
        ),
        (
            "agent_path_le:http_request_duration_seconds_bucket:rate5m",
            f"sum by (agent, path, le) (rate({hist}_bucket[5m]))",
        ),
        *[
            (
                f"agent_path:http_request_duration_seconds:p{q}",
                f"histogram_quantile(0.{q}, {rec_hist})",
            )
            for q in ("5", "9", "99")
        ],
        (
            "cluster_path:http_request_duration_seconds:p99",
            "histogram_quantile(0.99, sum by (path, le)"
            " (agent_path_le:http_request_duration_seconds_bucket:rate5m))",
        ),
        *[
            (
                f"containerizer:task_launch_duration_seconds:p{q}",
                f"histogram_quantile(0.{q}, sum by (containerizer, le) ({launch_rate}))",
            )
            for q in ("5", "99")
        ],
        ("agent:http_requests:rate5m", f"sum by (agent) (rate({hist}_count[5m]))"),
        ("agent:task_launches:increase15m", "increase(orbiter_agent_task_launches_total[15m])"),
        (
            "agent_framework:task_cpu_seconds:rate5m",
            "sum by (agent, framework) (rate(orbiter_task_cpu_seconds_total[5m]))",
        ),
        ("framework:task_mem_rss_bytes:sum", "sum by (framework) (orbiter_task_mem_rss_bytes)"),
        ("agent:gc_collections:rate5m", "sum by (agent) (rate(python_gc_collections_total[5m]))"),
        ("job:up:avg", "avg by (job) (up)"),
        ("agent:scrape_duration_seconds:avg5m", "avg_over_time(scrape_duration_seconds[5m])"),
    ]
    alerts: list[tuple[str, str, str]] = [
        ("AgentCpuBusy", "agent:cpu_busy:ratio > 0.95", "10m"),
        ("AgentIOWaitHigh", "agent:cpu_iowait:rate5m / on (agent) orbiter_host_cpus > 0.3", "10m"),
        ("AgentDiskFilling", 'agent_path:disk_used:ratio{path!="/"} > 0.85', "5m"),
        ("AgentDiskFullIn4h", "agent_path:disk_free_bytes:predict4h < 0", "15m"),
        ("AgentInodesLow", "agent_path:disk_inodes_free:ratio < 0.05", "5m"),
        ("AgentDiskErrors", "rate(orbiter_host_disk_errors_total[5m]) > 0", "5m"),
        ("AgentCollectErrors", "increase(orbiter_host_collect_errors_total[15m]) > 3", "0s"),
        ("AgentRebooted", "changes(orbiter_host_boot_time_seconds[15m]) > 0", "0s"),
        ("AgentRestarted", "resets(orbiter_agent_tasks_started_total[15m]) > 0", "0s"),
        ("AgentCheckFlapping", "agent_check:runs_critical:increase15m > 3", "5m"),
        ("AgentCheckStale", "time() - orbiter_check_last_run_timestamp_seconds > 600", "5m"),
        ("AgentCheckWarning", "orbiter_check_status == 1", "15m"),
        ("AgentNotRegistered", "orbiter_agent_registered == 0", "5m"),
        ("AgentUpdatesPending", "orbiter_agent_status_updates_pending > 100", "10m"),
        ("AgentHttpSlow", 'agent_path:http_request_duration_seconds:p99{path="/state"} > 2', "10m"),
        (
            "AgentLaunchFailures",
            "increase(orbiter_agent_task_launch_failures_total[15m])"
            " / increase(orbiter_agent_task_launches_total[15m]) > 0.5",
            "5m",
        ),
        ("AgentNetworkSaturated", "agent:network_receive_bytes:rate5m > 1.2e9", "10m"),
        ("AgentSwapping", "rate(orbiter_host_swap_used_bytes[5m]) > 1e7", "10m"),
        ("AgentMemoryLeak", "deriv(process_resident_memory_bytes[15m]) > 1e6", "15m"),
        ("AgentFdsNearLimit", "process_open_fds / process_max_fds > 0.8", "5m"),
        ("AgentScrapeSlow", "agent:scrape_duration_seconds:avg5m > 5", "5m"),
        ("AgentsMissing", 'absent(up{job="agent"})', "5m"),
        ("TaskMemoryHigh", "orbiter_task_mem_rss_bytes > 2e9", "10m"),
    ]
    over_time = [
        f"{fn}_over_time({metric}[{r}])"
        for r in ("10m", "15m", "5m")
        for metric in (
            "orbiter_host_load1",
            "orbiter_host_load5",
            "orbiter_host_processes_blocked",
            "orbiter_host_memory_available_bytes",
            "orbiter_host_swap_used_bytes",
            "orbiter_check_duration_seconds",
        )
        for fn in ("avg", "max", "min", "stddev")
    ]
    rec_rules = [{"record": name, "expr": expr} for name, expr in recording]
    alert_rules = [
        {
            "alert": name,
            "expr": expr,
            "for": for_,
            "labels": {"severity": "warning"},
            "annotations": {"summary": name + " on {{ $labels.agent }}: {{ $value | humanize }}"},
        }
        for name, expr, for_ in alerts
    ]
    quantiles = [
        f"quantile_over_time(0.9, {m}[15m])"
        for m in ("orbiter_host_load1", "orbiter_check_duration_seconds")
    ]
    extra = quantiles + over_time
    need = count - len(rec_rules) - len(alert_rules)
    assert 0 <= need <= len(extra), (need, len(extra))
    for i, expr in enumerate(extra[:need]):
        name = expr.split("(")[0] + "_" + expr.split("(")[-1].split("[")[0].split(",")[-1].strip()
        rec_rules.append({"record": f"agent:{name}:{i}", "expr": expr})
    return {
        "groups": [
            {"name": "bench-recording", "rules": rec_rules},
            {"name": "bench-alerts", "rules": alert_rules},
        ]
    }


def load_rules(tmp: Path) -> list[RuleGroup]:
    default = load_rule_files([DEFAULT_RULES])
    n_default = sum(len(g.rules) for g in default)
    path = tmp / "bench.rules.yml"
    path.write_text(yaml.safe_dump(generated_rules(RULES_WANTED - n_default), sort_keys=False))
    groups = load_rule_files([DEFAULT_RULES, path])
    assert sum(len(g.rules) for g in groups) == RULES_WANTED
    return groups


SATELLITE_GC = True
"""Run the collector as Satellite's process does (--default-gc: as Python comes)."""


class Evaluator:
    """The rule half of `Satellite.evaluate`: every group in order, state carried over."""

    def __init__(self, groups: list[RuleGroup], tsdb: TSDB) -> None:
        self.groups = groups
        self.tsdb = tsdb
        longest = max(engine.max_range_ms(r.expr) for g in groups for r in g.rules)
        tsdb.retention_ms = max(longest + LOOKBACK_MS, 3_600_000)
        self.states = {(g.file, g.name): GroupState.initial(g) for g in groups}
        self.failures: list[str] = []
        self.rule_seconds: dict[str, float] = {}
        self.default_seconds = 0.0  # of the last round, in the shipped default rules' groups

    def round(self, t_ms: int, per_rule: bool = False) -> tuple[int, int]:
        """One round at t_ms; returns (firing + pending alerts, rule failures)."""
        query = engine_query(self.tsdb, LOOKBACK_MS, subquery_step_ms=STEP_MS)
        if per_rule:
            query = self._timed(query)
        active = failures = 0
        self.default_seconds = 0.0
        for group in self.groups:
            key = (group.file, group.name)
            start = time.process_time()
            with gc_paused() if SATELLITE_GC else contextlib.nullcontext():
                result = evaluate_group(group, self.states[key], self.tsdb, t_ms, query)
            if group.file == str(DEFAULT_RULES):
                self.default_seconds += time.process_time() - start
            self.states[key] = result.state
            failures += len(result.failures)
            self.failures = [f"{f.rule.name}: {f.error}" for f in result.failures][:5]
            active += sum(
                1
                for alerts in result.state.alerts
                for a in alerts.values()
                if a.state.value != "inactive"
            )
        return active, failures

    def _timed(self, query: Callable) -> Callable:
        names = {id(r.query): r.name for g in self.groups for r in g.rules}

        def run(expr, t_ms):
            start = time.process_time()
            try:
                return query(expr, t_ms)
            finally:
                name = names.get(id(expr), "(template query)")
                self.rule_seconds[name] = self.rule_seconds.get(name, 0.0) + (
                    time.process_time() - start
                )

        return run


def selected_series(groups: Sequence[RuleGroup], tsdb: TSDB, t_ms: int) -> int:
    """How many series all rules' selectors match together (the work a round has to touch)."""
    total = 0
    for g in groups:
        for r in g.rules:
            node = engine._compiled(r.expr)
            stack = [node]
            while stack:
                n = stack.pop()
                if isinstance(n, engine._Selector):
                    total += len(tsdb._matching(n.matchers))
                stack.extend(n.children())
    return total


# --- memory -----------------------------------------------------------------------------


def memory_per_series(n_targets: int, samples: int = 240) -> dict[str, float]:
    """Bytes per active series after `samples` scrapes through text -> ScrapeCache -> TSDB,
    with `TSDB.gc` after each (where older samples are compressed into chunks)."""
    agents = [AgentExposition(1000 + i) for i in range(n_targets)]
    texts = [[a.text(k) for k in range(5)] for a in agents]
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tsdb = TSDB(retention_ms=samples * STEP_MS)
    scraped = [ScrapedTarget(target_of(1000 + i)) for i in range(n_targets)]
    for k in range(samples):
        for s, t in zip(scraped, texts, strict=True):
            tsdb.append_scrape(s.target.url, s.rows(t[k % 5]), T0_MS + k * STEP_MS)
        tsdb.gc(T0_MS + k * STEP_MS)  # after every round, as Satellite does: it compresses
        if k == 0:
            gc.collect()
            one = tracemalloc.get_traced_memory()[0] - base
    gc.collect()
    full = tracemalloc.get_traced_memory()[0] - base
    by_file = tracemalloc.take_snapshot().statistics("filename")
    tracemalloc.stop()
    n = len(tsdb)
    assert tsdb.sample_count == n * samples
    in_tsdb = sum(s.size for s in by_file if s.traceback[0].filename.endswith("tsdb.py"))
    return {
        "series": n,
        "bytes/series, 1 sample (labels, cache, index, TSDB)": one / n,
        "bytes/series, 240 samples (1 h of 15 s), all in": full / n,
        "  of which allocated in tsdb.py": in_tsdb / n,
        "bytes per extra sample": (full - one) / (n * (samples - 1)),
    }


# --- profile ----------------------------------------------------------------------------


def profile_round(cluster: Cluster, ev: Evaluator, top: int) -> str:
    cluster.scrape_round()
    prof = cProfile.Profile()
    prof.enable()
    ev.round(cluster.now_ms)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).name}:{line}({func})" if line else func
        rows.append((tt, ct, nc, where))
    lines = [
        f"cProfile of one round: {total:.2f} s under the profiler (it inflates call-heavy code)",
        f"  {'self s':>7} {'self %':>6} {'incl s':>7} {'calls':>9}  function",
    ]
    for tt, ct, nc, where in sorted(rows, reverse=True)[:top]:
        lines.append(f"  {tt:7.3f} {100 * tt / total:5.1f}% {ct:7.3f} {nc:9d}  {where}")
    lines.append("  -- by inclusive time, satellite functions only:")
    mine = [
        r
        for r in rows
        if "satellite" in r[3]
        or "tsdb" in r[3]
        or "engine" in r[3]
        or "rules.py" in r[3]
        or "functions.py" in r[3]
        or "aggregations.py" in r[3]
    ]
    for tt, ct, nc, where in sorted(mine, key=lambda r: -r[1])[:top]:
        lines.append(f"  {tt:7.3f} {100 * ct / total:5.1f}% {ct:7.3f} {nc:9d}  {where}")
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------


class GcClock:
    """Time the cyclic garbage collector spends while enabled (cProfile cannot see it)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._start = 0.0

    def __enter__(self) -> GcClock:
        gc.callbacks.append(self._tick)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._tick)

    def _tick(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.process_time()
        else:
            self.seconds[info["generation"]] += time.process_time() - self._start
            self.count[info["generation"]] += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--targets", type=int, help="targets in the cluster (default 1000)")
    parser.add_argument(
        "--samples",
        type=int,
        default=64,
        help="scrapes loaded per target before evaluating (default 64 = 16 min)",
    )
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="Python's GC as it comes (Satellite's process sets GC_THRESHOLDS and pauses "
        "the collector while a group evaluates)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    global SATELLITE_GC
    SATELLITE_GC = not args.default_gc
    if SATELLITE_GC:
        tune_gc()  # as `orbiter satellite` (the master's Satellite process) does
    n_targets = args.targets or (100 if args.quick else 1000)
    samples = min(args.samples, 64) if args.quick else args.samples
    parse_targets = 10 if args.quick else 50
    min_seconds = 0.1 if args.quick else 0.5
    figures: dict[str, float] = {}
    proc = psutil.Process()

    print(
        f"python {sys.version.split()[0]} on {os.cpu_count()} cores (load "
        f"{os.getloadavg()[0]:.1f}); CPU seconds of this process; medians of {RUNS} runs; "
        f"GC thresholds {gc.get_threshold()}"
        + (" (Python's default)" if args.default_gc else f" (Satellite's {GC_THRESHOLDS})")
        + "\n"
    )

    # 1. scrape path
    rates = scrape_throughput(parse_targets, min_seconds)
    ref = rates["prometheus-client text parser"]
    print(
        f"scrape path over {parse_targets} targets x {SERIES_PER_TARGET} series, "
        "each target with its own ScrapeCache:"
    )
    print(f"  {'':46} {'samples/s':>12} {'vs client':>10}")
    for name, rate in rates.items():
        print(f"  {name:46} {rate:12,.0f} {rate / ref:9.1f}x")
    figures["client_parser_samples_per_s"] = ref
    figures["parse_into_samples_per_s"] = rates["ScrapeCache.parse_into (warm)"]
    figures["scrape_ingest_samples_per_s"] = rates["parse + target labels + TSDB.append_scrape"]

    # 2. cluster load
    rss0 = proc.memory_info().rss
    wall = time.perf_counter()
    cpu = time.process_time()
    cluster = build_cluster(n_targets, samples)
    load_cpu = time.process_time() - cpu
    load_wall = time.perf_counter() - wall
    gc.collect()
    rss1 = proc.memory_info().rss
    n_series = len(cluster.tsdb)
    append_rate = cluster.appended / cluster.append_seconds
    print(
        f"\ncluster: {n_targets} targets x {SERIES_PER_TARGET} series = {n_series:,} series "
        f"(with up & co), {samples} scrapes each ({cluster.tsdb.sample_count:,} samples)"
    )
    print(
        f"  load: {load_cpu:.1f} s CPU ({load_wall:.1f} s wall) including value generation; "
        f"TSDB.append_scrape alone {append_rate:,.0f} samples/s"
    )
    print(
        f"  RSS growth {(rss1 - rss0) / 2**20:,.0f} MiB = "
        f"{(rss1 - rss0) / n_series:,.0f} bytes/series at {samples} samples"
    )
    figures["append_scrape_samples_per_s"] = append_rate
    figures["load_cpu_seconds"] = load_cpu
    figures["series"] = n_series
    figures["rss_bytes_per_series"] = (rss1 - rss0) / n_series

    # 3. rules
    with tempfile.TemporaryDirectory() as tmp:
        groups = load_rules(Path(tmp))
    ev = Evaluator(groups, cluster.tsdb)
    touched = selected_series(groups, cluster.tsdb, cluster.now_ms)
    print(
        f"\nrules: {sum(len(g.rules) for g in groups)} in {len(groups)} groups; their selectors "
        f"match {touched:,} series in all per round"
    )
    warm_start = time.process_time()
    active, failures = ev.round(cluster.now_ms)
    print(
        f"  first round (fills the ALERTS and recorded series): "
        f"{time.process_time() - warm_start:.2f} s CPU, {active} alerts active, "
        f"{failures} rule failures {ev.failures}"
    )
    round_cpu: list[float] = []
    round_wall: list[float] = []
    gc_cpu: list[float] = []
    ingest_rates: list[float] = []
    round_gc: list[GcClock] = []
    default_cpu: list[float] = []
    for _ in range(RUNS):
        before = cluster.appended
        spent = cluster.scrape_round()
        ingest_rates.append((cluster.appended - before) / spent)
        t_ms = cluster.now_ms
        gc.collect()
        wall = time.perf_counter()
        cpu = time.process_time()
        with GcClock() as clock:
            active, failures = ev.round(t_ms)
        round_cpu.append(time.process_time() - cpu)
        round_wall.append(time.perf_counter() - wall)
        default_cpu.append(ev.default_seconds)
        round_gc.append(clock)
        cpu = time.process_time()
        cluster.tsdb.gc(t_ms)
        gc_cpu.append(time.process_time() - cpu)
    print(
        f"  evaluation round: {statistics.median(round_cpu):.3f} s CPU "
        f"(runs {', '.join(f'{v:.3f}' for v in round_cpu)}), "
        f"{statistics.median(round_wall):.3f} s wall; {active} alerts active, "
        f"{failures} failures"
    )
    mid = round_gc[round_cpu.index(statistics.median(round_cpu))]
    gens = ", ".join(f"{n} x {sec:.3f} s" for n, sec in zip(mid.count, mid.seconds, strict=True))
    print(
        f"  of which the cyclic garbage collector (median run): {sum(mid.seconds):.3f} s "
        f"(gen0/1/2: {gens})"
    )
    figures["round_gc_seconds"] = sum(mid.seconds)
    figures["default_rules_cpu_seconds"] = statistics.median(default_cpu)
    print(
        f"  of which the {sum(len(g.rules) for g in groups if g.file == str(DEFAULT_RULES))} "
        f"shipped rules of {DEFAULT_RULES.name}: {statistics.median(default_cpu):.3f} s"
    )
    print(
        f"  TSDB.gc after the round: {statistics.median(gc_cpu):.3f} s CPU; "
        f"a scrape of every target in between: {statistics.median(ingest_rates):,.0f} samples/s"
    )
    figures["round_cpu_seconds"] = statistics.median(round_cpu)
    figures["round_wall_seconds"] = statistics.median(round_wall)
    figures["gc_cpu_seconds"] = statistics.median(gc_cpu)

    # per-rule time
    ev.rule_seconds.clear()
    cluster.scrape_round()
    ev.round(cluster.now_ms, per_rule=True)
    ranked = sorted(ev.rule_seconds.items(), key=lambda kv: -kv[1])
    total = sum(ev.rule_seconds.values())
    print(f"\n  where a round's {total:.2f} s go, by rule (top 12):")
    for name, sec in ranked[:12]:
        print(f"    {sec:6.3f} s {100 * sec / total:5.1f}%  {name}")

    if not args.no_profile:
        print()
        print(profile_round(cluster, ev, 25))

    # 4. memory
    mem_targets = 3 if args.quick else 10
    mem = memory_per_series(mem_targets)
    print(f"\nmemory through text -> ScrapeCache -> TSDB, {mem_targets} targets (tracemalloc):")
    for name, value in mem.items():
        print(f"  {name:56} {value:10,.1f}")
    figures["bytes_per_series_1h"] = mem["bytes/series, 240 samples (1 h of 15 s), all in"]

    # summary
    print("\nsummary" + (" (--quick sizes: not the issue's figures)" if args.quick else ""))
    table = [
        (
            "scrape parse + ingest, samples/s (one core)",
            figures["scrape_ingest_samples_per_s"],
            ">= 500,000",
            figures["scrape_ingest_samples_per_s"] >= 500_000,
        ),
        ("  prometheus-client parser, same texts", ref, "(reference)", None),
        ("  ScrapeCache.parse_into alone", figures["parse_into_samples_per_s"], "", None),
        (
            f"evaluation round, 100 rules, {n_targets} x {SERIES_PER_TARGET} series, s CPU",
            figures["round_cpu_seconds"],
            "< 1 s",
            figures["round_cpu_seconds"] < 1.0,
        ),
        (
            "memory per active series, 1 h of 15 s samples, bytes",
            figures["bytes_per_series_1h"],
            "(report)",
            None,
        ),
    ]
    print(f"  {'figure':62} {'value':>12}  {'aim':12} met")
    for name, value, aim, met in table:
        shown = f"{value:12,.0f}" if value >= 100 else f"{value:12.3f}"
        print(f"  {name:62} {shown}  {aim:12} {'' if met is None else ('yes' if met else 'NO')}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
