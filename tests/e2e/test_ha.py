"""Several masters elected through ZooKeeper, end to end with real processes.

One leader and standbys that point at it; a leader killed with SIGKILL and a
standby taking over, agents and frameworks following it by themselves; a
deposed leader's registry write refused; the ensemble going away for a moment
under a running cluster; and the mistakes an operator makes with --zk.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hatools import ORBITER, HaCluster, ZkMaster, http_get_no_redirect, orbiter
from kazoo.client import KazooClient
from proctools import Processes, poll_until
from zkserver import ZooKeeperServer

from orbiter.proto import master_pb2
from orbiter.zk import claim_root, connect, parse_zk_url
from orbiter.zkstore import ZkBlobStore, ZkRegistryStore

SESSION_TIMEOUT = 3.0
# From SIGKILL to a new leader: the dead leader's session has to expire first.
FAILOVER_DEADLINE = SESSION_TIMEOUT + 7.0


@pytest.fixture
def ha(zookeeper: ZooKeeperServer, processes: Processes, tmp_path: Path) -> HaCluster:
    """ZooKeeper, and room for masters, agents and CLI runs (all stopped before ZooKeeper)."""
    return HaCluster(zookeeper, processes, tmp_path)


@pytest.fixture
def zk_client(zookeeper: ZooKeeperServer) -> Iterator[KazooClient]:
    """A client of the test's ZooKeeper, as an operator (or another master) would use."""
    client = connect(parse_zk_url(zookeeper.url()), session_timeout=SESSION_TIMEOUT)
    yield client
    client.stop()
    client.close()


def zk_tree(client: KazooClient) -> dict[str, tuple[bytes, int, int]]:
    """Every znode (ZooKeeper's own left out): its data and the zxids of its last changes."""
    nodes = {}
    pending = ["/"]
    while pending:
        node = pending.pop()
        if node == "/zookeeper":
            continue
        data, stat = client.get(node)
        nodes[node] = (data, stat.mzxid, stat.pzxid)
        pending += [f"{node.rstrip('/')}/{child}" for child in client.get_children(node)]
    return nodes


def failover(ha: HaCluster, old: ZkMaster) -> tuple[ZkMaster, float]:
    """SIGKILL the leader; return the new leader and the seconds until its /health said so."""
    killed_at = time.monotonic()
    old.kill()
    new = ha.wait_leader(FAILOVER_DEADLINE)
    took = time.monotonic() - killed_at
    assert new is not old
    print(f"failover: SIGKILL of the leader to a new leader's /health role=leader: {took:.2f}s")
    return new, took


def hold(check: Callable[[], object], until: float, interval: float = 0.1) -> None:
    """Assert that `check()` stays truthy until the monotonic time `until` (an outage's length)."""
    while time.monotonic() < until:
        assert check(), f"{check} stopped holding"
        time.sleep(interval)


# ---------------------------------------------------------------------- one leader


@pytest.mark.slow
def test_one_of_three_masters_leads_and_the_standbys_point_at_it(
    ha: HaCluster, zk_client: KazooClient
) -> None:
    ha.start_masters(3)
    leader = ha.wait_leader()
    standbys = [m for m in ha.masters if m is not leader]

    leader_health = leader.health()
    assert leader_health["leader"] is True and leader_health["acting"] is True
    for standby in standbys:
        health = standby.health()
        assert health["role"] == "standby" and health["leader"] is False
        assert health["leading_master"] == {
            "id": leader_health["master_id"],
            "grpc_address": leader.address,
            "http_address": leader.http_address,
        }

    # What clients follow: the ephemeral leader znode.
    published, stat = zk_client.get("/orbiter/leader")
    assert stat.ephemeralOwner != 0
    info = json.loads(published)
    assert info["id"] == leader_health["master_id"]
    assert (info["grpc_address"], info["http_address"]) == (leader.address, leader.http_address)
    assert info["version"] and info["hostname"] and info["elected_at"] <= time.time()

    # A standby's operator API sends the browser or script to the leader...
    resp = http_get_no_redirect(standbys[0].http_address, "/api/v1/agents?x=1")
    assert resp.status == 307
    assert resp.headers["Location"] == f"{leader.url}/api/v1/agents?x=1"
    # ...and its gRPC API refuses, saying who leads.
    refused = orbiter("agents", "--master", standbys[0].address)
    assert refused.returncode != 0
    assert "standby" in refused.stderr and leader.address in refused.stderr, refused.stderr

    followed = orbiter("agents", "--master", ha.zk_url, "--json")
    assert followed.returncode == 0, followed.stderr
    direct = orbiter("agents", "--master", leader.address, "--json")
    assert json.loads(followed.stdout) == json.loads(direct.stdout) == {"agents": []}


