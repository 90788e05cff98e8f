"""Prometheus remote write: ship every scraped sample to a remote-write receiver.

A `RemoteWriter` is one `remote_write` entry of the configuration. It is a
`SampleSink` of the scraper: `offer` only appends the scrape's samples to a
bounded in-memory queue (its capacity counts samples; what does not fit is
counted as dropped, the scrape loop never waits). A sender task takes up to
`max_samples_per_send` samples (or what arrived within `batch_send_deadline`),
applies `write_relabel_configs`, encodes a remote-write 1.0 `WriteRequest`
(orbiter/proto/remote_write.proto), snappy block-compresses it and POSTs it.

Connection errors, timeouts, 5xx, 408 and (unless `retry_on_http_429: false`)
429 are retried with exponential backoff (honouring a Retry-After in seconds on
429 and 503), for ever: the batch being retried stays in the queue's bound and
the queue keeps filling behind it, so a receiver that is down loses nothing
within the queue's bound. Any other 4xx drops the batch and counts it: the
receiver refused what we sent, sending it again cannot help and would hold up
everything behind it. One sender, one batch at a time, so each series' samples
arrive in the order they were scraped (within a batch they are sorted by time
even if scrapes were offered out of order; a sample older than one already sent
is the receiver's to refuse).

Differences from Prometheus, on purpose: there is no WAL (a restart loses what
was queued), no sharding (one sender per remote: encoding and compression cost
~0.1 s of CPU per 100k samples, and one sender put 130k-230k samples/s into a
Prometheus on the same two busy cores; bench/remote_write.py), `capacity` is the
whole queue's and not a shard's, it counts samples before write relabeling
(relabeling runs on the sender, so `offer` stays O(1) per scrape), and
`retry_on_http_429` defaults to true. Only the relabel actions that filter
(`keep`, `drop`, `labelkeep`, `labeldrop`) are supported.

Metrics, per remote (label `remote`: the entry's `name`, or its URL without
any user:password):
`orbiter_remote_write_samples_sent_total`, `..._samples_dropped_total{reason}`
(`queue_full`, `rejected`: a 4xx, `write_relabel`, `shutdown`: still queued
when `stop` gave up, `error`: a bug in the sender, logged),
`..._samples_pending` (queued or being sent),
`..._failures_total` (send attempts that failed, each retried or dropped),
`..._sent_batch_duration_seconds` and `..._highest_sent_timestamp_seconds`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import random
import re
import struct
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import cramjam
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from orbiter import __version__
from orbiter.alerts.notify import Outcome, backoff_delay, classify, retry_after
from orbiter.httpconfig import TLSConfig, ssl_context
from orbiter.metrics_registry import PerRegistry
from orbiter.satellite.series import Labels
from orbiter.yamlreader import YamlReader

log = logging.getLogger("orbiter.satellite.remote_write")

USER_AGENT = f"Orbiter/{__version__}"
PROTOCOL_VERSION = "0.1.0"

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Headers we set ourselves or that would break the request; Prometheus refuses these too.
_RESERVED_HEADERS = {
    "authorization",
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "transfer-encoding",
    "x-prometheus-remote-write-version",
}


# ---------------------------------------------------------------------- configuration


class RelabelAction(Enum):
    KEEP = "keep"
    DROP = "drop"
    LABELKEEP = "labelkeep"
    LABELDROP = "labeldrop"


@dataclass(frozen=True)
class RelabelConfig:
    """One `write_relabel_configs` entry; `regex` is fully anchored, as in Prometheus."""

    action: RelabelAction
    regex: re.Pattern[str]
    source_labels: tuple[str, ...] = ()
    separator: str = ";"


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str = ""
    password_file: str = ""
    """Read at every request, so a rotated password is used without a restart."""


@dataclass(frozen=True)
class Authorization:
    """`Authorization: <type> <credentials>`; `bearer_token: x` is type Bearer."""

    type: str = "Bearer"
    credentials: str = ""
    credentials_file: str = ""


@dataclass(frozen=True)
class QueueConfig:
    capacity: int = 100_000
    """Samples queued or being sent, for the whole remote (~100 bytes each)."""
    max_samples_per_send: int = 2_000
    batch_send_deadline: float = 5.0
    min_backoff: float = 0.03
    max_backoff: float = 5.0
    retry_on_http_429: bool = True


@dataclass(frozen=True)
class RemoteWriteConfig:
    url: str
    name: str = ""
    """The `remote` label of the metrics; the URL when not given."""
    remote_timeout: float = 30.0
    headers: tuple[tuple[str, str], ...] = ()
    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    tls_config: TLSConfig = field(default_factory=TLSConfig)
    write_relabel_configs: tuple[RelabelConfig, ...] = ()
    queue_config: QueueConfig = field(default_factory=QueueConfig)

    @property
    def remote(self) -> str:
        if self.name:
            return self.name
        parts = urlsplit(self.url)
        if parts.username is None and parts.password is None:
            return self.url
        host = parts.netloc.rpartition("@")[2]
        return parts._replace(netloc=host).geturl()  # credentials are no metric label


_KEYS = {
    "url",
    "name",
    "remote_timeout",
    "headers",
    "basic_auth",
    "authorization",
    "bearer_token",
    "tls_config",
    "write_relabel_configs",
    "queue_config",
}


def parse_remote_write(r: YamlReader, node: yaml.Node, base: Path) -> list[RemoteWriteConfig]:
    """The `remote_write:` list, in Prometheus's syntax (the subset above).

    Relative file names (password_file, ca_file...) are relative to `base`, the
    configuration file's directory; every file named must exist.
    """
    if not isinstance(node, yaml.SequenceNode):
        raise r.fail(node, "remote_write must be a list of remote write configurations")
    out: list[RemoteWriteConfig] = []
    seen: dict[str, yaml.Node] = {}
    for i, item in enumerate(node.value):
        config = _remote(r, item, f"remote_write[{i}]", base)
        if config.remote in seen:
            raise r.fail(
                item,
                f"remote_write[{i}]: a second remote named {config.remote!r} "
                f"(line {seen[config.remote].start_mark.line + 1}); give each a unique name",
            )
        seen[config.remote] = item
        out.append(config)
    return out


def _remote(r: YamlReader, node: yaml.Node, where: str, base: Path) -> RemoteWriteConfig:
    m = r.mapping(node, where, _KEYS)
    if "url" not in m:
        raise r.fail(node, f"{where}.url is required")
    url = r.string(m["url"], f"{where}.url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise r.fail(m["url"], f"{where}.url: {url!r} is not an http(s) URL with a host")
    kwargs: dict[str, Any] = {"url": url}
    if "name" in m:
        kwargs["name"] = r.string(m["name"], f"{where}.name")
    if "remote_timeout" in m:
        kwargs["remote_timeout"] = r.duration(m["remote_timeout"], f"{where}.remote_timeout")
    if "headers" in m:
        kwargs["headers"] = _headers(r, m["headers"], f"{where}.headers")
    auths = [k for k in ("basic_auth", "authorization", "bearer_token") if k in m]
    if len(auths) > 1:
        last = max(auths, key=lambda k: m[k].start_mark.line)
        raise r.fail(m[last], f"{where}: at most one of {', '.join(auths)} may be given")
    if "basic_auth" in m:
        kwargs["basic_auth"] = _basic_auth(r, m["basic_auth"], f"{where}.basic_auth", base)
    if "authorization" in m:
        kwargs["authorization"] = _authorization(
            r, m["authorization"], f"{where}.authorization", base
        )
    if "bearer_token" in m:
        token = r.string(m["bearer_token"], f"{where}.bearer_token")
        kwargs["authorization"] = Authorization("Bearer", token)
    if "tls_config" in m:
        kwargs["tls_config"] = _tls(r, m["tls_config"], f"{where}.tls_config", base)
    if "write_relabel_configs" in m:
        n = m["write_relabel_configs"]
        if not isinstance(n, yaml.SequenceNode):
            raise r.fail(n, f"{where}.write_relabel_configs must be a list of relabel configs")
        kwargs["write_relabel_configs"] = tuple(
            _relabel(r, c, f"{where}.write_relabel_configs[{j}]") for j, c in enumerate(n.value)
        )
    if "queue_config" in m:
        kwargs["queue_config"] = _queue(r, m["queue_config"], f"{where}.queue_config")
    return RemoteWriteConfig(**kwargs)


def _headers(r: YamlReader, node: yaml.Node, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(node, yaml.MappingNode):
        raise r.fail(node, f"{where} must be a mapping of header name: value")
    out = []
    for k, v in node.value:
        name = r.string(k, f"{where} name")
        if name.lower() in _RESERVED_HEADERS:
            raise r.fail(k, f"{where}: {name} is set by Orbiter itself and cannot be overridden")
        out.append((name, r.string(v, f"{where}.{name}")))
    return tuple(out)


def _file(r: YamlReader, node: yaml.Node, where: str, base: Path) -> str:
    path = Path(r.string(node, where))
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise r.fail(node, f"{where}: {path} does not exist or is not a file")
    return str(path)


def _basic_auth(r: YamlReader, node: yaml.Node, where: str, base: Path) -> BasicAuth:
    m = r.mapping(node, where, {"username", "password", "password_file"})
    if "username" not in m:
        raise r.fail(node, f"{where}.username is required")
    if "password" in m and "password_file" in m:
        raise r.fail(m["password_file"], f"{where}: give password or password_file, not both")
    return BasicAuth(
        username=r.string(m["username"], f"{where}.username"),
        password=r.string(m["password"], f"{where}.password") if "password" in m else "",
        password_file=(
            _file(r, m["password_file"], f"{where}.password_file", base)
            if "password_file" in m
            else ""
        ),
    )


def _authorization(r: YamlReader, node: yaml.Node, where: str, base: Path) -> Authorization:
    m = r.mapping(node, where, {"type", "credentials", "credentials_file"})
    kind = r.string(m["type"], f"{where}.type") if "type" in m else "Bearer"
    if kind.lower() == "basic":
        raise r.fail(m["type"], f"{where}.type cannot be Basic: use basic_auth instead")
    if "credentials" in m and "credentials_file" in m:
        raise r.fail(
            m["credentials_file"], f"{where}: give credentials or credentials_file, not both"
        )
    if "credentials" not in m and "credentials_file" not in m:
        raise r.fail(node, f"{where}: credentials or credentials_file is required")
    return Authorization(
        type=kind,
        credentials=(
            r.string(m["credentials"], f"{where}.credentials") if "credentials" in m else ""
        ),
        credentials_file=(
            _file(r, m["credentials_file"], f"{where}.credentials_file", base)
            if "credentials_file" in m
            else ""
        ),
    )


def _tls(r: YamlReader, node: yaml.Node, where: str, base: Path) -> TLSConfig:
    keys = {"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"}
    m = r.mapping(node, where, keys)
    if ("cert_file" in m) != ("key_file" in m):
        given = "cert_file" if "cert_file" in m else "key_file"
        raise r.fail(m[given], f"{where}: cert_file and key_file must be given together")
    files = {
        k: _file(r, m[k], f"{where}.{k}", base)
        for k in ("ca_file", "cert_file", "key_file")
        if k in m
    }
    return TLSConfig(
        **files,
        server_name=r.string(m["server_name"], f"{where}.server_name")
        if "server_name" in m
        else "",
        insecure_skip_verify=(
            r.boolean(m["insecure_skip_verify"], f"{where}.insecure_skip_verify")
            if "insecure_skip_verify" in m
            else False
        ),
    )


def _relabel(r: YamlReader, node: yaml.Node, where: str) -> RelabelConfig:
    m = r.mapping(node, where, {"action", "source_labels", "separator", "regex"})
    supported = ", ".join(a.value for a in RelabelAction)
    # Prometheus's default action is replace, which Orbiter's remote write does not do.
    text = r.string(m["action"], f"{where}.action").lower() if "action" in m else "replace"
    try:
        action = RelabelAction(text)
    except ValueError:
        raise r.fail(
            m.get("action", node), f"{where}.action {text!r} is not supported; use {supported}"
        ) from None
    regex_text = str(r.scalar(m["regex"], f"{where}.regex")) if "regex" in m else "(.*)"
    try:
        regex = re.compile(f"(?:{regex_text})")
    except re.error as e:
        raise r.fail(m["regex"], f"{where}.regex {regex_text!r} is invalid: {e}") from None
    if action in (RelabelAction.LABELKEEP, RelabelAction.LABELDROP):
        for extra in ("source_labels", "separator"):
            if extra in m:
                raise r.fail(m[extra], f"{where}: {action.value} takes only regex, not {extra}")
        return RelabelConfig(action, regex)
    source: tuple[str, ...] = ()
    if "source_labels" in m:
        source = tuple(r.strings(m["source_labels"], f"{where}.source_labels"))
        for name, n in zip(source, m["source_labels"].value, strict=True):
            if not _LABEL_NAME.fullmatch(name):
                raise r.fail(n, f"{where}.source_labels: {name!r} is not a valid label name")
    separator = ";"
    if "separator" in m:
        value = r.scalar(m["separator"], f"{where}.separator")
        if not isinstance(value, str):
            raise r.fail(m["separator"], f"{where}.separator must be a string, got {value!r}")
        separator = value
    return RelabelConfig(action, regex, source, separator)


def _queue(r: YamlReader, node: yaml.Node, where: str) -> QueueConfig:
    keys = {
        "capacity",
        "max_samples_per_send",
        "batch_send_deadline",
        "min_backoff",
        "max_backoff",
        "retry_on_http_429",
    }
    m = r.mapping(node, where, keys)
    q = QueueConfig()
    values: dict[str, Any] = {}
    for k in ("capacity", "max_samples_per_send"):
        if k in m:
            values[k] = r.whole(m[k], f"{where}.{k}")
            if values[k] == 0:
                raise r.fail(m[k], f"{where}.{k} must be at least 1")
    for k in ("batch_send_deadline", "min_backoff", "max_backoff"):
        if k in m:
            values[k] = r.duration(m[k], f"{where}.{k}")
    if "retry_on_http_429" in m:
        values["retry_on_http_429"] = r.boolean(
            m["retry_on_http_429"], f"{where}.retry_on_http_429"
        )
    lo = values.get("min_backoff", q.min_backoff)
    hi = values.get("max_backoff", q.max_backoff)
    if lo > hi:
        raise r.fail(
            m.get("min_backoff") or m["max_backoff"],
            f"{where}.min_backoff ({lo}s) must not exceed max_backoff ({hi}s)",
        )
    return QueueConfig(**values)


# ---------------------------------------------------------------------- pure: relabel, encode


def relabel(labels: Labels, configs: Sequence[RelabelConfig]) -> Labels | None:
    """`labels` after `configs` in order, or None when a keep/drop drops the series."""
    for c in configs:
        if c.action is RelabelAction.KEEP or c.action is RelabelAction.DROP:
            values = dict(labels)
            joined = c.separator.join(values.get(n, "") for n in c.source_labels)
            if (c.regex.fullmatch(joined) is None) == (c.action is RelabelAction.KEEP):
                return None
        elif c.action is RelabelAction.LABELDROP:
            labels = tuple(kv for kv in labels if c.regex.fullmatch(kv[0]) is None)
        else:
            labels = tuple(kv for kv in labels if c.regex.fullmatch(kv[0]) is not None)
    return labels or None


def _varint(n: int) -> bytes:
    n &= 0xFFFFFFFFFFFFFFFF  # a negative int64 is its two's complement, ten bytes
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field: `tag` is (number << 3) | 2."""
    return bytes((tag,)) + _varint(len(payload)) + payload


