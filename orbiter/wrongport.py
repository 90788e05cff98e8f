"""`--master` given an HTTP port: say whose port it is and which one to use instead.

When the gRPC call to `--master` fails, the CLI asks the same address for /health
over HTTP. A master's answer names its gRPC address; an agent's /state names its
master; Satellite's health is recognised by its `fenced` field. `explain` is pure
(tested as a table); `probe` does the two small requests.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from orbiter.security import settings as security

Fetch = Callable[[str], Any]
"""GET a path at the address: its JSON, or None if it is no JSON; raises OSError if
nothing answers HTTP there."""


def _port_of(address: str) -> str:
    return address.rpartition(":")[2]


def _same_host(address: str, other: str) -> str:
    """`other`'s port on the host the user typed (the master may report 0.0.0.0)."""
    return f"{address.rpartition(':')[0]}:{_port_of(other)}"


def explain(address: str, fetch: Fetch) -> str | None:
    """What answers at `address` instead of a master's gRPC port, or None if nothing
    answers HTTP there either (the master is down, or it is something else)."""
    try:
        health = fetch("/health")
    except OSError:
        return None
    if not isinstance(health, dict):
        return f"{address} answers HTTP, not gRPC: it is not a master's gRPC port"
    if "role" in health and "master_id" in health:
        grpc = health.get("grpc_address") or health.get("leading_master", {}).get("grpc_address")
        if not grpc:
            return f"{address} is a master's HTTP port; give its gRPC port (default 5050)"
        use = _same_host(address, grpc)
        return (
            f"{address} is the master's HTTP port; its gRPC port is {_port_of(grpc)}, "
            f"use --master {use}"
        )
    if "registered" in health:
        try:
            state = fetch("/state")
        except OSError:
            state = None
        master = state.get("master") if isinstance(state, dict) else None
        if master and "://" not in master:
            return (
                f"{address} is an agent's HTTP port; its master is {master}, use --master {master}"
            )
        if master:
            return f"{address} is an agent's HTTP port; its master is {master}"
        return f"{address} is an agent's HTTP port; give the master's gRPC address"
    if "fenced" in health:
        return f"{address} is Satellite's HTTP API; give the master's gRPC address"
    return f"{address} answers HTTP, not gRPC: it is not a master's gRPC port"


def probe(address: str, timeout: float = 2.0) -> str | None:
    """`explain` over real HTTP (with the client's TLS and credentials, if any)."""
    s = security.current()

    def fetch(path: str) -> Any:
        req = urllib.request.Request(s.url(address, path), headers=s.auth_headers())
        try:
            with urllib.request.urlopen(
                req, timeout=timeout, context=s.client_ssl_context()
            ) as resp:
                body = resp.read()
        except urllib.error.HTTPError as e:
            body = e.read()
        except urllib.error.URLError as e:
            raise OSError(str(e.reason)) from None
        except (
            http.client.HTTPException,
            ValueError,
            OSError,
        ) as e:  # not HTTP at all: a bad status line, a reset
            raise OSError(str(e)) from None
        try:
            return json.loads(body)
        except ValueError:
            return None

    return explain(address, fetch)
