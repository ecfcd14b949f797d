"""A specialist's second factor in tests: the PIN, the authenticator app, enrolment."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass

from api.container import Container
from signing.activation import crypto as sec, enrolment
from tests.helpers.clock import FrozenClock

PIN = "271828"


@dataclass
class Phone:
    """The specialist's authenticator app: it knows only what the otpauth:// URI said."""

    secret: bytes
    clock: FrozenClock | None = None

    def code(self, when: dt.datetime | None = None) -> str:
        when = when or (self.clock.now if self.clock else dt.datetime.now(dt.UTC))
        return sec.totp(self.secret, sec.step_at(when))


def enroll(container: Container, credential_id: str, frozen: FrozenClock, pin: str = PIN) -> Phone:
    """The whole enrolment as it happens: the operator issues a code, the specialist redeems it with her
    PIN, her phone takes the secret and she confirms its first code."""
    issued = enrolment.issue(container.pki, credential_id, "token:operator")
    started = enrolment.redeem(container.pki, issued.code, pin, pin)
    phone = Phone(sec.secret_from_uri(started.uri), frozen)
    enrolment.finish(container.pki, issued.code, phone.code())
    frozen.next_step()
    return phone


def some_hashes(n: int, algo: str = "sha256") -> list[bytes]:
    return [hashlib.new(algo, os.urandom(16)).digest() for _ in range(n)]
