"""One small per-process cache for all of kyso: bounded, optionally expiring, thread-safe, counted.

Every stateful cache of a process is one of these, created by the container (``api/container.py``)
or by the object that owns it, and passed to whoever uses it: never a module-level dict keyed by
``id(...)``, never an attribute stashed on another object.

- ``max_entries``: the least recently used entry goes first (counted as an eviction);
- ``ttl``: an entry older than this many seconds is a miss (and is dropped);
- ``max_weight`` with ``weigh``: a second bound, e.g. bytes of renderings;
- ``watch``: an ``EpochWatch``; when the counter it watches moves, every cache bound to it is cleared.

The revocation epoch (``pki.ocsp.revocation_epoch``: the sum of the CAs' CRL numbers, which every
revocation, release or CRL publication in any worker moves) is what kyso watches: the container
builds one ``EpochWatch`` over it and hands it to the caches whose answers a revocation changes.

Hits, misses and evictions show in ``/metrics`` by cache name (``core.metrics.CacheCounter``).
Safe to lose: the database is the truth.
"""
from __future__ import annotations

import collections
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

from . import metrics

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_MISSING: Any = object()


class EpochWatch:
    """A counter read from the database at most every ``check_seconds`` (0: at every check), and the
    caches to clear when it moves. ``read`` takes a session (None: the owner always reads the
    counter itself, e.g. the OCSP route in its own unit); ``observe`` takes a value the caller
    read itself (e.g. a verification, which reads the epoch at every call, unthrottled)."""

    def __init__(self, read: Callable[[Any], int] | None, check_seconds: float | Callable[[], float],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._check_seconds = check_seconds if callable(check_seconds) else (lambda: float(check_seconds))
        self._clock = clock
        self._lock = threading.Lock()
        self._caches: weakref.WeakSet[Cache[Any, Any]] = weakref.WeakSet()
        self.epoch: int | None = None
        self.checked = float("-inf")

    def bind(self, cache: Cache[Any, Any]) -> None:
        with self._lock:
            self._caches.add(cache)

    def fresh(self) -> bool:
        """Checked moments ago: a cache may answer without a database round trip."""
        return self.epoch is not None and self._clock() - self.checked < self._check_seconds()

    def moved(self, session: Any) -> bool:
        """Read the counter unless ``fresh``; True (and the bound caches cleared) when it changed."""
        if self.fresh():
            return False
        if self._read is None:
            raise TypeError("this watch has no reader: its owner reads the counter and calls observe()")
        return self.observe(self._read(session))

    def observe(self, epoch: int) -> bool:
        with self._lock:
            moved = epoch != self.epoch
            self.epoch, self.checked = epoch, self._clock()
            caches = list(self._caches) if moved else []
        for cache in caches:
            cache.clear()
        return moved

    def reset(self) -> None:
        """Forget the last reading: the next ``moved`` asks the database."""
        with self._lock:
            self.epoch, self.checked = None, float("-inf")


class Cache(Generic[K, V]):
    """A bounded map under one lock; see the module docstring."""

    def __init__(self, name: str, *, max_entries: int, ttl: float | None = None, watch: EpochWatch | None = None,
                 max_weight: int | None = None, weigh: Callable[[V], int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if (max_weight is None) != (weigh is None):
            raise ValueError("max_weight and weigh go together")
        self.name, self.max_entries, self.ttl, self.max_weight = name, max_entries, ttl, max_weight
        self._weigh = weigh
        self._clock = clock
        self._lock = threading.Lock()
        self._items: collections.OrderedDict[K, tuple[float, V]] = collections.OrderedDict()
        self._weight = 0
        self._counter = metrics.CacheCounter(name)
        self.hits = self.misses = self.evictions = 0
        if watch is not None:
            watch.bind(self)

    # -- lookups (counted) -----------------------------------------------------------------------
    def get(self, key: K, default: Any = None) -> V | Any:
        with self._lock:
            value = self._find(key)
            found = value is not _MISSING
            if found:
                self.hits += 1
            else:
                self.misses += 1
        self._counter.count(found)
        return value if found else default

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """The cached value, or ``load()`` stored (outside the lock: two threads may both load)."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = load()
            self.put(key, value)
        return value

    # -- changes ---------------------------------------------------------------------------------
    def put(self, key: K, value: V) -> None:
        weight = self._weigh(value) if self._weigh is not None else 0
        if self.max_entries <= 0 or (self.max_weight is not None and weight > self.max_weight):
            return
        evicted = 0
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._weight -= self._weight_of(old[1])
            self._items[key] = (self._clock(), value)
            self._weight += weight
            while len(self._items) > self.max_entries or (self.max_weight is not None
                                                          and self._weight > self.max_weight):
                _, (_, dropped) = self._items.popitem(last=False)
                self._weight -= self._weight_of(dropped)
                evicted += 1
            self.evictions += evicted
        if evicted:
            self._counter.evicted(evicted)

    def pop(self, key: K, default: Any = None) -> V | Any:
        """Take an entry out (not counted as a lookup)."""
        with self._lock:
            value = self._find(key)
            if value is _MISSING:
                return default
            del self._items[key]
            self._weight -= self._weight_of(value)
            return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._weight = 0

    # -- inspection (not counted) ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return self._find(key, touch=False) is not _MISSING  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[K]:
        return iter(self.snapshot())

    def snapshot(self) -> dict[K, V]:
        """The live entries, oldest first."""
        with self._lock:
            now = self._clock()
            return {k: v for k, (at, v) in self._items.items() if self.ttl is None or now - at < self.ttl}

    @property
    def weight(self) -> int:
        return self._weight

    # -- internals (under the lock) --------------------------------------------------------------
    def _find(self, key: K, *, touch: bool = True) -> V | Any:
        entry = self._items.get(key)
        if entry is None:
            return _MISSING
        if self.ttl is not None and self._clock() - entry[0] >= self.ttl:
            del self._items[key]
            self._weight -= self._weight_of(entry[1])
            return _MISSING
        if touch:
            self._items.move_to_end(key)
        return entry[1]

    def _weight_of(self, value: V) -> int:
        return self._weigh(value) if self._weigh is not None else 0


__all__ = ["Cache", "EpochWatch"]
