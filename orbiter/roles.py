"""Role names and their hierarchy, as in Mesos: `eng/web` is a child of `eng`.

A role's weight and quota bound its whole subtree: the allocator sorts roles
level by level (hierarchical DRF) and caps a role by its own limit and every
ancestor's. Pure string work; `resources.py` and the master both use it.
"""

from __future__ import annotations

import re

DEFAULT = "*"
SEPARATOR = "/"
MAX_LENGTH = 256

_PART = re.compile(r"[A-Za-z0-9_.-]+")


class InvalidRole(ValueError):
    """A role name Mesos would refuse; the message says which rule it breaks."""


def problem(role: str) -> str | None:
    """What is wrong with `role` as a role name, or None if it is fine ("*" is)."""
    if role == DEFAULT:
        return None
    if not role:
        return "a role name cannot be empty"
    if len(role) > MAX_LENGTH:
        return f"a role name is at most {MAX_LENGTH} characters"
    if role.startswith(SEPARATOR) or role.endswith(SEPARATOR):
        return "a role name cannot start or end with '/'"
    for part in role.split(SEPARATOR):
        if not part:
            return "a role name cannot contain '//'"
        if part in (".", ".."):
            return "'.' and '..' are not role names, nor parts of one"
        if part.startswith("-"):
            return "a role name (or a part of one) cannot start with '-'"
        if part == DEFAULT or _PART.fullmatch(part) is None:
            return "use letters, digits, '_', '.' and '-', with '/' between levels"
    return None


def validate(role: str) -> str:
    """`role` itself, or InvalidRole naming the rule it breaks."""
    why = problem(role)
    if why is not None:
        raise InvalidRole(f"bad role {role!r}: {why} (e.g. 'eng' or 'eng/web')")
    return role


def parent(role: str) -> str | None:
    """`eng` for `eng/web`; None for a top-level role."""
    cut = role.rfind(SEPARATOR)
    return role[:cut] if cut > 0 else None


def ancestors(role: str) -> list[str]:
    """Strict ancestors, top first: `a/b/c` -> [`a`, `a/b`]."""
    parts = role.split(SEPARATOR)
    return [SEPARATOR.join(parts[:i]) for i in range(1, len(parts))]


def lineage(role: str) -> list[str]:
    """The role's ancestors and the role itself, top first."""
    return [*ancestors(role), role]


def is_within(role: str, ancestor: str) -> bool:
    """Whether `role` is `ancestor` or in its subtree."""
    return role == ancestor or role.startswith(ancestor + SEPARATOR)
