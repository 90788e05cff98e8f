"""Fenced documents of any size in ZooKeeper: the registry when several masters share it.

A znode holds at most about 1 MB (jute.maxbuffer), and so does one multi-op
transaction, so a large document cannot be written atomically in one request.
Instead the manifest znode (`path`) says which generation of chunks is the
document, with its size and sha256:

    path                 {"writer", "generation", "size", "sha256", "chunks"} + inline bytes
    path/chunks/<N>-<i>  chunk i of generation N (only when the document is larger than a chunk)

The chunks are written first, then the manifest is set conditionally on its
znode version: that one write is both the commit and the fence (a master that
lost the lead finds the version changed and gets RegistryConflict). A document
that fits in one chunk lives in the manifest itself, so the common small write
is a single ZooKeeper request. Chunks of older generations are collected after
a commit; a writer never reuses a generation number that has chunks, and every
writer that can still commit picks a generation above the last commit's, so
collection never removes chunks that a commit could point to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    KazooException,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KazooState

from orbiter.errors import Code, OrbiterError, RegistryConflict
from orbiter.master.registry import REGISTRY_FORMAT, check_registry_format
from orbiter.proto import master_pb2
from orbiter.zk import ZkConnectionLost

__all__ = [
    "REGISTRY_FORMAT",
    "ZkBlobStore",
    "ZkDocumentCorrupt",
    "ZkRegistryStore",
]

CHUNKS = "chunks"
DEFAULT_CHUNK_SIZE = 512 * 1024
# A request that has not been answered in this long is reported as a connection
# problem (kazoo's own calls would wait forever).
OPERATION_TIMEOUT = 10.0
# Manifest znode version meaning "there is no manifest znode".
ABSENT = -1


class ZkDocumentCorrupt(OrbiterError):
    """What ZooKeeper holds at a path is not a whole document; nothing was loaded."""

    code = Code.FAILED_PRECONDITION


@dataclass(frozen=True)
class Manifest:
    writer: str
    generation: int
    size: int
    sha256: str
    chunks: int  # 0: the document is inline, after the header line

    def encode(self, inline: bytes = b"") -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode() + b"\n" + inline

    @classmethod
    def decode(cls, path: str, data: bytes) -> tuple[Manifest, bytes]:
        header, _, inline = data.partition(b"\n")
        try:
            fields: dict[str, Any] = json.loads(header)
            manifest = cls(**{name: fields[name] for name in cls.__dataclass_fields__})
        except (ValueError, TypeError, KeyError) as e:
            raise ZkDocumentCorrupt(
                f"znode {path} does not hold an Orbiter document manifest ({e}: "
                f"{header[:80]!r}); restore it from a backup of ZooKeeper or remove it"
            ) from None
        return manifest, inline


@dataclass(frozen=True)
class _Read:
    """The manifest znode as last seen: its version and what it holds (None: nothing yet)."""

    version: int
    manifest: Manifest | None
    inline: bytes = b""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _chunk_generation(name: str) -> int | None:
    generation, dash, index = name.partition("-")
    if dash and generation.isdigit() and index.isdigit():
        return int(generation)
    return None


class ZkBlobStore:
    """A BlobStore in ZooKeeper; each write is conditional on the manifest version last seen.

    One store serves one ZooKeeper session (one term as leader): once the client's
    session is lost, even if kazoo has opened a new one, every call raises
    RegistryConflict. A master elected again makes a new store and loads.
    """

    def __init__(
        self, client: KazooClient, path: str, writer_id: str, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> None:
        self.client = client
        self.path = path
        self.writer_id = writer_id
        self.chunk_size = chunk_size
        self._version: int | None = None  # None: never read or written
        self._base: Manifest | None = None  # the document the next write replaces
        # Generations whose manifest write got no answer: it may have landed.
        self._unconfirmed: set[int] = set()
        # The ZooKeeper session this store works in. kazoo opens a new session by
        # itself after one expires; leadership went with the old one, so must we.
        self._session: int | None = None

    @property
    def chunks_path(self) -> str:
        return f"{self.path}/{CHUNKS}"

    def _chunk(self, generation: int, index: int) -> str:
        return f"{self.chunks_path}/{generation}-{index}"

    # ------------------------------------------------------------------ reading

    def load(self) -> bytes | None:
        with self._errors("reading"):
            for _ in range(3):
                read = self._read()
                data = self._assemble(read)
                if data is not None or read.manifest is None:
                    self._version, self._base = read.version, read.manifest
                    return data
            # Each attempt found the document replaced while its chunks were read.
            raise ZkConnectionLost(f"{self.path} kept changing while it was read; try again")

    def _read(self) -> _Read:
        try:
            data, stat = self._wait(self.client.get_async(self.path))
        except NoNodeError:
            return _Read(ABSENT, None)
        if not data:
            return _Read(stat.version, None)
        manifest, inline = Manifest.decode(self.path, data)
        return _Read(stat.version, manifest, inline)

    def _assemble(self, read: _Read) -> bytes | None:
        """The document `read` describes; None if it was replaced meanwhile (read again)."""
        m = read.manifest
        if m is None:
            return None
        if m.chunks == 0:
            data = read.inline
        else:
            pending = [self.client.get_async(self._chunk(m.generation, i)) for i in range(m.chunks)]
            parts: list[bytes] = []
            for i, result in enumerate(pending):
                try:
                    parts.append(self._wait(result)[0])
                except NoNodeError:
                    if self._replaced(read):
                        return None
                    missing = f"chunk {self._chunk(m.generation, i)} is missing"
                    raise self._corrupt(m, missing) from None
            data = b"".join(parts)
        if len(data) != m.size or _digest(data) != m.sha256:
            if self._replaced(read):
                return None
            raise self._corrupt(
                m, f"its {len(data)} bytes do not match the manifest's size {m.size} and sha256"
            )
        return data

    def _replaced(self, read: _Read) -> bool:
        return self._read().version != read.version

    def _corrupt(self, m: Manifest, what: str) -> ZkDocumentCorrupt:
        return ZkDocumentCorrupt(
            f"document {self.path} (generation {m.generation}, written by {m.writer}) is "
            f"damaged: {what}; restore it from a backup of ZooKeeper or remove {self.path}"
        )

    # ------------------------------------------------------------------ writing

    def store(self, data: bytes) -> None:
        with self._errors("writing"):
            if self._version is None:
                read = self._read()
                self._version, self._base = read.version, read.manifest
            existing = self._list_chunks()
            generation = 1 + max(
                [self._base.generation if self._base else 0, *self._unconfirmed]
                + [g for g in map(_chunk_generation, existing) if g is not None]
            )
            chunks = 0 if len(data) <= self.chunk_size else math.ceil(len(data) / self.chunk_size)
            if chunks:
                generation = self._write_chunks(data, chunks, generation)
            manifest = Manifest(self.writer_id, generation, len(data), _digest(data), chunks)
            try:
                self._commit(manifest.encode(b"" if chunks else data), generation)
            except RegistryConflict:
                self._delete_quietly([self._chunk(generation, i) for i in range(chunks)])
                raise
            self._base = manifest
            self._collect(existing, generation)

    def _list_chunks(self) -> list[str]:
        try:
            return self._wait(self.client.get_children_async(self.chunks_path))
        except NoNodeError:
            return []

    def _write_chunks(self, data: bytes, chunks: int, generation: int) -> int:
        """Create the chunk znodes of a fresh generation; return the generation used."""
        self._wait(self.client.ensure_path_async(self.chunks_path))
        for _ in range(3):
            paths = [self._chunk(generation, i) for i in range(chunks)]
            size = self.chunk_size
            pending = [
                self.client.create_async(p, data[i * size : (i + 1) * size])
                for i, p in enumerate(paths)
            ]
            collided = False
            written = []
            for p, result in zip(paths, pending, strict=True):
                try:
                    self._wait(result)
                    written.append(p)
                except NodeExistsError:
                    collided = True
            if not collided:
                return generation
            # Someone else is writing this generation: leave it to them, take the next free one.
            self._delete_quietly(written)
            taken = [g for g in map(_chunk_generation, self._list_chunks()) if g is not None]
            generation = max([generation, *taken]) + 1
        raise RegistryConflict(
            f"another master is writing {self.chunks_path} at the same time as this one; "
            "this master stops leading"
        )

    def _commit(self, manifest: bytes, generation: int) -> None:
        """Write the manifest if it is still the version last seen: the commit and the fence."""
        for _ in range(3):
            assert self._version is not None
            try:
                if self._version == ABSENT:
                    self._wait(self.client.create_async(self.path, manifest, makepath=True))
                    version = 0
                else:
                    stat = self._wait(self.client.set_async(self.path, manifest, self._version))
                    version = stat.version
            except (BadVersionError, NodeExistsError, NoNodeError):
                self._catch_up(self._read())
                continue
            except (ConnectionLoss, OperationTimeoutError, KazooTimeoutError):
                self._unconfirmed.add(generation)
                raise
            self._version = version
            self._unconfirmed.clear()
            return
        raise ZkConnectionLost(f"{self.path} kept changing while it was written; try again")

    def _catch_up(self, current: _Read) -> None:
        """The manifest is not the version last seen: adopt it if the change was ours, else fail.

        Two changes are ours: a write whose answer was lost in a connection drop
        but that did land, and the empty manifest znode that writing the first
        chunks creates (no document in it, so nothing is overwritten).
        """
        m = current.manifest
        ours = m is not None and m.writer == self.writer_id and m.generation in self._unconfirmed
        if ours or (m is None and self._base is None):
            self._version, self._base = current.version, m
            return
        if m is None:
            raise RegistryConflict(
                f"{self.path} was removed or emptied since this master last wrote it "
                "(by an operator or another master); this master stops leading"
            )
        raise RegistryConflict(
            f"{self.path} was written by another master (writer {m.writer}, generation "
            f"{m.generation}); this master stops leading"
        )

    def _collect(self, existing: list[str], committed: int) -> None:
        """Remove chunks of generations before the committed one: replaced or never committed."""
        stale = [
            f"{self.chunks_path}/{name}"
            for name in existing
            if (g := _chunk_generation(name)) is not None and g < committed
        ]
        self._delete_quietly(stale)

    def _delete_quietly(self, paths: list[str]) -> None:
        """Delete what can be deleted; a leftover chunk costs space, not correctness."""
        pending = [self.client.delete_async(p) for p in paths]
        for result in pending:
            with contextlib.suppress(KazooException, KazooTimeoutError):
                self._wait(result)

    # ------------------------------------------------------------------ ZooKeeper calls

    def _wait(self, result: Any) -> Any:
        return result.get(timeout=OPERATION_TIMEOUT)

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Connection trouble is an OSError (to retry); a lost session is RegistryConflict."""
        session = self.client.client_id[0] if self.client.client_id else None
        if session is not None and self._session not in (None, session):
            raise self._session_lost(doing, "a new session replaced it")
        if self.client.state == KazooState.SUSPENDED:
            raise ZkConnectionLost(
                f"not connected to ZooKeeper while {doing} {self.path}; it reconnects on its own, "
                "retry"
            )
        try:
            yield
        except SessionExpiredError as e:  # also kazoo's ConnectionClosedError: a stopped client
            raise self._session_lost(doing, type(e).__name__) from None
        except (ConnectionLoss, OperationTimeoutError, KazooTimeoutError) as e:
            raise ZkConnectionLost(
                f"lost the connection to ZooKeeper while {doing} {self.path} "
                f"({type(e).__name__}); retry"
            ) from None
        if self._session is None:
            self._session = session

    def _session_lost(self, doing: str, how: str) -> RegistryConflict:
        return RegistryConflict(
            f"the ZooKeeper session was lost while {doing} {self.path} ({how}); "
            "this master stops leading"
        )


class ZkRegistryStore:
    """The master's registry (a RegistryStore) as a ZkBlobStore at `<root>/registry`."""

    def __init__(self, client: KazooClient, root: str, writer_id: str) -> None:
        self.path = f"{root}/registry"
        self.blobs = ZkBlobStore(client, self.path, writer_id)

    def load(self) -> master_pb2.Registry:
        registry = master_pb2.Registry()
        data = self.blobs.load()
        if data is None:
            return registry
        try:
            registry.ParseFromString(data)
        except Exception as e:  # protobuf raises DecodeError, a plain Exception subclass
            raise ZkDocumentCorrupt(
                f"registry {self.path} is not a registry ({e}); restore it from a backup "
                f"of ZooKeeper or remove {self.path} to start empty"
            ) from None
        check_registry_format(registry, self.path)
        return registry

    def store(self, registry: master_pb2.Registry) -> None:
        registry.format = REGISTRY_FORMAT
        self.blobs.store(registry.SerializeToString())
