"""Throttling of failed PIN / one-time-code attempts (NIST SP 800-63B 5.2.2: rate limiting, not an
early hard lock that anyone who knows an identifier can trigger).

Failures are counted under three keys, each in ``activation_throttle``:

- the *person* (``cccd:<number>`` for a specialist whose certificate carries her CCCD, else
  ``cred:<credential id>``; ``who:<hash>`` for an identifier that matches nobody, counted exactly
  the same way so the answers do not tell real from unknown identifiers);
- the person *from one address* (``<person>@<address>``);
- the *address* (``addr:<address>``), whatever identifier it tries.

After ``activation_throttle_after`` (n0) failures of a person from one address, each further attempt
from there must wait 2^(n-n0) seconds after the last failure (capped at
``activation_throttle_cap_seconds``); an address trying many people waits after 4 x n0; the person
waits after 2 x n0 failures from everywhere, *except* from an address she once signed in from (the
pair is ``known``): a stranger's failures from elsewhere do not stop her. An attempt refused by the
throttle is not checked and not counted. A success clears the person's and the pair's counters.
The hard lock (``activation_lock_after`` failures on the credential) is counted by ``factors``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core import clock
from core.errors import KysoError
from core.settings import Settings
from signing.activation.models import ActivationThrottle

LOCAL = "local"  # the address of in-process callers (CLI, tests, the scheduler)


class Throttled(KysoError):
    """Too many failed attempts lately: wait ``retry_after`` seconds (HTTP 429, Retry-After)."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after_seconds=round(retry_after, 1))
        self.retry_after = retry_after


@dataclass(frozen=True)
class Keys:
    """The throttle keys of one attempt: who is tried, from where."""

    person: str
    address: str

    @property
    def pair(self) -> str:
        return f"{self.person}@{self.address}"[:160]

    @property
    def addr(self) -> str:
        return f"addr:{self.address}"[:160]


def unknown_person(identifier: str, key: bytes) -> str:
    """The person key of an identifier that matches nobody, keyed-hashed with ``key`` (a server secret): neither
    the table nor the audit log (the denial's subject) keeps what was typed, which may be her PIN in the wrong
    field or a citizen's ID number, in a form anyone can undo by trying every short number."""
    typed = b"kyso/throttle/identifier:" + identifier.strip().lower().encode()  # never the PIN's own HMAC input
    return "who:" + hmac.new(key, typed, hashlib.sha256).hexdigest()[:32]


def _delay(failures: int, after: int, cap: int) -> float:
    return 0.0 if failures < after else float(min(cap, 2 ** min(failures - after, 30)))


def wait(session: Session, keys: Keys, settings: Settings, now: dt.datetime | None = None) -> float:
    """Seconds this attempt must still wait (0: it may be checked now)."""
    now = now or clock.now()
    after, cap = settings.activation_throttle_after, settings.activation_throttle_cap_seconds
    rows = {r.key: r for r in session.execute(select(ActivationThrottle).where(
        ActivationThrottle.key.in_([keys.pair, keys.addr, keys.person]))).scalars()}
    pair, addr, person = rows.get(keys.pair), rows.get(keys.addr), rows.get(keys.person)
    longest = 0.0
    for row, threshold in ((pair, after), (addr, 4 * after), (None if pair and pair.known else person, 2 * after)):
        if row is None or row.last_failure_at is None:
            continue
        due = clock.aware(row.last_failure_at) + dt.timedelta(seconds=_delay(row.failures, threshold, cap))
        longest = max(longest, (due - now).total_seconds())
    return longest


def check(session: Session, keys: Keys, settings: Settings, now: dt.datetime | None = None) -> None:
    """Raise ``Throttled`` when this attempt must wait."""
    left = wait(session, keys, settings, now)
    if left > 0:
        raise Throttled(f"too many wrong attempts; wait {int(left) + 1} s and try again "
                        f"(nhập sai nhiều lần, vui lòng chờ {int(left) + 1} giây rồi thử lại)", left)


def _ensure(session: Session, key: str) -> None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(ActivationThrottle).values(key=key, failures=0, known=False).on_conflict_do_nothing())


def fail(session: Session, keys: Keys, now: dt.datetime | None = None) -> None:
    """Count one failure under the three keys (atomic increments)."""
    now = now or clock.now()
    for key in (keys.pair, keys.addr, keys.person):
        _ensure(session, key)
        session.execute(update(ActivationThrottle).where(ActivationThrottle.key == key)
                        .values(failures=ActivationThrottle.failures + 1, last_failure_at=now)
                        .execution_options(synchronize_session=False))


def succeed(session: Session, keys: Keys) -> None:
    """A success: the person's and the pair's counters start again; the pair becomes ``known``."""
    _ensure(session, keys.pair)
    session.execute(update(ActivationThrottle).where(ActivationThrottle.key == keys.pair)
                    .values(failures=0, known=True).execution_options(synchronize_session=False))
    session.execute(update(ActivationThrottle).where(ActivationThrottle.key == keys.person)
                    .values(failures=0).execution_options(synchronize_session=False))
