"""Signature activation: the specialist's sole control of their signing key (PIN + TOTP → SAD).

A credential is *enrolled* by the specialist herself, with a one-time code an operator hands her
(``enrolment``): she chooses her PIN and her phone's authenticator app takes a TOTP secret that
only she sees; the enrolment counts once a first code from the app is confirmed. To sign, the
specialist's PIN and a current code *authorize* a list of exact hashes and receive Signature
Activation Data (SAD): a random token, stored as its SHA-256 only, bound to the credential, the
client token that asked for it, the hash algorithm, the SHA-256 of every hash and its *purpose*
(``SADPurpose``: whole documents kyso signs and registers, or CSC signHash over hashes the client
computed), valid 5 minutes and usable once, at the door of its purpose only (``consume``). Secrets
at rest: see ``activation_secrets``.

Failed attempts (wrong PIN, wrong OTP or a replayed OTP, in ``sign_in``, ``authorize`` or
``change_pin``; the caller is never told which factor failed) are throttled per person and per
source address with growing delays (``throttle``, NIST SP 800-63B 5.2.2); only after
``activation_lock_after`` (100) failures on a credential does it lock until an operator ``unlock``s
it. A success resets the counters. A lock ends the credential's /me sessions.
A TOTP code is accepted once: the last used time step is stored and only later steps pass.

Every decision, granted or refused, is written to the audit log (``activation:*:grant|deny``…),
never with a PIN, code or secret. Each function runs its own transactions, so a refusal's
counter and audit entry are committed even though the caller gets an error.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import secrets
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction
from core.errors import Conflict, InvalidInput, KysoError, PermissionDenied
from pki.context import PkiContext
from pki.models import Credential, CredentialStatus
from pki.store import get_credential
from signing.activation import accounts, crypto as sec, sessions, throttle
from signing.activation.models import ActivationData, ActivationState, SADPurpose, SignatureActivation
from signing.material import SIGNING_PROFILES

MAX_FAILED_ATTEMPTS = 100  # the default of Settings.activation_lock_after
SAD_LIFETIME = dt.timedelta(minutes=5)
MAX_TRANSACTION = dt.timedelta(minutes=30)  # extendTransaction never takes a SAD past this, from the authorization
MAX_HASHES_PER_SAD = 100
HASH_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}
SAD_PREFIX = "kyso_sad_"


# -- errors ------------------------------------------------------------------------------------------
class NotEnrolled(Conflict):
    """The credential has no confirmed activation data (PIN + TOTP) yet."""

    code = "activation_not_enrolled"


class AlreadyEnrolled(Conflict):
    code = "activation_already_enrolled"


class InvalidActivationData(PermissionDenied):
    """The PIN or the OTP is wrong (or the OTP was already used); which one is not said."""

    code = "invalid_activation_data"


class CredentialLocked(PermissionDenied):
    code = "credential_locked"


class ActivationRefused(PermissionDenied):
    """The credential cannot be activated at all (retired, revoked, not a signing credential)."""

    code = "activation_refused"


class InvalidSAD(PermissionDenied):
    """SAD unknown, expired, already used, for another credential or client, or not covering a hash."""

    code = "invalid_sad"


class SADWrongPurpose(InvalidSAD):
    """A SAD authorized for one door (documents, or CSC signHash) presented at the other."""

    code = "sad_wrong_purpose"


PURPOSE_WORDS = {
    SADPurpose.DOCUMENTS: "signing whole documents (POST /api/v1/sign, /api/v1/sign/batch, signing requests, CSC "
                          "signatures/signDoc)",
    SADPurpose.HASH: "CSC signatures/signHash",
}
HOW_TO_ASK = {
    SADPurpose.DOCUMENTS: 'authorize with "kyso": {"purpose": "documents"} in credentials/authorize',
    SADPurpose.HASH: 'authorize without a kyso purpose (or with "kyso": {"purpose": "hash"})',
}


class WeakPin(InvalidInput):
    code = "invalid_pin_format"





# -- results -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SAD:
    token: str
    expires_at: dt.datetime

    def expires_in(self, now: dt.datetime | None = None) -> int:
        return max(0, int((self.expires_at - (now or clock.now())).total_seconds()))


@dataclass(frozen=True)
class ActivationStatus:
    credential_id: str
    state: str  # none | pending | active | locked
    failed_attempts: int
    enrolled_at: dt.datetime | None
    confirmed_at: dt.datetime | None
    locked_at: dt.datetime | None
    lock_after: int = MAX_FAILED_ATTEMPTS

    @property
    def usable(self) -> bool:
        return self.state == ActivationState.ACTIVE

    def as_dict(self) -> dict[str, object]:
        def iso(v: dt.datetime | None) -> str | None:
            return v.isoformat() if v else None

        return {"credential_id": self.credential_id, "state": self.state, "failed_attempts": self.failed_attempts,
                "attempts_left": (max(0, self.lock_after - self.failed_attempts)
                                  if self.state != ActivationState.NONE else None),
                "enrolled_at": iso(self.enrolled_at), "confirmed_at": iso(self.confirmed_at),
                "locked_at": iso(self.locked_at)}


# -- helpers -----------------------------------------------------------------------------------------
def _digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def _token_id(token: str) -> str:
    return _digest(token.encode())


def check_pin_format(pin: str) -> None:
    """6-12 digits, not one digit repeated, not a run (123456, 987654)."""
    if not (isinstance(pin, str) and pin.isascii() and pin.isdigit() and 6 <= len(pin) <= 12):
        raise WeakPin("the PIN must be 6 to 12 digits")
    steps = {int(b) - int(a) for a, b in itertools.pairwise(pin)}
    if len(set(pin)) == 1 or steps in ({1}, {-1}):
        raise WeakPin("the PIN must not be one digit repeated or a run like 123456; choose another")


def hash_algo_of(hashes: list[bytes], hash_algo: str | None) -> str:
    """The hash algorithm's name (sha256/384/512), checked against every hash's length; inferred when absent."""
    if not hashes:
        raise InvalidInput("give at least one hash to sign")
    if hash_algo is None:
        by_size = {size: name for name, size in HASH_SIZES.items()}
        names = {by_size.get(len(h)) for h in hashes}
        if len(names) != 1 or None in names:
            raise InvalidInput("the hashes are not all SHA-256, SHA-384 or SHA-512 values of one algorithm; "
                               "name the hash algorithm")
        return names.pop()  # type: ignore[return-value]
    name = hash_algo.lower().replace("-", "")
    if name not in HASH_SIZES:
        raise InvalidInput(f"hash algorithm {hash_algo!r} is not accepted (sha256, sha384 or sha512)")
    for h in hashes:
        if len(h) != HASH_SIZES[name]:
            raise InvalidInput(f"a {name} hash is {HASH_SIZES[name]} bytes; one of the hashes is {len(h)}")
    return name


def _row(session: Session, credential_id: str, *, lock: bool = False) -> ActivationData | None:
    query = select(ActivationData).where(ActivationData.credential_id == credential_id)
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def _status(credential_id: str, row: ActivationData | None, lock_after: int = MAX_FAILED_ATTEMPTS) -> ActivationStatus:
    if row is None:
        return ActivationStatus(credential_id, ActivationState.NONE, 0, None, None, None, lock_after)
    state = ActivationState.LOCKED if row.locked_at is not None else row.state
    return ActivationStatus(credential_id, state, row.failed_attempts, row.enrolled_at, row.confirmed_at, row.locked_at,
                            lock_after)


def _usable_credential(session: Session, credential_id: str) -> Credential:
    credential = get_credential(session, credential_id)
    cert = credential.certificate
    if credential.status != CredentialStatus.ACTIVE or cert is None:
        raise ActivationRefused(f"credential {credential_id} is {credential.status}; it cannot be activated")
    if cert.profile not in SIGNING_PROFILES:
        raise ActivationRefused(f"credential {credential_id} holds a {cert.profile} certificate, which does not sign "
                                "documents; only specialist and seal credentials take activation data")
    return credential


def _refuse(ctx: PkiContext, action: str, credential_id: str, actor: str, error: KysoError,
            **details: object) -> NoReturn:
    """Audit a refusal in a transaction of its own (it survives the failed request), then raise it."""
    with transaction(ctx.sessions) as session:
        audit.record(session, actor=actor, action=action, subject=credential_id, reason=error.message,
                     answered=error.code, **details)
    raise error


def _burn_step(session: Session, credential_id: str, step: int) -> bool:
    """Record ``step`` as used unless it (or a later one) already was: atomic, so two concurrent uses
    of one code cannot both pass."""
    result = cast("CursorResult[Any]", session.execute(
        update(ActivationData)
        .where(ActivationData.credential_id == credential_id,
               or_(ActivationData.last_otp_step.is_(None), ActivationData.last_otp_step < step))
        .values(last_otp_step=step).execution_options(synchronize_session=False)))
    return result.rowcount == 1


def _fail(session: Session, credential_id: str, now: dt.datetime, lock_after: int) -> int:
    """Count one failed attempt on the credential (atomic increment); lock at ``lock_after``, which
    ends its /me sessions. Returns the new count."""
    session.execute(update(ActivationData).where(ActivationData.credential_id == credential_id)
                    .values(failed_attempts=ActivationData.failed_attempts + 1)
                    .execution_options(synchronize_session=False))
    count = session.execute(select(ActivationData.failed_attempts)
                            .where(ActivationData.credential_id == credential_id)).scalar_one()
    if count >= lock_after:
        session.execute(update(ActivationData).where(ActivationData.credential_id == credential_id,
                                                     ActivationData.locked_at.is_(None))
                        .values(locked_at=now).execution_options(synchronize_session=False))
        sessions.revoke_all(session, credential_id, "locked", now)
    return count


def _check_factors(session: Session, row: ActivationData, pin: str, otp: str | None,
                   keys: sec.ActivationKeys, now: dt.datetime, *, pin_ok: bool | None = None) -> str | None:
    """``None`` when the PIN (and the OTP, unless ``otp`` is None) are right, else the true reason
    (for the audit log only). A valid OTP is burnt even when the PIN is wrong. ``pin_ok``: the PIN was
    already checked (``sign_in``): hashing it again would make a right PIN take longer than a wrong one."""
    if pin_ok is None:
        pin_ok = sec.pin_matches(pin if isinstance(pin, str) else "", row.pin_salt, row.pin_hash, keys)
    if otp is None:
        return None if pin_ok else "wrong_pin"
    step = sec.matching_step(sec.unseal(row.totp_secret, row.credential_id, keys),
                             otp if isinstance(otp, str) else "", now)
    otp_reason = None
    if step is None:
        otp_reason = "wrong_otp"
    elif not _burn_step(session, row.credential_id, step):
        otp_reason = "otp_replayed"
    if not pin_ok:
        return f"wrong_pin+{otp_reason}" if otp_reason else "wrong_pin"
    return otp_reason


# -- the specialist's own factors -------------------------------------------------------------------
@dataclass(frozen=True)
class SignIn:
    """A successful sign-in: the session cookie's token (shown once), the credential whose factors
    were proven and the person (to choose among her credentials)."""

    token: str
    credential_id: str
    person: str


def _fail_attempt(session: Session, ctx: PkiContext, credential_id: str, keys: throttle.Keys, actor: str,
                  now: dt.datetime) -> int:
    """One failure: the throttle keys and the credential's hard-lock counter (audited when it locks)."""
    throttle.fail(session, keys, now)
    lock_after = ctx.settings.activation_lock_after
    count = _fail(session, credential_id, now, lock_after)
    if count == lock_after:
        audit.record(session, actor=actor, action="activation:credential:lock", subject=credential_id,
                     failed_attempts=count, address=keys.address)
    return count


