"""Enrolment by one-time code: the operator never types, sees or receives the specialist's PIN or
TOTP secret.

1. ``issue`` (operator: ``kyso activation enroll CRED``, ``POST …/activation``): a code of 16
   characters in 4 groups (``7KQM-3XWD-P9TA-HR4C``) from an alphabet without look-alikes (no 0/O,
   1/I/L, U/V), about 78 bits; stored as its SHA-256; valid ``enrolment_code_hours`` (72 h); a new
   code voids the credential's older unused ones. Enrolment, re-enrolment (lost phone) and PIN reset
   are the same operation: the specialist chooses a new PIN and scans a new authenticator secret.
2. ``redeem`` (the specialist on /me/enrol): the code, her PIN twice → the TOTP secret, shown only to
   her (QR, grouped base32 text key, ``otpauth:`` link). Her PIN hash and the sealed secret wait on the
   code's row; her existing factors keep working meanwhile. Redeeming again before step 3 (a closed
   page) starts over with a new secret.
3. ``finish``: the first code from the app proves the phone holds the secret; the code is used up
   (one conditional UPDATE: single use under any concurrency), the credential's factors are replaced,
   its /me sessions end, and her address becomes a known one for the throttle.

Wrong or expired codes are throttled per source address (``throttle``) and audited with it; every
step is audited, never with a code, PIN or secret.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction
from core.errors import InvalidInput, KysoError, NotFound
from pki.context import PkiContext
from signing.activation import accounts, crypto as sec, sessions, throttle
from signing.activation.factors import (
    ActivationRefused,
    InvalidActivationData,
    WeakPin,
    _refuse,
    _usable_credential,
    check_pin_format,
)
from signing.activation.models import ActivationData, ActivationState, EnrolmentCode, EnrolmentPurpose

ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"  # no 0/O, 1/I/L, U/V: read aloud or typed on a phone without doubt
GROUPS, GROUP = 4, 4


class UnknownEnrolmentCode(NotFound):
    """The code is wrong, expired, replaced by a newer one or already used (which one is not said)."""

    code = "enrolment_code_invalid"


@dataclass(frozen=True)
class IssuedCode:
    """What the operator gets: the code to hand to the specialist, its expiry, and what to tell her."""

    credential_id: str
    code: str
    purpose: str
    expires_at: dt.datetime
    instructions: str


@dataclass(frozen=True)
class Enrolment:
    """What only the specialist sees on /me/enrol: the secret as an otpauth: URI, a QR code and text."""

    credential_id: str
    uri: str
    png: bytes
    text_key: str  # base32 in groups of 4, as authenticator apps take it typed


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP))
    return "-".join(raw[i:i + GROUP] for i in range(0, len(raw), GROUP))


def normalise(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def _code_id(code: str) -> str:
    return hashlib.sha256(b"kyso-enrolment-code:" + normalise(code).encode()).hexdigest()


def text_key(secret: bytes) -> str:
    b32 = base64.b32encode(secret).decode().rstrip("=")
    return " ".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def instructions(base_url: str, code: str, expires_at: dt.datetime) -> str:
    return (f"Tell the specialist, in person or by phone (never by e-mail): open {base_url}/me/enrol on her phone, "
            f"type the code {code}, choose her PIN, add the key to her authenticator app and type its first code. "
            f"The code works once, until {expires_at:%Y-%m-%d %H:%M} UTC. Until she finishes, her current PIN and "
            "app keep working.")


def issue(ctx: PkiContext, credential_id: str, actor: str) -> IssuedCode:
    """A one-time enrolment code for ``credential_id`` (first enrolment, lost phone or forgotten PIN)."""
    now = clock.now()
    code = new_code()
    expires = now + dt.timedelta(hours=ctx.settings.enrolment_code_hours)
    try:
        with transaction(ctx.sessions) as session:
            _usable_credential(session, credential_id)
            data = session.get(ActivationData, credential_id)
            purpose = EnrolmentPurpose.REENROL if data is not None else EnrolmentPurpose.ENROL
            voided = cast("CursorResult[Any]", session.execute(
                update(EnrolmentCode).where(EnrolmentCode.credential_id == credential_id,
                                            EnrolmentCode.used_at.is_(None), EnrolmentCode.void_at.is_(None))
                .values(void_at=now).execution_options(synchronize_session=False))).rowcount
            session.add(EnrolmentCode(id=_code_id(code), credential_id=credential_id, purpose=purpose,
                                      created_by=actor, created_at=now, expires_at=expires))
            audit.record(session, actor=actor, action="activation:enrol-code:issue", subject=credential_id,
                         purpose=str(purpose), expires_at=expires.isoformat(), voided=voided)
    except ActivationRefused as exc:
        _refuse(ctx, "activation:enrol-code:deny", credential_id, actor, exc)
    return IssuedCode(credential_id, code, str(purpose), expires,
                      instructions(ctx.settings.base_url, code, expires))


def _open_code(session: Session, code: str, now: dt.datetime, *, redeemed: bool) -> EnrolmentCode | None:
    row = session.get(EnrolmentCode, _code_id(code)) if normalise(code) else None
    if (row is None or row.used_at is not None or row.void_at is not None
            or clock.aware(row.expires_at) <= now or (redeemed and row.redeemed_at is None)):
        return None
    return row


def _spend(session: Session, code_id: str, now: dt.datetime) -> bool:
    """Mark the code used: a conditional UPDATE, so of two concurrent confirmations exactly one passes."""
    result = cast("CursorResult[Any]", session.execute(
        update(EnrolmentCode).where(EnrolmentCode.id == code_id, EnrolmentCode.used_at.is_(None),
                                    EnrolmentCode.void_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False)))
    return result.rowcount == 1


def _keys(address: str) -> throttle.Keys:
    # a code names nobody until it is right: guesses are throttled per address only
    return throttle.Keys(person=f"enrol-code:{address}"[:120], address=address)


def _bad_code(ctx: PkiContext, session: Session, address: str, now: dt.datetime) -> UnknownEnrolmentCode:
    throttle.fail(session, _keys(address), now)
    return UnknownEnrolmentCode("this enrolment code is wrong, expired, replaced or already used; check it, or ask "
                                "the operator for a new one (mã không đúng, đã hết hạn hoặc đã dùng)")


def _opened(ctx: PkiContext, session: Session, code: str, address: str, now: dt.datetime, *,
            redeemed: bool) -> tuple[EnrolmentCode | None, KysoError | None]:
    """The open code's row, or why not: the address is throttled, or the code is wrong (a failure it pays for)."""
    try:
        throttle.check(session, _keys(address), ctx.settings, now)
    except throttle.Throttled as exc:
        return None, exc
    row = _open_code(session, code, now, redeemed=redeemed)
    if row is None:
        return None, _bad_code(ctx, session, address, now)
    return row, None


