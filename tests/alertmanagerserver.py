"""A real Alertmanager for tests: Debian's prometheus-alertmanager 0.25, free port, temp dir.

Not the system service: each test gets its own server, config, storage and log,
and can stop and start it again (same port, same storage) under what it tests.
Clustering is off (`--cluster.listen-address=`). `make deps` installs the package;
a missing binary fails the test (never a skip).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from proctools import STOP_TIMEOUT, poll_until, tail

BINARY = "prometheus-alertmanager"
START_TIMEOUT = 30.0


def alertmanager_binary() -> str:
    path = shutil.which(BINARY)
    if path is None:
        pytest.fail(f"{BINARY} not found: run `make deps` (Debian package prometheus-alertmanager)")
    return path


@dataclass
class AlertmanagerServer:
    work_dir: Path
    port: int
    config: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def log(self) -> Path:
        return self.work_dir / "alertmanager.log"

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.work_dir / "alertmanager.yml"
        cfg.write_text(yaml.safe_dump(self.config))
        self.starts += 1
        self.proc = subprocess.Popen(
            [
                alertmanager_binary(),
                f"--config.file={cfg}",
                f"--storage.path={self.work_dir / 'data'}",
                f"--web.listen-address={self.address}",
                "--cluster.listen-address=",
                "--log.level=debug",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("a"),
        )

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"alertmanager exited with {self.proc.returncode}:\n"
                                   f"{tail(self.log)}")  # fmt: skip
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                return resp.status == 200

        poll_until(ready, START_TIMEOUT, f"alertmanager at {self.address} to be ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as resp:
            return json.load(resp)

    def post(self, path: str, body: Any) -> Any:
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            text = resp.read()
            return json.loads(text) if text else None

    def alerts(self) -> list[dict[str, Any]]:
        """Alertmanager's current (not resolved) alerts, from its v2 API."""
        return self.get("/api/v2/alerts")
