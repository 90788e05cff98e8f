"""Weighted Dominant Resource Fairness: order clients by their dominant share.

A client's dominant share is the largest fraction of any one resource kind
(cpus, mem, ...) it holds out of the cluster's total, divided by its weight.
The client with the smallest share is offered next. Pure and deterministic:
ties break by name.

`DRFSorter` keeps its clients in order as allocations change (a bisect per
change, not a sort per question), so the allocator can walk the order for
every agent cheaply. `RoleSorter` is hierarchical DRF over roles (`eng/web`
under `eng`): one DRFSorter per level, a parent's allocation being its
subtree's, walked depth first.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator, Mapping
from operator import itemgetter

from orbiter import roles as role_names

_client = itemgetter(1)  # of an order key: (share, client)


class DRFSorter:
    """Tracks allocations per client and sorts clients by weighted dominant share."""

    __slots__ = ("_allocated", "_keys", "_order", "_total", "_weights")

    def __init__(self, total: Mapping[str, float]) -> None:
        self._total = {name: q for name, q in total.items() if q > 0}
        self._allocated: dict[str, dict[str, float]] = {}
        self._weights: dict[str, float] = {}
        self._keys: dict[str, tuple[float, str]] = {}
        self._order: list[tuple[float, str]] = []

    def add(self, client: str, weight: float = 1.0) -> None:
        if weight <= 0:
            raise ValueError(f"weight of {client!r} must be positive, got {weight}")
        self._allocated.setdefault(client, {})
        self._weights[client] = weight
        self._reorder(client)

    def __contains__(self, client: str) -> bool:
        return client in self._keys

    def allocate(self, client: str, quantities: Mapping[str, float]) -> None:
        held = self._allocated.get(client)
        if held is None:
            held = self._allocated[client] = {}
            self._weights.setdefault(client, 1.0)
        for name, q in quantities.items():
            held[name] = held.get(name, 0.0) + q
        self._reorder(client)

    def _reorder(self, client: str) -> None:
        old = self._keys.get(client)
        if old is not None:
            del self._order[bisect_left(self._order, old)]
        key = (self.share(client), client)
        self._keys[client] = key
        insort(self._order, key)

    def remove(self, client: str) -> None:
        key = self._keys.pop(client)
        del self._order[bisect_left(self._order, key)]
        del self._allocated[client], self._weights[client]

    def __len__(self) -> int:
        return len(self._keys)

    def share(self, client: str) -> float:
        held = self._allocated.get(client, {})
        totals = self._total
        dominant = 0.0
        for name, q in held.items():
            total = totals.get(name)
            if total and q / total > dominant:
                dominant = q / total
        return dominant / self._weights.get(client, 1.0)

    def sort(self, clients: Iterable[str] | None = None) -> list[str]:
        """Clients in the order they should be offered: lowest weighted share first."""
        if clients is None:
            return [c for _, c in self._order]
        return sorted(clients, key=lambda c: (self.share(c), c))

    def ordered(self) -> Iterator[str]:
        """The clients in order, lazily; allocate only after the walk."""
        return map(_client, self._order)


class RoleSorter:
    """Hierarchical weighted DRF over roles: siblings are sorted, level by level.

    A role that has frameworks and subroles competes with its children inside
    its own level as a leaf named like itself (Mesos's "." node). Weights are
    per role, and a parent's weight and allocation stand for its subtree.
    """

    __slots__ = ("_levels", "_paths")

    def __init__(
        self,
        total: Mapping[str, float],
        weights: Mapping[str, float],
        active: Iterable[str],
        held: Mapping[str, Mapping[str, float]],
    ) -> None:
        """`active`: the roles to sort; `held[r]`: what role r itself holds (any role)."""
        subtree: dict[str, dict[str, float]] = {}
        for role, quantities in held.items():
            for node in role_names.lineage(role):
                into = subtree.setdefault(node, {})
                for name, q in quantities.items():
                    into[name] = into.get(name, 0.0) + q
        # Parent role ("" for the top) -> the sorter over its children.
        self._levels: dict[str, DRFSorter] = {}
        # Role -> _path(role), as allocations come (the allocator makes one per offer).
        self._paths: dict[str, list[tuple[DRFSorter, str]]] = {}
        active = set(active)
        for role in sorted(active):
            parent = ""
            for node in role_names.lineage(role):
                level = self._levels.get(parent)
                if level is None:
                    level = self._levels[parent] = DRFSorter(total)
                if node not in level:
                    level.add(node, weights.get(node, 1.0))
                    level.allocate(node, subtree.get(node, {}))
                parent = node
        for role in active:
            level = self._levels.get(role)
            if level is not None:  # a parent with frameworks of its own: its leaf
                level.add(role, weights.get(role, 1.0))
                level.allocate(role, held.get(role, {}))

    def ordered(self, parent: str = "") -> Iterator[str]:
        """The active roles, best first: depth first through the sorted levels."""
        level = self._levels.get(parent)
        if level is None:
            return
        for node in level.ordered():
            if node != parent and node in self._levels:
                yield from self.ordered(node)
            else:
                yield node

    def allocate(self, role: str, quantities: Mapping[str, float]) -> None:
        """`role` got `quantities`: so did its ancestors, at every level."""
        path = self._paths.get(role)
        if path is None:
            path = self._paths[role] = self._path(role)
        for level, node in path:
            level.allocate(node, quantities)

    def _path(self, role: str) -> list[tuple[DRFSorter, str]]:
        """The (level, node) pairs an allocation to `role` counts in, top first."""
        path = []
        parent = ""
        for node in role_names.lineage(role):
            path.append((self._levels[parent], node))
            parent = node
        below = self._levels.get(role)
        if below is not None:  # a parent with frameworks of its own: its leaf
            path.append((below, role))
        return path

    def remove(self, role: str) -> None:
        """Stop sorting `role`; a parent left with no children goes too."""
        self._paths.clear()
        level_name = role if role in self._levels else role_names.parent(role) or ""
        node = role
        while True:
            level = self._levels[level_name]
            level.remove(node)
            if len(level) or not level_name:
                return
            del self._levels[level_name]
            node = level_name
            level_name = role_names.parent(node) or ""

    def share(self, role: str) -> float:
        """`role`'s weighted dominant share among its siblings."""
        return self._levels[role_names.parent(role) or ""].share(role)
