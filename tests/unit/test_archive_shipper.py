"""The shell every archive sink shares, against a scripted far end: retries, drops, metrics.

The far end here is a fake Transport (no network) so each answer can be chosen; the
real servers are in tests/integration/test_archive_*.py.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from orbiter.satellite.archive.shipper import ArchiveMetrics, Delivery, Shipper
from orbiter.satellite.archive.spool import Batch, BatchSpool


class ScriptedEnd:
    """Answers from a script (a Delivery, an exception to raise, or "hang"); then delivers."""

    def __init__(self, script: list[Any] | None = None) -> None:
        self.script = list(script or [])
        self.received: list[bytes] = []
        self.attempts = 0

    async def start(self) -> None:
        pass

    async def send(self, batch: Batch) -> Delivery:
        self.attempts += 1
        step = self.script.pop(0) if self.script else None
        if step == "hang":
            await asyncio.sleep(3600)
        if isinstance(step, Exception):
            raise step
        if isinstance(step, Delivery):
            return step
        self.received.append(batch.payload)
        return Delivery(retry=False, delivered=batch.count)

    async def close(self) -> None:
        pass


def encode(items: list[str], first_seq: int) -> list[tuple[bytes, int]]:
    return [("".join(items).encode(), len(items))]


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def make(tmp_path: Path) -> Callable[..., tuple[Shipper[str], ScriptedEnd, CollectorRegistry]]:
    def build(
        script: list[Any] | None = None,
        max_buffer: int = 1000,
        max_bytes: int = 1 << 20,
        send_timeout: float = 5.0,
    ) -> tuple[Shipper[str], ScriptedEnd, CollectorRegistry]:
        registry = CollectorRegistry()
        end = ScriptedEnd(script)
        shipper: Shipper[str] = Shipper(
            "influxdb",
            "samples",
            BatchSpool(tmp_path / "spool", max_bytes),
            end,
            encode,
            ArchiveMetrics(registry),
            batch_size=3,
            flush_interval=0.05,
            max_buffer=max_buffer,
            send_timeout=send_timeout,
            min_backoff=0.01,
            max_backoff=0.05,
            rng=random.Random(1),
        )
        return shipper, end, registry

    return build


async def test_items_reach_the_far_end_in_order_and_are_counted(
    make: Any, async_wait_until: Callable[..., Awaitable[Any]]
) -> None:
    shipper, end, registry = make()
    await shipper.start()
    for word in "abcdefg":
        shipper.put(word, 1)
    await async_wait_until(lambda: b"".join(end.received) == b"abcdefg", 5, "all items sent")
    assert value(registry, "orbiter_archive_sent_total", sink="influxdb", kind="samples") == 7
    assert value(registry, "orbiter_archive_backlog_bytes", sink="influxdb") == 0
    assert value(registry, "orbiter_archive_backlog_age_seconds", sink="influxdb") == 0
    await shipper.stop()


async def test_failures_are_retried_with_backoff_and_nothing_is_lost(
    make: Any, async_wait_until: Callable[..., Awaitable[Any]]
) -> None:
    script = [
        ConnectionResetError("reset"),
        Delivery(retry=True, detail="HTTP 503"),
        ValueError("garbage in the answer"),
        "hang",
    ]
    shipper, end, registry = make(script, send_timeout=0.2)
    await shipper.start()
    shipper.put("x", 1)
    await async_wait_until(lambda: end.received == [b"x"], 10, "x delivered after 4 failures")
    assert value(registry, "orbiter_archive_failures_total", sink="influxdb") == 4
    await shipper.stop()


async def test_a_refused_batch_is_dropped_and_counted_and_the_next_one_flows(
    make: Any, async_wait_until: Callable[..., Awaitable[Any]]
) -> None:
    shipper, end, registry = make([Delivery(retry=False, dropped=2, detail="HTTP 400")])
    await shipper.start()
    shipper.put("a", 1)
    shipper.put("b", 1)
    await async_wait_until(lambda: end.attempts == 1, 5)
    shipper.put("c", 1)
    await async_wait_until(lambda: end.received == [b"c"], 5)
    assert value(registry, "orbiter_archive_dropped_total", sink="influxdb", reason="rejected") == 2
    await shipper.stop()


async def test_put_never_blocks_while_the_far_end_hangs_and_a_full_buffer_counts_drops(
    make: Any, async_wait_until: Callable[..., Awaitable[Any]]
) -> None:
    shipper, _, registry = make(["hang"] * 100, max_buffer=5, send_timeout=60)
    await shipper.start()
    for _ in range(8):
        shipper.put("z", 1)  # returns at once, whatever the far end does
    assert (
        value(registry, "orbiter_archive_dropped_total", sink="influxdb", reason="buffer_full") == 3
    )
    await async_wait_until(lambda: shipper.accepted == 5, 5, "the buffer written to the spool")
    await async_wait_until(
        lambda: value(registry, "orbiter_archive_backlog_age_seconds", sink="influxdb") > 0, 5
    )
    assert value(registry, "orbiter_archive_backlog_bytes", sink="influxdb") > 0
    await asyncio.wait_for(shipper.stop(), 5)  # a hanging send does not hold up stop


async def test_a_full_spool_drops_new_data_and_counts_it(
    make: Any, async_wait_until: Callable[..., Awaitable[Any]]
) -> None:
    shipper, _, registry = make(["hang"] * 100, max_bytes=150, send_timeout=60)
    await shipper.start()
    for _ in range(3):
        shipper.put("y" * 40, 1)
        await shipper.flush()
    assert shipper.accepted == 2
    assert (
        value(registry, "orbiter_archive_dropped_total", sink="influxdb", reason="spool_full") == 1
    )
    await shipper.stop()


async def test_what_was_spooled_is_sent_after_a_restart(
    make: Any, async_wait_until: Callable[..., Awaitable[Any]]
) -> None:
    shipper, _, _ = make(["hang"], send_timeout=60)
    await shipper.start()
    shipper.put("kept", 1)
    await shipper.stop()  # stop spools the buffer; the hung send never finished
    again, end, _ = make()
    await again.start()
    await async_wait_until(lambda: end.received == [b"kept"], 5)
    await again.stop()


async def test_a_spooled_batch_that_cannot_be_read_is_counted_lost_and_the_rest_flows(
    make: Any, tmp_path: Path, async_wait_until: Callable[..., Awaitable[Any]]
) -> None:
    shipper, _, registry = make()
    shipper.spool.segment_bytes = 1  # one segment per batch
    shipper.put("gone", 1)
    await shipper.flush()
    shipper.put("kept", 1)
    await shipper.flush()
    first = sorted((tmp_path / "spool").glob("seg-*.log"))[0]
    first.unlink()  # a damaged disk, an operator's rm
    end = shipper.transport
    await shipper.start()
    await async_wait_until(lambda: end.received == [b"kept"], 5)
    assert (
        value(registry, "orbiter_archive_dropped_total", sink="influxdb", reason="spool_error") == 1
    )
    await shipper.stop()