def change_pin(ctx: PkiContext, credential_id: str, old: str, new: str, *, actor: str | None = None,
               address: str = throttle.LOCAL) -> None:
    """The specialist replaces their PIN; a wrong old PIN is a failed attempt (throttled, counted
    toward the lock). The credential's /me sessions end: she signs in again with the new PIN."""
    actor = actor or f"specialist:{credential_id}"
    try:
        check_pin_format(new)
    except WeakPin as exc:
        _refuse(ctx, "activation:pin:deny", credential_id, actor, exc)
    keys = sec.ActivationKeys.from_settings(ctx.settings)
    now = clock.now()
    error: KysoError | None = None
    with transaction(ctx.sessions) as session:
        tkeys = throttle.Keys(accounts.person_key(session, credential_id), address)
        row = _row(session, credential_id, lock=True)
        if row is None or row.state != ActivationState.ACTIVE:
            error = NotEnrolled(f"credential {credential_id} has no confirmed enrolment")
        elif row.locked_at is not None:
            error = CredentialLocked(_locked_message(ctx, credential_id))
        else:
            try:
                throttle.check(session, tkeys, ctx.settings, now)
            except throttle.Throttled as exc:
                error = exc
        if error is None and row is not None:
            if _check_factors(session, row, old, None, keys, now) is not None:
                count = _fail_attempt(session, ctx, credential_id, tkeys, actor, now)
                error = _wrong(ctx, credential_id, count)
            else:
                salt = sec.new_salt()
                row.pin_salt, row.pin_hash = salt, sec.hash_pin(new, salt, keys)
                row.pin_kdf, row.pin_changed_at = sec.PIN_KDF, now
                row.failed_attempts = 0
                throttle.succeed(session, tkeys)
                ended = sessions.revoke_all(session, credential_id, "pin_changed", now)
                audit.record(session, actor=actor, action="activation:pin:change", subject=credential_id,
                             sessions_ended=ended, address=address)
    if error is not None:
        _refuse(ctx, "activation:pin:deny", credential_id, actor, error, address=address)


