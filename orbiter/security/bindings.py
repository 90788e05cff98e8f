"""Identity bindings the master enforces around its state machine.

- A framework's calls (Teardown, Accept, Kill, ...) come from the principal
  that registered it (its Subscribe is checked in the state machine itself).
- Agent registration attempts, and API calls, are rate limited per principal and
  peer host.
- Maintenance is signed by the authenticated principal, never by a body field:
  `by` is "satellite" only for the Satellite's principal, else "operator".
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from orbiter.errors import Code, OrbiterError
from orbiter.security import acl
from orbiter.security.ratelimit import RateLimited, TokenBuckets
from orbiter.security.settings import SecuritySettings

if TYPE_CHECKING:
    from orbiter.master.state import Master
    from orbiter.proto import scheduler_pb2


class NotYours(OrbiterError):
    code = Code.PERMISSION_DENIED


def check_framework_call(core: Master, header: scheduler_pb2.CallHeader, principal: str,
                         action: str) -> None:  # fmt: skip
    """Refuse a scheduler call on a framework bound to another principal.

    Only a Teardown may come from another principal, and only one that an ACL rule
    (security.acls.teardown_frameworks) allows: an operator ending a framework.
    """
    fw = core.frameworks.get(header.framework_id)
    if fw is None or not fw.principal or fw.principal == principal:
        return
    if action == "teardown":
        check_teardown(core.config.acls, fw.id, fw.principal, principal)
        return
    raise NotYours(
        f"framework {fw.id} belongs to principal {fw.principal!r}; "
        f"{principal or 'an unauthenticated caller'!r} may not act as it"
    )


def check_teardown(acls: acl.Acls, framework_id: str, owner: str, principal: str) -> None:
    """A framework's own principal may tear it down; another only where an ACL rule allows."""
    if not owner or owner == principal:
        return
    if not acls.enabled:
        raise NotYours(
            f"framework {framework_id} belongs to principal {owner!r}; "
            f"{principal or 'an unauthenticated caller'!r} may not tear it down (an ACL in "
            "security.acls.teardown_frameworks can allow it)"
        )
    acl.authorize(acls, principal, acl.TEARDOWN_FRAMEWORK, [owner], owner=owner)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "") or host.startswith("unix:")


class ClientLimiter:
    """Token buckets keyed by principal@peer-host. Unauthenticated loopback callers (the
    single-node default, where everything on the host is trusted anyway) are not limited;
    a rate of 0 limits nobody."""

    what = "calls"
    settings = ""

    def __init__(self, rate: float = 10.0, burst: float = 50.0) -> None:
        self.buckets = TokenBuckets(rate=rate, burst=burst) if rate > 0 else None

    def admit(self, principal: str, peer_host: str, now: float) -> None:
        """Take one call from the caller's bucket, or raise RateLimited saying the limit."""
        buckets = self.buckets
        if buckets is None or (not principal and _loopback(peer_host)):
            return
        key = f"{principal}@{peer_host}"
        if not buckets.take(key, now):
            raise RateLimited(
                f"too many {self.what} from {principal or 'unauthenticated'} at "
                f"{peer_host}: at most {buckets.burst:.0f} at once, then "
                f"{buckets.rate:g} per second{self.settings}; retry later",
                buckets.retry_after(key, now),
            )


class RegistrationLimiter(ClientLimiter):
    """Agent registration attempts."""

    what = "agent registrations"


class ApiLimiter(ClientLimiter):
    """Calls on the master's scheduler (gRPC) and operator (HTTP) APIs."""

    what = "API calls"
    settings = " (master.api_burst, master.api_rate)"


def maintenance_by(settings: SecuritySettings, principal: str, body_by: str | None) -> str:
    """Who a maintenance action is by: from the principal when authentication is on.

    With authentication off (loopback) the body's `by` is still taken, as before.
    With it on, a body `by` that disagrees with the principal is refused.
    """
    if not settings.auth_enabled:
        return body_by if body_by is not None else "operator"
    by = "satellite" if principal == settings.satellite_principal else "operator"
    if body_by is not None and body_by != by:
        raise NotYours(
            f"by {body_by!r} is not yours to give: maintenance is signed by the authenticated "
            f"principal ({principal!r}, by {by!r}); leave by out"
        )
    return by
