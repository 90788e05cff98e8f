"""A real Docker engine for tests, and a test image made from busybox-static.

`DockerEngine.start()` uses the system daemon when /var/run/docker.sock answers,
and otherwise starts Debian's dockerd itself in a temp dir (its own data root,
exec root, pid file and a unix socket with a short path: sun_path holds 108
bytes), and `stop()` stops only a daemon it started. `ensure_image()` builds
`orbiter-test/busybox:latest` with `docker import` from a tar of
/bin/busybox plus a symlink for each of its applets (`busybox --list`): no registry is
reachable from the machines that run these tests. A missing dockerd or
busybox fails the test: a skipped Docker test would prove nothing.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest
from proctools import poll_until, tail

SYSTEM_SOCKET = "/var/run/docker.sock"
IMAGE = "orbiter-test/busybox:latest"
BUSYBOX = "/bin/busybox"
START_TIMEOUT = 60.0


def _answers(base_url: str) -> bool:
    try:
        client = docker.DockerClient(base_url=base_url, timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # docker.errors.DockerException, requests errors: not there
        return False


@dataclass
class DockerEngine:
    """A dockerd to talk to: the system one, or one this object started."""

    root: Path | None = None
    base_url: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    _made_root: bool = field(default=False, repr=False)

    def start(self) -> None:
        if Path(SYSTEM_SOCKET).exists() and _answers(f"unix://{SYSTEM_SOCKET}"):
            self.base_url = f"unix://{SYSTEM_SOCKET}"
            return
        dockerd = shutil.which("dockerd") or (
            "/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None
        )
        if dockerd is None:
            pytest.fail("dockerd not found: install Debian's docker.io package (`make deps`)")
        if self.root is None:
            # Short: the socket path must fit in sun_path.
            self.root = Path(tempfile.mkdtemp(prefix="odk-", dir="/tmp"))
            self._made_root = True
        sock = self.root / "docker.sock"
        self.base_url = f"unix://{sock}"
        self.log = self.root / "dockerd.log"
        with self.log.open("ab") as out:
            args = [
                dockerd,
                "--data-root", str(self.root / "data"),
                "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.root / "docker.pid"),
                "--host", self.base_url,
            ]  # fmt: skip
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready() -> bool:
            assert self.proc is not None and self.log is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"dockerd exited with {self.proc.returncode}:\n{tail(self.log)}"
                )
            return _answers(self.base_url)

        poll_until(ready, START_TIMEOUT, f"dockerd at {self.base_url} to answer", interval=0.2)

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.base_url, timeout=60)

    def ensure_image(self, name: str = IMAGE) -> str:
        """The busybox test image, imported unless the engine already has it."""
        client = self.client()
        try:
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.get(name)
                return name
            if not Path(BUSYBOX).exists():
                pytest.fail(f"{BUSYBOX} not found: install Debian's busybox-static (`make deps`)")
            repository, _, tag = name.rpartition(":")
            client.api.import_image_from_data(_busybox_tar(), repository=repository, tag=tag)
            client.images.get(name)
            return name
        finally:
            client.close()

    def remove_containers(self, label: str) -> None:
        """Force-remove every container carrying `label` (teardown of a test's leftovers)."""
        client = self.client()
        try:
            for container in client.containers.list(all=True, filters={"label": label}):
                with contextlib.suppress(docker.errors.APIError):
                    container.remove(force=True)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.root is not None:
            # dockerd leaves its data root bind-mounted (and overlay mounts if it crashed).
            _unmount_under(self.root)
            if self._made_root:
                shutil.rmtree(self.root, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    mounts = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            target = line.split()[1]
            if target.startswith(str(root)):
                mounts.append(target)
    for target in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def _busybox_tar() -> bytes:
    """A root filesystem: bin/busybox, bin/<applet> symlinks, /tmp, /etc/passwd."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("bin", "tmp", "etc"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if name == "tmp" else 0o755
            info.mtime = now
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        applets = subprocess.run(
            [BUSYBOX, "--list"], capture_output=True, text=True, check=True
        ).stdout.split()
        for applet in applets:
            if applet == "busybox" or "/" in applet:
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            info.mtime = now
            tar.addfile(info)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        info.mtime = now
        tar.addfile(info, io.BytesIO(passwd))
    return buf.getvalue()