def encode_label(name: str, value: str) -> bytes:
    """One Label as a TimeSeries' `labels` field (1)."""
    return _field(0x0A, _field(0x0A, name.encode()) + _field(0x12, value.encode()))


def encode_labels(labels: Labels) -> bytes:
    """A TimeSeries' `labels` fields, ready to prefix its samples; empty values left out."""
    return b"".join(encode_label(k, v) for k, v in labels if v)


_DOUBLE = struct.Struct("<d").pack


def _sample_parts(t_ms: int) -> tuple[bytes, bytes]:
    """What comes before and after a Sample's 8 value bytes in a TimeSeries' `samples` (2)."""
    after = b"\x10" + _varint(t_ms)
    return b"\x12" + bytes((9 + len(after),)) + b"\x09", after


def encode_write_request(series: Iterable[tuple[Labels, Sequence[tuple[int, float]]]]) -> bytes:
    """A WriteRequest of (labels, [(t_ms, value), ...]) series, samples in the order given.

    The hot path (`RemoteWriter`) builds the same bytes with cached label prefixes;
    this is the plain form, for tests and for anyone sending a few series.
    """
    parts = []
    for labels, samples in series:
        body = [encode_labels(labels)]
        for t_ms, value in samples:
            before, after = _sample_parts(t_ms)
            body.append(before + _DOUBLE(value) + after)
        parts.append(_field(0x0A, b"".join(body)))
    return b"".join(parts)


