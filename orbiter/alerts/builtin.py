"""The built-in notifier: Alertmanager's routing and grouping inside Satellite.

`BuiltinNotifier` is a `Receiver` (see `notify.py`): `send` hands the
round's firing and resolved alerts to the pure `Dispatcher`
(`dispatch.py`); a tick loop asks it every `tick_interval` seconds which
messages are due and delivers each through the injected
`deliver(receiver, payload)`, one receiver integration at a time, with a
single-integration `ReceiverConfig` and Alertmanager's webhook payload of
the whole group (`deliver` applies the integration's `send_resolved` and
`max_alerts`, as `orbiter.alerts.deliver.deliver` does). Each delivery is a
task of its own, so a slow or failing receiver never holds up the others or
the tick loop. A delivery that raises is retried
with `notify.backoff_delay` unless the exception has `retryable = False`
(`orbiter.alerts.deliver.DeliveryFailed` does); a newer message for the same
group and integration replaces one still being retried, since it carries
the whole group state.

Metrics (in the registry given, or a new one):
`orbiter_notifier_notifications_total{receiver}` (delivery attempts),
`orbiter_notifier_notifications_failed_total{receiver}` (attempts that
raised), `orbiter_notifier_alerts_muted` (firing alerts silenced or
inhibited), `orbiter_notifier_aggregation_groups`.

A firing alert without `ends_at` resolves `global.resolve_timeout` after it
was last sent here, as in Alertmanager; a source that sends only
transitions (Satellite) passes `expire_unrefreshed=False`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from orbiter.alerts.amconfig import AlertmanagerConfig
from orbiter.alerts.dispatch import Dispatcher, Message, Muted
from orbiter.alerts.notify import backoff_delay
from orbiter.alerts.payload import Notification, webhook_payload
from orbiter.alerts.receiver_configs import ReceiverConfig
from orbiter.metrics_registry import PerRegistry

log = logging.getLogger("orbiter.alerts")

Deliver = Callable[[ReceiverConfig, dict[str, Any]], Awaitable[None]]
Clock = Callable[[], float]


def integrations(receiver: ReceiverConfig) -> list[ReceiverConfig]:
    """One single-integration copy of `receiver` per integration: webhook, email, Slack."""
    empty = ReceiverConfig(name=receiver.name)
    return [
        *(replace(empty, webhook_configs=(c,)) for c in receiver.webhook_configs),
        *(replace(empty, email_configs=(c,)) for c in receiver.email_configs),
        *(replace(empty, slack_configs=(c,)) for c in receiver.slack_configs),
    ]


def send_resolved_flags(receiver: ReceiverConfig) -> tuple[bool, ...]:
    return tuple(
        c.send_resolved
        for c in (*receiver.webhook_configs, *receiver.email_configs, *receiver.slack_configs)
    )


def message_payload(message: Message, external_url: str) -> dict[str, Any]:
    """The webhook (version 4) document for a message, the whole group in it.

    `deliver` shapes it per integration (`send_resolved`, `max_alerts`).
    """
    return webhook_payload(
        message.receiver,
        message.alerts,
        group_labels=message.group_labels,
        route_key=message.route_key,
        external_url=external_url,
    )


class NotifierMetrics(PerRegistry):
    """The built-in notifier's metrics in one registry (made once: a registry refuses twins)."""


    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            "orbiter_notifier_notifications",
            "Attempts of the built-in notifier to deliver a notification, per receiver",
            ["receiver"],
            registry=registry,
        )
        self.failed = Counter(
            "orbiter_notifier_notifications_failed",
            "Delivery attempts of the built-in notifier that failed, per receiver",
            ["receiver"],
            registry=registry,
        )
        self.muted = Gauge(
            "orbiter_notifier_alerts_muted",
            "Firing alerts the built-in notifier holds back (silenced or inhibited)",
            registry=registry,
        )
        self.groups = Gauge(
            "orbiter_notifier_aggregation_groups",
            "Aggregation groups the built-in notifier holds",
            registry=registry,
        )