SIGN_IN_REFUSED = "the identifier, PIN or code is wrong"


def sign_in(ctx: PkiContext, identifier: str, pin: str, otp: str | None, *,
            address: str = throttle.LOCAL) -> SignIn:
    """The specialist's own page: her CCCD number or username, her PIN and a current code; opens a
    server-side session (``sessions``) on the credential whose factors matched. An identifier that
    names nobody is answered exactly like a wrong PIN, after the same work and with the same throttle;
    which of identifier, PIN or code was wrong is never said. Every attempt is audited with the source
    address, under the address as actor (the person is not known until she succeeds)."""
    actor = f"address:{address}"
    keys = sec.ActivationKeys.from_settings(ctx.settings)
    now = clock.now()
    error: KysoError | None = None
    reason = "ok"
    subject = "unknown"
    code = (otp or "").strip()
    with transaction(ctx.sessions) as session:
        person, found = accounts.resolve(session, identifier or "")
        tkeys = throttle.Keys(person or throttle.unknown_person(identifier or "", keys.pin_pepper), address)
        rows = [r for r in (_row(session, c.id, lock=True) for c in found)
                if r is not None and r.state == ActivationState.ACTIVE and r.locked_at is None]
        subject = ",".join(r.credential_id for r in rows) or (found[0].id if found else tkeys.person)
        try:
            throttle.check(session, tkeys, ctx.settings, now)
        except throttle.Throttled as exc:
            error, reason = exc, "throttled"
        if error is None:
            matched = None
            if not rows:  # the same work as one real credential: timing must not tell them apart
                sec.pin_matches(pin if isinstance(pin, str) else "", sec.new_salt(), b"", keys)
                reason = "no_enrolment" if found or person else "unknown_identifier"
            # every row is hashed, and the matching one not again: the time taken never says the PIN was right
            hits = [sec.pin_matches(pin if isinstance(pin, str) else "", row.pin_salt, row.pin_hash, keys)
                    for row in rows]
            matched = next((row for row, hit in zip(rows, hits, strict=True) if hit), None)
            if matched is not None:
                reason = _check_factors(session, matched, pin, code, keys, now, pin_ok=True) or "ok"
            elif rows:
                reason = "wrong_pin"
            if matched is None or reason != "ok":
                throttle.fail(session, tkeys, now)
                for row in rows if matched is None else [matched]:
                    lock_after = ctx.settings.activation_lock_after
                    if _fail(session, row.credential_id, now, lock_after) == lock_after:
                        audit.record(session, actor=actor, action="activation:credential:lock",
                                     subject=row.credential_id, failed_attempts=lock_after, address=address)
                error = InvalidActivationData(SIGN_IN_REFUSED)
            else:
                matched.failed_attempts = 0
                throttle.succeed(session, tkeys)
                person = person or accounts.person_key(session, matched.credential_id)
                token = sessions.open_session(session, matched.credential_id, person, address, now)
                subject = matched.credential_id
                audit.record(session, actor=f"specialist:{subject}", action="activation:signin:grant",
                             subject=subject, address=address)
                result = SignIn(token, subject, person)
    if error is not None:
        _refuse(ctx, "activation:signin:deny", subject, actor, error, why=reason, address=address)
    return result


