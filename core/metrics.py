"""Prometheus metrics, defined once here so every room can count without importing ``api/``.

Labels are small closed sets (route templates, levels, statuses, cache names): never a raw path,
serial, document id or actor, so the number of series stays bounded.

Several worker processes (``kyso serve --workers N``): when ``PROMETHEUS_MULTIPROC_DIR`` is set
before this module is imported (``serve`` sets it to a fresh folder), each worker writes its values
to files there and ``render`` adds them up, so ``/metrics`` shows the whole server whichever worker
answers.
"""
from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from .errors import KysoError, Unavailable

P = ParamSpec("P")
T = TypeVar("T")

# seconds: OCSP from cache is sub-millisecond, a B-LTA signature of a large PDF takes seconds
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter("kyso_http_requests", "HTTP requests answered, by route template and status",
                        ["method", "route", "status"])
HTTP_DURATION = Histogram("kyso_http_request_duration_seconds", "Time to answer an HTTP request, by route template",
                          ["method", "route"], buckets=_BUCKETS)
SIGNATURES = Counter("kyso_signatures", "PDF signatures: level reached (none when refused) and outcome "
                     "(signed, replayed, refused, unavailable, error)", ["level", "outcome"])
SIGNATURE_DURATION = Histogram("kyso_signature_duration_seconds", "Time to sign and register one PDF",
                               buckets=_BUCKETS)
VERIFICATIONS = Counter("kyso_verifications", "PDF verifications by ETSI indication (TOTAL-PASSED, TOTAL-FAILED, "
                        "INDETERMINATE) or refused (unreadable, too large) or error", ["outcome"])
VERIFICATION_DURATION = Histogram("kyso_verification_duration_seconds", "Time to validate one PDF",
                                  buckets=_BUCKETS)
OCSP_RESPONSES = Counter("kyso_ocsp_responses", "OCSP answers served, by certificate status (good, revoked, "
                         "unknown) or error status (malformed, unauthorized)", ["cert_status"])
CACHE_LOOKUPS = Counter("kyso_cache_lookups", "Lookups in kyso's in-process caches (hit rate: "
                        "rate(result=hit) / rate(all))", ["cache", "result"])
CACHE_EVICTIONS = Counter("kyso_cache_evictions", "Entries dropped from kyso's in-process caches to stay within "
                          "their bounds (not expiries, not clears)", ["cache"])
KEYSTORE_ERRORS = Counter("kyso_keystore_errors", "Keystore failures (unavailable, refused) by backend",
                          ["backend"])
AUDIT_ENTRIES = Counter("kyso_audit_entries", "Audit log entries written (in the caller's transaction: one "
                        "rolled back afterwards is counted too)", ["action"])
REPLICA_READS = Counter("kyso_replica_reads", "Read-only units sent to the read replica (KYSO_DATABASE_READ_URL), by "
                        "outcome: replica (answered there), miss (not found there, read again on the primary: "
                        "replica lag), unreachable (read on the primary: the replica is down)", ["outcome"])
WITNESS_CHECKPOINTS = Counter("kyso_witness_checkpoints", "add-checkpoint requests this kyso answered as a witness, "
                              "by outcome (cosigned, conflict, inconsistent, bad_signature, unknown_log, malformed)",
                              ["outcome"])
LOG_COSIGNATURES = Counter("kyso_log_cosignature_requests", "Cosignatures kyso's log asked of its witnesses, "
                           "by witness (configured names only) and outcome (cosigned, unreachable, refused, "
                           "ahead, bad_response)",
                           ["witness", "outcome"])


class CacheCounter:
    """Hit, miss and eviction counters of one cache, bound once: the OCSP hot path pays no label lookup."""

    def __init__(self, cache: str) -> None:
        self._hit = CACHE_LOOKUPS.labels(cache, "hit")
        self._miss = CACHE_LOOKUPS.labels(cache, "miss")
        self._evicted = CACHE_EVICTIONS.labels(cache)

    def hit(self) -> None:
        self._hit.inc()

    def miss(self) -> None:
        self._miss.inc()

    def count(self, found: bool) -> None:
        (self._hit if found else self._miss).inc()

    def evicted(self, n: int = 1) -> None:
        self._evicted.inc(n)


def counts_errors(backend: str, *kinds: type[BaseException]) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a keystore's one call-and-translate method: each error of ``kinds`` leaving it counts."""
    child = KEYSTORE_ERRORS.labels(backend)

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return fn(*args, **kwargs)
            except kinds:
                child.inc()
                raise

        return wrapper

    return decorate


def _refusal(exc: BaseException) -> str:
    if isinstance(exc, Unavailable):
        return "unavailable"
    return "refused" if isinstance(exc, KysoError) else "error"


def counted_signature(fn: Callable[P, T]) -> Callable[P, T]:
    """Count and time one signature; the result carries ``level`` and ``replayed``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        start = time.perf_counter()
        try:
            result: Any = fn(*args, **kwargs)
        except BaseException as exc:
            SIGNATURES.labels("none", _refusal(exc)).inc()
            raise
        SIGNATURE_DURATION.observe(time.perf_counter() - start)
        SIGNATURES.labels(result.level, "replayed" if result.replayed else "signed").inc()
        return result  # type: ignore[no-any-return]

    return wrapper


def counted_verification(fn: Callable[P, T]) -> Callable[P, T]:
    """Count and time one verification by the report's ``indication``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        start = time.perf_counter()
        try:
            report: Any = fn(*args, **kwargs)
        except BaseException as exc:
            VERIFICATIONS.labels(_refusal(exc)).inc()
            raise
        VERIFICATION_DURATION.observe(time.perf_counter() - start)
        VERIFICATIONS.labels(report.indication).inc()
        return report  # type: ignore[no-any-return]

    return wrapper


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")  # noqa: SIM112 - prometheus_client's older name


def render() -> tuple[bytes, str]:
    """The Prometheus text exposition: this process's registry, or every worker's files added up."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def process_exited(pid: int | None = None) -> None:
    """Drop a finished worker's live-gauge files (kyso has none yet; harmless, and right if one is added)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid or os.getpid())
