"""Alertmanager's routing tree, as pure values and functions.

`build_route_tree` turns the `route:` section as written (`RouteConfig`,
read by `amconfig.py`) into `Route`s whose options are inherited from the
parent the way Alertmanager 0.25 does it (`dispatch/route.go`): receiver,
`group_by` and the three timers come from the nearest ancestor that sets
them; the root starts from 30s / 5m / 4h and no grouping.

`route_alert` is Alertmanager's `Route.Match`: depth first, left to right; a
child that matches takes the alert and stops the search among its siblings
unless it has `continue: true`; a node none of whose children match is
itself the match. The receivers of the result, in order, are what
`amtool config routes test` prints (tests/integration/test_amtool_routes.py
holds us to that).

A route's key is its ancestors' keys and its own sorted matchers joined by
`/`, e.g. `{}/{severity="critical"}/{team=~"db|web"}`: the first half of a
group key. (A legacy `match_re` value prints anchored, `{env=~"^(?:prod.*)$"}`,
as Alertmanager keeps it compiled.) Version 0.25 has no per-sibling index in it, so two siblings
with the same matchers share keys (and aggregation groups), as there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from orbiter.alerts.matchers import Matcher, format_matchers, matches_all, sort_matchers
from orbiter.alerts.payload import group_key

DEFAULT_GROUP_WAIT = 30.0
DEFAULT_GROUP_INTERVAL = 300.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0


@dataclass(frozen=True)
class RouteConfig:
    """One `route:` node as written: None means "not set here, inherit"."""

    receiver: str | None = None
    group_by: tuple[str, ...] | None = None
    group_by_all: bool = False
    matchers: tuple[Matcher, ...] = ()
    continue_: bool = False
    routes: tuple[RouteConfig, ...] = ()
    group_wait: float | None = None
    group_interval: float | None = None
    repeat_interval: float | None = None
    line: int = 0
    """Where the node starts in its file (1-based), for messages."""


@dataclass(frozen=True)
class Route:
    """A routing node with every option resolved."""

    receiver: str
    group_by: frozenset[str]
    group_by_all: bool
    group_wait: float
    group_interval: float
    repeat_interval: float
    matchers: tuple[Matcher, ...]
    """Sorted as Alertmanager sorts them (name, value, operator)."""
    continue_: bool
    key: str
    routes: tuple[Route, ...] = ()

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The alert's labels this route groups by (all of them with `group_by: ['...']`)."""
        if self.group_by_all:
            return dict(labels)
        return {k: v for k, v in labels.items() if k in self.group_by}

    def group_key(self, labels: Mapping[str, str]) -> str:
        """`routeKey:{group labels}`, the key of the aggregation group the alert goes to."""
        return group_key(self.group_labels(labels), self.key)

    def walk(self) -> list[Route]:
        """This node and all below it, depth first."""
        out = [self]
        for child in self.routes:
            out.extend(child.walk())
        return out


def build_route_tree(config: RouteConfig, parent: Route | None = None) -> Route:
    """Resolve inheritance and keys for `config` and everything below it."""
    receiver = config.receiver or (parent.receiver if parent else "")
    # As in Alertmanager, an empty `group_by: []` inherits like an absent one.
    if config.group_by:
        group_by, group_by_all = frozenset(config.group_by), False
    elif parent is not None:
        group_by, group_by_all = parent.group_by, parent.group_by_all or config.group_by_all
    else:
        group_by, group_by_all = frozenset(), config.group_by_all

    def timer(own: float | None, inherited: float | None, default: float) -> float:
        if own is not None:
            return own
        return inherited if inherited is not None else default

    matchers = sort_matchers(config.matchers)
    own_key = format_matchers(matchers)
    node = Route(
        receiver=receiver,
        group_by=group_by,
        group_by_all=group_by_all,
        group_wait=timer(config.group_wait, parent and parent.group_wait, DEFAULT_GROUP_WAIT),
        group_interval=timer(
            config.group_interval, parent and parent.group_interval, DEFAULT_GROUP_INTERVAL
        ),
        repeat_interval=timer(
            config.repeat_interval, parent and parent.repeat_interval, DEFAULT_REPEAT_INTERVAL
        ),
        matchers=matchers,
        continue_=config.continue_,
        key=f"{parent.key}/{own_key}" if parent else own_key,
    )
    children = tuple(build_route_tree(c, node) for c in config.routes)
    return replace(node, routes=children)


def route_alert(root: Route, labels: Mapping[str, str]) -> list[Route]:
    """The routes an alert with `labels` goes to, in Alertmanager's order (maybe none)."""
    if not matches_all(root.matchers, labels):
        return []
    found: list[Route] = []
    for child in root.routes:
        matched = route_alert(child, labels)
        found.extend(matched)
        if matched and not child.continue_:
            break
    return found or [root]


def receivers_for(root: Route, labels: Mapping[str, str]) -> list[str]:
    """What `amtool config routes test` prints for `labels` (joined with commas)."""
    return [r.receiver for r in route_alert(root, labels)]