def unlock(ctx: PkiContext, credential_id: str, actor: str) -> None:
    """An operator lifts a hard lock (after checking it is the specialist asking)."""
    with transaction(ctx.sessions) as session:
        row = _row(session, credential_id, lock=True)
        if row is None:
            raise NotEnrolled(f"credential {credential_id} has no activation data to unlock")
        audit.record(session, actor=actor, action="activation:credential:unlock", subject=credential_id,
                     was_locked=row.locked_at is not None, failed_attempts=row.failed_attempts)
        row.locked_at, row.failed_attempts = None, 0


def status(ctx: PkiContext, credential_id: str) -> ActivationStatus:
    with transaction(ctx.sessions) as session:
        get_credential(session, credential_id)
        return _status(credential_id, _row(session, credential_id), ctx.settings.activation_lock_after)


def status_in(session: Session, credential_id: str) -> ActivationStatus:
    """``status`` inside the caller's transaction."""
    return _status(credential_id, _row(session, credential_id))


def _locked_message(ctx: PkiContext, credential_id: str) -> str:
    return (f"credential {credential_id} is locked after {ctx.settings.activation_lock_after} failed attempts; an "
            f"operator must unlock it (`kyso activation unlock {credential_id}`)")


def _wrong(ctx: PkiContext, credential_id: str, count: int) -> KysoError:
    left = ctx.settings.activation_lock_after - count
    if left <= 0:
        return CredentialLocked(_locked_message(ctx, credential_id), attempts_left=0)
    return InvalidActivationData(f"the PIN or the one-time code is wrong; {left} attempt(s) left before the "
                                 "credential locks", attempts_left=left)


