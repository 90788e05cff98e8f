"""A token bucket per key (principal or peer address), for registrations and API calls."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from orbiter.errors import Code, OrbiterError


class RateLimited(OrbiterError):
    """Over a rate limit; `retry_after` is how many seconds until a call would pass."""

    code = Code.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def retry_after_header(self) -> str:
        """Whole seconds for HTTP's Retry-After, at least 1."""
        return str(max(1, math.ceil(self.retry_after)))


@dataclass
class TokenBuckets:
    """`burst` calls at once per key, then `rate` per second; pure (the caller gives `now`)."""

    rate: float = 10.0
    burst: float = 50.0
    max_keys: int = 10_000
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - last) * self.rate)

    def take(self, key: str, now: float) -> bool:
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._forget_full(now)
        self._buckets[key] = (tokens - 1.0, now)
        return True

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` has a whole token again (0 if it has one now)."""
        return max(0.0, (1.0 - self._tokens(key, now)) / self.rate)

    def _forget_full(self, now: float) -> None:
        """Drop keys whose buckets have refilled: they hold no state worth keeping."""
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.burst:
                del self._buckets[key]
