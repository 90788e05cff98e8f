"""Follow a file in a task's sandbox through its agent's /files API, like `tail -f`.

`orbiter cat --follow` and `orbiter execute --follow` read what is new every half
second until the task has ended, then read to the end once more. Reads are
blocking (urllib): the CLI calls them directly, execute's event loop from a thread.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from orbiter.errors import OrbiterError
from orbiter.security import settings as security

POLL_SECONDS = 0.5


class SandboxUnreadable(OrbiterError):
    """The agent refused or cannot be reached; the message says which."""


class SandboxFile:
    """One file of a task's sandbox, read from where the last read ended."""

    def __init__(self, agent_http: str, task_id: str, framework_id: str, path: str) -> None:
        self.agent_http = agent_http
        self.query = {"task_id": task_id, "framework_id": framework_id}
        self.path = path
        self.offset = 0

    def _get(self, route: str, missing_ok: bool = True, **extra: str) -> bytes | None:
        """The body, or None while the file (or the sandbox) is not there yet."""
        s = security.current()
        query = urllib.parse.urlencode({**self.query, "path": self.path, **extra})
        url = s.url(self.agent_http, f"{route}?{query}")
        req = urllib.request.Request(url, headers=s.auth_headers())
        try:
            with urllib.request.urlopen(req, timeout=10, context=s.client_ssl_context()) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            if e.code == 404 and missing_ok:
                return None
            raise SandboxUnreadable(_error_text(e.read())) from None
        except urllib.error.URLError as e:
            raise SandboxUnreadable(f"cannot reach the agent at {url}: {e.reason}") from None

    def read_new(self, missing_ok: bool = True) -> bytes:
        """What was written since the last read (b"" if nothing, or no file yet)."""
        data = self._get("/files/read", missing_ok, offset=str(self.offset)) or b""
        if data:
            self.offset += len(data)
        elif self.offset and self._size() < self.offset:
            self.offset = 0  # rotated to PATH.1 at the log cap: the new file from its start
            return self.read_new()
        return data

    def _size(self) -> int:
        listing = self._get("/files/browse")
        if listing is None:
            return 0
        sizes = {f["path"]: f["size"] for f in json.loads(listing)["files"]}
        return int(sizes.get(self.path, 0))


def _error_text(body: bytes) -> str:
    """The agent's {"error": ...} message, or the body as it is."""
    text = body.decode(errors="replace")
    try:
        return str(json.loads(text)["error"])
    except (ValueError, KeyError, TypeError):
        return text


def follow(
    file: SandboxFile,
    ended: Callable[[], bool],
    write: Callable[[bytes], None],
    sleep: Callable[[float], None] = time.sleep,
    stopped: threading.Event | None = None,
) -> None:
    """Write what the file gets until `ended()` says the task is over, then the rest.

    Run in a thread, it also returns (at once, without the rest) once `stopped` is set:
    cancelling the asyncio task that awaits a thread does not end the thread."""
    while True:
        if stopped is not None and stopped.is_set():
            return
        data = file.read_new()
        if data:
            write(data)
            continue
        if ended():
            break
        sleep(POLL_SECONDS)
    while data := file.read_new():  # what it wrote between the last read and its end
        write(data)


class LinePrefixer:
    """Prefix every line of a stream of chunks with a label (several tasks' output
    interleaved); an unfinished line waits for its end or for `flush`."""

    def __init__(self, label: str, write: Callable[[bytes], None]) -> None:
        self.label = label.encode()
        self.write = write
        self.partial = b""

    def __call__(self, data: bytes) -> None:
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        if lines:
            self.write(b"".join(self.label + line + b"\n" for line in lines))

    def flush(self) -> None:
        if self.partial:
            self.write(self.label + self.partial + b"\n")
            self.partial = b""
