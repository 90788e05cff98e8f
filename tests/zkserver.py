"""A real ZooKeeper for tests: a standalone server from Debian's jars, on a free port in a temp dir.

Not the system service: each test gets its own server, data dir and log, and can
stop and restart it (same port, same data) under whatever it is testing.
`make deps` installs the jars (Debian package zookeeperd).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from proctools import STOP_TIMEOUT, PortInUse, ProcessFailed, poll_until, tail

JARS = Path("/usr/share/java")
# Debian's zookeeper.jar names its dependencies in its manifest's Class-Path;
# slf4j-simple sends the server's log to stderr, which goes to the log file.
CLASSPATH = [JARS / "zookeeper.jar", JARS / "slf4j-simple.jar"]
MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
START_TIMEOUT = 30.0
# Sessions from 2 to 20 ticks are allowed: 1 s to 10 s.
TICK_MS = 500
LOWEST_PORT = 20000


class ZooKeeperMissing(RuntimeError):
    """Java or the ZooKeeper jars are not installed."""


def _ephemeral_ports() -> range:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def _free_port() -> int:
    """A free port below the kernel's ephemeral range, so that it stays free while the server is
    down: no bind(0) elsewhere and no outgoing connection's local end can take it, so a client
    reconnecting meanwhile reaches nothing rather than a stranger (or itself)."""
    low = _ephemeral_ports().start
    if low > LOWEST_PORT + 1000:
        for port in random.sample(range(LOWEST_PORT, low), 50):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter_word(port: int, word: str, timeout: float = 1.0) -> str:
    """Send one of ZooKeeper's four-letter commands (ruok, srvr, cons...) and return its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        while chunk := s.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@dataclass
class ZooKeeperServer:
    """One standalone ZooKeeper server; `start()` after `stop()` brings the same one back."""

    base: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/orbiter") -> str:
        return f"zk://{self.address}{path}"

    def last_zxid(self) -> int:
        """The id of the last transaction the server applied: it grows by one per write."""
        for line in four_letter_word(self.port, "srvr").splitlines():
            if line.startswith("Zxid:"):
                return int(line.split()[1], 16)
        raise AssertionError(f"no Zxid in ZooKeeper's srvr answer from {self.address}")

    @property
    def log(self) -> Path:
        return self.base / "zookeeper.log"

    @property
    def config(self) -> Path:
        return self.base / "zoo.cfg"

    def _write_config(self) -> None:
        (self.base / "data").mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"tickTime={TICK_MS}\n"
            f"dataDir={self.base / 'data'}\n"
            f"clientPort={self.port}\n"
            "clientPortAddress=127.0.0.1\n"
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=*\n"
            # Small transaction log files (the default preallocates 64 MB each) and no
            # fsync per write: tests restart the process, not the machine.
            "preAllocSize=1024\n"
            "forceSync=no\n"
        )

    def _command(self) -> list[str]:
        java = shutil.which("java")
        missing = [str(p) for p in CLASSPATH if not p.exists()]
        if java is None or missing:
            raise ZooKeeperMissing(
                "ZooKeeper is not installed (" + ", ".join(missing or ["java"]) + " not found)"
            )
        # The server keeps its last 500 transactions in memory besides the data
        # (zookeeper.commitLogCount, which it will not lower): room for big documents.
        return [
            java, "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-cp", ":".join(map(str, CLASSPATH)), MAIN, str(self.config),
        ]  # fmt: skip

    def start(self) -> None:
        """Start the server and return once it serves requests; a restart keeps port and data."""
        first = self.port == 0
        for attempt in range(3):
            if first:
                self.port = _free_port()
            self._write_config()
            try:
                self._start_once()
                return
            except PortInUse:
                if not first or attempt == 2:
                    raise

    def _start_once(self) -> None:
        command = self._command()
        self.base.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            proc = self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )

        def serving() -> bool:
            if proc.poll() is not None:
                log = tail(self.log)
                kind = PortInUse if "Address already in use" in log else ProcessFailed
                raise kind(f"ZooKeeper exited with {proc.returncode} before serving:\n{log}")
            # Until it has loaded its data, srvr answers "not currently serving requests".
            return "Mode:" in four_letter_word(self.port, "srvr")

        try:
            poll_until(serving, START_TIMEOUT, f"ZooKeeper at {self.address} to serve")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
