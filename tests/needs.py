"""What a test needs from the machine: in CI a missing need fails the test, never skips it.

Some tests need root (switching users, port 465) or writable cgroup hierarchies. CI runs as
root on machines that have them, so there a missing need is a broken machine and the test
fails saying what is missing; on a developer's unprivileged machine the test is skipped
with the same reason instead of failing for want of privileges.
"""

from __future__ import annotations

import os

import pytest

from orbiter.agent.isolation import cgroups

IN_CI = bool(os.environ.get("CI"))


def skip_outside_ci(missing: str) -> pytest.MarkDecorator:
    """Skip (saying why) when `missing` is not '' and this is not CI; in CI, run."""
    return pytest.mark.skipif(bool(missing) and not IN_CI, reason=missing or "-")


def check(missing: str) -> None:
    """Fail now, saying what the machine lacks (reached only in CI, or when nothing lacks)."""
    if missing:
        pytest.fail(f"{missing}: CI machines have it, so this one is broken")


def require(missing: str) -> None:
    """Inside a test: fail in CI, skip (saying why) elsewhere, when `missing` is not ''."""
    if missing and IN_CI:
        check(missing)
    if missing:
        pytest.skip(missing)


def root_missing(why: str) -> str:
    return "" if os.geteuid() == 0 else f"{why} needs root"


def root_and_cgroups_missing() -> str:
    if os.geteuid() != 0:
        return "needs root and cgroup hierarchies with memory, cpu and pids"
    if cgroups.detect() is None:
        return "needs cgroup hierarchies with memory, cpu and pids"
    return ""
