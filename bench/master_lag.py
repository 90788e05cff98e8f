"""Does Satellite stall the master? Its event-loop lag with Satellite on, at 1,000 agents.

For each mode, a fresh `orbiter master` (Satellite scraping every agent and the
master every 5 s and evaluating the shipped rules every 5 s) and a pool of
null agents in one helper process, each serving its own /metrics (about 100
series of its own plus `--extra-series` moving gauges: ~300 by default). After a
warm-up, the bench reads `orbiter_master_event_loop_lag_seconds` (a histogram
the master keeps of how late its loop ran a 100 ms timer) at the start and
end of a window, and prints the window's p50/p99 (interpolated within buckets
as PromQL's histogram_quantile does), the worst bucket reached, Satellite's
rounds and their mean duration, and CPU seconds of the master and of
Satellite's process.

Modes:
- process:   the default; Satellite in its own process, started by the master.
- in-master: `--satellite-in-master`, the old design: Satellite in the
             master's event loop (for comparison).

Aim: master p99 < 50 ms with Satellite on at 1,000 agents.

Run: python bench/master_lag.py [--quick] [--agents N] [--seconds S] [--modes process,in-master]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
from prometheus_client.parser import text_string_to_metric_families
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import AgentPool, BenchError, MasterProcess

LAG = "orbiter_master_event_loop_lag_seconds"
EVAL = "orbiter_satellite_evaluation_duration_seconds"
SERIES = "orbiter_satellite_series"
AIM_P99 = 0.050
CONFIG = "satellite:\n  scrape_interval: 5s\n  scrape_timeout: 5s\n  evaluation_interval: 5s\n"
AGENT = "cpus:4;mem:8192"


@dataclass
class Window:
    mode: str
    agents: int
    seconds: float
    samples: int
    p50: float
    p99: float
    worst_bucket: str
    series: int
    rounds: int
    round_mean: float | None
    master_cpu: float
    satellite_cpu: float | None


def scrape(master: MasterProcess) -> dict[str, float]:
    """The master's lag buckets and Satellite's evaluation count and sum."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(master.get("/metrics").decode()):
        for s in family.samples:
            if s.name == f"{LAG}_bucket":
                out[f"le={s.labels['le']}"] = s.value
            elif s.name in (f"{EVAL}_count", f"{EVAL}_sum", f"{LAG}_count", SERIES):
                out[s.name] = s.value
    return out


def quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """histogram_quantile over cumulative (upper bound, count) pairs, +Inf last."""
    total = buckets[-1][1]
    if total == 0:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = upper, count
    return lower


def cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def satellite_pid(master_pid: int) -> int | None:
    for child in psutil.Process(master_pid).children():
        if "satellite" in child.cmdline():
            return child.pid
    return None


def measure(
    mode: str, agents: int, extra_series: int, seconds: float, warmup: float, work: Path
) -> Window:
    config = work / "orbiter.yml"
    config.write_text(CONFIG)
    extra = ["--config", str(config)]
    if mode == "in-master":
        extra.append("--satellite-in-master")
    master = MasterProcess.start(work / "master", satellite=True, extra_args=extra)
    pool = None
    try:
        pool = AgentPool.start(
            master.grpc_address, agents, AGENT, "null", work / "agents", timeout=300,
            extra_series=extra_series,
        )  # fmt: skip
        print(f"  {mode}: {agents} agents registered in {pool.register_seconds:.1f}s; "
              f"warming up {warmup:g}s", flush=True)  # fmt: skip
        time.sleep(warmup)
        sat = satellite_pid(master.pid)
        before, cpu0 = scrape(master), cpu(master.pid)
        sat0 = cpu(sat) if sat else None
        t0 = time.monotonic()
        time.sleep(seconds)
        after, cpu1 = scrape(master), cpu(master.pid)
        sat1 = cpu(sat) if sat else None
        elapsed = time.monotonic() - t0
    finally:
        if pool is not None:
            pool.stop()
        master.stop()
    buckets = sorted(
        (float(k.removeprefix("le=")), after[k] - before.get(k, 0.0))
        for k in after
        if k.startswith("le=")
    )
    worst, below = "-", 0.0
    for upper, count in buckets:  # cumulative, ascending: the last bucket that grew
        if count > below:
            worst = f"<= {upper:g} s"
        below = count
    rounds = int(after.get(f"{EVAL}_count", 0) - before.get(f"{EVAL}_count", 0))
    spent = after.get(f"{EVAL}_sum", 0) - before.get(f"{EVAL}_sum", 0)
    return Window(
        mode=mode,
        agents=agents,
        seconds=round(elapsed, 1),
        samples=int(buckets[-1][1]),
        p50=quantile(0.5, buckets),
        p99=quantile(0.99, buckets),
        worst_bucket=worst,
        series=int(after.get(SERIES, 0)),
        rounds=rounds,
        round_mean=spent / rounds if rounds else None,
        master_cpu=round(cpu1 - cpu0, 2),
        satellite_cpu=round(sat1 - sat0, 2) if sat0 is not None and sat1 is not None else None,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="100 agents, 20 s windows")
    p.add_argument("--agents", type=int, default=0, help="agents (default 1000)")
    p.add_argument("--seconds", type=float, default=0, help="measured window (default 60)")
    p.add_argument("--extra-series", type=int, default=200, help="more gauges per agent "
                   "(default 200: about 300 series a target, as in bench/satellite.py)")
    p.add_argument("--runs", type=int, default=1, help="windows per mode (median reported)")
    p.add_argument("--modes", default="process,in-master", help="comma-separated")
    p.add_argument("--json", default="", help="also write the figures to this file")
    args = p.parse_args(argv)
    agents = args.agents or (100 if args.quick else 1000)
    seconds = args.seconds or (20.0 if args.quick else 60.0)
    warmup = 12.0 if args.quick else 20.0
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in ("process", "in-master"):
            p.error(f"--modes: unknown mode {m!r}; use process and/or in-master")
    print(f"master event-loop lag, Satellite on, {agents} null agents, {seconds:g}s windows")
    windows: list[Window] = []
    for run in range(args.runs):
        for mode in modes:
            work = Path(tempfile.mkdtemp(prefix=f"orbiter-bench-lag-{mode}-"))
            try:
                windows.append(measure(mode, agents, args.extra_series, seconds, warmup, work))
            except BenchError as e:
                print(f"bench failed ({mode}, run {run + 1}): {e}", file=sys.stderr)
                return 1
            finally:
                shutil.rmtree(work, ignore_errors=True)
    rows = []
    for w in windows:
        rows.append([
            w.mode, w.samples, f"{w.p50 * 1000:.1f}", f"{w.p99 * 1000:.1f}", w.worst_bucket,
            w.series, w.rounds, "-" if w.round_mean is None else f"{w.round_mean:.3f}",
            w.master_cpu, "-" if w.satellite_cpu is None else w.satellite_cpu,
        ])  # fmt: skip
    print(tabulate(rows, headers=[
        "mode", "samples", "p50 ms", "p99 ms", "worst", "series", "rounds", "round s",
        "master CPU s",
        "satellite CPU s",
    ]))  # fmt: skip
    summary = []
    for mode in modes:
        p99s = [w.p99 for w in windows if w.mode == mode]
        med = statistics.median(p99s)
        met = "yes" if med < AIM_P99 else "no"
        summary.append([mode, f"{med * 1000:.1f} ms", f"< {AIM_P99 * 1000:g} ms", met])
    print()
    print(tabulate(summary, headers=["mode", "master p99 lag (median)", "aim", "met?"]))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(w) for w in windows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
