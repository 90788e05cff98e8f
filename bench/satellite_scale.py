"""How Satellite's cost grows with the cluster: bench/satellite.py at several sizes.

Runs `bench/satellite.py --targets N --no-profile` in a fresh process for each
size (so each RSS figure is its own) and prints one row per size: series held,
one evaluation round of the 100 rules (CPU and wall, median of 3), the round's
CPU per 1,000 targets, the cyclic GC's share, RSS per series at the loaded
history, and the time to load that history. Linear growth shows as a flat
"per 1k targets" column.

Run: python bench/satellite_scale.py [--sizes 250,1000,2000,5000] [--samples 64]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

SCRIPT = Path(__file__).resolve().parent / "satellite.py"


def run(targets: int, samples: int, out: Path) -> dict[str, float]:
    args = [
        sys.executable, str(SCRIPT), "--targets", str(targets), "--samples", str(samples),
        "--no-profile", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode not in (0, 1) or not out.exists():  # 1: an aim not met, figures written
        raise RuntimeError(
            f"bench/satellite.py --targets {targets} exited with {done.returncode}:\n"
            f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="250,1000,2000,5000", help="targets, comma-separated")
    p.add_argument("--samples", type=int, default=64, help="scrapes loaded per target")
    args = p.parse_args(argv)
    try:
        sizes = [int(x) for x in args.sizes.split(",") if x]
    except ValueError:
        p.error(f"--sizes: expected whole numbers separated by commas, got {args.sizes!r}")
    if not sizes or min(sizes) < 1:
        p.error("--sizes: give at least one size of 1 or more")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            print(f"{n} targets x 300 series, {args.samples} scrapes each ...", flush=True)
            started = time.monotonic()
            try:
                f = run(n, args.samples, Path(tmp) / f"{n}.json")
            except RuntimeError as e:
                print(e, file=sys.stderr)
                return 1
            rows.append([
                n, f"{f['series']:,.0f}", f"{f['round_cpu_seconds']:.3f}",
                f"{f['round_wall_seconds']:.3f}", f"{f['round_cpu_seconds'] / n * 1000:.3f}",
                f"{f['round_gc_seconds'] / f['round_cpu_seconds']:.0%}",
                f"{f['rss_bytes_per_series']:,.0f}", f"{f['load_cpu_seconds']:.0f}",
            ])  # fmt: skip
            print(
                f"  done in {time.monotonic() - started:.0f} s: round {rows[-1][2]} s CPU, "
                f"{rows[-1][6]} bytes/series",
                flush=True,
            )
    print()
    print(tabulate(rows, headers=[
        "targets", "series", "round CPU s", "round wall s", "CPU s per 1k targets", "GC share",
        f"RSS bytes/series ({args.samples} samples)", "load CPU s",
    ]))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
