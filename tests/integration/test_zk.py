"""Orbiter's ZooKeeper building blocks against a real ZooKeeper server.

Claiming a root path, connecting, and the fenced document store the registry
lives in when several masters share ZooKeeper: small documents in one write,
large ones in chunks, a deposed writer refused, connection trouble retryable.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState
from zkserver import ZooKeeperServer

from orbiter.errors import RegistryConflict
from orbiter.master.registry import FileRegistryStore, RegistryStore, RegistryTooNew
from orbiter.proto import master_pb2
from orbiter.zk import (
    ZkAddress,
    ZkPathRefused,
    ZkUnavailable,
    claim_root,
    connect,
    parse_zk_url,
)
from orbiter.zkstore import ZkBlobStore, ZkDocumentCorrupt, ZkRegistryStore

DOC = "/orbiter/doc"
MB = 1024 * 1024
# Sessions outlive a ZooKeeper restart if the client is back within their timeout
# of the server serving again; on a loaded machine 3 s is not always enough.
RESTART_SESSION_TIMEOUT = 10.0
RECONNECT_TIMEOUT = 2 * RESTART_SESSION_TIMEOUT  # an attempt may wait a session timeout


@pytest.fixture
def zk_connect(zookeeper: ZooKeeperServer) -> Iterator[Callable[..., KazooClient]]:
    """Factory: a new client (its own session) to the test's ZooKeeper; all closed at teardown."""
    clients: list[KazooClient] = []

    def make(session_timeout: float = 3.0) -> KazooClient:
        client = connect(parse_zk_url(zookeeper.url()), session_timeout=session_timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.stop()
        client.close()


@pytest.fixture
def zk(zk_connect: Callable[..., KazooClient]) -> KazooClient:
    return zk_connect()


def tree(client: KazooClient, path: str = "/") -> dict[str, bytes]:
    """Every znode under `path` (ZooKeeper's own /zookeeper left out) and its data."""
    nodes: dict[str, bytes] = {}
    pending = [path]
    while pending:
        node = pending.pop()
        if node == "/zookeeper":
            continue
        nodes[node] = client.get(node)[0]
        pending += [f"{node.rstrip('/')}/{child}" for child in client.get_children(node)]
    return nodes


def document(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def chunk_names(client: KazooClient, path: str = DOC) -> list[str]:
    if client.exists(f"{path}/chunks") is None:
        return []
    return sorted(client.get_children(f"{path}/chunks"), key=lambda n: [*map(int, n.split("-"))])


# ---------------------------------------------------------------------- claim_root


def test_claim_root_creates_a_missing_path_with_the_orbiter_marker(zk: KazooClient) -> None:
    claim_root(zk, "/prod/orbiter")

    assert zk.get_children("/prod/orbiter") == ["orbiter"]
    assert json.loads(zk.get("/prod/orbiter/orbiter")[0]) == {"app": "orbiter", "format": 1}


def test_claim_root_accepts_a_path_orbiter_already_claimed_and_changes_nothing(
    zk: KazooClient,
) -> None:
    claim_root(zk, "/orbiter")
    zk.create("/orbiter/registry", b"state")
    before = tree(zk)

    claim_root(zk, "/orbiter")

    assert tree(zk) == before


def test_claim_root_claims_an_existing_empty_znode(zk: KazooClient) -> None:
    zk.create("/orbiter")

    claim_root(zk, "/orbiter")

    assert zk.get_children("/orbiter") == ["orbiter"]


def test_claim_root_refuses_another_systems_path_and_writes_nothing(zk: KazooClient) -> None:
    for child in ("brokers", "config", "consumers"):
        zk.create(f"/kafka/{child}", makepath=True)
    before = tree(zk)

    with pytest.raises(ZkPathRefused) as caught:
        claim_root(zk, "/kafka")

    assert str(caught.value) == (
        "znode /kafka is owned by another system (children: brokers, config, consumers); "
        "pick another path in the zk:// address"
    )
    assert tree(zk) == before


def test_claim_root_refusal_names_a_few_children_and_counts_the_rest(zk: KazooClient) -> None:
    for i in range(8):
        zk.create(f"/busy/n{i}", makepath=True)

    with pytest.raises(ZkPathRefused, match=r"\(children: n0, n1, n2, n3, n4, and 3 more\)"):
        claim_root(zk, "/busy")


def test_claim_root_refuses_a_znode_that_holds_data_and_writes_nothing(zk: KazooClient) -> None:
    zk.create("/config", b"hello")
    before = tree(zk)

    with pytest.raises(ZkPathRefused, match=r"^znode /config is owned by another system \(data: 5"):
        claim_root(zk, "/config")

    assert tree(zk) == before


def test_claim_root_refuses_a_path_written_by_a_newer_orbiter_and_writes_nothing(
    zk: KazooClient,
) -> None:
    zk.create(
        "/orbiter/orbiter", json.dumps({"app": "orbiter", "format": 2}).encode(), makepath=True
    )
    before = tree(zk)

    with pytest.raises(ZkPathRefused) as caught:
        claim_root(zk, "/orbiter")

    assert str(caught.value) == (
        "znode /orbiter was written by a newer Orbiter (format 2; this one reads 1): "
        "upgrade this master"
    )
    assert tree(zk) == before


# ---------------------------------------------------------------------- connect


def test_connect_to_a_port_nobody_listens_on_fails_within_the_timeout() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        address = ZkAddress((f"127.0.0.1:{port}",), "/orbiter")
        started = time.monotonic()
        with pytest.raises(ZkUnavailable) as caught:
            connect(address, connect_timeout=1.0)
        elapsed = time.monotonic() - started

    assert elapsed < 3.0
    assert str(caught.value).startswith(
        f"cannot reach ZooKeeper at 127.0.0.1:{port} within 1s; is it running?"
    )
    assert f"zk://127.0.0.1:{port}/orbiter" in str(caught.value)


# ---------------------------------------------------------------------- ZkBlobStore


def test_nothing_stored_loads_as_none(zk: KazooClient) -> None:
    assert ZkBlobStore(zk, DOC, "m1").load() is None


def test_a_small_document_is_one_zookeeper_write_with_no_chunks(
    zookeeper: ZooKeeperServer, zk: KazooClient
) -> None:
    store = ZkBlobStore(zk, DOC, "m1")
    store.load()
    store.store(b"first")
    before = zookeeper.last_zxid()

    store.store(b"second")

    assert zookeeper.last_zxid() - before == 1
    assert chunk_names(zk) == []
    assert ZkBlobStore(zk, DOC, "m2").load() == b"second"


def test_an_empty_document_is_not_the_same_as_nothing_stored(zk: KazooClient) -> None:
    ZkBlobStore(zk, DOC, "m1").store(b"")

    assert ZkBlobStore(zk, DOC, "m2").load() == b""


def test_a_large_document_is_chunked_and_replaced_chunks_are_collected(zk: KazooClient) -> None:
    store = ZkBlobStore(zk, DOC, "m1")
    store.load()
    first, second = document(5 * MB, seed=1), document(5 * MB + 1, seed=2)

    store.store(first)
    assert chunk_names(zk) == [f"1-{i}" for i in range(10)]
    assert ZkBlobStore(zk, DOC, "reader").load() == first

    store.store(second)
    assert chunk_names(zk) == [f"2-{i}" for i in range(11)]
    assert ZkBlobStore(zk, DOC, "reader").load() == second

    store.store(b"small again")
    assert chunk_names(zk) == []
    assert ZkBlobStore(zk, DOC, "reader").load() == b"small again"


def test_a_second_writer_fences_the_first_and_its_document_stays_intact(
    zk_connect: Callable[..., KazooClient],
) -> None:
    first = ZkBlobStore(zk_connect(), DOC, "master-a", chunk_size=1024)
    first.load()
    first.store(b"a1")
    second = ZkBlobStore(zk_connect(), DOC, "master-b", chunk_size=1024)
    assert second.load() == b"a1"
    second.store(b"b1")

    for attempt in (b"a2", document(10_000, seed=3)):  # inline and chunked
        with pytest.raises(RegistryConflict) as caught:
            first.store(attempt)
        assert str(caught.value) == (
            "/orbiter/doc was written by another master (writer master-b, generation 2); "
            "this master stops leading"
        )

    reader = zk_connect()
    assert ZkBlobStore(reader, DOC, "reader").load() == b"b1"
    assert chunk_names(reader) == []  # the refused chunked write left nothing behind


def test_a_writer_that_never_loaded_is_fenced_from_the_version_it_first_saw(
    zk_connect: Callable[..., KazooClient],
) -> None:
    late = ZkBlobStore(zk_connect(), DOC, "late")
    late.store(b"late-1")  # no load: the document as it is now is the base
    ZkBlobStore(zk_connect(), DOC, "other").store(b"other-1")

    with pytest.raises(RegistryConflict, match="writer other"):
        late.store(b"late-2")


class StopsBefore:
    """A client that stops ZooKeeper just before its `at`-th call of `method` once armed.

    The call then waits in kazoo's queue: it times out here, and is sent when
    the server is back, so a write reported as failed may land after all.
    """

    def __init__(
        self,
        client: KazooClient,
        server: ZooKeeperServer,
        method: str,
        at: int,
        wait_until: Callable[..., Any],
    ) -> None:
        self._client, self._server, self._method, self._at = client, server, method, at
        self._wait_until = wait_until
        self.armed = False
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name != self._method or not self.armed:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self._at:
                self._server.stop()
                self._wait_until(lambda: self._client.state == KazooState.SUSPENDED, 5)
            return attribute(*args, **kwargs)

        return call


@pytest.mark.parametrize(
    ("method", "at", "size"),
    [
        pytest.param("create_async", 2, 3000, id="between-chunks"),
        pytest.param("set_async", 1, 3000, id="at-the-manifest-of-chunks"),
        pytest.param("set_async", 1, 100, id="at-the-inline-manifest"),
    ],
)
def test_zookeeper_stopping_during_a_store_is_an_oserror_and_the_next_store_works(
    zookeeper: ZooKeeperServer,
    zk_connect: Callable[..., KazooClient],
    wait_until: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    at: int,
    size: int,
) -> None:
    monkeypatch.setattr("orbiter.zkstore.OPERATION_TIMEOUT", 1.0)
    zk = zk_connect(session_timeout=RESTART_SESSION_TIMEOUT)
    client = StopsBefore(zk, zookeeper, method, at, wait_until)
    store = ZkBlobStore(client, DOC, "m1", chunk_size=1024)  # type: ignore[arg-type]
    store.load()
    store.store(document(size, seed=10))
    client.armed = True

    with pytest.raises(OSError, match="lost the connection to ZooKeeper while writing"):
        store.store(document(size, seed=11))
    zookeeper.start()
    wait_until(lambda: zk.state == KazooState.CONNECTED, RECONNECT_TIMEOUT, "a reconnect")
    if method == "set_async":  # the queued manifest write went out on reconnecting
        assert ZkBlobStore(zk, DOC, "reader").load() == document(size, seed=11)
    store.store(document(size, seed=12))  # the write that landed is this master's own: no conflict

    assert ZkBlobStore(zk, DOC, "reader").load() == document(size, seed=12)
    generation = json.loads(zk.get(DOC)[0].partition(b"\n")[0])["generation"]
    assert {name.split("-")[0] for name in chunk_names(zk)} <= {str(generation)}


def test_a_store_while_zookeeper_is_down_is_an_oserror_and_works_after_restart(
    zookeeper: ZooKeeperServer,
    zk_connect: Callable[..., KazooClient],
    wait_until: Callable[..., Any],
) -> None:
    zk = zk_connect(session_timeout=RESTART_SESSION_TIMEOUT)
    store = ZkBlobStore(zk, DOC, "m1")
    store.load()
    store.store(b"before")

    zookeeper.stop()
    wait_until(lambda: zk.state == KazooState.SUSPENDED, 5, "the client to notice")
    started = time.monotonic()
    with pytest.raises(OSError, match=r"ZooKeeper while writing /orbiter/doc.*retry"):
        store.store(b"during")
    assert time.monotonic() - started < 1.0

    zookeeper.start()
    wait_until(lambda: zk.state == KazooState.CONNECTED, RECONNECT_TIMEOUT, "a reconnect")
    store.store(b"after")

    assert ZkBlobStore(zk, DOC, "reader").load() == b"after"


def test_a_lost_session_is_final_even_after_the_client_opens_a_new_one(
    zookeeper: ZooKeeperServer, zk: KazooClient, wait_until: Callable[..., Any]
) -> None:
    store = ZkBlobStore(zk, DOC, "m1")
    store.load()
    # Closing the same session from a second client ends it for the first.
    thief = KazooClient(hosts=zookeeper.address, client_id=zk.client_id)
    thief.start(timeout=5)
    thief.stop()
    thief.close()

    def refused() -> RegistryConflict:
        try:
            store.store(b"after the session ended")
        except RegistryConflict as e:
            return e
        raise AssertionError("a store outlived the session it was led in")

    # Meanwhile stores fail with OSError (not connected), as the master's retries see them.
    conflict = wait_until(refused, 10, "the store to notice that its session ended")
    assert str(conflict).startswith("the ZooKeeper session was lost while writing /orbiter/doc")
    assert str(conflict).endswith("this master stops leading")
    wait_until(lambda: zk.state == KazooState.CONNECTED, 10, "kazoo to open a new session")
    with pytest.raises(RegistryConflict, match="a new session replaced it"):
        store.store(b"in the new session")
    assert ZkBlobStore(zk, DOC, "reader").load() is None


def test_load_after_a_crash_between_chunks_and_manifest_returns_the_last_whole_document(
    zk: KazooClient,
) -> None:
    whole = document(3000, seed=4)
    ZkBlobStore(zk, DOC, "m1", chunk_size=1024).store(whole)
    # A writer that died after some chunks of its next generations, before the manifest:
    for name in ("2-0", "2-1", "7-0"):
        zk.create(f"{DOC}/chunks/{name}", b"half-written")

    store = ZkBlobStore(zk, DOC, "m2", chunk_size=1024)
    assert store.load() == whole

    replacement = document(2500, seed=5)
    store.store(replacement)  # takes a generation above the leftovers, then collects them
    assert chunk_names(zk) == ["8-0", "8-1", "8-2"]
    assert ZkBlobStore(zk, DOC, "reader").load() == replacement


def test_a_missing_chunk_is_reported_not_loaded(zk: KazooClient) -> None:
    ZkBlobStore(zk, DOC, "m1", chunk_size=1024).store(document(3000, seed=6))
    zk.delete(f"{DOC}/chunks/1-1")

    with pytest.raises(ZkDocumentCorrupt) as caught:
        ZkBlobStore(zk, DOC, "m2").load()

    assert str(caught.value) == (
        "document /orbiter/doc (generation 1, written by m1) is damaged: chunk "
        "/orbiter/doc/chunks/1-1 is missing; restore it from a backup of ZooKeeper or "
        "remove /orbiter/doc"
    )


def test_a_damaged_chunk_is_reported_not_loaded(zk: KazooClient) -> None:
    ZkBlobStore(zk, DOC, "m1", chunk_size=1024).store(document(3000, seed=7))
    zk.set(f"{DOC}/chunks/1-2", b"x" * 952)

    with pytest.raises(ZkDocumentCorrupt, match="do not match the manifest's size 3000 and sha256"):
        ZkBlobStore(zk, DOC, "m2").load()


# ---------------------------------------------------------------------- registry stores


@pytest.fixture(params=["zookeeper", "file"])
def registry_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], RegistryStore]:
    """Factory: a new store over the same registry, in ZooKeeper or in a file."""
    if request.param == "file":
        return lambda: FileRegistryStore(tmp_path / "registry.pb")
    make_client = request.getfixturevalue("zk_connect")
    return lambda: ZkRegistryStore(make_client(), "/orbiter", "master-1")


