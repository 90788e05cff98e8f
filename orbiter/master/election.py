"""Leader election among masters through ZooKeeper (kazoo's Lock recipe).

Every master is a contender under `<path>/election`; the one holding the
lock leads. The lock is an ephemeral sequential znode, so a leader that dies
or loses its session gives way to the next contender once its session
expires. The leader then publishes itself in the ephemeral `<path>/leader`
(JSON, `orbiter.discovery.LeaderInfo`) for clients to follow.

The connection's state decides whether the leader may act:
- SUSPENDED (connection lost, session maybe still alive): stop acting at
  once (the shell holds every effect and refuses calls) — another master may
  be elected if the session expires meanwhile.
- CONNECTED again with the same session: the lock is still ours; resume.
- LOST (session expired): someone else may lead now; step down for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from kazoo.exceptions import NodeExistsError, NoNodeError
from kazoo.protocol.states import KazooState

from orbiter.discovery import LeaderInfo, leader_path
from orbiter.zk import ZkAddress

if TYPE_CHECKING:
    from kazoo.client import KazooClient

log = logging.getLogger("orbiter.election")

ELECTION_NODE = "election"


class Election:
    """One master's candidacy; connection-state changes arrive on the event loop."""

    def __init__(
        self,
        client: KazooClient,
        address: ZkAddress,
        on_suspended: Callable[[], None],
        on_resumed: Callable[[], None],
        on_lost: Callable[[str], None],
    ) -> None:
        self.client = client
        self.address = address
        self._on_suspended = on_suspended
        self._on_resumed = on_resumed
        self._on_lost = on_lost
        self._lock = client.Lock(f"{address.path}/{ELECTION_NODE}")
        self._loop = asyncio.get_running_loop()
        self.leading = False
        self._session: int | None = None  # the session that holds the lead
        client.add_listener(self._state_changed)

    def _state_changed(self, state: str) -> None:
        """kazoo's thread: never block here; hand the change to the loop."""
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(self._apply_state, state)

    def _apply_state(self, state: str) -> None:
        if state == KazooState.SUSPENDED:
            log.warning("lost contact with ZooKeeper; not acting until it is back")
            self._on_suspended()
        elif state == KazooState.CONNECTED:
            session = self.client.client_id[0] if self.client.client_id else None
            if self._session is not None and session != self._session:
                # kazoo opens a new session by itself after one expired: the lead is gone.
                self._on_lost("a new ZooKeeper session replaced the one that held the lead")
                return
            log.info("ZooKeeper connection back with the same session")
            self._on_resumed()
        elif state == KazooState.LOST:
            self._on_lost("the ZooKeeper session expired: another master may lead now")

    async def campaign(self, identifier: str) -> None:
        """Return once this master holds the lead; cancellable while it waits."""
        self._lock.identifier = identifier.encode()
        try:
            # Blocks until the lock is ours: a thread, so the standby keeps serving.
            await asyncio.to_thread(self._lock.acquire)
        except asyncio.CancelledError:
            self._lock.cancel()
            raise
        self.leading = True
        self._session = self.client.client_id[0] if self.client.client_id else None

    def contenders(self) -> list[str]:
        return [str(c) for c in self._lock.contenders()]

    async def publish(self, leader: LeaderInfo) -> None:
        """Write `<path>/leader`, ephemeral: it disappears with this master's session."""
        await asyncio.to_thread(self._publish, leader)

    def _publish(self, leader: LeaderInfo) -> None:
        path = leader_path(self.address)
        data = leader.to_json()
        try:
            self.client.create(path, data, ephemeral=True)
            return
        except NodeExistsError:
            pass
        # Left by a predecessor whose session has not expired yet, or by us.
        try:
            _, stat = self.client.get(path)
        except NoNodeError:
            self.client.create(path, data, ephemeral=True)
            return
        if stat.ephemeralOwner == self.client.client_id[0]:
            self.client.set(path, data)
            return
        # We hold the lock, so the old leader's session is gone or going: replace its node.
        self.client.delete(path, version=stat.version)
        self.client.create(path, data, ephemeral=True)

    async def resign(self) -> None:
        """Give the lead away now (a clean stop), rather than when the session expires."""
        await asyncio.to_thread(self._resign)

    def _resign(self) -> None:
        with contextlib.suppress(Exception):
            _, stat = self.client.get(leader_path(self.address))
            if stat.ephemeralOwner == self.client.client_id[0]:
                self.client.delete(leader_path(self.address))
        with contextlib.suppress(Exception):
            self._lock.release()
        self.leading = False


__all__ = ["Election"]
