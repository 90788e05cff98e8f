"""Satellite in its own process, run by the leading master.

Scraping a thousand agents and evaluating rules over them costs seconds of
CPU per round; inside the master's event loop that would stall heartbeats,
offers and API calls for as long. So the leader starts `orbiter satellite`
as a child: it watches and acts through the master's operator API (as a
standalone Satellite does), serves its API on a Unix socket in the master's
work dir, and the master forwards its Satellite routes and appends its
metrics to /metrics, so operators see one master as before.

The child lives as long as the lead: it is stopped when the master steps
down or stops, started again (with backoff) if it dies, and exits by itself
if the master dies (it watches its parent), so a kill -9 leaves no orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge

from orbiter.security.http_auth import FORWARDED_PRINCIPAL

log = logging.getLogger("orbiter.satellite")

READY_TIMEOUT = 30.0
STOP_GRACE = 12.0
METRICS_REFRESH = 1.0
FENCED = 3
"""The child's exit status when another Satellite owns the state or its session is lost."""
RESTART_BACKOFF = (1.0, 30.0)


class SatelliteUnavailable(Exception):
    """The child is not running or did not answer; the message says which."""


class SatelliteProcess:
    """Start, watch and stop one `orbiter satellite` child; talk to it over its socket."""

    def __init__(
        self,
        work_dir: Path,
        master_http: str,
        config_path: str = "",
        zk_url: str = "",
        writer_id: str = "",
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.work_dir = work_dir
        self._socket_dir: Path | None = None  # private (0700), made at the first start
        self.answered = False  # the running child has answered /health
        self.master_http = master_http
        self.config_path = config_path
        self.zk_url = zk_url
        self.writer_id = writer_id
        # TLS flags and the token the child authenticates with (set by the master).
        self.extra_args: list[str] = []
        self.env: dict[str, str] = {}
        self.proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stopping = False
        self._tried = asyncio.Event()  # the first start attempt is over, however it went
        self.started_at = 0.0
        # The child's last /metrics, for the master's own /metrics to append without
        # waiting on a child that may be in the middle of a round.
        self.metrics_text = b""
        self.metrics_at = 0.0
        self._metrics_task: asyncio.Task[None] | None = None
        Gauge(
            "orbiter_master_satellite_metrics_age_seconds",
            "Age of the Satellite process's metrics appended to this /metrics (0: none yet)",
            registry=registry,
        ).set_function(lambda: time.time() - self.metrics_at if self.metrics_at else 0.0)
        self.m_restarts = Counter(
            "orbiter_master_satellite_restarts",
            "Times the master started its Satellite process again after it died",
            registry=registry,
        )

    @property
    def socket(self) -> Path:
        if self._socket_dir is None:
            self._socket_dir = _private_dir(self.work_dir)
        return self._socket_dir / "api.sock"

    def argv(self) -> list[str]:
        args = [
            # -P: the installed orbiter, never an `orbiter/` in the current directory.
            sys.executable, "-P", "-m", "orbiter.cli", "satellite",
            "--master-http", self.master_http,
            "--unix-socket", str(self.socket),
            "--work-dir", str(self.work_dir.resolve()),
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        if self.config_path:
            args += ["--config", self.config_path]
        if self.zk_url:
            args += ["--state-zk", self.zk_url, "--writer-id", self.writer_id]
        return args + self.extra_args

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        """Start the child and wait until its API answers (or it failed to start: then it
        is logged and tried again later; Satellite never takes the master down with it)."""
        self._stopping = False
        self._tried = asyncio.Event()
        self._watch = asyncio.create_task(self._supervise(), name="satellite-process")
        self._metrics_task = asyncio.create_task(self._refresh_metrics(), name="satellite-metrics")
        await self._tried.wait()

    async def _spawn(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self.proc, self.answered, self.started_at = None, False, time.time()
        self.metrics_text, self.metrics_at = b"", 0.0  # the dead child's figures are not its
        # Its own session: a terminal's Ctrl-C reaches the master, which stops it in order.
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv(),
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **self.env} if self.env else None,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise SatelliteUnavailable(
                    f"the Satellite process exited with {self.proc.returncode} as it started; "
                    "its log lines above say why"
                )
            with contextlib.suppress(SatelliteUnavailable):
                await self.request("GET", "/health")
                self.answered = True
                log.info("Satellite runs in its own process (pid %d)", self.proc.pid)
                return
            await asyncio.sleep(0.1)
        self.proc.kill()  # hung: the supervisor starts another
        raise SatelliteUnavailable(f"the Satellite process did not answer in {READY_TIMEOUT:g}s")

    async def _supervise(self) -> None:
        backoff = RESTART_BACKOFF[0]
        first = True
        while not self._stopping:
            try:
                await self._spawn()
            except (SatelliteUnavailable, OSError) as e:
                log.error("could not start Satellite: %s", e)
            self._tried.set()
            if not first:
                self.m_restarts.inc()
            first = False
            if self.proc is not None:
                code = await self.proc.wait()
                if self._stopping:
                    return
                why = " (its state is another's now, or its ZooKeeper session was lost)"
                log.error(
                    "the Satellite process exited with %s%s", code, why if code == FENCED else ""
                )
            lived = time.time() - self.started_at
            backoff = RESTART_BACKOFF[0] if lived > 60 else min(backoff * 2, RESTART_BACKOFF[1])
            log.error("starting Satellite again in %.0fs", backoff)
            await asyncio.sleep(backoff)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE (shorter than the CLI's stop bound)."""
        self._stopping = True
        if self._metrics_task is not None:
            self._metrics_task.cancel()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_GRACE)
            except TimeoutError:
                log.error("the Satellite process did not stop in %.0fs; killing it", STOP_GRACE)
                self.proc.kill()
                await self.proc.wait()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    async def _refresh_metrics(self) -> None:
        while True:
            await asyncio.sleep(METRICS_REFRESH)
            if not self.answered:
                continue
            try:
                status, body, _ = await self.request("GET", "/metrics", timeout=5.0)
            except SatelliteUnavailable:
                continue  # busy or restarting: the last copy stays, its age says how old
            if status == 200:
                self.metrics_text, self.metrics_at = body, time.time()

    def reload(self) -> None:
        """SIGHUP: the child reloads its rule files (a bad file is refused, old rules stay).
        Only once it has answered: before its handler is set, SIGHUP would kill it."""
        if self.running and self.answered:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGHUP)

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        timeout: float = 10.0,
        content_type: str = "application/json",
        principal: str = "",
    ) -> tuple[int, bytes, str]:
        """One call to the child's API: (status, body, content type); `principal` is the
        caller the master authenticated, for the child's log of operator actions."""
        if self._stopping and self.proc is not None and not self.running:
            raise SatelliteUnavailable("the Satellite process is stopped")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.socket), force_close=True)
            )
        try:
            async with self._session.request(
                method,
                f"http://satellite{path}",
                data=body,
                headers={
                    **({"Content-Type": content_type} if body is not None else {}),
                    **({FORWARDED_PRINCIPAL: principal} if principal else {}),
                },
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                return resp.status, await resp.read(), resp.content_type
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise SatelliteUnavailable(f"Satellite's process did not answer {path}: {e}") from None


def _private_dir(work_dir: Path) -> Path:
    """A new directory only we can enter (mkdtemp: 0700, unpredictable name) for the
    socket: in the work dir, or in the temp dir when that path would be too long for a
    Unix socket (108 bytes on Linux). Nobody else can take the socket's name first or
    connect to it."""
    work_dir.mkdir(parents=True, exist_ok=True)
    base = work_dir.resolve()
    if len(str(base)) > 80:
        base = Path(tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix="satellite-", dir=base))
