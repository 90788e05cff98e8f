"""ZooKeeper as the place several masters share: its address, a client, and a claimed root.

Masters are told where ZooKeeper is with one URL, `zk://host:port[,host:port...]/path`;
everything Orbiter keeps there lives under that path. `claim_root` marks the path
as Orbiter's before anything is written, so a typo in the address cannot make a
master scribble over another system's znodes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from orbiter.errors import Code, OrbiterError

SCHEME = "zk://"
DEFAULT_PORT = 2181
EXPECTED_FORM = "zk://host:port[,host:port...]/path, e.g. zk://zk1:2181,zk2:2181/orbiter"

# The layout of what Orbiter keeps under its root; a master refuses a newer one.
ZK_FORMAT = 1
MARKER = "orbiter"
SHOWN_CHILDREN = 5

# Reconnect attempts back off to at most this: a restarted ensemble is found again
# well within a session timeout (kazoo's default backs off to an hour).
RECONNECT_MAX_DELAY = 1.0

_HOSTNAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
# Characters ZooKeeper refuses in a path (PathUtils.validatePath).
_FORBIDDEN = re.compile("[\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff]")


class InvalidZkAddress(OrbiterError):
    """A zk:// address that cannot be used; the message says what to fix."""

    code = Code.INVALID_ARGUMENT


class ZkUnavailable(OrbiterError):
    """No ZooKeeper server answered in time."""

    code = Code.UNAVAILABLE


class ZkPathRefused(OrbiterError):
    """The zk:// path holds something that is not this Orbiter's; nothing was written."""

    code = Code.FAILED_PRECONDITION


class ZkConnectionLost(OSError):
    """The connection to ZooKeeper dropped or timed out; the same call may be retried.

    An OSError so that callers retrying I/O failures retry this too.
    """


@dataclass(frozen=True)
class ZkAddress:
    """Where ZooKeeper is (`host:port` each) and the znode Orbiter keeps its data under."""

    hosts: tuple[str, ...]
    path: str

    @property
    def connect_string(self) -> str:
        return ",".join(self.hosts)

    def __str__(self) -> str:
        return f"{SCHEME}{self.connect_string}{self.path}"


def is_zk_url(text: str) -> bool:
    return text.startswith(SCHEME)


def _invalid(text: str, what: str) -> InvalidZkAddress:
    return InvalidZkAddress(f"invalid ZooKeeper address {text!r}: {what}; expected {EXPECTED_FORM}")


