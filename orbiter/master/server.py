"""The master process's shell: runs the state machine on one asyncio loop.

It feeds the state machine events from gRPC (schedulers, agent links) and
time (ticks), and carries out the effects it returns in order: sends go to
per-stream queues at once, a registry write is awaited (in a thread, since
fsync blocks) before anything after it is sent.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

import orbiter
from orbiter.discovery import LeaderInfo, leader_path
from orbiter.errors import OrbiterError, RegistryConflict
from orbiter.looplag import LoopLag
from orbiter.master import grpc_api, http_api
from orbiter.master.archiving import MasterArchive
from orbiter.master.effects import (
    CloseAgentLink,
    CloseFrameworkStream,
    Effect,
    PersistRegistry,
    SendToAgent,
    SendToFramework,
)
from orbiter.master.limits import CapReached
from orbiter.master.metrics import MasterMetrics
from orbiter.master.registry import FileRegistryStore, RegistryStore
from orbiter.master.state import Master, MasterConfig
from orbiter.proto import messages_pb2
from orbiter.satellite.cluster import MasterCluster
from orbiter.satellite.process import SatelliteProcess
from orbiter.satellite.service import Satellite, SatelliteConfig, gc_paused
from orbiter.security import serving
from orbiter.security.bindings import ApiLimiter, RegistrationLimiter
from orbiter.security.grpc_auth import Authenticate
from orbiter.security.ratelimit import RateLimited
from orbiter.security.settings import SecuritySettings
from orbiter.security.settings import current as current_security

if TYPE_CHECKING:
    from kazoo.client import KazooClient

    from orbiter.master.election import Election
    from orbiter.zk import ZkAddress

log = logging.getLogger("orbiter.master")

TICK_SECONDS = 0.25
ALLOCATION_BATCH_SECONDS = 0.02
MAX_RECEIVE_MESSAGE = 16 * 1024 * 1024
"""The largest gRPC message the master reads (an agent's Register with ~50,000 task
records, a 4 MiB framework message with room to spare); a bigger one is refused with
RESOURCE_EXHAUSTED before it is parsed. What it sends (offers to a framework, a state of
thousands of agents) may be larger: MAX_SEND_MESSAGE."""
MAX_SEND_MESSAGE = 64 * 1024 * 1024


@dataclass
class MasterSettings:
    host: str = "127.0.0.1"
    port: int = 5050
    http_port: int = 5051
    work_dir: Path = field(default_factory=lambda: Path(".orbiter/master"))
    config: MasterConfig = field(default_factory=MasterConfig)
    advertise_host: str = ""
    # Run Satellite inside the master with this configuration (None: no Satellite).
    satellite: SatelliteConfig | None = None
    # Satellite inside the master's event loop (its rounds then stall the master at
    # scale); by default it runs in its own process, started with this config file.
    satellite_in_master: bool = False
    config_path: str = ""
    # TLS and authentication (None: the process's, set by the CLI from its flags).
    security: SecuritySettings | None = None
    # Agent registration attempts per principal and peer host: a burst, then a rate.
    registration_burst: float = 50.0
    registration_rate: float = 10.0


@dataclass(frozen=True)
class ZkHandle:
    """A started kazoo client and the zk:// address whose root it has claimed."""

    client: KazooClient
    address: ZkAddress


@dataclass(eq=False)
class Close:
    """Ends a stream's writer; the message says why."""

    message: str
    shutdown: bool = False


