"""Where the leading master is: a fixed `host:port`, or whoever ZooKeeper names.

Every client (agents, Satellite, the SDK, the CLI) is given one master
address. With `host:port` that is the master. With `zk://hosts/path` the
leading master publishes itself in the ephemeral znode `<path>/leader` as
JSON (see `LeaderInfo`), and clients follow it: a `MasterLocator` watches the
znode and wakes its users when the leader changes, so nothing needs a
restart after a failover.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from orbiter.errors import Code, OrbiterError
from orbiter.zk import ZkAddress, connect, is_zk_url, parse_zk_url

if TYPE_CHECKING:
    from kazoo.client import KazooClient

log = logging.getLogger("orbiter.discovery")

LEADER_NODE = "leader"
DEFAULT_SESSION_TIMEOUT = 3.0


class NoLeader(OrbiterError):
    """ZooKeeper names no leading master (none is running, or an election is under way)."""

    code = Code.UNAVAILABLE


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    """What the leader writes into `<path>/leader` (JSON, these keys)."""

    id: str
    hostname: str
    grpc_address: str
    http_address: str
    version: str
    elected_at: float

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LeaderInfo:
        raw = json.loads(data)
        return cls(**{k: raw.get(k, "" if k != "elected_at" else 0.0) for k in cls.__slots__})


def leader_path(address: ZkAddress) -> str:
    return f"{address.path}/{LEADER_NODE}"


def read_leader(client: KazooClient, address: ZkAddress) -> LeaderInfo | None:
    from kazoo.exceptions import NoNodeError

    try:
        data, _ = client.get(leader_path(address))
    except NoNodeError:
        return None
    try:
        return LeaderInfo.from_json(data)
    except (ValueError, TypeError) as e:
        log.error("the leader znode %s holds no leader (%s)", leader_path(address), e)
        return None


def leader_once(text: str, timeout: float = 5.0) -> LeaderInfo:
    """The current leader of a zk:// address, read once (for one-shot CLI commands)."""
    address = parse_zk_url(text)
    client = connect(address, session_timeout=DEFAULT_SESSION_TIMEOUT, connect_timeout=timeout)
    try:
        leader = read_leader(client, address)
    finally:
        with contextlib.suppress(Exception):
            client.stop()
            client.close()
    if leader is None:
        raise NoLeader(
            f"no master leads at {text}: none is running or an election is under way; "
            "start one with `orbiter master --zk " + text + "`"
        )
    return leader


class MasterLocator:
    """The current leader's gRPC address, followed as it changes.

    `address()` waits until a leader is known; `changed` is a fresh event per
    leader, set when that leader is replaced or disappears.
    """

    def __init__(self, text: str, session_timeout: float = DEFAULT_SESSION_TIMEOUT) -> None:
        self.text = text
        self.session_timeout = session_timeout
        self.zk: ZkAddress | None = parse_zk_url(text) if is_zk_url(text) else None
        self.leader: LeaderInfo | None = None
        self._client: KazooClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._known = asyncio.Event()
        self.changed = asyncio.Event()
        self._lock = threading.Lock()

    @property
    def follows_zookeeper(self) -> bool:
        return self.zk is not None

    async def start(self) -> None:
        if self.zk is None:
            return
        self._loop = asyncio.get_running_loop()
        # kazoo is a threaded client: connecting blocks, watches fire on its thread.
        self._client = await asyncio.to_thread(
            connect, self.zk, self.session_timeout, max(5.0, self.session_timeout)
        )
        self._client.DataWatch(leader_path(self.zk))(self._on_leader)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.to_thread(_stop, client)

    def _on_leader(self, data: bytes | None, stat: Any) -> None:
        """kazoo's thread: hand the new leader to the event loop."""
        leader = None
        if data:
            try:
                leader = LeaderInfo.from_json(data)
            except (ValueError, TypeError):
                leader = None
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._set_leader, leader)

    def _set_leader(self, leader: LeaderInfo | None) -> None:
        if leader == self.leader:
            return
        old, self.leader = self.leader, leader
        if leader is None:
            log.warning("no leading master at %s (election under way?)", self.text)
            self._known.clear()
        else:
            if old is not None:
                log.info("leading master changed: %s -> %s", old.grpc_address, leader.grpc_address)
            self._known.set()
        self.changed.set()
        self.changed = asyncio.Event()

    async def address(self) -> str:
        """The leader's gRPC address, waiting for one to be elected if need be."""
        if self.zk is None:
            return self.text
        await self._known.wait()
        assert self.leader is not None
        return self.leader.grpc_address

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds` between reconnects, or less if ZooKeeper names a new leader."""
        changed = self.changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await changed.wait()

    def current(self) -> str:
        """The address known now ('' while no leader is known)."""
        if self.zk is None:
            return self.text
        return self.leader.grpc_address if self.leader else ""


def _stop(client: KazooClient) -> None:
    with contextlib.suppress(Exception):
        client.stop()
        client.close()


__all__ = ["LeaderInfo", "MasterLocator", "NoLeader", "leader_once", "read_leader"]
