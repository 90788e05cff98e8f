"""Weighted Dominant Resource Fairness: order clients by their dominant share.

A client's dominant share is the largest fraction of any one resource kind
(cpus, mem, ...) it holds out of the cluster's total, divided by its weight.
The client with the smallest share is offered next. Pure and deterministic:
ties break by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class DRFSorter:
    """Tracks allocations per client and sorts clients by weighted dominant share."""

    __slots__ = ("_allocated", "_total", "_weights")

    def __init__(self, total: Mapping[str, float]) -> None:
        self._total = {name: q for name, q in total.items() if q > 0}
        self._allocated: dict[str, dict[str, float]] = {}
        self._weights: dict[str, float] = {}

    def add(self, client: str, weight: float = 1.0) -> None:
        if weight <= 0:
            raise ValueError(f"weight of {client!r} must be positive, got {weight}")
        self._allocated.setdefault(client, {})
        self._weights[client] = weight

    def allocate(self, client: str, quantities: Mapping[str, float]) -> None:
        held = self._allocated.setdefault(client, {})
        self._weights.setdefault(client, 1.0)
        for name, q in quantities.items():
            held[name] = held.get(name, 0.0) + q

    def share(self, client: str) -> float:
        held = self._allocated.get(client, {})
        dominant = 0.0
        for name, q in held.items():
            total = self._total.get(name)
            if total:
                dominant = max(dominant, q / total)
        return dominant / self._weights.get(client, 1.0)

    def sort(self, clients: Iterable[str] | None = None) -> list[str]:
        """Clients in the order they should be offered: lowest weighted share first."""
        names = self._allocated.keys() if clients is None else clients
        return sorted(names, key=lambda c: (self.share(c), c))