def _parse_host(text: str, entry: str) -> str:
    """`host[:port]` (IPv6 in brackets) as `host:port`, with the default port filled in."""
    if not entry:
        raise _invalid(text, "empty host in the host list (a stray comma?)")
    if entry.startswith("["):
        end = entry.find("]")
        if end < 0:
            raise _invalid(text, f"host {entry!r} opens '[' but never closes it")
        host, rest = entry[: end + 1], entry[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _invalid(text, f"unexpected {rest!r} after host {host!r}")
        port_text = rest[1:] if rest else None
        if not re.fullmatch(r"\[[0-9A-Fa-f:.]+\]", host):
            raise _invalid(text, f"host {host!r} is not an IPv6 address")
    else:
        host, colon, port_text_or_empty = entry.partition(":")
        port_text = port_text_or_empty if colon else None
        if not host:
            raise _invalid(text, f"no host name before the port in {entry!r}")
        if not _HOSTNAME.match(host):
            raise _invalid(text, f"host {host!r} is not a host name or IP address")
    if port_text is None:
        return f"{host}:{DEFAULT_PORT}"
    if not port_text:
        raise _invalid(text, f"host {host!r} has ':' but no port after it")
    if not port_text.isdigit() or not port_text.isascii():
        raise _invalid(text, f"port {port_text!r} of host {host!r} is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise _invalid(text, f"port {port} of host {host!r} is out of range (1-65535)")
    return f"{host}:{port}"


def _check_path(text: str, path: str) -> None:
    if path in ("", "/"):
        raise _invalid(
            text, "no path after the hosts (Orbiter needs a znode of its own, e.g. /orbiter)"
        )
    if path.endswith("/"):
        raise _invalid(text, f"path {path!r} ends with '/'")
    for part in path[1:].split("/"):
        if not part:
            raise _invalid(text, f"path {path!r} has an empty component ('//')")
        if part in (".", ".."):
            raise _invalid(
                text, f"path {path!r} has a {part!r} component; ZooKeeper paths are absolute"
            )
    bad = _FORBIDDEN.search(path)
    if bad:
        raise _invalid(text, f"path {path!r} has a character ZooKeeper forbids ({bad.group()!r})")
    if path == "/zookeeper" or path.startswith("/zookeeper/"):
        raise _invalid(text, f"path {path!r} is under /zookeeper, which ZooKeeper reserves")


def parse_zk_url(text: str) -> ZkAddress:
    """`zk://h1:2181,h2/orbiter` -> ZkAddress(("h1:2181", "h2:2181"), "/orbiter")."""
    if any(c.isspace() for c in text):
        raise _invalid(text, "it contains whitespace")
    if not is_zk_url(text):
        scheme = text.partition("://")[0] if "://" in text else None
        what = (
            f"scheme {scheme + '://'!r} is not zk://" if scheme else "it does not start with zk://"
        )
        raise _invalid(text, what)
    rest = text[len(SCHEME) :]
    if "?" in rest or "#" in rest:
        raise _invalid(text, "query ('?') and fragment ('#') are not allowed")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        raise _invalid(text, "credentials (user@) are not supported in the address")
    if not authority:
        raise _invalid(text, "no hosts before the path")
    hosts = tuple(_parse_host(text, entry) for entry in authority.split(","))
    path = slash + path
    _check_path(text, path)
    return ZkAddress(hosts, path)


def connect(
    address: ZkAddress, session_timeout: float = 3.0, connect_timeout: float = 5.0
) -> KazooClient:
    """A started kazoo client; raises ZkUnavailable if no server answers within connect_timeout.

    ZooKeeper clamps the session timeout to [2, 20] times the server's tickTime
    (4 s to 40 s with the default tickTime of 2 s).
    """
    client = KazooClient(
        hosts=address.connect_string,
        timeout=session_timeout,
        connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=RECONNECT_MAX_DELAY),
    )
    try:
        client.start(timeout=connect_timeout)
    except KazooTimeoutError:
        client.stop()
        client.close()
        raise ZkUnavailable(
            f"cannot reach ZooKeeper at {address.connect_string} within {connect_timeout:g}s; "
            f"is it running? Check the hosts in {address} and that their client port is open"
        ) from None
    return client


def _marker(path: str) -> str:
    return f"{path}/{MARKER}"


def _marker_data() -> bytes:
    return json.dumps({"app": "orbiter", "format": ZK_FORMAT}).encode()


def _describe_children(children: list[str]) -> str:
    shown = ", ".join(sorted(children)[:SHOWN_CHILDREN])
    more = len(children) - SHOWN_CHILDREN
    return f"{shown}, and {more} more" if more > 0 else shown


def _check_marker(path: str, data: bytes) -> None:
    """Refuse a root whose marker is not Orbiter's or is newer than this master reads."""
    try:
        marker = json.loads(data)
        app, fmt = marker["app"], marker["format"]
    except (ValueError, TypeError, KeyError):
        app, fmt = None, None
    if app != "orbiter" or not isinstance(fmt, int):
        raise ZkPathRefused(
            f"znode {path} has a child {MARKER!r} that is not Orbiter's marker "
            f"(data: {data[:60]!r}); pick another path in the zk:// address"
        )
    if fmt > ZK_FORMAT:
        raise ZkPathRefused(
            f"znode {path} was written by a newer Orbiter (format {fmt}; this one reads "
            f"{ZK_FORMAT}): upgrade this master"
        )


def claim_root(client: KazooClient, path: str) -> None:
    """Make `path` Orbiter's, or refuse (ZkPathRefused) without writing anything.

    A missing or empty znode is claimed by creating the marker child; one that
    already carries the marker is accepted if this master reads its format; one
    with other content belongs to someone else.
    """
    for _ in range(3):  # another master may be claiming the same path right now
        try:
            data, _stat = client.get(_marker(path))
        except NoNodeError:
            pass
        else:
            _check_marker(path, data)
            return
        try:
            data, _stat = client.get(path)
            children = client.get_children(path)
        except NoNodeError:
            parent = path.rsplit("/", 1)[0]
            if parent:
                client.ensure_path(parent)
            tx = client.transaction()
            tx.create(path)
            tx.create(_marker(path), _marker_data())
            if all(not isinstance(r, Exception) for r in tx.commit()):
                return
            continue
        if MARKER in children:
            continue  # another master claimed it between our two reads: read its marker
        if children or data:
            content = (
                f"children: {_describe_children(children)}" if children
                else f"data: {len(data)} bytes"
            )  # fmt: skip
            raise ZkPathRefused(
                f"znode {path} is owned by another system ({content}); "
                "pick another path in the zk:// address"
            )
        try:
            client.create(_marker(path), _marker_data())
            return
        except (NodeExistsError, NoNodeError):
            continue
    raise ZkPathRefused(f"znode {path} keeps changing while this master claims it; try again")
