"""core/cache.py: bounds, expiry, revocation-epoch invalidation, thread safety and /metrics counters."""
from __future__ import annotations

import threading

import pytest
from prometheus_client import REGISTRY

from core.cache import Cache, EpochWatch


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_get_put_and_counters() -> None:
    cache: Cache[str, int] = Cache("test_basic", max_entries=4)
    assert cache.get("a") is None and cache.get("a", 7) == 7
    cache.put("a", 1)
    assert cache.get("a") == 1 and "a" in cache and len(cache) == 1
    assert (cache.hits, cache.misses) == (1, 2)
    assert _sample("kyso_cache_lookups_total", cache="test_basic", result="hit") == 1
    assert _sample("kyso_cache_lookups_total", cache="test_basic", result="miss") == 2
    assert cache.pop("a") == 1 and cache.pop("a", "gone") == "gone" and len(cache) == 0


def test_least_recently_used_is_evicted_and_counted() -> None:
    cache: Cache[int, int] = Cache("test_lru", max_entries=3)
    for i in range(3):
        cache.put(i, i)
    cache.get(0)  # 1 is now the least recently used
    cache.put(3, 3)
    assert set(cache.snapshot()) == {0, 2, 3}
    assert cache.evictions == 1
    assert _sample("kyso_cache_evictions_total", cache="test_lru") == 1
    cache.put(3, 33)  # replacing an entry evicts nothing
    assert cache.evictions == 1 and cache.get(3) == 33


def test_zero_entries_keeps_nothing() -> None:
    cache: Cache[int, int] = Cache("test_zero", max_entries=0)
    cache.put(1, 1)
    assert len(cache) == 0 and cache.get(1) is None


def test_entries_expire_after_ttl() -> None:
    clock = Clock()
    cache: Cache[str, str] = Cache("test_ttl", max_entries=10, ttl=5.0, clock=clock)
    cache.put("k", "v")
    clock.now += 4.9
    assert cache.get("k") == "v"
    clock.now += 0.2
    assert cache.get("k") is None and len(cache) == 0
    assert cache.snapshot() == {}


def test_weight_bound() -> None:
    cache: Cache[str, bytes] = Cache("test_weight", max_entries=10, max_weight=10, weigh=len)
    cache.put("a", b"12345")
    cache.put("b", b"12345")
    assert cache.weight == 10
    cache.put("c", b"123")
    assert set(cache.snapshot()) == {"b", "c"} and cache.weight == 8
    cache.put("huge", b"x" * 11)  # heavier than the whole cache: not kept, nothing evicted for it
    assert "huge" not in cache and cache.weight == 8
    cache.clear()
    assert len(cache) == 0 and cache.weight == 0
    with pytest.raises(ValueError):
        Cache("test_weight_bad", max_entries=1, max_weight=3)


def test_get_or_load_loads_once() -> None:
    cache: Cache[str, int] = Cache("test_load", max_entries=10)
    calls = []
    assert cache.get_or_load("k", lambda: calls.append(1) or 42) == 42
    assert cache.get_or_load("k", lambda: calls.append(1) or 0) == 42
    assert calls == [1]


def test_epoch_watch_clears_bound_caches_when_the_epoch_moves() -> None:
    clock = Clock()
    epoch = {"value": 1}
    reads = []

    def read(session: object) -> int:
        reads.append(session)
        return epoch["value"]

    watch = EpochWatch(read, check_seconds=2.0, clock=clock)
    a: Cache[str, int] = Cache("test_epoch_a", max_entries=10, watch=watch)
    b: Cache[str, int] = Cache("test_epoch_b", max_entries=10, watch=watch)
    unbound: Cache[str, int] = Cache("test_epoch_c", max_entries=10)
    assert not watch.fresh()
    assert watch.moved("s") is True  # first reading
    for cache in (a, b, unbound):
        cache.put("k", 1)
    epoch["value"] = 2
    assert watch.fresh() and watch.moved("s") is False and len(reads) == 1  # throttled: no round trip
    clock.now += 2.0
    assert watch.moved("s") is True and len(reads) == 2
    assert len(a) == 0 and len(b) == 0 and len(unbound) == 1
    a.put("k", 1)
    assert watch.observe(2) is False and len(a) == 1  # same epoch: kept
    assert watch.observe(3) is True and len(a) == 0  # read by the caller: unthrottled
    watch.reset()
    assert not watch.fresh()
    epoch["value"] = 3
    a.put("k", 1)
    assert watch.moved("s") is True and len(a) == 0  # after a reset the next reading counts as a move


def test_check_seconds_may_follow_settings() -> None:
    clock = Clock()
    seconds = {"v": 0.0}
    watch = EpochWatch(lambda s: 1, check_seconds=lambda: seconds["v"], clock=clock)
    watch.moved(None)
    assert not watch.fresh()  # 0: check every time
    seconds["v"] = 10.0
    assert watch.fresh()


def test_threads_agree_and_bounds_hold() -> None:
    cache: Cache[int, int] = Cache("test_threads", max_entries=50)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(2000):
                key = (i * 7 + offset) % 120
                value = cache.get(key)
                assert value is None or value == key * 2
                cache.put(key, key * 2)
                assert len(cache) <= 50
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(cache) <= 50
    assert cache.hits + cache.misses == 6 * 2000


def test_a_watch_without_a_reader_is_fed_by_its_owner() -> None:
    watch = EpochWatch(None, 3600)
    cache: Cache[str, int] = Cache("test_fed_watch", max_entries=4, watch=watch)
    cache.put("a", 1)
    with pytest.raises(TypeError, match="no reader"):
        watch.moved(session=None)
    assert watch.observe(1) and "a" not in cache  # the first reading moves from "unknown": the cache starts over
    cache.put("b", 2)
    assert not watch.observe(1) and cache.get("b") == 2
    assert watch.fresh() and not watch.moved(session=None)  # fresh: no reading needed, no reader asked
