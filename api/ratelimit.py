"""Per-address rate limits for the open (unauthenticated) routes: verification and the citizen page.

A token bucket per client address, per worker process: enough to keep one caller from starving a
commune's service; a deployment behind a proxy sets ``KYSO_TRUSTED_PROXIES`` so the limit applies
to the real client (the first address in ``X-Forwarded-For`` that is not a trusted proxy).
"""
from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass

from fastapi import Request

from core.errors import KysoError


class RateLimited(KysoError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after_seconds=round(retry_after, 1))
        self.retry_after = retry_after


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` requests per second on average, bursts of up to ``burst``; per address."""

    def __init__(self, rate: float, burst: int, *, max_clients: int = 50_000) -> None:
        self.rate, self.burst, self.max_clients = rate, float(burst), max_clients
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= self.max_clients:
                    self._buckets.clear()  # forget everyone rather than grow without bound
                bucket = self._buckets[client] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens < 1:
                wait = (1 - bucket.tokens) / self.rate
                raise RateLimited(f"too many verification requests from this address; try again in {wait:.0f} s "
                                  "(quá nhiều yêu cầu, vui lòng thử lại sau)", wait)
            bucket.tokens -= 1


def client_address(request: Request, trusted_proxies: tuple[str, ...]) -> str:
    """The caller's address; ``X-Forwarded-For`` is believed only when the peer is a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    if not trusted_proxies or not trusted_address(peer, trusted_proxies):
        return peer
    forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
    for address in reversed(forwarded):
        if not trusted_address(address, trusted_proxies):
            return address
    return peer


def trusted_address(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


def limit_verification(request: Request) -> None:
    """Dependency for open routes that validate PDFs (``POST /api/v1/verify``, uploads on ``/v/{id}``)."""
    container = request.app.state.container
    limiter: RateLimiter | None = getattr(request.app.state, "verify_limiter", None)
    if limiter is None:
        settings = container.settings
        limiter = request.app.state.verify_limiter = RateLimiter(settings.verify_rate_per_second,
                                                                 settings.verify_burst)
    limiter.take(client_address(request, tuple(container.settings.trusted_proxies)))
