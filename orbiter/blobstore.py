"""Durable, fenced storage of one opaque document (the registry, Satellite's state).

One interface, two stores: a file under the work dir for the single-node
default (`FileBlobStore`), and ZooKeeper for several masters
(`orbiter.zkstore.ZkBlobStore`). Every write is conditional on the version
last read or written: a writer that lost the lead gets `RegistryConflict`
instead of overwriting its successor.
"""

from __future__ import annotations

from typing import Protocol


class BlobStore(Protocol):
    def load(self) -> bytes | None:
        """The stored document, or None if nothing was ever stored; remembers its version."""
        ...

    def store(self, data: bytes) -> None:
        """Replace the document durably; raise RegistryConflict if another writer wrote since."""
        ...