class BuiltinNotifier:
    """Routes, groups, inhibits and sends alerts as Alertmanager would (module docstring)."""

    def __init__(
        self,
        config: AlertmanagerConfig,
        deliver: Deliver,
        *,
        name: str = "builtin",
        registry: CollectorRegistry | None = None,
        clock: Clock = time.time,
        tick_interval: float = 1.0,
        external_url: str = "",
        muted: Muted | None = None,
        expire_unrefreshed: bool = True,
        min_backoff: float = 0.5,
        max_backoff: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.deliver = deliver
        self.clock = clock
        self.tick_interval = tick_interval
        self.external_url = external_url
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.muted = muted or (lambda _labels: False)
        self.expire_unrefreshed = expire_unrefreshed
        self._rng = rng or random.Random()
        self._targets = {r.name: integrations(r) for r in config.receivers}
        self.dispatcher = self._dispatcher(config)
        self.registry = registry or CollectorRegistry()
        self.metrics = NotifierMetrics.of(self.registry)
        self._attempts, self._failed = self.metrics.attempts, self.metrics.failed
        for r in config.receivers:  # every receiver shows up at 0 before its first send
            self._attempts.labels(receiver=r.name)
            self._failed.labels(receiver=r.name)
        self._deliveries: dict[tuple[str, str, int], asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()

    def _dispatcher(self, config: AlertmanagerConfig) -> Dispatcher:
        return Dispatcher(
            config.route,
            inhibit_rules=config.inhibit_rules,
            muted=self.muted,
            resolve_timeout=config.global_.resolve_timeout if self.expire_unrefreshed else None,
            send_resolved={r.name: send_resolved_flags(r) for r in config.receivers},
        )

    def reload(self, config: AlertmanagerConfig) -> None:
        """Route with `config` from now on, keeping the alerts and what receivers were told.

        Deliveries in flight finish with the receiver configuration they started with.
        """
        dispatcher = self._dispatcher(config)
        dispatcher.adopt(self.dispatcher, self.clock())
        self.config, self.dispatcher = config, dispatcher
        self._targets = {r.name: integrations(r) for r in config.receivers}
        for r in config.receivers:
            self._attempts.labels(receiver=r.name)
            self._failed.labels(receiver=r.name)
        self._wakeup.set()

    # ------------------------------------------------------------------ Receiver

    async def send(self, batch: Sequence[Notification]) -> None:
        self.dispatcher.receive(batch, self.clock())
        deadline = self.dispatcher.next_deadline()
        if deadline is not None and deadline <= self.clock():
            self._wakeup.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"notifier {self.name}")

    async def stop(self) -> None:
        """Stop ticking and cancel deliveries in flight (their alerts are not sent)."""
        task, self._task = self._task, None
        tasks = [t for t in (task, *self._deliveries.values()) if t is not None]
        self._deliveries.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    # ------------------------------------------------------------------ loop

    async def tick(self) -> list[Message]:
        """Flush what is due now and start delivering it; returns the messages."""
        now = self.clock()
        messages = self.dispatcher.tick(now)
        for m in messages:
            self._start_delivery(m)
        # Set here, in the loop, rather than computed at scrape time from another thread.
        self.metrics.muted.set(self.dispatcher.muted_count(now))
        self.metrics.groups.set(len(self.dispatcher.groups()))
        return messages

    async def drain(self) -> None:
        """Wait until every delivery started so far has finished (for tests and shutdown)."""
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries.values()), return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a bug in one tick must not end notifications for good
                log.exception("notifier %s: tick failed", self.name)
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.tick_interval)

    def _start_delivery(self, message: Message) -> None:
        key = (message.group_key, message.receiver, message.integration)
        old = self._deliveries.pop(key, None)
        if old is not None and not old.done():
            old.cancel()  # superseded: the new message carries the whole group
        targets = self._targets.get(message.receiver, [])
        if message.integration >= len(targets):
            log.error("notifier %s: no integration %d in receiver %s", self.name,
                      message.integration, message.receiver)
            return
        target = targets[message.integration]
        task = asyncio.create_task(self._deliver(key, target, message))
        self._deliveries[key] = task

    async def _deliver(
        self, key: tuple[str, str, int], target: ReceiverConfig, message: Message
    ) -> None:
        try:
            payload = message_payload(message, self.external_url)
            attempt = 0
            while True:
                self._attempts.labels(receiver=message.receiver).inc()
                try:
                    await self.deliver(target, payload)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    self._failed.labels(receiver=message.receiver).inc()
                    if getattr(e, "retryable", True) is False:
                        log.error(
                            "notifier %s: receiver %s refused %s (%s); not retrying",
                            self.name, message.receiver, message.group_key, e,
                        )
                        return
                    delay = backoff_delay(
                        attempt, self.min_backoff, self.max_backoff, self._rng.random()
                    )
                    log.warning(
                        "notifier %s: delivering %s to %s failed (%s); attempt %d, retry in %.2fs",
                        self.name, message.group_key, message.receiver, e, attempt + 1, delay,
                    )
                    attempt += 1
                    await asyncio.sleep(delay)
        finally:
            if self._deliveries.get(key) is asyncio.current_task():
                del self._deliveries[key]
