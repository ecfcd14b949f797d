"""The OCSP answer cache of one process: what a PkiContext holds and ``pki.ocsp`` fills.

Its own module so that ``pki.context`` (which builds the cache) and ``pki.ocsp`` (which answers with the
context) need not import each other.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core.cache import Cache, EpochWatch

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
        self.watch = EpochWatch(None, check_seconds)  # the OCSP route reads the epoch and calls observe_epoch
        self._entries: Cache[bytes, OcspAnswer] = Cache("ocsp_answers", max_entries=max_entries, watch=self.watch)

    @property
    def hits(self) -> int:
        return self._entries.hits

    def needs_epoch_check(self) -> bool:
        return not self.watch.fresh()

    def observe_epoch(self, epoch: int) -> None:
        self.watch.observe(epoch)

    def get(self, request_der: bytes, now: dt.datetime) -> OcspAnswer | None:
        """The stored answer for these request bytes while ``now`` is before its nextUpdate."""
        answer = self._entries.get(request_der)
        if answer is None or answer.next_update is None or answer.next_update <= now:
            return None
        return answer

    def put(self, request_der: bytes, answer: OcspAnswer) -> None:
        if not answer.pre_produced or answer.next_update is None:
            return
        if len(request_der) > MAX_CACHED_REQUEST:
            # a client adding padding (an unknown extension, a requestor name) makes every request unique:
            # kept, 100,000 of them of 10 kB each would hold a gigabyte for one certificate's answer
            return
        self._entries.put(request_der, answer)

    def clear(self) -> None:
        """After this process changed a status: empty now, and read the epoch before the next answer."""
        self._entries.clear()
        self.watch.reset()

