"""Satellite scrape path: exposition parsing and TSDB ingestion, with memory per series.

Prints, for one agent-like exposition (gauges, counters, histograms,
summaries as prometheus-client writes them), samples per second on one core:

- prometheus-client's `text_string_to_metric_families` (the reference);
- our `parse()` with no cache (every line parsed in full, as on a first scrape);
- `ScrapeCache.parse_into` warm (later scrapes: same series, new values);
- ingestion: `parse_into` + `TSDB.append_scrape`.

Each figure is the median of 3 runs, timed in CPU seconds of this process
(`time.process_time`), so other work on a shared machine does not count
against us; the parsers' runs interleave so they see alike conditions.
Then a breakdown of where warm parse time goes, and the memory of the scrape
cache + TSDB for series holding 1 hour of 15-second samples (240 each),
measured with tracemalloc.

Run: python bench/satellite_parse.py [--series-memory N]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from satellite import RUNS, interleaved_rates  # bench/satellite.py: one way to time

from orbiter.satellite.exposition import ScrapeCache, parse
from orbiter.satellite.tsdb import TSDB

MIN_RUN_SECONDS = 0.3


class AgentMetrics:
    """A registry shaped like an agent's /metrics: per-task gauges, counters and latencies."""

    def __init__(self, tasks: int = 150, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.registry = CollectorRegistry()
        r = self.registry
        task_labels = ["framework", "task_id", "executor"]
        self.gauges = [
            Gauge(f"orbiter_agent_task_{what}", f"Task {what}.", task_labels, registry=r)
            for what in ("cpu_seconds", "mem_rss_bytes", "mem_limit_bytes", "disk_used_bytes",
                         "threads", "open_fds")
        ]
        self.counters = [
            Counter(f"orbiter_agent_task_{what}", f"Task {what}.", task_labels, registry=r)
            for what in ("net_rx_bytes", "net_tx_bytes", "restarts")
        ]
        self.histogram = Histogram(
            "orbiter_agent_launch_duration_seconds", "Time to launch a task.",
            ["framework", "containerizer"], registry=r,
        )
        self.summary = Summary(
            "orbiter_agent_status_update_seconds", "Status update round trip.",
            ["framework"], registry=r,
        )
        self.host = Gauge("orbiter_agent_host_load", "Load average.", ["window"], registry=r)
        self.tasks = [
            (f"fw-{i % 7}", f"task-{i:05d}-{self.rng.randrange(10**8):08x}", f"exec-{i % 13}")
            for i in range(tasks)
        ]
        self.step()

    def step(self) -> None:
        """New values everywhere; the series stay the same, as between two scrapes."""
        rng = self.rng
        for labels in self.tasks:
            for g in self.gauges:
                g.labels(*labels).set(rng.random() * 10**rng.randrange(1, 10))
            for c in self.counters:
                c.labels(*labels).inc(rng.randrange(1, 10**6))
        for fw in range(7):
            for kind in ("process", "docker", "null"):
                self.histogram.labels(f"fw-{fw}", kind).observe(rng.expovariate(2))
            self.summary.labels(f"fw-{fw}").observe(rng.random())
        for window in ("1m", "5m", "15m"):
            self.host.labels(window).set(rng.random() * 4)

    def text(self) -> str:
        return generate_latest(self.registry).decode()


def client_samples(text: str) -> int:
    return sum(len(f.samples) for f in text_string_to_metric_families(text))


def throughput(texts: list[str]) -> dict[str, float]:
    counter = iter(range(10**12))

    def reference() -> int:
        return client_samples(texts[next(counter) % len(texts)])

    def cold() -> int:
        return len(parse(texts[next(counter) % len(texts)]))

    cache = ScrapeCache()
    cache.parse_into(texts[0])

    def warm() -> int:
        return len(cache.parse_into(texts[next(counter) % len(texts)]))

    ingest_cache = ScrapeCache()
    db = TSDB(retention_ms=3_600_000)
    clock = [0]

    def ingest() -> int:
        clock[0] += 15_000
        rows = ingest_cache.parse_into(texts[next(counter) % len(texts)])
        db.append_scrape("agent-1:5051", rows, clock[0])
        return len(rows)

    return interleaved_rates(
        {
            "prometheus_client text parser": reference,
            "orbiter parse() (no cache)": cold,
            "orbiter ScrapeCache.parse_into (warm)": warm,
            "orbiter parse_into + TSDB.append_scrape": ingest,
        },
        MIN_RUN_SECONDS,
    )


def memory(series: int, samples_per_series: int = 240, step_ms: int = 15_000) -> dict[str, float]:
    """Bytes held per series and per sample after scraping `series` series for an hour.

    Real path: exposition text -> ScrapeCache -> TSDB, traced with tracemalloc.
    The TSDB share is what tsdb.py allocated (series objects, sample arrays,
    index); the label sets and the cache's keys are allocated in exposition.py
    and shared by both.
    """
    rng = random.Random(2)
    parts = [
        f'orbiter_agent_task_metric_{i % 20}{{framework="fw-{i % 7}",'
        f'task_id="task-{i:06d}-{rng.randrange(10**8):08x}",instance="agent-{i % 50}:5051"}}'
        for i in range(series)
    ]

    texts = [
        "".join([f"{part} {k * 1.5 + i}\n" for i, part in enumerate(parts)]) for k in range(4)
    ]

    def scrape(k: int) -> str:
        return texts[k % len(texts)]

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    cache = ScrapeCache()
    db = TSDB(retention_ms=samples_per_series * step_ms)
    db.append_scrape("agent-1:5051", cache.parse_into(scrape(0)), 0)
    gc.collect()
    one_sample = tracemalloc.get_traced_memory()[0] - base
    for k in range(1, samples_per_series):
        db.append_scrape("agent-1:5051", cache.parse_into(scrape(k)), k * step_ms)
    gc.collect()
    full = tracemalloc.get_traced_memory()[0] - base
    by_file = tracemalloc.take_snapshot().statistics("filename")
    tracemalloc.stop()
    tsdb_bytes = sum(s.size for s in by_file if s.traceback[0].filename.endswith("tsdb.py"))
    assert db.sample_count == series * samples_per_series
    per_sample = (full - one_sample) / (series * (samples_per_series - 1))
    return {
        "series (4 labels + __name__, ~110-byte series text)": series,
        "samples per series": samples_per_series,
        "bytes per series with 1 sample (cache + labels + TSDB)": one_sample / series,
        "bytes per extra sample": per_sample,
        "bytes per active series, 1 h of 15 s samples, all in": full / series,
        "  of which allocated in tsdb.py (series, arrays, index)": tsdb_bytes / series,
        "bytes per sample, all in (total / samples)": full / (series * samples_per_series),
    }


def breakdown(text: str) -> list[tuple[str, float]]:
    """Warm-parse time per sample: a line-by-line loop built up stage by stage (what a
    scrape that differs from the last one costs), then `parse_into` as it runs on a
    repeated scrape (its layout fast path), then ingestion on top of that."""
    cache = ScrapeCache()
    cache.parse_into(text)
    get = cache._entries.get
    db = TSDB()
    clock = [0]
    n = len(cache.parse_into(text))

    def split_only() -> None:
        text.split("\n")

    def partition() -> None:
        for line in text.split("\n"):
            line.rpartition(" ")

    def lookup() -> None:
        for line in text.split("\n"):
            series, _, _value = line.rpartition(" ")
            get(series)

    def values() -> None:
        rows = []
        append = rows.append
        for line in text.split("\n"):
            series, _, value = line.rpartition(" ")
            entry = get(series)
            if entry is not None:
                if "_" in value:
                    raise ValueError
                append((entry, float(value), None))

    def full() -> None:
        cache.parse_into(text)

    def ingest() -> None:
        clock[0] += 15_000
        db.append_scrape("t", cache.parse_into(text), clock[0])

    stages = {
        "line loop: text.split('\\n')": split_only,
        "+ loop over lines, rpartition(' ')": partition,
        "+ dict lookup of the series part": lookup,
        "+ '_' check, float(value), row tuple, list append": values,
        "ScrapeCache.parse_into, repeated scrape (layout fast path)": full,
        "+ TSDB.append_scrape (ingestion)": ingest,
    }
    times: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(RUNS):
        for name, fn in stages.items():
            gc.collect()
            start = time.process_time()
            for _ in range(20):
                fn()
            times[name].append((time.process_time() - start) / 20 / n)
    return [(name, statistics.median(values) * 1e9) for name, values in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series-memory", type=int, default=2000,
                        help="series in the memory measurement (default 2000)")
    parser.add_argument("--tasks", type=int, default=150,
                        help="tasks on the simulated agent (default 150)")
    args = parser.parse_args()

    agent = AgentMetrics(tasks=args.tasks)
    texts = []
    for _ in range(4):
        agent.step()
        texts.append(agent.text())
    samples = client_samples(texts[0])
    assert samples == len(parse(texts[0])), "sample counts differ from prometheus_client"
    print(f"python {sys.version.split()[0]}, one core, CPU time; exposition of {samples} samples, "
          f"{len(texts[0])} bytes, {texts[0].count(chr(10))} lines; medians of {RUNS} runs\n")

    rates = throughput(texts)
    reference = rates["prometheus_client text parser"]
    print(f"{'parser':45} {'samples/s':>12} {'vs client':>10}")
    for name, rate in rates.items():
        print(f"{name:45} {rate:12,.0f} {rate / reference:9.1f}x")

    print("\nwarm parse, where the time goes (ns per sample, cumulative):")
    previous = 0.0
    for name, ns in breakdown(texts[0]):
        if name.startswith("ScrapeCache"):
            print("  the real parser, which skips the per-line loop when the lines repeat:")
            previous = 0.0
        print(f"  {name:66} {ns:7.0f}  ({ns - previous:+.0f})")
        previous = ns

    print("\nmemory (tracemalloc), scrape cache + TSDB after 1 hour of scrapes:")
    for name, value in memory(args.series_memory).items():
        print(f"  {name:58} {value:10,.1f}")


if __name__ == "__main__":
    main()