# ---------------------------------------------------------------------- failover


@pytest.mark.slow
def test_killed_leader_is_replaced_and_agent_and_framework_follow_the_new_one(
    ha: HaCluster,
) -> None:
    ha.start_masters(3)
    old = ha.wait_leader()
    agent = ha.start_agent()
    listed = ha.wait_connected(agent, old)
    execute = ha.start_execute("x", "--command", "sleep 60")
    execute.wait_output("x-0: TASK_RUNNING")
    before = poll_until(lambda: old.tasks().get("x-0"), 10, "x-0 listed by the leader")
    assert before["state"] == "TASK_RUNNING"
    pid = next(t["pid"] for t in agent.state(old)["tasks"] if t["id"] == "x-0")

    new, _took = failover(ha, old)

    # The agent re-registers by itself, as the same agent, with its task.
    again = ha.wait_connected(agent, new, timeout=15)
    assert again["id"] == listed["id"] and again["tasks"] == 1
    # The framework resubscribes to the new leader; the task is the same process.
    execute.wait_output(f"to master {new.address}", timeout=15)
    task = poll_until(
        lambda: (t := new.tasks().get("x-0")) and t["state"] == "TASK_RUNNING" and t,
        10,
        "x-0 running on the new leader",
    )
    assert task["framework_id"] == before["framework_id"]
    assert new.frameworks()[before["framework_id"]]["status"] == "connected"
    assert [t["pid"] for t in agent.state(new)["tasks"] if t["id"] == "x-0"] == [pid]

    tasks = orbiter("tasks", "--master", ha.zk_url)
    assert tasks.returncode == 0, tasks.stderr
    row = next(line.split() for line in tasks.stdout.splitlines() if line.startswith("x-0"))
    assert row[1] == "RUNNING"
    events = orbiter("events", "--master", ha.zk_url)
    assert "re-registered after failover" in events.stdout, events.stdout
    # And it is the new leader that carries out Ctrl-C: the task is killed.
    execute.proc.send_signal(signal.SIGINT)
    assert execute.wait_exit(15) == 130, execute.output()
    assert "x-0: TASK_KILLED" in execute.output()


@pytest.mark.slow
def test_execute_survives_a_leader_kill_in_the_middle(ha: HaCluster) -> None:
    ha.start_masters(2)
    leader = ha.wait_leader()
    ha.wait_connected(ha.start_agent(), leader)
    execute = ha.start_execute("mid", "--instances", "2", "--command", "sleep 3")
    execute.wait_output("mid-0: TASK_RUNNING")
    execute.wait_output("mid-1: TASK_RUNNING")

    failover(ha, leader)

    assert execute.wait_exit(30) == 0, execute.output()
    out = execute.output()
    assert "2/2 finished" in out
    assert "mid-0: TASK_FINISHED" in out and "mid-1: TASK_FINISHED" in out