# -- authorization and SAD ---------------------------------------------------------------------------
def authorize(ctx: PkiContext, credential_id: str, pin: str, otp: str, hashes: list[bytes], hash_algo: str | None,
              num_signatures: int, actor: str, *, purpose: SADPurpose, lifetime: dt.timedelta = SAD_LIFETIME,
              address: str = throttle.LOCAL) -> SAD:
    """PIN + current OTP → SAD bound to exactly ``hashes`` and ``purpose`` (single use, ``lifetime``, this
    ``actor`` only). The purpose has no default: each door says which one it spends. Failures are throttled
    like ``sign_in`` (per person, per ``address``) and counted toward the lock."""
    purpose = SADPurpose(purpose)
    try:
        algo = hash_algo_of(hashes, hash_algo)
        if len(hashes) > MAX_HASHES_PER_SAD:
            raise InvalidInput(f"at most {MAX_HASHES_PER_SAD} hashes per authorization")
        if num_signatures != len(hashes):
            raise InvalidInput(f"numSignatures is {num_signatures} but {len(hashes)} hash(es) were given; "
                               "they must match")
    except InvalidInput as exc:
        _refuse(ctx, "activation:authorize:deny", credential_id, actor, exc)
    keys = sec.ActivationKeys.from_settings(ctx.settings)
    now = clock.now()
    error: KysoError | None = None
    reason: str | None = None
    token = SAD_PREFIX + secrets.token_urlsafe(32)
    bound = sorted({_digest(h) for h in hashes})
    with transaction(ctx.sessions) as session:
        try:
            _usable_credential(session, credential_id)
        except KysoError as exc:
            error = exc
        row = _row(session, credential_id, lock=True) if error is None else None
        if error is not None:
            pass
        elif row is None or row.state != ActivationState.ACTIVE:
            error = NotEnrolled(f"credential {credential_id} has no confirmed PIN and one-time-code enrolment; "
                                "an operator enrols it with `kyso activation enroll`")
        elif row.locked_at is not None:
            error, reason = CredentialLocked(_locked_message(ctx, credential_id)), "locked"
        else:
            tkeys = throttle.Keys(accounts.person_key(session, credential_id), address)
            try:
                throttle.check(session, tkeys, ctx.settings, now)
                reason = _check_factors(session, row, pin, otp, keys, now)
            except throttle.Throttled as exc:
                error, reason = exc, "throttled"
            if error is not None:
                pass
            elif reason is not None:
                count = _fail_attempt(session, ctx, credential_id, tkeys, actor, now)
                error = _wrong(ctx, credential_id, count)
            else:
                throttle.succeed(session, tkeys)
                row.failed_attempts = 0
                expires = now + lifetime
                session.add(SignatureActivation(
                    id=_token_id(token), credential_id=credential_id, principal=actor, hash_algo=algo,
                    num_signatures=num_signatures, hashes=json.dumps(bound), authorized_at=now, created_at=now,
                    expires_at=expires, purpose=purpose))
                audit.record(session, actor=actor, action="activation:authorize:grant", subject=credential_id,
                             hash_algo=algo, num_signatures=num_signatures, hashes=bound, purpose=purpose.value,
                             expires_at=expires.isoformat())
    if error is not None:
        _refuse(ctx, "activation:authorize:deny", credential_id, actor, error, why=reason or error.code,
                num_signatures=num_signatures, address=address)
    return SAD(token=token, expires_at=now + lifetime)


