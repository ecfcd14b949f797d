"""Figure 8: the cost per request of the open routes' rate limit (api/ratelimit.py), a token bucket in the
database shared by every worker and node, beside an in-memory per-process bucket (the limiter kyso had
before: no database, but each worker allowed the full rate on its own)."""
from __future__ import annotations

import statistics
import threading
import time

from api.ratelimit import RateLimited, RateLimiter

from .common import Figure, Results, new_instance, say, workdir


class _MemoryBucket:
    """The reference: one token bucket per address in a dict behind a lock, as api/ratelimit.py had."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, client: str) -> bool:
        now = time.monotonic()
        with self.lock:
            tokens, updated = self.buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - updated) * self.rate)
            granted = tokens >= 1
            self.buckets[client] = (tokens - 1 if granted else tokens, now)
            return granted


def run(results: Results, backends: list[str], *, n: int, repeats: int) -> None:
    clients = [f"203.0.113.{i % 250}" for i in range(n)]  # 250 addresses, as a busy commune's citizens
    for backend in backends:
        say(f"[8] rate limit per request on {backend}: {n} requests × {repeats} rounds")
        with workdir("kyso-bench-limits-") as folder:
            inst = new_instance(folder, backend)
            try:
                limiter = RateLimiter(inst.container.sessions, rate=1e6, burst=10**9, scope="bench")
                memory = _MemoryBucket(1e6, 1e9)
                kyso_us, raw_us = [], []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    for c in clients:
                        memory.take(c)
                    raw_us.append((time.perf_counter() - t0) / n * 1e6)
                    t0 = time.perf_counter()
                    for c in clients:
                        try:
                            limiter.take(c)
                        except RateLimited:
                            pass
                    kyso_us.append((time.perf_counter() - t0) / n * 1e6)
                k, r = statistics.median(kyso_us), statistics.median(raw_us)
                say(f"    database bucket {k:.0f} µs, in-memory bucket {r:.1f} µs per request")
                results.add(Figure(f"8. rate limit per request ({backend})",
                                   "RateLimiter.take: one transaction, one UPSERT (shared by workers and nodes)", k,
                                   "µs", "in-memory per-process bucket (not shared: N workers allow N× the rate)", r,
                                   higher_is_better=False,
                                   note=f"median of {repeats} rounds of {n}; 250 addresses; one thread"))
            finally:
                inst.close()
