"""Scraping a real HTTP target into the TSDB: target labels, up, staleness."""

from __future__ import annotations

import math
import struct

from aiohttp import web

from orbiter.satellite.scrape import Scraper, Target, merge_labels
from orbiter.satellite.series import STALE_NAN_BITS, Matcher, MatchOp, labels_of
from orbiter.satellite.tsdb import TSDB

BODY = """# HELP orbiter_host_load1 Load average over 1 minute
# TYPE orbiter_host_load1 gauge
orbiter_host_load1 0.5
# TYPE orbiter_check_status gauge
orbiter_check_status{check="disk",job="exposed"} 2
"""


def is_stale(v: float) -> bool:
    return math.isnan(v) and struct.unpack("<Q", struct.pack("<d", v))[0] == STALE_NAN_BITS


def newest(tsdb: TSDB, name: str) -> dict[tuple, float]:
    out = {}
    for s in tsdb.select([Matcher("__name__", MatchOp.EQUAL, name)], 0, 2**62):
        out[s.labels] = s.values[-1]
    return out


async def serve(body: dict[str, object]) -> tuple[web.AppRunner, int]:
    async def metrics(request: web.Request) -> web.Response:
        if body["status"] != 200:
            return web.Response(status=int(body["status"]))
        if body.get("raw") is not None:
            return web.Response(body=body["raw"], content_type="text/plain", charset="utf-8")
        return web.Response(text=str(body["text"]))

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


def test_target_labels_win_over_exposed_ones_which_are_kept_as_exported() -> None:
    """Prometheus 2.42's honor_labels: false, so Satellite and Prometheus store one series."""
    merged = merge_labels(labels_of({"job": "exposed", "check": "a"}), labels_of({"job": "agent"}))
    assert dict(merged) == {"job": "agent", "exported_job": "exposed", "check": "a"}
    exposed = labels_of({"job": "j", "exported_job": "e", "instance": "i", "x": "1"})
    merged = merge_labels(exposed, labels_of({"job": "agent", "instance": "host:1"}))
    assert dict(merged) == {
        "job": "agent",
        "instance": "host:1",
        "exported_job": "e",  # exposed as is
        "exported_exported_job": "j",  # exported_job was taken
        "exported_instance": "i",
        "x": "1",
    }


async def test_a_scrape_stores_samples_with_target_labels_and_up() -> None:
    body: dict[str, object] = {"status": 200, "text": BODY}
    runner, port = await serve(body)
    tsdb = TSDB()
    ticks = iter(range(1_000_000, 2_000_000, 15))
    scraper = Scraper(tsdb, interval=60, timeout=2, clock=lambda: float(next(ticks)))
    await scraper.start()
    target = Target(
        f"http://127.0.0.1:{port}/metrics",
        labels_of({"job": "agent", "instance": f"127.0.0.1:{port}", "agent": "S1"}),
    )
    try:
        scraper.sync([target])
        state = scraper.targets[target.url]
        state.task.cancel()  # drive scrapes by hand below
        await scraper.scrape(state)
        checks = newest(tsdb, "orbiter_check_status")
        ((labels, value),) = checks.items()
        assert dict(labels)["agent"] == "S1" and dict(labels)["job"] == "agent"
        assert dict(labels)["check"] == "disk" and value == 2
        assert list(newest(tsdb, "up").values()) == [1.0]
        assert list(newest(tsdb, "scrape_samples_scraped").values()) == [2.0]

        # The check disappears from the exposition: its series goes stale at once.
        body["text"] = BODY.split("# TYPE orbiter_check_status")[0]
        await scraper.scrape(state)
        assert all(is_stale(v) for v in newest(tsdb, "orbiter_check_status").values())

        # The target fails: up is 0 and every series it exposed is stale.
        body["status"] = 500
        await scraper.scrape(state)
        assert list(newest(tsdb, "up").values()) == [0.0]
        assert all(is_stale(v) for v in newest(tsdb, "orbiter_host_load1").values())
        assert scraper.status()[0]["last_error"] == "HTTP 500"
    finally:
        await scraper.stop()
        await runner.cleanup()


async def test_a_target_that_cannot_be_reached_is_down() -> None:
    tsdb = TSDB()
    scraper = Scraper(tsdb, interval=60, timeout=1)
    await scraper.start()
    target = Target("http://127.0.0.1:9/metrics", labels_of({"job": "agent", "agent": "S9"}))
    try:
        scraper.sync([target])
        state = scraper.targets[target.url]
        state.task.cancel()
        await scraper.scrape(state)
        assert list(newest(tsdb, "up").values()) == [0.0]
        assert scraper.status()[0]["up"] is False
    finally:
        await scraper.stop()


async def test_a_body_that_is_not_utf8_is_a_failed_scrape_not_a_dead_loop() -> None:
    body: dict[str, object] = {"status": 200, "text": BODY}
    runner, port = await serve(body)
    tsdb = TSDB()
    ticks = iter(range(1_000_000, 2_000_000, 15))
    scraper = Scraper(tsdb, interval=60, timeout=2, clock=lambda: float(next(ticks)))
    await scraper.start()
    target = Target(f"http://127.0.0.1:{port}/metrics", labels_of({"job": "agent"}))
    try:
        scraper.sync([target])
        state = scraper.targets[target.url]
        state.task.cancel()
        body["text"] = None
        body["raw"] = b"orbiter_host_load1 \xff\xfe\n"
        await scraper.scrape(state)
        assert list(newest(tsdb, "up").values()) == [0.0]
        assert scraper.status()[0]["last_error"]
    finally:
        await scraper.stop()
        await runner.cleanup()
