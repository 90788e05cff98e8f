"""Metrics made once per Prometheus registry, however many objects use them.

A registry refuses a second metric of the same name, yet several receivers,
remote writers or archive sinks share one registry (Satellite's). A class of
metrics that derives from `PerRegistry` is built once per registry and
`of(registry)` hands out that one. Registries are weak keys, so a test's
throwaway registry goes away with its metrics; nothing in the metrics object
may refer back to the registry, or it would never be freed.
"""

from __future__ import annotations

import weakref
from typing import Any, ClassVar, Self

from prometheus_client import CollectorRegistry


class PerRegistry:
    """Base of a metrics class whose `__init__(registry)` creates its metrics there."""

    _by_registry: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._by_registry = weakref.WeakKeyDictionary()

    @classmethod
    def of(cls, registry: CollectorRegistry) -> Self:
        """The metrics in `registry`, created on first use."""
        metrics = cls._by_registry.get(registry)
        if metrics is None:
            metrics = cls._by_registry[registry] = cls(registry)
        return metrics