def compress(body: bytes) -> bytes:
    """Snappy's block format (not the framed one), as remote write requires."""
    return bytes(cramjam.snappy.compress_raw(body))


Chunk = tuple[Sequence[tuple[Labels, float]], int]
"""Samples of one scrape, all at the same time in ms."""


@dataclass
class Encoded:
    body: bytes
    samples: int
    """Samples in `body` (the batch's, less those write_relabel_configs dropped)."""
    highest_ms: int


_DROPPED = b""


class BatchEncoder:
    """Relabels and encodes batches, remembering each series' encoded labels.

    A series' relabel result and label bytes cost one dict lookup after its
    first batch; `max_series` bounds that memory (it is emptied when full).
    """

    def __init__(self, configs: Sequence[RelabelConfig], max_series: int = 1 << 20) -> None:
        self.configs = tuple(configs)
        self.max_series = max_series
        self._prefix: dict[Labels, bytes] = {}
        self._pairs: dict[tuple[str, str], bytes] = {}

    def _encode_series(self, labels: Labels) -> bytes:
        if len(self._prefix) >= self.max_series:
            self._prefix.clear()
            self._pairs.clear()
        kept = relabel(labels, self.configs) if self.configs else labels
        if kept is None:
            prefix = _DROPPED
        else:
            # Series share most pairs (job, __name__, instance): each is encoded once.
            pairs = self._pairs
            parts = []
            for kv in kept:
                if kv[1]:
                    b = pairs.get(kv)
                    if b is None:
                        b = pairs[kv] = encode_label(*kv)
                    parts.append(b)
            prefix = b"".join(parts)
        self._prefix[labels] = prefix
        return prefix

    def encode(self, chunks: Sequence[Chunk]) -> Encoded:
        """One WriteRequest of `chunks` (oldest first), each series' samples in time order.

        Series whose labels become the same after relabeling are one series.
        """
        cache = self._prefix
        groups: dict[bytes, list[bytes]] = {}
        timed: dict[bytes, list[tuple[int, bytes]]] | None = None
        ordered = all(a[1] <= b[1] for a, b in itertools.pairwise(chunks))
        kept = 0
        highest = -(1 << 63)
        for samples, t_ms in chunks:
            before, after = _sample_parts(t_ms)
            before_kept = kept
            for labels, value in samples:
                prefix = cache.get(labels)
                if prefix is None:
                    prefix = self._encode_series(labels)
                if not prefix:
                    continue
                kept += 1
                sample = before + _DOUBLE(value) + after
                if ordered:
                    group = groups.get(prefix)
                    if group is None:
                        groups[prefix] = [sample]
                    else:
                        group.append(sample)
                else:
                    timed = timed if timed is not None else {}
                    timed.setdefault(prefix, []).append((t_ms, sample))
            if kept > before_kept and t_ms > highest:
                highest = t_ms
        if timed is not None:  # scrapes offered out of time order: sort each series (stable)
            groups = {p: [s for _, s in sorted(ts, key=lambda x: x[0])] for p, ts in timed.items()}
        body = b"".join(_field(0x0A, prefix + b"".join(s)) for prefix, s in groups.items())
        return Encoded(body, kept, highest)


