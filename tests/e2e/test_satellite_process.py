"""Satellite in its own process (the default): started by the leading master, restarted
if it dies, gone with the master, its state in ZooKeeper beside an HA leader.

Real `orbiter master` processes with the e2e Satellite config (scrape and evaluate
every second); what is read is what an operator reads: the master's /metrics and
Satellite API, and the processes themselves.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest
from satellite_helpers import Master, poll_until, start_master, write_config

from orbiter.satellite.durable_state import decode
from orbiter.zk import connect, parse_zk_url
from orbiter.zkstore import ZkBlobStore

if TYPE_CHECKING:
    from proctools import Processes
    from zkserver import ZooKeeperServer

pytestmark = pytest.mark.slow

TIMEOUT = 30.0


def satellite_of(master: Master) -> psutil.Process | None:
    """The master's Satellite child process, if it has one running."""
    assert master.proc is not None
    for child in psutil.Process(master.proc.pid).children():
        if "satellite" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
            return child
    return None


def gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_master_restarts_its_satellite_and_takes_it_down_with_it(
    processes: Processes, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", tmp_path / "fleet-marker")
    master = start_master(processes, tmp_path, config)
    poll_until(lambda: master.evaluations() >= 1, TIMEOUT, "Satellite's first round")
    first = satellite_of(master)
    assert first is not None, "no Satellite process under the master"
    # Its API and metrics are the master's, as when it ran inside.
    assert master.alerts() == []
    for process in ("master", "satellite"):
        name = f"orbiter_{process}_event_loop_lag_seconds_count"
        poll_until(lambda name=name: master.metric(name) > 0, TIMEOUT, f"{name} > 0")

    first.kill()
    poll_until(
        lambda: master.metric("orbiter_master_satellite_restarts_total") == 1,
        TIMEOUT,
        "the master to start Satellite again",
    )
    second = satellite_of(master)
    assert second is not None and second.pid != first.pid
    # The new process's counters start at 0: a round counted now is one of its own.
    poll_until(lambda: master.evaluations() >= 1, TIMEOUT, "a round by the new Satellite")
    assert master.get("/api/v1/rules")["data"]["groups"], "the new Satellite loaded no rules"

    master.kill9()
    poll_until(lambda: gone(second), 10, "Satellite to stop once its master is gone")


def test_beside_an_ha_leader_satellites_state_lives_in_zookeeper(
    processes: Processes, tmp_path: Path, zookeeper: ZooKeeperServer
) -> None:
    url = zookeeper.url("/sat")
    config = write_config(tmp_path / "config", tmp_path / "fleet-marker")
    master = start_master(processes, tmp_path, config, extra=("--zk", url))
    poll_until(lambda: master.evaluations() >= 2, TIMEOUT, "two Satellite rounds")
    child = satellite_of(master)
    assert child is not None

    client = connect(parse_zk_url(url))
    try:
        data = ZkBlobStore(client, "/sat/satellite", "test-reader").load()
    finally:
        client.stop()
        client.close()
    assert data is not None, "no Satellite state document in ZooKeeper"
    state = decode(data)
    assert state.writer.endswith(f":{child.pid}"), f"written by {state.writer}, not the child"
    assert state.saved_at > 0


async def test_a_child_stops_when_its_master_is_gone_or_it_is_fenced() -> None:
    """What ends a master's Satellite process besides SIGTERM (cli._watch_parent)."""
    from types import SimpleNamespace

    from orbiter.cli import _watch_parent

    satellite = SimpleNamespace(fenced="")
    over = asyncio.Event()
    watch = asyncio.create_task(_watch_parent(os.getppid(), satellite, over))
    await asyncio.sleep(0.6)
    assert not over.is_set(), "our parent lives and nothing is fenced"
    satellite.fenced = "another Satellite wrote the state"
    await asyncio.wait_for(over.wait(), 2.0)
    await watch

    satellite.fenced = ""
    gone = asyncio.Event()  # a pid that is not our parent: the master is gone
    await asyncio.wait_for(_watch_parent(os.getppid() + 1_000_000, satellite, gone), 2.0)
    assert gone.is_set()