@pytest.mark.slow
def test_tasks_of_an_agent_down_across_a_failover_are_reported_lost(ha: HaCluster) -> None:
    """The issue's scenario: without a re-registration deadline execute waited forever."""
    ha.start_masters(2, agent_reregister_timeout="3s")
    leader = ha.wait_leader()
    agent = ha.start_agent()
    ha.wait_connected(agent, leader)
    execute = ha.start_execute("lost", "--instances", "2", "--command", "sleep 30")
    execute.wait_output("lost-0: TASK_RUNNING")
    execute.wait_output("lost-1: TASK_RUNNING")
    agent_id = agent.agent_id

    agent.sigkill(leader)
    killed_at = time.monotonic()
    new, took = failover(ha, leader)

    # The new leader waits 3s for the agent, then the framework's reconciliation
    # learns its tasks are lost.
    code = execute.wait_exit(3.0 + 10.0)
    print(f"execute ended {took:.2f}s + {time.monotonic() - killed_at - took:.2f}s after the kill")
    out = execute.output()
    assert code != 0, out
    assert "lost-0: TASK_LOST" in out and "lost-1: TASK_LOST" in out, out
    assert "0/2 finished" in out
    assert new.agents()[agent_id]["status"] == "unreachable"
    events = orbiter("events", "--master", ha.zk_url)
    assert "did not re-register within 3s" in events.stdout, events.stdout


# ---------------------------------------------------------------------- fencing


@pytest.mark.slow
def test_deposed_leader_cannot_overwrite_the_registry(
    ha: HaCluster, zk_client: KazooClient
) -> None:
    (master,) = ha.start_masters(1)
    assert ha.wait_leader() is master
    agent = ha.start_agent()
    ha.wait_connected(agent, master)

    # Another master writes the registry behind this one's back, as a new leader would.
    intruder = ZkRegistryStore(zk_client, "/orbiter", "intruder")
    registry = intruder.load()
    assert [a.info.id for a in registry.agents] == [agent.agent_id]
    registry.version += 100
    registry.master_id = "intruder"
    intruder.store(registry)
    written = ZkBlobStore(zk_client, "/orbiter/registry", "reader").load()
    assert written is not None

    deactivate = orbiter("deactivate", agent.agent_id, "--reason", "x", "--master", ha.zk_url)
    assert deactivate.returncode != 0, deactivate.stdout
    assert "written by another master (writer intruder" in deactivate.stderr, deactivate.stderr
    assert master.proc is not None
    code = master.proc.wait(15)
    assert code != 0
    out = master.output()
    assert "stepped down" in out and "another master" in out, out

    data, _ = zk_client.get("/orbiter/registry")
    assert json.loads(data.partition(b"\n")[0])["writer"] == "intruder"
    assert ZkBlobStore(zk_client, "/orbiter/registry", "reader").load() == written
    kept = master_pb2.Registry.FromString(written)
    assert kept.master_id == "intruder" and kept.version == registry.version


# ---------------------------------------------------------------------- ZooKeeper outage


@pytest.mark.slow
def test_cluster_carries_on_after_zookeeper_is_down_for_a_moment(ha: HaCluster) -> None:
    ha.start_masters(2)
    leader = ha.wait_leader()
    agent = ha.start_agent()
    ha.wait_connected(agent, leader)

    ha.zookeeper.stop()
    down_at = time.monotonic()
    # Cut off, the leader stops acting: it says so and its API refuses.
    poll_until(lambda: not leader.health()["acting"], 5, "the leader to say it is not acting")
    refused = http_get_no_redirect(leader.http_address, "/api/v1/agents")
    assert refused.status == 503 and "lost contact with ZooKeeper" in refused.body
    hold(lambda: not leader.alive() or not leader.health()["acting"], until=down_at + 1.5)
    ha.zookeeper.start()
    print(f"ZooKeeper was down for {time.monotonic() - down_at:.2f}s")

    now = ha.wait_leader(FAILOVER_DEADLINE + 5)
    exited = [m.output() for m in ha.masters if not m.alive()]
    assert not exited, f"masters exited over a 2s outage (3s session timeout): {exited}"
    assert now is leader, "the leader lost the lead over a 2s outage (3s session timeout)"
    poll_until(lambda: leader.health()["acting"], 10, "the leader to act again")
    ha.wait_connected(agent, now, timeout=15)
    run = orbiter("execute", "--master", ha.zk_url, "--name", "after", "--command", "true")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1/1 finished" in run.stdout


