"""Results remembered per object (a label set, a parsed expression), across queries and rounds.

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

K = TypeVar("K")
T = TypeVar("T")

__all__ = ["by_identity"]

DEFAULT_LIMIT = 1 << 19


def by_identity(compute: Callable[[K], T], limit: int = DEFAULT_LIMIT) -> Callable[[K], T]:
    """`compute`, remembered per argument object (at most `limit` of them)."""
    table: dict[int, tuple[K, T]] = {}

    def remembered(key: K) -> T:
        hit = table.get(id(key))
        if hit is not None and hit[0] is key:
            return hit[1]
        out = compute(key)
        if len(table) >= limit:
            table.clear()
        table[id(key)] = (key, out)
        return out

    return remembered
