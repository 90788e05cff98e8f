"""Mesos's v1 scheduler and operator APIs on a real master and real agents (processes).

Frameworks are unmodified clients: pymesos from PyPI (its MesosSchedulerDriver, run in
its own process: it interrupts the main thread when its I/O thread fails) and, for the
application/x-protobuf content type, a plain HTTP client speaking Mesos's v1 wire
format through orbiter/mesos/proto/v1.proto (Mesos's field numbers; no published
package has Mesos's v1 scheduler messages for today's protobuf: mesos.interface holds
only the v0 messages and wants protobuf < 4).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Cluster, free_port
from proctools import poll_until

from orbiter.mesos.proto import v1_pb2

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0
JSON = "application/json"
PROTOBUF = "application/x-protobuf"


def http(cluster: Cluster) -> str:
    return cluster.master.url.removeprefix("http://")


def test_the_readmes_pymesos_example_runs_command_tasks_to_completion(
    shared_cluster: Cluster,
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "pymesos_hello.py"),
            "--master",
            http(shared_cluster),
            "--tasks",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    finished = {line.split()[0] for line in done.stdout.splitlines() if "TASK_FINISHED" in line}
    assert finished == {"hello-0", "hello-1", "hello-2"}
    tasks = shared_cluster.master.tasks(state="TASK_FINISHED")
    assert {t["id"] for t in tasks} >= finished
    frameworks = shared_cluster.master.frameworks()
    assert any(
        f["name"] == "pymesos-hello" and f["status"] == "completed" for f in frameworks.values()
    )


class Steps:
    """The failover framework's JSON lines, one step at a time."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def next(self, event: str) -> dict[str, Any]:
        while True:
            try:
                line = self.lines.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no {event!r} from the framework") from None
            if line.startswith("{"):
                step = json.loads(line)
                assert step["event"] == event, step
                return step


def test_pymesos_reconciles_fails_over_to_a_second_driver_and_kills(
    shared_cluster: Cluster,
) -> None:
    master = shared_cluster.master
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "e2e" / "mesos_failover_framework.py"),
            http(shared_cluster),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        steps = Steps(proc)
        fw_id = steps.next("registered")["framework_id"]
        steps.next("running")
        assert steps.next("reconciled") == {
            "event": "reconciled",
            "state": "TASK_RUNNING",
            "uuid": False,
        }
        steps.next("stopped")
        # A closed event stream is a disconnected framework; its task runs on.
        master.wait_for(lambda m: m.frameworks()[fw_id]["status"] == "disconnected", 10)
        (task,) = master.tasks(framework_id=fw_id)
        assert task["state"] == "TASK_RUNNING"
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        steps.next("reregistered")
        assert master.frameworks()[fw_id]["status"] == "connected"
        assert steps.next("reconciled_again")["state"] == "TASK_RUNNING"
        steps.next("killed")
        steps.next("done")
        assert proc.wait(TIMEOUT) == 0
        assert master.frameworks()[fw_id]["status"] == "completed"
        (task,) = master.tasks(framework_id=fw_id)
        assert task["state"] == "TASK_KILLED"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------- protobuf


def records(response: requests.Response) -> Iterator[bytes]:
    """RecordIO: a decimal length, a newline, that many bytes; until the stream closes
    (the test closing it ends the reading thread quietly)."""
    buffer = b""
    try:
        for chunk in response.iter_content(chunk_size=None):
            buffer += chunk
            while b"\n" in buffer:
                size, rest = buffer.split(b"\n", 1)
                if len(rest) < int(size):
                    break
                yield rest[: int(size)]
                buffer = rest[int(size) :]
    except (requests.RequestException, AttributeError, ValueError):
        return  # closed under the reader (urllib3 drops its socket: AttributeError)