def test_a_registry_round_trips_with_this_masters_format(
    registry_store: Callable[[], RegistryStore],
) -> None:
    registry = master_pb2.Registry(version=3, master_id="master-1")
    registry.agents.add().registered_time = 12.5
    writer = registry_store()
    writer.load()

    writer.store(registry)
    loaded = registry_store().load()

    assert loaded.version == 3
    assert loaded.master_id == "master-1"
    assert [a.registered_time for a in loaded.agents] == [12.5]
    assert loaded.format == 1


def test_a_registry_from_a_newer_orbiter_is_refused(
    registry_store: Callable[[], RegistryStore],
) -> None:
    store = registry_store()
    store.load()
    store.store(master_pb2.Registry(version=1))
    # Stores write their own format: put a newer registry there behind their back.
    newer = master_pb2.Registry(version=2, format=2)
    if isinstance(store, ZkRegistryStore):
        ZkBlobStore(store.blobs.client, store.path, "newer").store(newer.SerializeToString())
    else:
        assert isinstance(store, FileRegistryStore)
        store.path.write_bytes(newer.SerializeToString())

    with pytest.raises(RegistryTooNew) as caught:
        registry_store().load()

    assert "was written by a newer Orbiter (format 2; this one reads 1): upgrade this master" in (
        str(caught.value)
    )