def redeem(ctx: PkiContext, code: str, pin: str, pin_again: str, *, address: str = throttle.LOCAL) -> Enrolment:
    """Step 2: the specialist's PIN for the code's credential; returns the new TOTP secret, for her eyes."""
    actor = f"address:{address}"
    now = clock.now()
    keys = sec.ActivationKeys.from_settings(ctx.settings)
    error: KysoError | None = None
    subject = "enrolment"
    with transaction(ctx.sessions) as session:
        row, error = _opened(ctx, session, code, address, now, redeemed=False)
        if error is None and row is not None:
            subject = row.credential_id
            try:
                if pin != pin_again:
                    raise InvalidInput("the two PINs differ; type the same PIN twice (hai mã PIN không giống nhau)")
                check_pin_format(pin)
                credential = _usable_credential(session, row.credential_id)
            except (InvalidInput, WeakPin, ActivationRefused) as exc:
                error = exc
            else:
                secret = sec.new_totp_secret()
                salt = sec.new_salt()
                row.pin_salt, row.pin_hash = salt, sec.hash_pin(pin, salt, keys)
                row.totp_secret, row.redeemed_at = sec.seal(secret, row.credential_id, keys), now
                audit.record(session, actor=actor, action="activation:enrol-code:redeem", subject=row.credential_id,
                             purpose=row.purpose, address=address)
                account = (f"{credential.certificate.common_name}" if credential.certificate else row.credential_id)
                name = accounts.username_of(session, row.credential_id)
                uri = sec.otpauth_uri(secret, f"{account} ({name or row.credential_id[-6:]})")
                result = Enrolment(row.credential_id, uri, sec.png_qr(uri), text_key(secret))
    if error is not None:
        _refuse(ctx, "activation:enrol-code:deny", subject, actor, error, address=address)
    return result


