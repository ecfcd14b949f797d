"""The open routes' rate limit (api/ratelimit.py): a token bucket per address kept in the database, so that
every worker process and node on one database shares it. On the embedded SQLite default and PostgreSQL."""
from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier

import pytest
from sqlalchemy import select

from api.container import Container
from api.models import RateLimitBucket
from api.ratelimit import RateLimited, RateLimiter
from core.db import make_engine, make_session_factory, transaction

T0 = 1_800_000_000.0  # a fixed wall-clock instant: the buckets are timed in Unix seconds


def _take(limiter: RateLimiter, client: str, now: float) -> bool:
    try:
        limiter.take(client, now)
    except RateLimited:
        return False
    return True


def test_a_burst_then_the_rate(container: Container) -> None:
    limiter = RateLimiter(container.sessions, rate=2.0, burst=3)
    assert [_take(limiter, "203.0.113.7", T0) for _ in range(4)] == [True, True, True, False]
    with pytest.raises(RateLimited) as refused:
        limiter.take("203.0.113.7", T0 + 0.25)  # half a token back: still refused, and nothing taken
    assert refused.value.retry_after == pytest.approx(0.25) and refused.value.code == "rate_limited"
    assert _take(limiter, "203.0.113.7", T0 + 0.5)  # one whole token after 1/rate seconds
    assert not _take(limiter, "203.0.113.7", T0 + 0.5)
    assert [_take(limiter, "203.0.113.7", T0 + 100) for _ in range(4)] == [True, True, True, False]  # full, not more
    assert _take(limiter, "198.51.100.1", T0 + 0.5)  # another address has its own bucket
    assert _take(RateLimiter(container.sessions, rate=2.0, burst=3, scope="other"), "203.0.113.7", T0 + 0.5)


def test_a_clock_a_little_behind_on_another_node_takes_nothing_back(container: Container) -> None:
    limiter = RateLimiter(container.sessions, rate=1.0, burst=2)
    assert _take(limiter, "a", T0 + 10) and _take(limiter, "a", T0 + 10)
    assert not _take(limiter, "a", T0 + 9)  # an earlier instant neither refills nor moves the bucket back
    assert _take(limiter, "a", T0 + 11)


def test_the_table_keeps_no_address_and_forgets_idle_buckets(container: Container) -> None:
    limiter = RateLimiter(container.sessions, rate=1.0, burst=5)
    limiter.take("203.0.113.7", T0)
    limiter.take("198.51.100.1", T0 + 10)
    with transaction(container.sessions, read_only=True) as session:
        keys = set(session.execute(select(RateLimitBucket.key)).scalars())
    assert keys == {limiter.key("203.0.113.7"), limiter.key("198.51.100.1")}
    assert not any("203.0.113" in k or "198.51" in k for k in keys) and all(len(k) == 32 for k in keys)
    assert limiter.forget_idle(T0 + 10) == 1  # the first is full again after burst/rate (+1) seconds: same as none
    with transaction(container.sessions, read_only=True) as session:
        assert set(session.execute(select(RateLimitBucket.key)).scalars()) == {limiter.key("198.51.100.1")}


BURST, TRIES = 40, 60


def _worker(url: str, start: Barrier, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    engine = make_engine(url, pool_size=2, max_overflow=0)
    limiter = RateLimiter(make_session_factory(engine), rate=0.001, burst=BURST, scope="shared")
    start.wait()
    out.put(sum(_take(limiter, "203.0.113.7", None) for _ in range(TRIES)))  # type: ignore[arg-type]
    engine.dispose()


def test_two_processes_on_one_database_together_allow_the_rate_not_twice(container: Container) -> None:
    """Two processes with their own engines take from one address's bucket at once: together they are let
    through exactly ``burst`` times (per-process buckets, as before, allowed twice that)."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    url = container.settings.resolved_database_url
    procs = [ctx.Process(target=_worker, args=(url, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    granted = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert sum(granted) == BURST, granted
