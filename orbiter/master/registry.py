"""Where the master keeps what must survive a restart or failover.

One interface, stores behind it: `FileRegistryStore` for the single-node
default (a file under the work dir, replaced atomically). Writes are
conditional on the version last read or written, so a master that lost the
lead cannot overwrite its successor's registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from orbiter.blobstore import write_atomically
from orbiter.errors import Code, OrbiterError, RegistryConflict
from orbiter.proto import master_pb2

# The registry's layout (`Registry.format`); bumped when an older master would misread it.
REGISTRY_FORMAT = 1


class RegistryTooNew(OrbiterError):
    """The registry was written by a newer Orbiter; reading it could lose what it added."""

    code = Code.FAILED_PRECONDITION


def check_registry_format(registry: master_pb2.Registry, where: object) -> None:
    """Refuse a registry newer than this master writes (0, from before `format`, is fine)."""
    if registry.format > REGISTRY_FORMAT:
        raise RegistryTooNew(
            f"registry {where} was written by a newer Orbiter (format {registry.format}; "
            f"this one reads {REGISTRY_FORMAT}): upgrade this master"
        )


class RegistryStore(Protocol):
    def load(self) -> master_pb2.Registry: ...

    def store(self, registry: master_pb2.Registry) -> None:
        """Persist `registry` durably; raise RegistryConflict if someone else wrote in between."""
        ...


class FileRegistryStore:
    """The registry as one protobuf file, written to a temp file, fsynced and renamed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._version: int | None = None

    def load(self) -> master_pb2.Registry:
        registry = master_pb2.Registry()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self._version = 0
            return registry
        try:
            registry.ParseFromString(data)
        except Exception as e:  # protobuf raises DecodeError, a plain Exception subclass
            raise RegistryConflict(
                f"registry file {self.path} is corrupt ({e}); move it away to start empty"
            ) from None
        check_registry_format(registry, self.path)
        self._version = registry.version
        return registry

    def _on_disk_version(self) -> int:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        current = master_pb2.Registry()
        current.ParseFromString(data)
        return current.version

    def store(self, registry: master_pb2.Registry) -> None:
        if self._version is None:
            self._version = self._on_disk_version()
        on_disk = self._on_disk_version()
        if on_disk != self._version:
            raise RegistryConflict(
                f"registry {self.path} was written by another master (version {on_disk}, "
                f"expected {self._version}); this master stops leading"
            )
        registry.format = REGISTRY_FORMAT
        write_atomically(self.path, registry.SerializeToString())
        self._version = registry.version