# ---------------------------------------------------------------------- metrics


class DropReason(Enum):
    QUEUE_FULL = "queue_full"
    REJECTED = "rejected"
    WRITE_RELABEL = "write_relabel"
    SHUTDOWN = "shutdown"
    ERROR = "error"


class RemoteWriteMetrics(PerRegistry):
    """The remote-write metrics of one registry, shared by every writer that uses it."""


    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "orbiter_remote_write_samples_sent",
            "Samples the remote-write receiver accepted (answered 2xx)",
            ["remote"],
            registry=registry,
        )
        self.dropped = Counter(
            "orbiter_remote_write_samples_dropped",
            "Samples never sent: queue_full (offered to a full queue), rejected (a 4xx), "
            "write_relabel (dropped by write_relabel_configs), shutdown (queued at stop), "
            "error (a bug in the sender)",
            ["remote", "reason"],
            registry=registry,
        )
        self.pending = Gauge(
            "orbiter_remote_write_samples_pending",
            "Samples queued or being sent",
            ["remote"],
            registry=registry,
        )
        self.failures = Counter(
            "orbiter_remote_write_failures",
            "Send attempts that failed (connection error, timeout, HTTP error); "
            "each was retried or its samples dropped",
            ["remote"],
            registry=registry,
        )
        self.batch_duration = Histogram(
            "orbiter_remote_write_sent_batch_duration_seconds",
            "Duration of each send attempt, from POST to the receiver's answer or the error",
            ["remote"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.highest_sent = Gauge(
            "orbiter_remote_write_highest_sent_timestamp_seconds",
            "Time of the newest sample the receiver accepted, in seconds since the epoch",
            ["remote"],
            registry=registry,
        )



# ---------------------------------------------------------------------- the writer


class RemoteWriter:
    """One remote-write target: a bounded queue (`offer`) and the task that ships it."""

    def __init__(
        self, config: RemoteWriteConfig, registry: CollectorRegistry | None = None
    ) -> None:
        self.config = config
        self.remote = config.remote
        q = config.queue_config
        self._capacity = q.capacity
        self._max_send = q.max_samples_per_send
        self._chunks: deque[Chunk] = deque()
        self._head = 0  # samples of _chunks[0] already taken into a batch
        self._queued = 0
        self._in_flight = 0
        self._stopping = False
        self._data = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._encoder = BatchEncoder(config.write_relabel_configs)
        m = RemoteWriteMetrics.of(registry if registry is not None else CollectorRegistry())
        self._sent = m.sent.labels(self.remote)
        self._dropped = {
            reason: m.dropped.labels(self.remote, reason.value) for reason in DropReason
        }
        self._failures = m.failures.labels(self.remote)
        self._batch_duration = m.batch_duration.labels(self.remote)
        self._highest = m.highest_sent.labels(self.remote)
        self._highest_ms = 0
        m.pending.labels(self.remote).set_function(lambda: self.pending)

    @property
    def pending(self) -> int:
        """Samples queued or in the batch being sent: what counts against the capacity."""
        return self._queued + self._in_flight

    def offer(self, samples: Sequence[tuple[Labels, float]], t_ms: int) -> None:
        """Queue a scrape's samples; what does not fit is counted as dropped (never waits)."""
        n = len(samples)
        if n == 0:
            return
        free = self._capacity - self._queued - self._in_flight
        if n > free:
            self._dropped[DropReason.QUEUE_FULL].inc(n - max(free, 0))
            if free <= 0:
                return
            samples, n = samples[:free], free
        self._chunks.append((samples, t_ms))
        self._queued += n
        self._data.set()

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError(f"remote write {self.remote} is already started")
        tls = self.config.tls_config
        connector = None
        if self.config.url.startswith("https:"):
            connector = aiohttp.TCPConnector(ssl=ssl_context(tls))
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.config.remote_timeout),
            headers={
                **dict(self.config.headers),
                "Content-Encoding": "snappy",
                "Content-Type": "application/x-protobuf",
                "X-Prometheus-Remote-Write-Version": PROTOCOL_VERSION,
                "User-Agent": USER_AGENT,
            },
        )
        self._stopping = False
        self._data = asyncio.Event()  # this loop's (a writer may be started again)
        if self._queued:
            self._data.set()
        self._task = asyncio.create_task(self._run(), name=f"remote-write {self.remote}")

    async def stop(self, flush_timeout: float = 5.0) -> None:
        """Send what is queued for up to `flush_timeout` seconds; count the rest as dropped."""
        self._stopping = True
        self._data.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=flush_timeout)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            elif task.exception() is not None:
                log.error("remote write %s: sender failed", self.remote, exc_info=task.exception())
        left = self.pending
        if left:
            self._dropped[DropReason.SHUTDOWN].inc(left)
            log.warning(
                "remote write %s: %d samples still queued at stop, dropped", self.remote, left
            )
        self._chunks.clear()
        self._head = self._queued = self._in_flight = 0
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ the sender task

    async def _run(self) -> None:
        while True:
            if not await self._wait_for_batch():
                return
            chunks = self._take(self._max_send)
            try:
                await self._deliver(chunks)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop remote write for good
                log.exception("remote write %s: batch of %d dropped", self.remote, self._in_flight)
                self._dropped[DropReason.ERROR].inc(self._in_flight)
            self._in_flight = 0

    async def _wait_for_batch(self) -> bool:
        """Wait until a full batch is queued or the first queued sample waited the deadline.

        False once stopping and nothing is left to send.
        """
        while self._queued == 0:
            if self._stopping:
                return False
            self._data.clear()
            await self._data.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.queue_config.batch_send_deadline
        while self._queued < self._max_send and not self._stopping:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._data.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._data.wait(), remaining)
        return True

    def _take(self, n: int) -> list[Chunk]:
        """Up to `n` samples from the queue's head, as chunks; they count as in flight."""
        out: list[Chunk] = []
        need = n
        chunks = self._chunks
        while need and chunks:
            samples, t_ms = chunks[0]
            start = self._head
            available = len(samples) - start
            if available <= need:
                out.append((samples[start:] if start else samples, t_ms))
                chunks.popleft()
                self._head = 0
                need -= available
            else:
                out.append((samples[start : start + need], t_ms))
                self._head = start + need
                need = 0
        taken = n - need
        self._queued -= taken
        self._in_flight = taken
        return out

    async def _deliver(self, chunks: list[Chunk]) -> None:
        encoded = self._encoder.encode(chunks)
        relabeled = self._in_flight - encoded.samples
        if relabeled:
            self._dropped[DropReason.WRITE_RELABEL].inc(relabeled)
        if not encoded.samples:
            return
        body = compress(encoded.body)
        q = self.config.queue_config
        attempt = 0
        while True:
            outcome, status, wait = await self._post(body)
            if outcome is Outcome.DELIVERED:
                self._sent.inc(encoded.samples)
                self._highest_ms = max(self._highest_ms, encoded.highest_ms)
                self._highest.set(self._highest_ms / 1000.0)
                if attempt:
                    log.info(
                        "remote write %s: delivered again after %d failures", self.remote, attempt
                    )
                return
            self._failures.inc()
            if outcome is Outcome.DROP:
                self._dropped[DropReason.REJECTED].inc(encoded.samples)
                log.error(
                    "remote write %s: %d samples dropped, the receiver answered %s",
                    self.remote,
                    encoded.samples,
                    status,
                )
                return
            if attempt == 0:
                log.warning("remote write %s: send failed (%s), retrying", self.remote, status)
            delay = backoff_delay(attempt, q.min_backoff, q.max_backoff, random.random())
            await asyncio.sleep(wait if wait is not None else delay)
            attempt += 1

    async def _post(self, body: bytes) -> tuple[Outcome, str, float | None]:
        """One POST: its outcome, a description for the log, and a Retry-After to honour."""
        assert self._session is not None, "RemoteWriter.start was not called"
        kwargs: dict[str, Any] = {}
        if self.config.tls_config.server_name:
            kwargs["server_hostname"] = self.config.tls_config.server_name
        began = time.monotonic()
        try:
            auth_header = await self._authorization()  # an unreadable file: retried like a 5xx
            if auth_header is not None:
                kwargs["headers"] = {"Authorization": auth_header}
            async with self._session.post(self.config.url, data=body, **kwargs) as resp:
                await resp.read()
                status = resp.status
                header = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            self._batch_duration.observe(time.monotonic() - began)
            return Outcome.RETRY, f"{type(e).__name__}: {e}", None
        self._batch_duration.observe(time.monotonic() - began)
        outcome = classify(status)
        if status == 429 and not self.config.queue_config.retry_on_http_429:
            outcome = Outcome.DROP
        wait = None
        if outcome is Outcome.RETRY and status in (429, 503):
            wait = retry_after(header, self.config.queue_config.max_backoff)
        return outcome, f"HTTP {status}", wait

    async def _authorization(self) -> str | None:
        """The Authorization header; files are read at each request (rotation without restart)."""
        basic, auth = self.config.basic_auth, self.config.authorization
        if basic is not None:
            password = basic.password
            if basic.password_file:
                # A blocking read, off the loop on purpose (a slow disk must not stall scrapes).
                password = (await asyncio.to_thread(Path(basic.password_file).read_text)).strip()
            pair = f"{basic.username}:{password}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        if auth is not None:
            credentials = auth.credentials
            if auth.credentials_file:
                path = Path(auth.credentials_file)
                credentials = (await asyncio.to_thread(path.read_text)).strip()
            return f"{auth.type} {credentials}"
        return None