@dataclass(eq=False)
class Outbox:
    """One open stream to a framework or an agent."""

    key: str | int
    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class MasterServer:
    """A running master: gRPC API, operator HTTP API, timers, registry.

    Standalone it leads from the start. With ZooKeeper (`zk`) it starts as a
    standby (its APIs refuse or redirect to the leader) and leads once elected;
    losing the lead for good (session expired, or another master wrote the
    registry) sets `stopped` with `fenced` saying why, and the process exits.
    """

    def __init__(
        self,
        settings: MasterSettings,
        store: RegistryStore | None = None,
        zk: ZkHandle | None = None,
    ) -> None:
        self.settings = settings
        self.zk = zk
        self.security = settings.security or current_security()
        self.registrations = RegistrationLimiter(
            settings.registration_rate, settings.registration_burst
        )
        limits = settings.config.limits
        self.api_calls = ApiLimiter(limits.api_rate, limits.api_burst)
        self.master_id = uuid.uuid4().hex
        if store is None and zk is not None:
            from orbiter.zkstore import ZkRegistryStore

            store = ZkRegistryStore(zk.client, zk.address.path, self.master_id)
        self.store = store or FileRegistryStore(settings.work_dir / "registry.pb")
        self.election: Election | None = None
        self.leader: LeaderInfo | None = None
        self.paused = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.core: Master | None = None
        self.framework_streams: dict[str, Outbox] = {}
        self.agent_links: dict[str, Outbox] = {}
        self._link_ids = itertools.count(1)
        self._effects: collections.deque[Effect] = collections.deque()
        self._effects_ready = asyncio.Event()
        self._persisted_version = 0
        self._persist_done = asyncio.Event()
        self.fenced = ""  # set when another master wrote the registry: we must not act
        self._tasks: list[asyncio.Task[None]] = []
        self._grpc: grpc.aio.Server | None = None
        self._http: http_api.HttpServer | None = None
        self._allocation_due = asyncio.Event()
        self.metrics = MasterMetrics(self)
        self.stopped = asyncio.Event()
        self.info = messages_pb2.MasterInfo()
        self.lag = LoopLag("master", self.metrics.registry)
        self.satellite: Satellite | None = None
        self.satellite_process: SatelliteProcess | None = None
        self.archive: MasterArchive | None = None
        archive = settings.satellite.archive if settings.satellite is not None else None
        if archive is not None and archive.elasticsearch is not None:
            self.archive = MasterArchive(archive, settings.work_dir, self.metrics.registry)
        if settings.satellite is not None and not settings.satellite_in_master:
            self.satellite_process = SatelliteProcess(
                settings.work_dir / "satellite",
                master_http="",  # known once the HTTP server listens
                config_path=settings.config_path,
                zk_url=str(zk.address) if zk is not None else "",
                writer_id=self.master_id,
                registry=self.metrics.registry,
            )
            self.security, extra_args, env = serving.satellite_child(self.security)
            self.satellite_process.extra_args = extra_args
            self.satellite_process.env = env
        elif settings.satellite is not None:
            self.satellite = Satellite(
                settings.satellite,
                MasterCluster(self),
                settings.work_dir / "satellite",
                registry=self.metrics.registry,
                **self._satellite_store(),
            )

    def _satellite_store(self) -> dict[str, object]:
        """With ZooKeeper, Satellite's state lives there too: a new leader's Satellite
        goes on from where the old one stopped (pending `for`s, actions taken)."""
        if self.zk is None:
            return {}
        from orbiter.zkstore import ZkBlobStore

        path = f"{self.zk.address.path}/satellite"
        return {"store": ZkBlobStore(self.zk.client, path, self.master_id)}

    # ------------------------------------------------------------------ leadership

    @property
    def role(self) -> str:
        return "standby" if self.core is None else "leader"

    def not_acting_reason(self) -> str:
        if self.core is not None:
            return (
                f"master {self.info.id[:8]} lost contact with ZooKeeper and is not acting "
                "until it is back (or another master is elected); retry shortly"
            )
        leader = self.leader
        if leader is None or leader.id == self.info.id:
            return (
                f"master {self.info.id[:8]} is a standby and no leader is elected yet; "
                "retry shortly"
            )
        return (
            f"master {self.info.id[:8]} is a standby; the leader is {leader.id[:8]} at "
            f"{leader.grpc_address} (gRPC), {self.security.url(leader.http_address)}/ (HTTP)"
        )

    def _leader_changed(self, data: bytes | None, stat: object) -> None:
        """kazoo's thread (a DataWatch on <path>/leader): hand it to the loop."""
        leader = None
        if data:
            with contextlib.suppress(ValueError, TypeError):
                leader = LeaderInfo.from_json(data)
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._set_leader, leader)

    def _set_leader(self, leader: LeaderInfo | None) -> None:
        if self.core is None or leader is not None:
            self.leader = leader

    def _suspended(self) -> None:
        if self.core is not None:
            log.warning("not acting until ZooKeeper is back: calls refused, effects held")
        self.paused = True
        self._resumed.clear()

    def _resumed_contact(self) -> None:
        if self.fenced or self.stopped.is_set():
            return  # stepped down: a new session is no licence to act again
        if self.paused and self.core is not None:
            log.info("acting again: the ZooKeeper session survived")
        self.paused = False
        self._resumed.set()

    def step_down(self, reason: str) -> None:
        """Stop acting for good; the process exits (run masters under a supervisor)."""
        if self.core is None:
            # A standby whose session expired cannot campaign any more either.
            log.error("standby lost its ZooKeeper session: %s", reason)
        else:
            log.critical("stepping down: %s", reason)
        self.paused = True
        self._resumed.clear()
        self.fenced = self.fenced or reason
        self.stopped.set()

    async def _campaign(self) -> None:
        from orbiter.master.election import Election

        assert self.zk is not None
        self.election = Election(
            self.zk.client,
            self.zk.address,
            on_suspended=self._suspended,
            on_resumed=self._resumed_contact,
            on_lost=self.step_down,
        )
        log.info("master %s is a standby; campaigning at %s", self.info.id[:8], self.zk.address)
        await self.election.campaign(self.info.id)
        if self.stopped.is_set():
            return
        log.info("master %s elected leader", self.info.id[:8])
        leader = LeaderInfo(
            id=self.info.id,
            hostname=self.info.hostname,
            grpc_address=self.info.grpc_address,
            http_address=self.info.http_address,
            version=self.info.version,
            elected_at=time.time(),
        )
        try:
            await self._lead(start_satellite=False)
            # Published as soon as it can serve: the agents' re-register time is running.
            await self._publish(leader)
            await self._start_satellite()
        except RegistryConflict as e:
            self.step_down(str(e))
            return
        except Exception as e:
            log.exception("could not take the lead")
            self.step_down(f"could not take the lead: {e}")
            return
        log.info("master %s leads; published at %s", self.info.id[:8], leader_path(self.zk.address))

    async def _publish(self, leader: LeaderInfo) -> None:
        """Publish the leader znode, retrying connection trouble while the session lives."""
        assert self.election is not None
        backoff = 0.1
        while not self.stopped.is_set():
            try:
                await self.election.publish(leader)
                self.leader = leader
                return
            except Exception as e:  # kazoo's ConnectionLoss, OperationTimeout, ...
                log.warning("could not publish the leader znode (%s); retrying", e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        s = self.settings
        self._loop = asyncio.get_running_loop()
        s.work_dir.mkdir(parents=True, exist_ok=True)
        if self.archive is not None:
            await self.archive.start()
        grpc_port = s.port if s.port else _free_port(s.host)
        http_port = s.http_port if s.http_port else _free_port(s.host)
        advertise = s.advertise_host or (
            s.host if s.host not in ("0.0.0.0", "::") else socket.gethostname()
        )
        self.info = messages_pb2.MasterInfo(
            id=self.master_id,
            hostname=socket.gethostname(),
            grpc_address=f"{advertise}:{grpc_port}",
            http_address=f"{advertise}:{http_port}",
            version=orbiter.__version__,
            start_time=time.time(),
        )
        server = grpc.aio.server(
            interceptors=[Authenticate(lambda: self.security), grpc_api.LeaderOnly(self)],
            options=[
                ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE),
                ("grpc.max_send_message_length", MAX_SEND_MESSAGE),
                ("grpc.so_reuseport", 0),
            ],
        )
        grpc_api.add_services(server, self)
        try:
            with socket.socket(socket.AF_INET6 if ":" in s.host else socket.AF_INET) as probe:
                # As gRPC binds: reuse a port whose old connections are in TIME_WAIT.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((s.host, grpc_port))  # grpc would only log the failure to stderr
            bound = serving.add_port(server, f"{s.host}:{grpc_port}", self.security)
        except (OSError, RuntimeError):
            bound = 0
        if bound == 0:
            raise OSError(
                f"cannot listen on {s.host}:{grpc_port} for gRPC: the port is in use; "
                "pick another with --port"
            )
        self._http = http_api.HttpServer(self)
        await self._http.start(s.host, http_port)
        await server.start()
        self._grpc = server
        self.lag.start()
        if self.zk is None:
            await self._lead()
        else:
            self.zk.client.DataWatch(leader_path(self.zk.address))(self._leader_changed)
            self._tasks.append(asyncio.create_task(self._campaign(), name="master-campaign"))
        log.info(
            "master %s listening: gRPC %s, HTTP %s, work dir %s",
            self.info.id[:8],
            self.info.grpc_address,
            self.info.http_address,
            s.work_dir,
        )

    async def _lead(self, start_satellite: bool = True) -> None:
        """Take the lead: recover the registry, then run timers, effects and Satellite."""
        registry = await asyncio.to_thread(self.store.load)
        self._persisted_version = registry.version
        now = time.time()
        # The ACLs come with the security settings (config file's security.acls).
        core = Master(self.info, replace(self.settings.config, acls=self.security.acls), now)
        core.recover(registry, now)
        self.core = core
        self._tasks += [
            asyncio.create_task(self._run_effects(), name="master-effects"),
            asyncio.create_task(self._run_timers(), name="master-timers"),
        ]
        if start_satellite:
            await self._start_satellite()

    async def _start_satellite(self) -> None:
        if self.satellite is not None and not self.satellite.config.external_url:
            self.satellite.config.external_url = self.security.url(self.info.http_address)
        if self.satellite_process is not None:
            # The child runs here: the bound address reaches us (loopback for a wildcard
            # bind), where the advertised name may not route back, or not be in the
            # certificate (which `orbiter certs issue` makes valid for 127.0.0.1).
            s = self.settings
            local = s.host if s.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
            port = self.info.http_address.rsplit(":", 1)[1]
            host = f"[{local}]" if ":" in local else local
            self.satellite_process.master_http = f"{host}:{port}"
            await self.satellite_process.start()
        elif self.satellite is not None:
            await self.satellite.start()

    async def stop(self) -> None:
        # Satellite's process stops beside the rest, not before it: a slow one must not
        # hold up closing the streams and handing the lead over.
        child = (
            asyncio.create_task(self.satellite_process.stop())
            if self.satellite_process is not None
            else None
        )
        if self.satellite is not None and self.satellite._started is not None:
            await self.satellite.stop()
        await self.lag.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for box in [*self.framework_streams.values(), *self.agent_links.values()]:
            box.queue.put_nowait(Close("master shutting down"))
        if self._grpc is not None:
            await self._grpc.stop(grace=1.0)
        if self._http is not None:
            await self._http.stop()
        if (
            self.election is not None
            and self.election.leading
            and not self.fenced
            and not self.paused
        ):
            # A clean stop hands the lead over now, not when the session expires.
            # (Cut off from ZooKeeper that would hang; the session expires by itself.)
            await self.election.resign()
        if child is not None:
            await child
        if self.archive is not None:
            await self.archive.stop()  # what was not sent yet stays spooled for the next start
        self.stopped.set()
        if self.zk is not None:
            # Stopping the client also frees a thread blocked in the election's lock.
            await asyncio.to_thread(_stop_quietly, self.zk.client)

    # ------------------------------------------------------------------ events

    def call(self, method: Callable[..., list[Effect]], *args: object) -> None:
        """Run a state machine method that returns effects, and carry them out."""
        self.submit(method(*args))

    def submit(self, effects: list[Effect]) -> None:
        core = self.core
        if core is not None and core.outbox:
            for event in core.outbox:
                if event.action:  # an operator's action, with who asked ('' is local)
                    on = f" on agent {event.agent_id}" if event.agent_id else ""
                    who = event.principal or "(unauthenticated, local)"
                    log.info("operator action %s%s by %s: %s", event.action, on, who, event.message)
            if self.archive is not None:
                self.archive.events(list(core.outbox))
            core.outbox.clear()
        if not effects:
            return
        if self.archive is not None:
            self.archive.effects(effects, time.time())
        if not self._effects and not self.paused:
            # Nothing queued: sends can go out at once, in order, up to a registry write.
            for i, effect in enumerate(effects):
                if isinstance(effect, PersistRegistry):
                    self._effects.extend(effects[i:])
                    self._effects_ready.set()
                    break
                self._execute(effect)
        else:
            self._effects.extend(effects)
            self._effects_ready.set()
        if self.core is not None and self.core.allocation_wanted:
            self._allocation_due.set()

    def _execute(self, effect: Effect) -> None:
        if isinstance(effect, SendToFramework):
            box = self.framework_streams.get(effect.framework_id)
            if box is not None:
                box.queue.put_nowait(effect.event)
        elif isinstance(effect, SendToAgent):
            box = self.agent_links.get(effect.agent_id)
            if box is not None:
                box.queue.put_nowait(effect.message)
                self.metrics.agent_messages_sent.inc()
        elif isinstance(effect, CloseFrameworkStream):
            box = self.framework_streams.get(effect.framework_id)
            if box is not None and box.key == effect.stream_id:
                del self.framework_streams[effect.framework_id]
                box.queue.put_nowait(Close(effect.message))
        elif isinstance(effect, CloseAgentLink):
            box = self.agent_links.get(effect.agent_id)
            if box is not None and box.key == effect.link_id:
                del self.agent_links[effect.agent_id]
                box.queue.put_nowait(Close(effect.message, effect.shutdown))

    async def _run_effects(self) -> None:
        while True:
            await self._effects_ready.wait()
            while self._effects:
                # Cut off from ZooKeeper another master may lead: hold everything.
                await self._resumed.wait()
                effect = self._effects[0]
                if isinstance(effect, PersistRegistry):
                    if effect.version > self._persisted_version:
                        await self._persist()
                else:
                    self._execute(effect)
                self._effects.popleft()
            self._effects_ready.clear()

    async def _persist(self) -> None:
        """Write the registry; a failed write is retried, nothing after it goes out meanwhile.

        Another master having written it (RegistryConflict) is final: this master
        stops, and callers waiting for durability are released with an error.
        """
        assert self.core is not None
        backoff = 0.1
        while True:
            snapshot = self.core.registry()
            started = time.perf_counter()
            try:
                await asyncio.to_thread(self.store.store, snapshot)
                break
            except RegistryConflict as e:
                self.step_down(str(e))  # refuses calls and holds effects from now on
                self._persist_done.set()
                raise
            except OSError as e:
                self.metrics.registry_write_failures.inc()
                log.error("registry write failed (%s); retrying in %.1fs", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        self.metrics.registry_writes.inc()
        self.metrics.registry_write_seconds.observe(time.perf_counter() - started)
        self._persisted_version = snapshot.version
        self._persist_done.set()
        self._persist_done = asyncio.Event()

    async def durable(self) -> None:
        """Return once every registry change made so far is on disk."""
        assert self.core is not None
        target = self.core.registry_version
        while self._persisted_version < target:
            if self.fenced:
                raise RegistryConflict(self.fenced)
            await self._persist_done.wait()

    async def _run_timers(self) -> None:
        assert self.core is not None
        last_tick = 0.0
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # arrives as the event is set, and stop() would then wait forever.
            try:
                async with asyncio.timeout(TICK_SECONDS):
                    await self._allocation_due.wait()
                # Let a burst of events land before allocating once for all of them.
                await asyncio.sleep(ALLOCATION_BATCH_SECONDS)
            except TimeoutError:
                pass
            self._allocation_due.clear()
            if self.paused:
                continue
            now = time.time()
            try:
                if now - last_tick >= TICK_SECONDS:
                    last_tick = now
                    self.submit(self.core.tick(now))
                if self.core.allocation_wanted:
                    started = time.perf_counter()
                    # Synchronous, and it makes many short-lived objects: a full collection
                    # inside it (~50 ms at 10k agents) would only walk them. After it, the
                    # next collection looks at what survived.
                    with gc_paused():
                        effects = self.core.allocate(now)
                    self.metrics.allocation_runs.inc()
                    self.metrics.allocation_seconds.observe(time.perf_counter() - started)
                    self.submit(effects)
                    self._allocation_due.clear()
            except Exception:
                # A bug must not stop every later timeout and offer: log it and go on.
                log.exception("master timers failed; continuing")
                self.core.allocation_wanted = False

    # ------------------------------------------------------------------ streams

    def open_framework_stream(self, framework_id: str, stream_id: str) -> Outbox:
        box = Outbox(stream_id)
        old = self.framework_streams.get(framework_id)
        if old is not None:
            old.queue.put_nowait(Close("framework failed over to a new stream"))
        self.framework_streams[framework_id] = box
        return box

    def close_framework_stream(self, framework_id: str, box: Outbox) -> None:
        if self.framework_streams.get(framework_id) is box:
            del self.framework_streams[framework_id]
        if self.core is not None:
            self.call(self.core.framework_disconnected, framework_id, box.key, time.time())

    def count_refusal(self, error: OrbiterError, api: str) -> None:
        """Count a call refused at a rate limit or a registry cap (other refusals are not)."""
        if isinstance(error, RateLimited):
            self.metrics.rate_limited.labels(api).inc()
        elif isinstance(error, CapReached):
            self.metrics.cap_refusals.labels(error.cap).inc()

    def new_link_id(self) -> int:
        return next(self._link_ids)

    def open_agent_link(self, agent_id: str, link_id: int) -> Outbox:
        box = Outbox(link_id)
        old = self.agent_links.get(agent_id)
        if old is not None:
            old.queue.put_nowait(Close("replaced by a newer link"))
        self.agent_links[agent_id] = box
        return box

    def close_agent_link(self, agent_id: str, box: Outbox) -> None:
        if self.agent_links.get(agent_id) is box:
            del self.agent_links[agent_id]
        if self.core is not None:
            self.call(self.core.agent_disconnected, agent_id, box.key, time.time())


def _stop_quietly(client: KazooClient) -> None:
    with contextlib.suppress(Exception):
        client.stop()
        client.close()


def refusal(error: OrbiterError) -> tuple[grpc.StatusCode, str]:
    """The gRPC status for a refused call: the one place errors become statuses."""
    return getattr(grpc.StatusCode, error.code.grpc_name), error.message
