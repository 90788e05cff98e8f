"""One allocation cycle of the pure allocator, on Mesos's benchmark grid.

Mirrors `hierarchical_allocator_benchmarks.cpp`: 1,000 and 10,000 agents x
10, 100 and 1,000 frameworks (Mesos's hierarchical allocator took 1.06 s for
10k agents x 1k frameworks). Each cycle is `allocate()` on a cluster where
every agent is free (`cpus:24;mem:65536;disk:400000;ports:[31000-32000]`)
and every framework wants offers; framework i is in role `team{i % 10}/app{i}`
(a two-level tree), holds a little already (so the shares differ), and one in
ten has an active filter on a tenth of the agents. A second set of rows adds
quota: every `team` has a guarantee and a limit.

Printed: the median of --runs cycles per cell, the goal (10k x 100 <= 200 ms,
10k x 1,000 <= 1 s), pass/fail, and a least-squares fit of the times as
a + b*agents + c*frameworks + d*agents*frameworks, which says what a cycle is
linear in. `--profile` prints cProfile's top functions for the largest cell.

Run: python bench/allocator.py [--quick] [--runs N] [--profile] [--json PATH]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orbiter.master.allocator import AgentView, FrameworkView, OfferFilter, allocate
from orbiter.master.quota import Quota
from orbiter.resources import Resources

AGENT = "cpus:24;mem:65536;disk:400000;ports:[31000-32000]"
NOW = 1000.0
TEAMS = 10
FULL = ([1_000, 10_000], [10, 100, 1_000])
QUICK = ([1_000, 3_000], [10, 100])
GOALS = {(10_000, 100): 0.200, (10_000, 1_000): 1.0}
MESOS = {(10_000, 1_000): 1.06}


def cluster(
    n_agents: int, n_frameworks: int, with_quota: bool
) -> tuple[list[AgentView], list[FrameworkView], dict[str, float], dict[str, Quota]]:
    one = Resources.parse(AGENT)
    agents = [AgentView(f"agent-{i:05d}", one) for i in range(n_agents)]
    total = {name: q * n_agents for name, q in one.quantities().items()}
    refused = Resources.parse(AGENT)
    frameworks = []
    for i in range(n_frameworks):
        role = f"team{i % TEAMS}/app{i}"
        filters = ()
        if i % 10 == 0:
            filters = tuple(
                OfferFilter(a.id, refused, NOW + 5) for a in agents[i % 10 :: 10]
            )
        held = {role: {"cpus": float(i % 7), "mem": float(256 * (i % 5))}}
        frameworks.append(FrameworkView(f"fw-{i:04d}", (role,), held, frozenset(), filters))
    quotas: dict[str, Quota] = {}
    if with_quota:
        share = total["cpus"] / TEAMS
        for t in range(TEAMS):
            quotas[f"team{t}"] = Quota({"cpus": share / 4, "mem": 1024.0}, {"cpus": share})
    return agents, frameworks, total, quotas


def cycle(agents, frameworks, total, quotas) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    plans = allocate(agents, frameworks, total, NOW, None, quotas)
    return time.perf_counter() - start, len(plans)


def fit(rows: list[dict]) -> str:
    """Least squares of seconds on (1, agents, frameworks, agents*frameworks)."""
    a = np.array([[1.0, r["agents"], r["frameworks"], r["agents"] * r["frameworks"]]
                  for r in rows])  # fmt: skip
    y = np.array([r["median_s"] for r in rows])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    c0, per_agent, per_fw, per_pair = coef
    return (
        f"t ~= {c0 * 1e3:.1f} ms + {per_agent * 1e6:.1f} us x agents + "
        f"{per_fw * 1e6:.1f} us x frameworks + {per_pair * 1e9:.2f} ns x agents x frameworks"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, for a CI smoke run")
    p.add_argument("--runs", type=int, default=5, help="cycles per cell (median reported)")
    p.add_argument("--profile", action="store_true", help="cProfile the largest cell")
    p.add_argument("--json", default="", help="write the rows here too")
    args = p.parse_args()
    agent_sizes, framework_sizes = QUICK if args.quick else FULL
    runs = 3 if args.quick else args.runs
    rows: list[dict] = []
    failed = False
    print(f"one allocation cycle, median of {runs} (seconds)")
    print(f"{'quota':>6} {'agents':>7} {'frameworks':>10} {'offers':>7} {'median':>8} "
          f"{'per agent':>10} {'goal':>8}  result")  # fmt: skip
    for with_quota in (False, True):
        for n_agents in agent_sizes:
            for n_frameworks in framework_sizes:
                built = cluster(n_agents, n_frameworks, with_quota)
                times, offers = [], 0
                for _ in range(runs):
                    seconds, offers = cycle(*built)
                    times.append(seconds)
                median = statistics.median(times)
                goal = GOALS.get((n_agents, n_frameworks)) if not with_quota else None
                verdict = "-"
                if goal is not None:
                    verdict = "PASS" if median <= goal else "FAIL"
                    failed |= median > goal
                mesos = MESOS.get((n_agents, n_frameworks))
                if mesos and not with_quota:
                    verdict += f" (Mesos: {mesos:.2f} s)"
                rows.append({"quota": with_quota, "agents": n_agents,
                             "frameworks": n_frameworks, "offers": offers,
                             "median_s": median, "runs": times, "goal_s": goal})  # fmt: skip
                print(f"{'yes' if with_quota else 'no':>6} {n_agents:>7} {n_frameworks:>10} "
                      f"{offers:>7} {median:>8.3f} {median / n_agents * 1e6:>8.1f}us "
                      f"{'' if goal is None else f'{goal:.3f}':>8}  {verdict}")  # fmt: skip
    for with_quota in (False, True):
        subset = [r for r in rows if r["quota"] is with_quota]
        print(f"growth{' (quota)' if with_quota else ''}: {fit(subset)}")
    if args.profile:
        built = cluster(agent_sizes[-1], framework_sizes[-1], False)
        profiler = cProfile.Profile()
        profiler.enable()
        allocate(built[0], built[1], built[2], NOW, None, built[3])
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
    print("goals: " + ("FAILED" if failed else "met"))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0  # as the other benches: 0 when every cycle ran, goals met or not


if __name__ == "__main__":
    sys.exit(main())