class ProtobufFramework:
    """Mesos's v1 scheduler API over application/x-protobuf, with a plain HTTP client."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/api/v1/scheduler"
        self.events: queue.Queue[v1_pb2.Event] = queue.Queue()
        self.framework_id = ""
        self.stream_id = ""
        self.response: requests.Response | None = None

    def subscribe(self, name: str, role: str = "", principal: str = "") -> v1_pb2.Event:
        call = v1_pb2.Call(type=v1_pb2.Call.SUBSCRIBE)
        call.subscribe.framework_info.name = name
        call.subscribe.framework_info.user = "nobody"
        call.subscribe.framework_info.failover_timeout = 0
        if role:
            call.subscribe.framework_info.roles.append(role)
        if principal:
            call.subscribe.framework_info.principal = principal
        self.response = requests.post(
            self.url,
            data=call.SerializeToString(),
            stream=True,
            timeout=TIMEOUT,
            headers={"Content-Type": PROTOBUF, "Accept": PROTOBUF},
        )
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["Content-Type"] == PROTOBUF
        self.stream_id = self.response.headers["Mesos-Stream-Id"]
        threading.Thread(target=self._read, daemon=True).start()
        subscribed = self.next(v1_pb2.Event.SUBSCRIBED)
        self.framework_id = subscribed.subscribed.framework_id.value
        return subscribed

    def _read(self) -> None:
        assert self.response is not None
        for record in records(self.response):
            self.events.put(v1_pb2.Event.FromString(record))

    def next(self, kind: int) -> v1_pb2.Event:
        while True:
            event = self.events.get(timeout=TIMEOUT)
            if event.type == kind:
                return event

    def call(self, call: v1_pb2.Call, stream_id: str | None = None) -> requests.Response:
        call.framework_id.value = self.framework_id
        headers = {"Content-Type": PROTOBUF}
        stream_id = self.stream_id if stream_id is None else stream_id
        if stream_id:
            headers["Mesos-Stream-Id"] = stream_id
        return requests.post(self.url, data=call.SerializeToString(), headers=headers, timeout=10)

    def close(self) -> None:
        if self.response is not None:
            self.response.close()


@pytest.fixture
def protobuf_framework(shared_cluster: Cluster) -> Iterator[ProtobufFramework]:
    fw = ProtobufFramework(shared_cluster.master.url)
    yield fw
    fw.close()


def test_a_protobuf_framework_launches_a_command_task_and_acknowledges_its_updates(
    protobuf_framework: ProtobufFramework, shared_cluster: Cluster
) -> None:
    fw = protobuf_framework
    subscribed = fw.subscribe("protobuf-hello")
    assert subscribed.subscribed.heartbeat_interval_seconds > 0
    offer = fw.next(v1_pb2.Event.OFFERS).offers.offers[0]
    accept = v1_pb2.Call(type=v1_pb2.Call.ACCEPT)
    accept.accept.offer_ids.add().CopyFrom(offer.id)
    op = accept.accept.operations.add(type=v1_pb2.Offer.Operation.LAUNCH)
    task = op.launch.task_infos.add(name="pb")
    task.task_id.value = "pb-1"
    task.agent_id.CopyFrom(offer.agent_id)
    task.command.value = "echo from protobuf"
    for name, value in (("cpus", 0.1), ("mem", 32.0)):
        task.resources.add(name=name, type=v1_pb2.Value.SCALAR).scalar.value = value
    # Resources allocated to another role than the offers' are refused, naming where.
    wrong = v1_pb2.Call()
    wrong.CopyFrom(accept)
    wrong.accept.operations[0].launch.task_infos[0].resources[0].allocation_info.role = "db"
    refused = fw.call(wrong)
    assert refused.status_code == 400
    assert "resources[0].allocation_info.role 'db'" in refused.json()["error"]
    for resource in task.resources:
        resource.allocation_info.role = "*"
    assert fw.call(accept).status_code == 202
    while True:
        status = fw.next(v1_pb2.Event.UPDATE).update.status
        assert status.task_id.value == "pb-1"
        ack = v1_pb2.Call(type=v1_pb2.Call.ACKNOWLEDGE)
        ack.acknowledge.agent_id.CopyFrom(status.agent_id)
        ack.acknowledge.task_id.CopyFrom(status.task_id)
        ack.acknowledge.uuid = status.uuid
        assert fw.call(ack).status_code == 202
        if status.state != v1_pb2.TASK_RUNNING:
            break
    assert status.state == v1_pb2.TASK_FINISHED
    assert fw.call(v1_pb2.Call(type=v1_pb2.Call.TEARDOWN)).status_code == 202
    assert fw.next(v1_pb2.Event.ERROR).error.message == "framework tore itself down"


def _reserved(name: str, value: float, principal: str = "pb") -> v1_pb2.Resource:
    """`value` of `name` reserved for role pbdb (Mesos 1.4+'s format), labelled k=v."""
    r = v1_pb2.Resource(name=name, type=v1_pb2.Value.SCALAR)
    r.scalar.value = value
    r.allocation_info.role = "pbdb"
    res = r.reservations.add(type=v1_pb2.Resource.ReservationInfo.DYNAMIC, role="pbdb")
    res.principal = principal
    res.labels.labels.add(key="k", value="v")
    return r


def _volume(path: str = "state") -> v1_pb2.Resource:
    r = _reserved("disk", 50)
    r.disk.persistence.id = "pbvol"
    r.disk.persistence.principal = "pb"
    r.disk.volume.container_path = path
    r.disk.volume.mode = v1_pb2.Volume.RW
    return r


def test_a_protobuf_framework_reserves_creates_a_volume_and_sees_it_offered(
    protobuf_framework: ProtobufFramework, shared_cluster: Cluster
) -> None:
    fw = protobuf_framework
    fw.subscribe("protobuf-volume", role="pbdb", principal="pb")
    offer = fw.next(v1_pb2.Event.OFFERS).offers.offers[0]
    Op = v1_pb2.Offer.Operation

    def accept(offer: v1_pb2.Offer, *operations: v1_pb2.Offer.Operation) -> v1_pb2.Call:
        call = v1_pb2.Call(type=v1_pb2.Call.ACCEPT)
        call.accept.offer_ids.add().CopyFrom(offer.id)
        call.accept.operations.extend(operations)
        call.accept.filters.refuse_seconds = 0
        return call

    def reserve(principal: str = "pb") -> v1_pb2.Offer.Operation:
        op = Op(type=Op.RESERVE)
        op.reserve.resources.extend([_reserved("cpus", 0.1, principal), _reserved("disk", 50)])
        return op

    create = Op(type=Op.CREATE)
    create.create.volumes.append(_volume())
    refused = fw.call(accept(offer, reserve("someone-else"), create))
    assert refused.status_code == 400
    assert "principal 'someone-else' is not the framework's principal 'pb'" in refused.text
    assert fw.call(accept(offer, reserve(), create)).status_code == 202

    def next_offer_with(check: Any) -> v1_pb2.Offer:
        while True:
            for o in fw.next(v1_pb2.Event.OFFERS).offers.offers:
                if o.agent_id == offer.agent_id and check(o):
                    return o
                decline = v1_pb2.Call(type=v1_pb2.Call.DECLINE)
                decline.decline.offer_ids.add().CopyFrom(o.id)
                decline.decline.filters.refuse_seconds = 0.2
                fw.call(decline)

    def volumes(o: v1_pb2.Offer) -> list[v1_pb2.Resource]:
        return [r for r in o.resources if r.disk.persistence.id == "pbvol"]

    again = next_offer_with(volumes)
    [held] = volumes(again)
    assert held.scalar.value == 50 and held.disk.volume.container_path == "state"
    assert held.disk.volume.mode == v1_pb2.Volume.RW
    [cpus] = [r for r in again.resources if r.name == "cpus" and r.reservations]
    for r in (held, cpus):
        [res] = r.reservations
        assert (res.type, res.role) == (v1_pb2.Resource.ReservationInfo.DYNAMIC, "pbdb")
        assert [(x.key, x.value) for x in res.labels.labels] == [("k", "v")]
    # The operator API shows the agent as Mesos would: the reservation and the volume.
    agents = operator_call(shared_cluster.master.url, {"type": "GET_AGENTS"}).json()
    [shown] = [
        a["total_resources"]
        for a in agents["get_agents"]["agents"]
        if a["agent_info"]["id"] == {"value": offer.agent_id.value}
    ]
    [disk] = [r for r in shown if r.get("disk", {}).get("persistence", {}).get("id") == "pbvol"]
    assert disk["reservations"][0]["labels"] == {"labels": [{"key": "k", "value": "v"}]}
    assert disk["disk"]["volume"] == {"container_path": "state", "mode": "RW"}
    # A task must name the volume as it is: another container_path is refused.
    launch = Op(type=Op.LAUNCH)
    task = launch.launch.task_infos.add(name="v")
    task.task_id.value = "pbvol-task"
    task.agent_id.CopyFrom(again.agent_id)
    task.command.value = "true"
    task.resources.extend([_reserved("cpus", 0.1), _volume("elsewhere")])
    refused = fw.call(accept(again, launch))
    assert refused.status_code == 400
    assert "'pbvol' is 50 MB at 'state'" in refused.text
    # DESTROY then UNRESERVE give everything back.
    destroy = Op(type=Op.DESTROY)
    destroy.destroy.volumes.append(held)
    unreserve = Op(type=Op.UNRESERVE)
    unreserve.unreserve.resources.extend([cpus, _reserved("disk", 50)])
    assert fw.call(accept(again, destroy, unreserve)).status_code == 202
    clean = next_offer_with(lambda o: not volumes(o))
    assert not [r for r in clean.resources if r.reservations]
    agent = shared_cluster.master.get(f"/api/v1/agents/{offer.agent_id.value}")
    assert agent["reservations"] == [] and agent["volumes"] == []


def test_calls_without_the_stream_id_or_with_another_one_are_refused_with_400(
    protobuf_framework: ProtobufFramework,
) -> None:
    fw = protobuf_framework
    fw.subscribe("stream-ids")
    revive = v1_pb2.Call(type=v1_pb2.Call.REVIVE)
    missing = fw.call(revive, stream_id="")
    assert missing.status_code == 400
    assert "Mesos-Stream-Id" in missing.json()["error"]
    wrong = fw.call(revive, stream_id="not-the-stream")
    assert wrong.status_code == 400
    assert "not framework" in wrong.json()["error"]
    assert fw.call(revive).status_code == 202


def test_unsupported_fields_are_refused_naming_them_on_both_wires(
    protobuf_framework: ProtobufFramework, shared_cluster: Cluster
) -> None:
    fw = protobuf_framework
    fw.subscribe("refusals")
    call = v1_pb2.Call(type=v1_pb2.Call.ACCEPT)
    call.accept.offer_ids.add(value="O-none")
    call.accept.operations.add(type=v1_pb2.Offer.Operation.LAUNCH_GROUP)
    refused = fw.call(call)
    assert refused.status_code == 400
    assert "LAUNCH_GROUP" in refused.json()["error"]
    body = {
        "type": "ACCEPT",
        "framework_id": {"value": fw.framework_id},
        "accept": {
            "offer_ids": [{"value": "O-none"}],
            "operations": [
                {
                    "type": "LAUNCH",
                    "launch": {
                        "task_infos": [{"name": "t", "task_id": {"value": "t"}, "health_check": {}}]
                    },
                }
            ],
        },
    }
    refused = requests.post(
        fw.url, json=body, timeout=10, headers={"Mesos-Stream-Id": fw.stream_id}
    )
    assert refused.status_code == 400
    assert "accept.operations[0].launch.task_infos[0].health_check" in refused.json()["error"]


# ---------------------------------------------------------------------- operator API


def operator_call(url: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{url}/api/v1", json=body, timeout=10)


def test_operator_api_reads_the_state_and_refuses_unknown_calls(shared_cluster: Cluster) -> None:
    url = shared_cluster.master.url
    assert operator_call(url, {"type": "GET_HEALTH"}).json() == {
        "type": "GET_HEALTH",
        "get_health": {"healthy": True},
    }
    version = operator_call(url, {"type": "GET_VERSION"}).json()
    assert version["get_version"]["version_info"]["version"].startswith("1.")
    state = operator_call(url, {"type": "GET_STATE"}).json()["get_state"]
    agents = state["get_agents"]["agents"]
    assert {a["agent_info"]["id"]["value"] for a in agents} == {
        a.agent_id for a in shared_cluster.agents
    }
    cpus = [r for r in agents[0]["total_resources"] if r["name"] == "cpus"]
    assert cpus == [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 4.0}, "role": "*"}]
    for kind in ("GET_AGENTS", "GET_FRAMEWORKS", "GET_TASKS", "GET_MAINTENANCE_STATUS"):
        answer = operator_call(url, {"type": kind})
        assert answer.status_code == 200 and kind.lower() in answer.json()
    unknown = operator_call(url, {"type": "GET_QUOTA"})
    assert unknown.status_code == 400
    assert "GET_QUOTA" in unknown.json()["error"]


