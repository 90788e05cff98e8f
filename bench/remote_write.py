"""Remote write: samples per second into the real Prometheus, and what encoding costs.

1. Throughput: a `RemoteWriter` (default queue settings, capacity raised to hold a
   run) ships SERIES series x SCRAPES scrapes into Prometheus 2.42 started with
   `--web.enable-remote-write-receiver` on a free port in a temp dir. Each run
   offers every scrape at once and times until Prometheus accepted the last
   batch (`samples_sent_total`), with a fresh writer (cold label cache) each run;
   the series stay the same, so Prometheus creates them on the first run only.
   Printed: samples/s (wall clock) and this process's CPU per 100k samples
   end to end (encode, compress, HTTP). Prometheus runs on the same cores.
2. CPU per 100k samples of encoding + snappy compression alone (`BatchEncoder`
   and `compress`, batches of 2,000 from scrapes of 300 series), with the label
   cache cold (every series new) and warm (later scrapes), in CPU seconds of this
   process (`time.process_time`), beside building the same WriteRequest with the
   generated protobuf code (upb), the encoder we did not use.

Every figure is the median of 3 runs. Run: python bench/remote_write.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry

from orbiter.proto import remote_write_pb2 as pb
from orbiter.satellite.remote_write import (
    BatchEncoder,
    Chunk,
    QueueConfig,
    RemoteWriteConfig,
    RemoteWriter,
    compress,
)
from orbiter.satellite.series import Labels, labels_of

RUNS = 3
SCRAPE_SERIES = 300  # one agent's scrape
BATCH = 2_000  # QueueConfig().max_samples_per_send


def series(n: int) -> list[Labels]:
    """Agent-like series: a metric name, job, instance, agent and a task label."""
    out = []
    for i in range(n):
        agent = i // SCRAPE_SERIES
        out.append(
            labels_of(
                {
                    "__name__": f"orbiter_agent_task_metric_{i % 23}",
                    "job": "agent",
                    "instance": f"10.0.{agent // 250}.{agent % 250}:5051",
                    "agent": f"agent-{agent:04d}",
                    "task_id": f"task-{i:06d}-{i * 2654435761 % 2**32:08x}",
                }
            )
        )
    return out


def scrapes(all_series: list[Labels], t0_ms: int, count: int, step_ms: int) -> list[Chunk]:
    """`count` rounds of scrapes of every agent (SCRAPE_SERIES series each), oldest first."""
    out: list[Chunk] = []
    for k in range(count):
        t = t0_ms + k * step_ms
        for a in range(0, len(all_series), SCRAPE_SERIES):
            agent = all_series[a : a + SCRAPE_SERIES]
            out.append(([(s, float(k * 7 + j)) for j, s in enumerate(agent)], t))
    return out


# ---------------------------------------------------------------------- Prometheus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_prometheus(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("prometheus")
    if binary is None:
        sys.exit("prometheus not found: run `make deps` (Debian package prometheus)")
    (tmp / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"prometheus did not start:\n{(tmp / 'prometheus.log').read_text()[-2000:]}")
        time.sleep(0.1)


async def one_run(url: str, chunks: list[Chunk], total: int) -> tuple[float, float]:
    """(samples/s wall clock, CPU seconds of this process per 100k samples)."""
    registry = CollectorRegistry()
    queue = QueueConfig(capacity=total, batch_send_deadline=0.05)
    writer = RemoteWriter(RemoteWriteConfig(f"{url}/api/v1/write", queue_config=queue), registry)
    await writer.start()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for samples, t_ms in chunks:
            writer.offer(samples, t_ms)
        while (
            registry.get_sample_value(
                "orbiter_remote_write_samples_sent_total", {"remote": writer.remote}
            )
            or 0
        ) < total:
            if registry.get_sample_value(
                "orbiter_remote_write_samples_dropped_total",
                {"remote": writer.remote, "reason": "rejected"},
            ):
                sys.exit("Prometheus refused a batch (see its log)")
            await asyncio.sleep(0.005)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await writer.stop()
    return total / wall, cpu / total * 100_000


async def throughput(n_series: int, n_scrapes: int) -> tuple[float, float]:
    all_series = series(n_series)
    total = n_series * n_scrapes
    step = 15_000
    # every run later than the one before, all within Prometheus's head (the last hour)
    t0 = int(time.time() * 1000) - (RUNS * n_scrapes + 1) * step
    with tempfile.TemporaryDirectory(prefix="orbiter-bench-rw-") as tmp:
        proc, url = start_prometheus(Path(tmp))
        try:
            rates, cpus = [], []
            for run in range(RUNS):
                chunks = scrapes(all_series, t0 + run * n_scrapes * step, n_scrapes, step)
                rate, cpu = await one_run(url, chunks, total)
                print(f"  run {run + 1}: {rate:,.0f} samples/s, {cpu * 1000:.0f} ms CPU / 100k")
                rates.append(rate)
                cpus.append(cpu)
        finally:
            proc.terminate()
            proc.wait(30)
    return statistics.median(rates), statistics.median(cpus)


# ---------------------------------------------------------------------- encoding alone


def batches(chunks: list[Chunk], size: int) -> list[list[Chunk]]:
    """The batches the sender would take: `size` samples each, scrapes split where needed."""
    out: list[list[Chunk]] = [[]]
    room = size
    for samples, t in chunks:
        start = 0
        while start < len(samples):
            take = min(room, len(samples) - start)
            out[-1].append((samples[start : start + take], t))
            start += take
            room -= take
            if room == 0:
                out.append([])
                room = size
    return [b for b in out if b]


def with_protobuf(batch: list[Chunk]) -> bytes:
    """The same WriteRequest built with the generated code (for comparison)."""
    groups: dict[Labels, list[tuple[int, float]]] = {}
    for samples, t in batch:
        for labels, value in samples:
            groups.setdefault(labels, []).append((t, value))
    req = pb.WriteRequest()
    for labels, points in groups.items():
        ts = req.timeseries.add()
        for name, value in labels:
            ts.labels.add(name=name, value=value)
        for t, v in points:
            ts.samples.add(value=v, timestamp=t)
    return compress(req.SerializeToString())


def encoding(n_series: int) -> dict[str, float]:
    """CPU ms per 100k samples: cold and warm label cache, compression's share, upb."""
    all_series = series(n_series)
    chunks = scrapes(all_series, 1_700_000_000_000, 100_000 // n_series, 15_000)
    work = batches(chunks, BATCH)
    total = sum(len(s) for b in work for s, _ in b)
    figures: dict[str, list[float]] = {k: [] for k in ("cold", "warm", "compress", "upb")}
    for _ in range(RUNS):
        encoder = BatchEncoder([])
        began = time.process_time()
        for b in work[: n_series // BATCH or 1]:  # the first scrape round: every series new
            compress(encoder.encode(b).body)
        cold = time.process_time() - began
        cold_samples = sum(len(s) for b in work[: n_series // BATCH or 1] for s, _ in b)
        figures["cold"].append(cold / cold_samples * 1e5 * 1000)
        encoder = BatchEncoder([])
        for b in work:
            encoder.encode(b)  # warm the cache
        began = time.process_time()
        bodies = [encoder.encode(b).body for b in work]
        encode = time.process_time() - began
        began = time.process_time()
        for body in bodies:
            compress(body)
        squeeze = time.process_time() - began
        figures["warm"].append((encode + squeeze) / total * 1e5 * 1000)
        figures["compress"].append(squeeze / total * 1e5 * 1000)
        began = time.process_time()
        for b in work:
            with_protobuf(b)
        figures["upb"].append((time.process_time() - began) / total * 1e5 * 1000)
    ratio = sum(len(b) for b in bodies) / sum(len(compress(b)) for b in bodies)
    out = {k: statistics.median(v) for k, v in figures.items()}
    out["ratio"] = ratio
    out["bytes_per_sample"] = sum(len(compress(b)) for b in bodies) / total
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    args = p.parse_args()
    n_series, n_scrapes = (3_000, 10) if args.quick else (15_000, 20)

    print(f"encoding + compression, batches of {BATCH:,}, {n_series:,} series (median of 3):")
    enc = encoding(n_series)
    print(f"  cold label cache (first scrape):  {enc['cold']:7.1f} ms CPU per 100k samples")
    print(f"  warm label cache:                 {enc['warm']:7.1f} ms CPU per 100k samples")
    print(f"    of which snappy:                {enc['compress']:7.1f} ms")
    print(f"  generated protobuf code (upb):    {enc['upb']:7.1f} ms CPU per 100k samples")
    print(
        f"  compressed: {enc['bytes_per_sample']:.1f} bytes/sample "
        f"(snappy ratio {enc['ratio']:.1f}x)"
    )

    total = n_series * n_scrapes
    print(f"\ninto Prometheus 2.42: {n_series:,} series x {n_scrapes} scrapes = {total:,} samples")
    rate, cpu = asyncio.run(throughput(n_series, n_scrapes))
    print(f"  median: {rate:,.0f} samples/s, {cpu * 1000:.0f} ms CPU per 100k samples (ours)")


if __name__ == "__main__":
    main()
