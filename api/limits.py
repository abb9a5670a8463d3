"""Abuse limits: requests per client address and minute on the public endpoints, answered with 429.

The counts live in this process. With several API replicas each keeps its own, so a client may get up to
``replicas x limit`` through; put the shared limit in the reverse proxy (or a shared store) when that matters.
Behind a proxy, run uvicorn with ``--forwarded-allow-ips`` so the client address is the caller's, not the proxy's.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from fastapi import Request

from api.errors import AppError

_WINDOW = 60.0
_MAX_KEYS = 50_000  # beyond this, forget idle clients rather than grow without bound


class RateLimiter:
    """A sliding window (a minute unless told) per (bucket, client)."""

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str], deque[float]] = {}

    def check(
        self, bucket: str, client: str, per_minute: int, *, now: float | None = None, window: float = _WINDOW
    ) -> int | None:
        """Count a request; None if it may pass, else the seconds to wait. ``per_minute`` counts per window."""
        if per_minute <= 0:
            return None
        now = time.monotonic() if now is None else now
        if len(self._hits) > _MAX_KEYS:
            self._forget_idle(now)
        hits = self._hits.setdefault((bucket, client), deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= per_minute:
            return max(1, math.ceil(hits[0] + window - now))
        hits.append(now)
        return None

    def _forget_idle(self, now: float) -> None:
        # Longer windows (second-factor failures) lose their counts early under this pressure only.
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - _WINDOW]:
            del self._hits[key]


def too_many_requests(retry_after: int) -> AppError:
    return AppError(
        429,
        "rate_limited",
        f"Too many requests from your address; please try again in {retry_after} seconds.",
        f"มีคำขอจากที่อยู่ของท่านมากเกินไป กรุณาลองใหม่ในอีก {retry_after} วินาที",
        headers={"Retry-After": str(retry_after)},
    )


def check_limit(request: Request, bucket: str) -> None:
    """Count this request in ``bucket`` against ``settings.rate_<bucket>_per_minute``; 429 beyond it."""
    per_minute: int = getattr(request.app.state.settings, f"rate_{bucket}_per_minute")
    client = request.client.host if request.client else "unknown"
    wait = request.app.state.rate_limiter.check(bucket, client, per_minute)
    if wait is not None:
        raise too_many_requests(wait)


def limit(bucket: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency counting requests in ``bucket`` (:func:`check_limit`). Async although it never waits:
    FastAPI runs a plain function in a worker thread, a thread hop on every request."""

    async def check(request: Request) -> None:
        check_limit(request, bucket)

    return check
