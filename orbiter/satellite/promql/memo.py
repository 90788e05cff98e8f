"""Label-set results remembered per label-set object, across queries and rounds.

The TSDB hands out the same label tuple for a series every time it is read, so
what the evaluator derives from it (the set without `__name__`, a group's key)
can be kept per object instead of rebuilt for 300,000 series every round, and
the derived tuple is then itself the same object each round, so memos further
down the expression hit too. Keys are `id(labels)`: hashing a label tuple costs
far more (tuples do not cache their hash). Each entry holds its labels, so the
id cannot be reused by another object while the entry lives; the table is
simply emptied when it reaches its bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from orbiter.satellite.series import Labels

T = TypeVar("T")

__all__ = ["by_identity"]

DEFAULT_LIMIT = 1 << 19


def by_identity(
    compute: Callable[[Labels], T], limit: int = DEFAULT_LIMIT
) -> Callable[[Labels], T]:
    """`compute`, remembered per label-set object (at most `limit` of them)."""
    table: dict[int, tuple[Labels, T]] = {}

    def remembered(lset: Labels) -> T:
        hit = table.get(id(lset))
        if hit is not None and hit[0] is lset:
            return hit[1]
        out = compute(lset)
        if len(table) >= limit:
            table.clear()
        table[id(lset)] = (lset, out)
        return out

    return remembered
