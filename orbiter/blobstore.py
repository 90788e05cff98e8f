"""Durable, fenced storage of one opaque document (the registry, Satellite's state).

One interface, two stores: a file under the work dir for the single-node
default (`FileBlobStore`), and ZooKeeper for several masters
(`orbiter.zkstore.ZkBlobStore`). Every write is conditional on the version
last read or written: a writer that lost the lead gets `RegistryConflict`
instead of overwriting its successor.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from orbiter.errors import RegistryConflict


class BlobStore(Protocol):
    def load(self) -> bytes | None:
        """The stored document, or None if nothing was ever stored; remembers its version."""
        ...

    def store(self, data: bytes) -> None:
        """Replace the document durably; raise RegistryConflict if another writer wrote since."""
        ...


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new file, whole.

    A temp file beside it, fsynced, renamed over it, then the directory fsynced
    (the rename itself is durable only then).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FileBlobStore:
    """The document in one file: a header line with a version counter, then the bytes.

    Written to a temp file, fsynced and renamed over the old one (then the directory
    is fsynced), so a reader sees the old document or the new one, never half of
    each. The check of the version and the rename happen under an flock, so two
    processes on one host cannot both pass the check. Other hosts need ZkBlobStore.
    """

    HEADER = b"orbiter-blob v1 version="

    def __init__(self, path: Path) -> None:
        self.path = path
        self._version: int | None = None

    def load(self) -> bytes | None:
        with self._locked():
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                self._version = 0
                return None
        header, _, data = raw.partition(b"\n")
        self._version = self._parse(header)
        return data

    def store(self, data: bytes) -> None:
        with self._locked():
            on_disk = self._on_disk_version()
            if self._version is None:
                self._version = on_disk
            if on_disk != self._version:
                raise RegistryConflict(
                    f"{self.path} was written by another writer (version {on_disk}, "
                    f"expected {self._version}); this one must stop writing it"
                )
            version = on_disk + 1
            write_atomically(self.path, self.HEADER + str(version).encode() + b"\n" + data)
            self._version = version

    def _parse(self, header: bytes) -> int:
        if not header.startswith(self.HEADER) or not header[len(self.HEADER) :].isdigit():
            raise RegistryConflict(
                f"{self.path} is not an Orbiter document (its first line is not "
                f"'{self.HEADER.decode()}N'); move it away to start empty"
            )
        return int(header[len(self.HEADER) :])

    def _on_disk_version(self) -> int:
        try:
            with self.path.open("rb") as f:
                header = f.readline().rstrip(b"\n")
        except FileNotFoundError:
            return 0
        return self._parse(header)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(f".{self.path.name}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
