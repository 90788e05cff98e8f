"""A real InfluxDB 1.x (Debian's influxd) for tests: free ports, a temp dir, a generated config.

`InfluxServer.start()` writes a config (meta/data/wal under the temp dir, reporting
and the _internal monitor off, HTTP and the RPC bind-address on free ports),
starts `influxd -config`, polls `/ping` until it answers 204 and creates the
database. `kill()` (SIGKILL) and `start()` again keep the same ports and data,
for outage tests. A missing binary fails the test: a skipped archive test would
prove nothing.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from proctools import poll_until, tail

INFLUXD = "/usr/bin/influxd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def influxd_path() -> str:
    path = shutil.which("influxd") or (INFLUXD if Path(INFLUXD).exists() else None)
    if path is None:
        pytest.fail("influxd not found: install Debian's influxdb package (`make deps`)")
    return path


@dataclass
class InfluxServer:
    root: Path
    database: str = "orbiter"
    http_port: int = 0
    rpc_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.http_port = self.http_port or free_port()
        self.rpc_port = self.rpc_port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log(self) -> Path:
        return self.root / "influxd.log"

    def config(self) -> str:
        r = self.root
        return f"""
reporting-enabled = false
bind-address = "127.0.0.1:{self.rpc_port}"

[meta]
  dir = "{r / "meta"}"
  logging-enabled = false

[data]
  dir = "{r / "data"}"
  wal-dir = "{r / "wal"}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{self.http_port}"
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""

    def start(self, timeout: float = 30.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "influxdb.conf"
        conf.write_text(self.config())
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [influxd_path(), "-config", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"influxd exited with {proc.returncode}:\n{tail(self.log)}")
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as resp:
                return resp.status == 204

        poll_until(ready, timeout, f"influxd at {self.url} to answer /ping with 204")
        self.query(f'CREATE DATABASE "{self.database}"', method="POST")

    def kill(self) -> None:
        """SIGKILL, as an outage; `start()` brings it back with its data."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def query(self, q: str, method: str = "GET", db: str | None = None) -> Any:
        """InfluxQL through /query; the decoded JSON answer."""
        params = {"q": q, "epoch": "ms"}
        if db:
            params["db"] = db
        data = None
        url = f"{self.url}/query"
        if method == "POST":
            data = urllib.parse.urlencode(params).encode()
        else:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as resp:
            return json.load(resp)

    def points(self, measurement: str, where: str = "") -> list[list[Any]]:
        """Rows [time_ms, value, tags...] of `SELECT * FROM measurement`, oldest first."""
        answer = self.query(f'SELECT * FROM "{measurement}" {where}', db=self.database)
        result = answer["results"][0]
        if "error" in result:
            raise AssertionError(result["error"])
        series = result.get("series") or []
        return [row for s in series for row in s["values"]]

    def columns(self, measurement: str) -> list[str]:
        answer = self.query(f'SELECT * FROM "{measurement}" LIMIT 1', db=self.database)
        series = answer["results"][0].get("series") or [{"columns": []}]
        return series[0]["columns"]

    def count(self, measurement: str) -> int:
        answer = self.query(f'SELECT count("value") FROM "{measurement}"', db=self.database)
        series = answer["results"][0].get("series")
        return int(series[0]["values"][0][1]) if series else 0