def finish(ctx: PkiContext, code: str, otp: str, *, address: str = throttle.LOCAL) -> str:
    """Step 3: the first code of her app; the code is spent and the credential's factors replaced.
    Returns the credential id."""
    actor = f"address:{address}"
    now = clock.now()
    keys = sec.ActivationKeys.from_settings(ctx.settings)
    error: KysoError | None = None
    subject = "enrolment"
    with transaction(ctx.sessions) as session:
        row, error = _opened(ctx, session, code, address, now, redeemed=True)
        if error is None and row is not None and (row.totp_secret is None or row.pin_hash is None
                                                  or row.pin_salt is None):
            row, error = None, _bad_code(ctx, session, address, now)
        elif error is None and row is not None:
            subject = credential_id = row.credential_id
            secret = sec.unseal(cast(bytes, row.totp_secret), credential_id, keys)
            step = sec.matching_step(secret, (otp or "").strip(), now)
            spent = step is not None and _spend(session, row.id, now)
            if step is None:
                throttle.fail(session, _keys(address), now)
                error = InvalidActivationData("that is not the code the app shows now; check the phone's clock and "
                                              "type the current code (mã không đúng)")
            elif not spent:
                error = _bad_code(ctx, session, address, now)
            else:
                data = session.get(ActivationData, credential_id)
                replaced = data is not None
                if data is None:
                    data = ActivationData(credential_id=credential_id)
                    session.add(data)
                data.state, data.pin_kdf = ActivationState.ACTIVE, sec.PIN_KDF
                data.pin_salt, data.pin_hash = cast(bytes, row.pin_salt), cast(bytes, row.pin_hash)
                data.totp_secret = sec.seal(secret, credential_id, keys)
                data.last_otp_step, data.failed_attempts, data.locked_at = step, 0, None
                data.enrolled_at, data.enrolled_by, data.confirmed_at = now, row.created_by, now
                data.pin_changed_at = None
                row.pin_salt = row.pin_hash = row.totp_secret = None
                ended = sessions.revoke_all(session, credential_id, "reenrolled", now)
                throttle.succeed(session, throttle.Keys(accounts.person_key(session, credential_id), address))
                audit.record(session, actor=f"specialist:{credential_id}", action="activation:enroll:confirm",
                             subject=credential_id, purpose=row.purpose, replaced=replaced, address=address,
                             sessions_ended=ended, issued_by=row.created_by)
    if error is not None:
        _refuse(ctx, "activation:enroll:deny", subject, actor, error, address=address)
    return credential_id


def outstanding(session: Session, credential_id: str) -> EnrolmentCode | None:
    """The credential's code still waiting to be used, if any (for status views; never the code itself)."""
    now = clock.now()
    for row in session.execute(select(EnrolmentCode).where(EnrolmentCode.credential_id == credential_id,
                                                           EnrolmentCode.used_at.is_(None),
                                                           EnrolmentCode.void_at.is_(None))).scalars():
        if clock.aware(row.expires_at) > now:
            return row
    return None