@pytest.mark.slow
def test_masters_stop_on_sigterm_while_zookeeper_is_down(ha: HaCluster) -> None:
    """`systemctl stop` during a ZooKeeper outage: the masters exit, they do not hang.

    The leader cannot hand over the lead without ZooKeeper (its session will
    expire instead) and a standby has nothing to hand over.
    """
    ha.start_masters(2)
    leader = ha.wait_leader()
    standby = next(m for m in ha.masters if m is not leader)
    ha.zookeeper.stop()
    poll_until(lambda: not leader.health()["acting"], 5, "the leader to say it is not acting")

    for master in (leader, standby):
        assert master.proc is not None
        master.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    hung = []
    for name, master in (("leader", leader), ("standby", standby)):
        assert master.proc is not None
        try:
            master.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            hung.append(name)
            master.kill()  # now, rather than after teardown's own SIGTERM deadline
    assert not hung, f"still running 20s after SIGTERM with ZooKeeper down: {hung}"


# ---------------------------------------------------------------------- bad input


def test_a_malformed_zk_address_is_a_usage_error(tmp_path: Path) -> None:
    run = orbiter("master", "--zk", "zk://bad", "--work-dir", str(tmp_path / "m"))
    assert run.returncode == 2
    assert "usage:" in run.stderr and "invalid ZooKeeper address 'zk://bad'" in run.stderr


def test_a_path_claimed_by_another_master_meanwhile_is_accepted(
    zk_client: KazooClient, zookeeper: ZooKeeperServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Masters started together on a fresh ensemble all take part.

    Seen end to end: of masters started at once, one now and then exited with
    "znode /orbiter is owned by another system (children: orbiter)": it had
    looked for the marker, another master claimed the path, then it listed the
    path's children and found the other master's marker there.
    """
    other = connect(parse_zk_url(zookeeper.url()), session_timeout=SESSION_TIMEOUT)
    looked = zk_client.get

    def get_then_other_claims(path: str, watch: Any = None) -> Any:
        try:
            return looked(path, watch)
        finally:
            if path == "/orbiter/orbiter" and not other.exists(path):
                claim_root(other, "/orbiter")  # the other master, right after our look

    monkeypatch.setattr(zk_client, "get", get_then_other_claims)
    try:
        claim_root(zk_client, "/orbiter")
    finally:
        other.stop()
        other.close()
    assert zk_client.get_children("/orbiter") == ["orbiter"]


@pytest.mark.slow
def test_unreachable_or_foreign_zookeeper_is_refused(
    ha: HaCluster, zk_client: KazooClient, tmp_path: Path
) -> None:
    zk_client.create("/other/x", b"theirs", makepath=True)
    before = zk_tree(zk_client)

    def master(zk: str, name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"{name}.log"
        args = [
            *ORBITER, "master", "--zk", zk, "--port", "0", "--http-port", "0",
            "--work-dir", str(tmp_path / name), "--no-satellite",
        ]  # fmt: skip
        return ha.processes.start(args, log), log

    started = time.monotonic()
    nobody, nobody_log = master("zk://127.0.0.1:1/orbiter", "nobody")
    foreign, foreign_log = master(ha.zookeeper.url("/other"), "foreign")

    assert foreign.wait(15) != 0
    out = foreign_log.read_text()
    assert "owned by another system (children: x)" in out, out
    assert zk_tree(zk_client) == before, "the refused master wrote to ZooKeeper"

    assert nobody.wait(max(0.0, 15 - (time.monotonic() - started))) != 0
    out = nobody_log.read_text()
    assert "cannot reach ZooKeeper" in out, out
