"""How late an asyncio event loop runs what is due: the stall every caller feels.

A timer is set every `interval` seconds; how much later than asked it fires is
the time the loop spent on something else (a long synchronous call, a GC
pause, a busy CPU). Each wake observes one sample, so a single stall of S
seconds is one sample of S: read the histogram's tail (p99, max) over a
window, not its mean.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar

from prometheus_client import CollectorRegistry, Gauge, Histogram

INTERVAL = 0.1
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LoopLag:
    """`orbiter_<subsystem>_event_loop_lag_seconds` for the loop it is started on.

    Several components on one loop (`orbiter up`'s master and agents, a bench's
    thousand agents) share one timer: each sample goes to all of them.
    """

    def __init__(self, subsystem: str, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            f"orbiter_{subsystem}_event_loop_lag_seconds",
            "How much later than due the event loop ran a timer (time it was busy elsewhere)",
            registry=registry,
            buckets=BUCKETS,
        )
        self.worst = Gauge(
            f"orbiter_{subsystem}_event_loop_lag_max_seconds",
            "The longest event-loop lag seen since the process started",
            registry=registry,
        )
        self._max = 0.0
        self._sampler: _Sampler | None = None

    def start(self) -> None:
        if self._sampler is None:
            self._sampler = _Sampler.of(asyncio.get_running_loop())
            self._sampler.sinks.add(self)

    async def stop(self) -> None:
        if self._sampler is not None:
            sampler, self._sampler = self._sampler, None
            sampler.sinks.discard(self)
            if not sampler.sinks:
                await sampler.stop()

    def observe(self, lag: float) -> None:
        lag = max(lag, 0.0)
        self.histogram.observe(lag)
        if lag > self._max:
            self._max = lag
            self.worst.set(lag)


class _Sampler:
    """The one timer of a loop."""

    _by_loop: ClassVar[dict[asyncio.AbstractEventLoop, _Sampler]] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sinks: set[LoopLag] = set()
        self.task = loop.create_task(self._run(), name="loop-lag")

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Sampler:
        sampler = cls._by_loop.get(loop)
        if sampler is None or sampler.task.done():
            sampler = cls._by_loop[loop] = cls(loop)
        return sampler

    async def stop(self) -> None:
        if self._by_loop.get(self.loop) is self:
            del self._by_loop[self.loop]
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _run(self) -> None:
        while True:
            due = self.loop.time() + INTERVAL
            await asyncio.sleep(INTERVAL)
            lag = self.loop.time() - due
            for sink in list(self.sinks):
                sink.observe(lag)