def _check_sad(session: Session, credential_id: str, sad: str, actor: str, now: dt.datetime,
               hashes: list[bytes] | None, hash_algo: str | None,
               purpose: SADPurpose | None) -> tuple[SignatureActivation | None, InvalidSAD | None]:
    """The SAD row and ``None``, or ``None`` and why it is refused (said to the caller: it names no secret).
    ``purpose`` None (extendTransaction) accepts either: the fresh SAD keeps the old one's."""
    row = session.get(SignatureActivation, _token_id(sad)) if isinstance(sad, str) and sad else None
    if row is None or row.credential_id != credential_id:
        return None, InvalidSAD("unknown SAD, or not one issued for this credential")
    if row.principal != actor:
        return None, InvalidSAD("this SAD was issued to another client")
    if purpose is not None and row.purpose != purpose:
        granted = SADPurpose(row.purpose)
        return None, SADWrongPurpose(
            f"this SAD was authorized for {PURPOSE_WORDS[granted]}, not for {PURPOSE_WORDS[purpose]}; a SAD is "
            f"spent only for what the specialist authorized: {HOW_TO_ASK[purpose]}",
            authorized_for=granted.value, used_for=purpose.value)
    if row.used_at is not None:
        return None, InvalidSAD("this SAD was already used; authorize again")
    if row.expires_at <= now:
        return None, InvalidSAD("this SAD expired; authorize again")
    if hash_algo is not None and hash_algo != row.hash_algo:
        return None, InvalidSAD(f"this SAD was authorized for {row.hash_algo} hashes, not {hash_algo}")
    if hashes is not None:
        bound = set(json.loads(row.hashes))
        if not hashes or any(_digest(h) not in bound for h in hashes):
            return None, InvalidSAD("a hash is not one this SAD was authorized for")
    activation = _row(session, credential_id)
    changed = max((clock.aware(t) for t in (activation.confirmed_at, activation.pin_changed_at) if t is not None),
                  default=None) if activation is not None else None
    if (activation is None or activation.state != ActivationState.ACTIVE or activation.locked_at is not None
            or (changed is not None and clock.aware(row.authorized_at) <= changed)):
        return None, InvalidSAD("the credential's activation data changed or is locked since this SAD was issued")
    return row, None