def test_operator_maintenance_calls_deactivate_drain_and_reactivate_an_agent(
    agent_process: Any, start_master: Any
) -> None:
    master = start_master()
    agent = agent_process(master, "cpus:1;mem:256")
    url = master.url
    target = {"agent_id": {"value": agent.agent_id}}
    assert operator_call(url, {"type": "DEACTIVATE_AGENT", "deactivate_agent": target}).ok
    assert master.agents()[agent.agent_id]["maintenance"]["mode"] == "deactivated"
    status = operator_call(url, {"type": "GET_MAINTENANCE_STATUS"}).json()
    draining = status["get_maintenance_status"]["status"]["draining_machines"]
    assert [m["id"]["hostname"] for m in draining] == [master.agents()[agent.agent_id]["hostname"]]
    assert operator_call(url, {"type": "REACTIVATE_AGENT", "reactivate_agent": target}).ok
    assert master.agents()[agent.agent_id]["maintenance"]["mode"] == "active"
    gone = operator_call(url, {"type": "DRAIN_AGENT", "drain_agent": {**target, "mark_gone": True}})
    assert gone.status_code == 400 and "mark_gone" in gone.json()["error"]
    drain = {**target, "max_grace_period": {"nanoseconds": 1_000_000_000}}
    assert operator_call(url, {"type": "DRAIN_AGENT", "drain_agent": drain}).ok
    mode = master.agents()[agent.agent_id]["maintenance"]["mode"]
    assert mode in ("draining", "drained")
    agents = operator_call(url, {"type": "GET_AGENTS"}).json()["get_agents"]["agents"]
    assert agents[0]["deactivated"] is True and agents[0]["drain_info"]["state"] in (
        "DRAINING",
        "DRAINED",
    )
    unknown = operator_call(
        url, {"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": {"value": "nope"}}}
    )
    assert unknown.status_code == 404


