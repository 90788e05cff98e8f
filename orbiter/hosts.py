"""The host name a master or agent advertises (`--advertise-host`, `advertise_host`)."""

from __future__ import annotations

import ipaddress


def advertise_host(text: str) -> str:
    """A host name or address, no port; an IPv6 address gets brackets (it is joined to a
    port). Empty means not set. Raises ValueError saying what to give."""
    host = text.strip()
    if not host:
        return ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            return f"[{host}]"
    except ValueError:
        pass
    if ":" in host or "/" in host or " " in host:
        raise ValueError(
            f"{text!r} is not a host name or address; give it without a port, e.g. "
            "master1.example.org or 10.0.0.7"
        )
    return host