def _mark_used(session: Session, row: SignatureActivation, now: dt.datetime, used_for: str) -> bool:
    """Conditional update: exactly one of two concurrent uses of a SAD can succeed."""
    result = cast("CursorResult[Any]", session.execute(
        update(SignatureActivation)
        .where(SignatureActivation.id == row.id, SignatureActivation.used_at.is_(None),
               SignatureActivation.expires_at > now)
        .values(used_at=now, used_for=used_for).execution_options(synchronize_session=False)))
    return result.rowcount == 1


def consume(ctx: PkiContext, credential_id: str, sad: str, hashes: list[bytes], *, actor: str, purpose: SADPurpose,
            hash_algo: str | None = None) -> str:
    """Spend a SAD on ``hashes`` (each one it was bound to) at the door of ``purpose``, or raise ``InvalidSAD``
    (``SADWrongPurpose`` at another door, which spends nothing); atomic and audited. Returns the SAD's id (the
    SHA-256 of the token, as stored) for the records of what it signed."""
    now = clock.now()
    problem: InvalidSAD | None = None
    digests = [_digest(h) for h in hashes]
    with transaction(ctx.sessions) as session:
        row, problem = _check_sad(session, credential_id, sad, actor, now, hashes, hash_algo, SADPurpose(purpose))
        if row is not None and not _mark_used(session, row, now, "signed"):
            problem = InvalidSAD("this SAD was already used; authorize again")
        if problem is None:
            audit.record(session, actor=actor, action="activation:sad:consume", subject=credential_id,
                         hashes=digests, count=len(hashes), purpose=purpose.value)
    if problem is not None or row is None:
        _refuse(ctx, "activation:sad:deny", credential_id, actor, problem or InvalidSAD("unknown SAD"),
                count=len(hashes))
    return row.id


def extend(ctx: PkiContext, credential_id: str, sad: str, hashes: list[bytes] | None, *, actor: str,
           lifetime: dt.timedelta = SAD_LIFETIME) -> SAD:
    """CSC ``extendTransaction``: a fresh SAD for the same hashes (or the given subset), the old one spent.
    Never beyond ``MAX_TRANSACTION`` after the PIN and OTP were given."""
    now = clock.now()
    token = SAD_PREFIX + secrets.token_urlsafe(32)
    with transaction(ctx.sessions) as session:
        row, problem = _check_sad(session, credential_id, sad, actor, now, hashes, None, None)
        expires = None
        if row is not None:
            expires = min(now + lifetime, row.authorized_at + MAX_TRANSACTION)
            if expires <= now:
                problem = InvalidSAD("this signing transaction is too old to extend; authorize again with the PIN "
                                     "and code")
            elif not _mark_used(session, row, now, "extended"):
                problem = InvalidSAD("this SAD was already used; authorize again")
        if problem is None and row is not None and expires is not None:
            bound = sorted({_digest(h) for h in hashes}) if hashes else json.loads(row.hashes)
            session.add(SignatureActivation(
                id=_token_id(token), credential_id=credential_id, principal=actor, hash_algo=row.hash_algo,
                num_signatures=len(bound), hashes=json.dumps(bound), authorized_at=row.authorized_at,
                created_at=now, expires_at=expires, purpose=row.purpose))
            audit.record(session, actor=actor, action="activation:sad:extend", subject=credential_id,
                         hashes=bound, purpose=row.purpose, expires_at=expires.isoformat())
    if problem is not None or expires is None:
        _refuse(ctx, "activation:sad:deny", credential_id, actor, problem or InvalidSAD("cannot extend"))
    return SAD(token=token, expires_at=expires)


__all__ = [
    "MAX_FAILED_ATTEMPTS",
    "SAD",
    "ActivationData",
    "ActivationRefused",
    "ActivationStatus",
    "AlreadyEnrolled",
    "CredentialLocked",
    "InvalidActivationData",
    "InvalidSAD",
    "NotEnrolled",
    "SADPurpose",
    "SADWrongPurpose",
    "SignIn",
    "SignatureActivation",
    "WeakPin",
    "authorize",
    "change_pin",
    "consume",
    "extend",
    "sign_in",
    "status",
    "status_in",
    "unlock",
]