def test_master_state_has_mesos_v0_shape_for_dashboards_and_dns_tools(
    shared_cluster: Cluster,
) -> None:
    state = requests.get(f"{shared_cluster.master.url}/master/state", timeout=10).json()
    assert state["activated_slaves"] == 2
    for slave in state["slaves"]:
        assert slave["pid"].startswith("slave(1)@")
        assert slave["resources"]["cpus"] == 4.0
    for fw in state["frameworks"] + state["completed_frameworks"]:
        assert {"id", "name", "tasks", "completed_tasks", "active"} <= set(fw)
        for task in fw["tasks"] + fw["completed_tasks"]:
            assert {"id", "name", "state", "slave_id", "framework_id", "resources"} <= set(task)
    assert requests.get(f"{shared_cluster.master.url}/version", timeout=10).json()["version"]


def test_operator_event_stream_starts_with_the_state_and_reports_new_tasks(
    shared_cluster: Cluster, protobuf_framework: ProtobufFramework
) -> None:
    url = shared_cluster.master.url
    with requests.post(
        f"{url}/api/v1", json={"type": "SUBSCRIBE"}, stream=True, timeout=TIMEOUT
    ) as stream:
        assert stream.status_code == 200
        events: queue.Queue[dict[str, Any]] = queue.Queue()

        def read() -> None:
            for record in records(stream):
                events.put(json.loads(record))

        threading.Thread(target=read, daemon=True).start()
        first = events.get(timeout=TIMEOUT)
        assert first["type"] == "SUBSCRIBED"
        assert "get_agents" in first["subscribed"]["get_state"]
        protobuf_framework.subscribe("watched")
        while True:
            record = events.get(timeout=TIMEOUT)
            if record["type"] == "FRAMEWORK_ADDED":
                info = record["framework_added"]["framework"]["framework_info"]
                assert info["name"] == "watched"
                break


