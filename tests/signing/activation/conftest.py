"""Activation fixtures: a movable clock, an enrolled specialist, and what the specialist's phone knows."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from api.container import Container
from core import clock
from signing.activation import factors
from signing.activation import crypto as sec

PIN = "271828"


class Clock:
    """``core.clock`` frozen at a time the test moves by hand (restored afterwards)."""

    def __init__(self) -> None:
        now = int(dt.datetime.now(dt.UTC).timestamp())
        # at the start of a TOTP step, so moving a few seconds stays in the same step (else a test that
        # expects "same code" fails whenever it starts in a step's last seconds)
        self.now = dt.datetime.fromtimestamp(now - now % sec.TOTP_PERIOD, dt.UTC)

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)

    def next_step(self) -> None:
        """Move into the next TOTP time step (a fresh code)."""
        self.advance(sec.TOTP_PERIOD)


@pytest.fixture
def frozen() -> Iterator[Clock]:
    c = Clock()
    clock.set_clock(lambda: c.now)
    try:
        yield c
    finally:
        clock.set_clock(None)


@dataclass
class Phone:
    """The specialist's authenticator app: it knows only what the otpauth:// URI said."""

    secret: bytes
    clock: Clock | None = None

    def code(self, when: dt.datetime | None = None) -> str:
        when = when or (self.clock.now if self.clock else dt.datetime.now(dt.UTC))
        return sec.totp(self.secret, sec.step_at(when))


def enroll(container: Container, credential_id: str, frozen: Clock, pin: str = PIN) -> Phone:
    start = factors.enroll(container.pki, credential_id, pin, "token:operator")
    phone = Phone(sec.secret_from_uri(start.uri), frozen)
    factors.confirm(container.pki, credential_id, phone.code())
    frozen.next_step()
    return phone


@pytest.fixture
def enrolled(pki: Container, specialist: str, frozen: Clock) -> tuple[str, Phone]:
    return specialist, enroll(pki, specialist, frozen)


def some_hashes(n: int, algo: str = "sha256") -> list[bytes]:
    return [hashlib.new(algo, os.urandom(16)).digest() for _ in range(n)]
