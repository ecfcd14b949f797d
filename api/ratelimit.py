"""Per-address rate limits for the open (unauthenticated) routes: verification and the citizen page.

A token bucket per client address, kept in the database (``rate_limit_buckets``), so every worker
process and every node on one database share it: two workers together allow the configured rate,
not twice it. Each request costs one short transaction with one atomic UPSERT (refill, take, answer
in a single statement), on PostgreSQL and on the embedded SQLite default alike; the bucket's key is a
hash of the scope and the address, never the address. A bucket idle long enough to be full again is
the same as none, and is deleted now and then by whichever worker passes by.

A deployment behind a proxy sets ``KYSO_TRUSTED_PROXIES`` so the limit applies to the real client
(the first address in ``X-Forwarded-For`` that is not a trusted proxy). Failed PIN and code attempts
(sign-in, activation) have their own throttle, also in the database: signing/activation/throttle.py.
"""
from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import itertools
import logging
import time

from fastapi import Request
from sqlalchemy import Float, String, bindparam, delete, text
from sqlalchemy.orm import Session, sessionmaker

from core.db import transaction
from core.errors import KysoError, Unavailable

from .models import RateLimitBucket

log = logging.getLogger("kyso.ratelimit")


class RateLimited(KysoError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after_seconds=round(retry_after, 1))
        self.retry_after = retry_after


# the tokens a bucket holds now: what it had, refilled for the time since (never backwards), at most the burst
_ELAPSED = "CASE WHEN :now > rate_limit_buckets.updated THEN :now - rate_limit_buckets.updated ELSE 0 END"
_REFILLED = (f"CASE WHEN rate_limit_buckets.tokens + ({_ELAPSED}) * :rate > :burst THEN :burst "
             f"ELSE rate_limit_buckets.tokens + ({_ELAPSED}) * :rate END")
_TAKE = text(f"""
INSERT INTO rate_limit_buckets (key, tokens, updated, granted) VALUES (:key, :burst - 1, :now, true)
ON CONFLICT (key) DO UPDATE SET
    tokens = CASE WHEN ({_REFILLED}) >= 1 THEN ({_REFILLED}) - 1 ELSE ({_REFILLED}) END,
    updated = CASE WHEN :now > rate_limit_buckets.updated THEN :now ELSE rate_limit_buckets.updated END,
    granted = ({_REFILLED}) >= 1
RETURNING tokens, granted
""").bindparams(bindparam("key", type_=String()), bindparam("now", type_=Float()),
                bindparam("rate", type_=Float()), bindparam("burst", type_=Float()))

_NO_SYNC = text("SET LOCAL synchronous_commit TO OFF")
CLEAN_EVERY = 1024  # requests of one process between two deletions of idle buckets


class RateLimiter:
    """``rate`` requests per second on average, bursts of up to ``burst``; per address and ``scope``, shared
    through the database by every process that uses it."""

    def __init__(self, sessions: sessionmaker[Session], rate: float, burst: int, *, scope: str = "verify") -> None:
        self.sessions, self.rate, self.burst, self.scope = sessions, rate, float(burst), scope
        self._count = itertools.count(1)

    def key(self, client: str) -> str:
        return hashlib.sha256(f"{self.scope}\0{client}".encode()).hexdigest()[:32]

    def take(self, client: str, now: float | None = None) -> None:
        """Take one request from ``client``'s bucket, or raise ``RateLimited`` (and take nothing).

        While the database cannot be reached the request is let through (and logged): verification still
        answers then, from what it holds without the registry, and the verification gate still bounds
        the work of each worker. Blocking: call it from a worker thread, not the event loop."""
        now = time.time() if now is None else now  # wall clock: the processes and nodes share it, not a monotonic one
        try:
            with transaction(self.sessions) as session:
                if session.get_bind().dialect.name == "postgresql":  # a bucket lost in a crash costs nothing
                    session.execute(_NO_SYNC)  # so no wait for the WAL flush
                tokens, granted = session.execute(_TAKE, {"key": self.key(client), "now": now, "rate": self.rate,
                                                          "burst": self.burst}).one()
        except Unavailable:
            log.warning("rate limit not applied: the database cannot be reached")
            return
        if next(self._count) % CLEAN_EVERY == 0:
            with contextlib.suppress(Unavailable):
                self.forget_idle(now)
        if not granted:
            wait = (1 - tokens) / self.rate
            raise RateLimited(f"too many verification requests from this address; try again in {wait:.0f} s "
                              "(quá nhiều yêu cầu, vui lòng thử lại sau)", wait)

    def forget_idle(self, now: float | None = None) -> int:
        """Delete the buckets idle long enough to be full again (the same as no bucket); how many went."""
        now = time.time() if now is None else now
        with transaction(self.sessions) as session:
            idle = RateLimitBucket.updated < now - self.burst / self.rate - 1
            result = session.execute(delete(RateLimitBucket).where(idle).execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)


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
    """Dependency for open routes that validate PDFs (``POST /api/v1/verify``, uploads on ``/v/{id}``). It
    waits on the database: FastAPI runs it in a worker thread; an ``async`` route calls it through
    ``run_in_threadpool``."""
    container = request.app.state.container
    limiter: RateLimiter | None = getattr(request.app.state, "verify_limiter", None)
    if limiter is None:
        settings = container.settings
        limiter = request.app.state.verify_limiter = RateLimiter(container.sessions, settings.verify_rate_per_second,
                                                                 settings.verify_burst)
    limiter.take(client_address(request, tuple(container.settings.trusted_proxies)))