# ---------------------------------------------------------------------- identity

SECURE_CONFIG = """\
security:
  credentials: credentials.yml
  acls:
    register_frameworks:
      - {principals: [web], roles: ["*"]}
    maintain_agents:
      - {principals: [ops], agents: ["*"]}
"""


@pytest.fixture
def secure_master(processes: Any, tmp_path: Path) -> str:
    """A master with tokens and ACLs (loopback, no TLS); its HTTP URL."""
    (tmp_path / "credentials.yml").write_text(
        "principals:\n"
        + "".join(
            f"  - {{name: {n}, token: {n}-token-0123456789}}\n" for n in ("web", "ops", "bob")
        )
    )
    config = tmp_path / "orbiter.yml"
    config.write_text(SECURE_CONFIG)
    http_port = free_port()
    processes.start(
        [
            sys.executable,
            "-m",
            "orbiter.cli",
            "master",
            "--config",
            str(config),
            "--port",
            str(free_port()),
            "--http-port",
            str(http_port),
            "--work-dir",
            str(tmp_path / "master"),
        ],
        tmp_path / "master.log",
    )
    url = f"http://127.0.0.1:{http_port}"
    poll_until(lambda: requests.get(f"{url}/health", timeout=2).ok, 30, "the master")
    return url


def as_(principal: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {principal}-token-0123456789"}


def test_the_http_path_binds_frameworks_to_principals_and_asks_the_acls(
    secure_master: str,
) -> None:
    url = f"{secure_master}/api/v1/scheduler"
    subscribe = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "f"}}}
    assert requests.post(url, json=subscribe, timeout=10).status_code == 401
    refused = requests.post(url, json=subscribe, headers=as_("bob"), timeout=10)
    assert refused.status_code == 403, refused.text
    assert "register_frameworks" in refused.json()["error"]
    other = {
        "type": "SUBSCRIBE",
        "subscribe": {"framework_info": {"user": "u", "name": "f", "principal": "ops"}},
    }
    assert requests.post(url, json=other, headers=as_("web"), timeout=10).status_code == 403
    with requests.post(url, json=subscribe, headers=as_("web"), stream=True, timeout=10) as s:
        assert s.status_code == 200
        subscribed = json.loads(next(records(s)))
        fw_id = subscribed["subscribed"]["framework_id"]["value"]
        revive = {"type": "REVIVE", "framework_id": {"value": fw_id}}
        stream = {"Mesos-Stream-Id": s.headers["Mesos-Stream-Id"]}
        not_yours = requests.post(url, json=revive, headers={**as_("bob"), **stream}, timeout=10)
        assert not_yours.status_code == 403
        assert "belongs to principal 'web'" in not_yours.json()["error"]
        mine = requests.post(url, json=revive, headers={**as_("web"), **stream}, timeout=10)
        assert mine.status_code == 202
        listed = requests.get(
            f"{secure_master}/api/v1/frameworks/{fw_id}", headers=as_("web"), timeout=10
        ).json()
        assert listed["principal"] == "web"
    # Mesos frameworks (pymesos's principal and secret) send HTTP Basic: the secret is the token.
    wrong = requests.post(url, json=subscribe, auth=("web", "not-the-token"), timeout=10)
    assert wrong.status_code == 401
    basic = ("web", "web-token-0123456789")
    with requests.post(url, json=subscribe, auth=basic, stream=True, timeout=10) as s:
        assert s.status_code == 200
        fw_id = json.loads(next(records(s)))["subscribed"]["framework_id"]["value"]
        listed = requests.get(
            f"{secure_master}/api/v1/frameworks/{fw_id}", auth=basic, timeout=10
        ).json()
        assert listed["principal"] == "web"
    deactivate = {"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": {"value": "A1"}}}
    operator = f"{secure_master}/api/v1"
    assert (
        requests.post(operator, json=deactivate, headers=as_("web"), timeout=10).status_code == 403
    )
    # ops may: past the ACL, the agent is unknown.
    assert (
        requests.post(operator, json=deactivate, headers=as_("ops"), timeout=10).status_code == 404
    )


# ---------------------------------------------------------------------- heartbeats


def test_heartbeats_come_at_the_interval_and_a_closed_stream_disconnects(
    start_master: Any,
) -> None:
    master = start_master(framework_heartbeat_interval=0.5)
    url = f"{master.url}/api/v1/scheduler"
    info = {"user": "u", "name": "beats", "failover_timeout": 30}
    with requests.post(
        url,
        json={"type": "SUBSCRIBE", "subscribe": {"framework_info": info}},
        stream=True,
        timeout=10,
    ) as s:
        assert s.headers["Content-Type"] == JSON
        events = records(s)
        subscribed = json.loads(next(events))
        assert subscribed["subscribed"]["heartbeat_interval_seconds"] == 0.5
        fw_id = subscribed["subscribed"]["framework_id"]["value"]
        started = time.monotonic()
        beats = [json.loads(next(events)) for _ in range(2)]
        assert [b["type"] for b in beats] == ["HEARTBEAT", "HEARTBEAT"]
        assert 0.8 <= time.monotonic() - started < 3.0
        assert master.frameworks()[fw_id]["status"] == "connected"
    master.wait_for(lambda m: m.frameworks()[fw_id]["status"] == "disconnected", 5)
