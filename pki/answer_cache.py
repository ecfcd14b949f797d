"""The OCSP answer cache of one process: what a PkiContext holds and ``pki.ocsp`` fills.

Its own module so that ``pki.context`` (which builds the cache) and ``pki.ocsp`` (which answers with the
context) need not import each other.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core import metrics

_CACHE = metrics.CacheCounter("ocsp_answers")
MAX_CACHED_REQUEST = 512  # bytes; an RFC 5019 request (one SHA-1 CertID, no extensions) is about 80


@dataclass(frozen=True)
class OcspAnswer:
    der: bytes
    this_update: dt.datetime | None
    next_update: dt.datetime | None
    status: str  # good | revoked | unknown | unauthorized | malformed
    pre_produced: bool


class AnswerCache:
    """Pre-produced answers by the exact request bytes, in this process.

    Only nonce-less requests repeat byte for byte, so only pre-produced answers are stored, each
    until its nextUpdate. Every status change publishes CRLs, which bumps the CAs' CRL counters:
    their sum is the *revocation epoch*. A status change in this process clears the cache right
    after its commit and forces an epoch check before the next answer; a change made by another
    worker (or an answer a concurrent request cached while the change committed) is noticed at
    the next epoch check, at most ``check_seconds`` later (0: before every answer). Safe to lose:
    the database is the truth.
    """

    def __init__(self, check_seconds: float, max_entries: int = 100_000) -> None:
        self.check_seconds, self.max_entries = check_seconds, max_entries
        self._entries: dict[bytes, tuple[float, OcspAnswer]] = {}
        self._epoch: int | None = None
        self._checked_at = float("-inf")
        self.hits = self.misses = 0

    def needs_epoch_check(self, now: float) -> bool:
        return now - self._checked_at >= self.check_seconds

    def observe_epoch(self, epoch: int, now: float) -> None:
        if epoch != self._epoch:
            self._entries.clear()
            self._epoch = epoch
        self._checked_at = now

    def get(self, request_der: bytes, now: float) -> OcspAnswer | None:
        entry = self._entries.get(request_der)
        if entry is None or entry[0] <= now:
            self.misses += 1
            _CACHE.miss()
            return None
        self.hits += 1
        _CACHE.hit()
        return entry[1]

    def put(self, request_der: bytes, answer: OcspAnswer) -> None:
        if not answer.pre_produced or answer.next_update is None:
            return
        if len(request_der) > MAX_CACHED_REQUEST:
            # a client adding padding (an unknown extension, a requestor name) makes every request unique:
            # kept, 100,000 of them of 10 kB each would hold a gigabyte for one certificate's answer
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[request_der] = (answer.next_update.timestamp(), answer)

    def clear(self) -> None:
        self._entries.clear()
        self._checked_at = float("-inf")
