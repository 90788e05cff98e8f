"""What this host can offer, when the operator does not say (`--resources`)."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from orbiter.resources import Resources

DEFAULT_PORTS = (31000, 32000)


def _reserve(total_mib: float) -> float:
    """Mesos's rule: keep 1 GiB for the host, or half the total on small hosts."""
    return max(total_mib - 1024, total_mib / 2)


def detect_resources(work_dir: Path, share: int = 1, index: int = 0) -> Resources:
    """This host's cpus, mem and disk (of the work dir's filesystem) and a port range.

    With `share` > 1 the host is split between that many agents (the embedded
    cluster of `orbiter up`); `index` picks this agent's slice of the ports.
    """
    cpus = (os.cpu_count() or 1) / share
    mem = _reserve(psutil.virtual_memory().total / 2**20) / share
    work_dir.mkdir(parents=True, exist_ok=True)
    disk = _reserve(psutil.disk_usage(str(work_dir)).free / 2**20) / share
    low, high = DEFAULT_PORTS
    span = (high - low + 1) // share
    begin = low + index * span
    text = (
        f"cpus:{round(cpus, 3)};mem:{int(mem)};disk:{int(disk)};ports:[{begin}-{begin + span - 1}]"
    )
    return Resources.parse(text)
