"""Authorization: the one place ACL rules will decide who may do what.

Today every authenticated principal may do everything it asks (identity
bindings — agent ids, framework ids, maintenance `by` — are enforced where
the records live, in `orbiter.security.bindings` and the master's state).
Callers name the action and the object so that Mesos-like rules can be added
here without touching them.
"""

from __future__ import annotations

from orbiter.errors import Code, OrbiterError


class Forbidden(OrbiterError):
    code = Code.PERMISSION_DENIED


# Actions the master asks about (Mesos's ACL names where they exist).
REGISTER_FRAMEWORK = "register_framework"
TEARDOWN_FRAMEWORK = "teardown_framework"
REGISTER_AGENT = "register_agent"
MAINTAIN_AGENT = "maintain_agent"  # deactivate, drain, reactivate, pin, remove
READ_SANDBOX = "read_sandbox"
KILL_TASK = "kill_task"


def authorize(principal: str, action: str, obj: str) -> None:
    """Allow or raise Forbidden. No rules yet: everything is allowed."""
    return None
