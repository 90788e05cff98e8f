"""A token bucket per key (principal or peer address), for registration attempts."""

from __future__ import annotations

from dataclasses import dataclass, field

from orbiter.errors import Code, OrbiterError


class RateLimited(OrbiterError):
    code = Code.RESOURCE_EXHAUSTED


@dataclass
class TokenBuckets:
    """`burst` calls at once per key, then `rate` per second; pure (the caller gives `now`)."""

    rate: float = 10.0
    burst: float = 50.0
    max_keys: int = 10_000
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str, now: float) -> bool:
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._forget_full(now)
        self._buckets[key] = (tokens - 1.0, now)
        return True

    def _forget_full(self, now: float) -> None:
        """Drop keys whose buckets have refilled: they hold no state worth keeping."""
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.burst:
                del self._buckets[key]
