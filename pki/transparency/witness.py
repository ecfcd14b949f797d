"""kyso as a witness (C2SP tlog-witness): cosign other logs' checkpoints, never two views of one log.

``POST <prefix>/add-checkpoint`` takes, in text, one line ``old <size>``, up to 63 lines of base64 consistency
proof hashes, a blank line, and the log's signed checkpoint. The witness:

1. knows the origin (``kyso witness add-log``) or answers 404; finds the log's own signature valid or 403;
2. checks ``old`` is the size it last cosigned for this origin, or answers 409 with that size;
3. checks the proof takes its recorded tree to the new one (same size: same root; size 0: the empty root),
   or answers 422. Only a checkpoint that contradicts the witness on its own — the log's signature on another
   root for the very size the witness cosigned (or on a non-empty size 0) — is a split view, and is recorded
   in the audit log once, beside the checkpoint the witness cosigned. A bad proof proves nothing: the proof is
   unsigned, and anyone can send a log's public checkpoint with junk lines, so it is refused without a write;
4. moves its record forward with a compare-and-swap (``UPDATE … WHERE size = old AND root = old root``), so
   two requests from the same old size can never both win (one 200, one 409), on SQLite and PostgreSQL,
   and only then returns its ``cosignature/v1`` line.

Malformed requests (syntax, old size above the checkpoint's) are 400.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core import audit, clock, metrics
from core.audit import AuditEntry, AuditHead
from core.db import transaction
from core.errors import ConfigurationError, Conflict, InvalidInput, NotFound, PermissionDenied
from core.settings import Settings
from hsm import KeyStoreRegistry
from hsm.interfaces import KeyType

from .cosignature import Cosigner, CosignerVerifier
from .errors import LogFormatError, LogVerificationError
from .merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from .note import Checkpoint, NoteVerifier, open_note, parse_note, raw_ed25519, unb64
from .witness_models import WitnessedLog, WitnessKey

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

log = logging.getLogger("kyso.witness")

MAX_REQUEST = 32 * 1024  # 63 proof lines, a checkpoint and 64 signature lines fit in well under 16 KiB
MAX_PROOF_LINES = 63
SIZE_MEDIA_TYPE = "text/x.tlog.size"
SPLIT_VIEW = "pki:witness:split-view"
_OLD = re.compile(r"old (0|[1-9][0-9]{0,18})")


class WitnessRequestMalformed(InvalidInput):
    """400: the request is not an add-checkpoint body (or its old size is above the checkpoint's)."""

    code = "witness_request_malformed"


class UnknownLog(NotFound):
    """404: this witness does not cosign for that origin."""

    code = "witness_unknown_log"


class CheckpointNotSigned(PermissionDenied):
    """403: no valid signature by the log's key (or a bad one by it)."""

    code = "witness_bad_log_signature"


class OldSizeMismatch(Conflict):
    """409: the client's old size is not the size this witness last cosigned (``details['size']``)."""

    code = "witness_old_size_mismatch"


class InconsistentCheckpoint(InvalidInput):
    """422: the checkpoint is not an append-only extension of the tree this witness cosigned."""

    code = "witness_inconsistent_checkpoint"


class NoWitnessKey(ConfigurationError):
    code = "witness_key_missing"


@dataclass(frozen=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]
    note: bytes


def parse_request(body: bytes) -> AddCheckpoint:
    """The three parts of an add-checkpoint body, syntax only (400 on anything else)."""
    if len(body) > MAX_REQUEST:
        raise WitnessRequestMalformed(f"an add-checkpoint request is at most {MAX_REQUEST} bytes")
    head, sep, note = body.partition(b"\n\n")
    if not sep:
        raise WitnessRequestMalformed("an add-checkpoint request is: old size, proof lines, a blank line, a checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise WitnessRequestMalformed("the old size and proof lines are ASCII") from None
    m = _OLD.fullmatch(lines[0])
    if m is None:
        raise WitnessRequestMalformed("the first line is 'old <size>', a decimal without leading zeros")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessRequestMalformed(f"at most {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in lines[1:]:
        try:
            h = unb64(line, "a consistency proof line")
        except LogFormatError as exc:
            raise WitnessRequestMalformed(exc.message) from None
        if len(h) != HASH_SIZE:
            raise WitnessRequestMalformed("a consistency proof line is one base64 SHA-256 hash")
        proof.append(h)
    return AddCheckpoint(int(m.group(1)), tuple(proof), note)


# -- the witness key --------------------------------------------------------------------------------------

def default_name(settings: Settings) -> str:
    """The witness's note name: ``KYSO_WITNESS_NAME``, else ``<host><path>/witness`` of the base URL."""
    if settings.witness_name:
        return settings.witness_name
    url = urlsplit(settings.base_url)
    return f"{url.netloc}{url.path.rstrip('/')}/witness"


def ensure_key(sessions: sessionmaker[Session], keystores: KeyStoreRegistry, name: str, *, actor: str) -> WitnessKey:
    """The witness key, made in the default keystore on first call (audited once). Two first calls at once:
    one key is kept, the other is deleted from the keystore."""
    with transaction(sessions, read_only=True) as session:
        row = session.execute(select(WitnessKey)).scalars().first()
    if row is not None:
        return row
    store = keystores.get()
    ref = store.generate(KeyType.ED25519, f"witness {name}")
    try:
        public = store.public_key(ref)
        if not isinstance(public, Ed25519PublicKey):
            raise NoWitnessKey("the keystore did not make an Ed25519 key for the witness")
        with transaction(sessions) as session:
            if session.execute(select(WitnessKey)).scalars().first() is not None:
                raise _MadeMeanwhile
            row = WitnessKey(name=name, key_ref=ref, public_key=raw_ed25519(public), created_at=clock.now())
            session.add(row)
            session.flush()
            audit.record(session, actor=actor, action="pki:witness-key:create", subject=name,
                         key_ref=ref, vkey=CosignerVerifier(name, row.public_key).vkey)
        return row
    except (_MadeMeanwhile, IntegrityError):
        store.delete(ref)
        return ensure_key(sessions, keystores, name, actor=actor)
    except BaseException:
        store.delete(ref)
        raise


class _MadeMeanwhile(Exception):
    """Another process made the witness key between our read and our write."""


def cosigner(session: Session, keystores: KeyStoreRegistry) -> Cosigner:
    row = session.execute(select(WitnessKey)).scalars().first()
    if row is None:
        raise NoWitnessKey("this kyso has no witness key yet: run `kyso witness key`")
    ref = row.key_ref
    return Cosigner(row.name, row.public_key, lambda message: keystores.for_ref(ref).sign_message(ref, message))


# -- the logs it witnesses ----------------------------------------------------------------------------------

def add_log(sessions: sessionmaker[Session], vkey: str, *, origin: str | None = None, actor: str) -> WitnessedLog:
    """Start witnessing a log: its verifier key (type 0x01) and origin (default: the key's name)."""
    try:
        verifier = NoteVerifier.parse(vkey)
    except LogFormatError as exc:
        raise InvalidInput(exc.message, code="witness_bad_log_key") from None
    origin = origin or verifier.name
    if not origin or "\n" in origin or len(origin) > 255:
        raise InvalidInput("a log origin is one line of at most 255 characters", code="witness_bad_origin")
    now = clock.now()
    with transaction(sessions) as session:
        if session.get(WitnessedLog, origin) is not None:
            raise Conflict(f"log {origin} is witnessed already", code="witness_log_exists")
        row = WitnessedLog(origin=origin, vkey=verifier.vkey, size=0, root_hash=EMPTY_ROOT, checkpoint=None,
                           added_at=now, updated_at=now)
        session.add(row)
        audit.record(session, actor=actor, action="pki:witnessed-log:add", subject=origin, vkey=verifier.vkey)
    return row


def logs(session: Session) -> list[WitnessedLog]:
    return list(session.execute(select(WitnessedLog).order_by(WitnessedLog.origin)).scalars())


def latest(session: Session, origin: str) -> str | None:
    """The latest checkpoint cosigned for ``origin`` (the log's signature and this witness's)."""
    row = session.get(WitnessedLog, origin)
    return row.checkpoint if row is not None else None


# -- add-checkpoint ----------------------------------------------------------------------------------------

def add_checkpoint(sessions: sessionmaker[Session], keystores: KeyStoreRegistry, body: bytes) -> str:
    """Answer one add-checkpoint request: this witness's cosignature line, or one of the errors above."""
    outcome = "malformed"
    try:
        line = _add_checkpoint(sessions, keystores, parse_request(body))
        outcome = "cosigned"
        return line
    except UnknownLog:
        outcome = "unknown_log"
        raise
    except CheckpointNotSigned:
        outcome = "bad_signature"
        raise
    except OldSizeMismatch:
        outcome = "conflict"
        raise
    except InconsistentCheckpoint:
        outcome = "inconsistent"
        raise
    finally:
        metrics.WITNESS_CHECKPOINTS.labels(outcome).inc()


def _add_checkpoint(sessions: sessionmaker[Session], keystores: KeyStoreRegistry, req: AddCheckpoint) -> str:
    try:
        parsed = parse_note(req.note)
        cp = Checkpoint.parse(parsed.text)
    except LogFormatError as exc:
        raise WitnessRequestMalformed(exc.message) from None
    if req.old_size > cp.size:
        raise WitnessRequestMalformed(f"the old size {req.old_size} is above the checkpoint's size {cp.size}")
    with transaction(sessions) as session:
        row = session.get(WitnessedLog, cp.origin)
        if row is None:
            raise UnknownLog(f"this witness does not cosign for log {cp.origin!r}")
        try:
            _, log_signatures = open_note(req.note, [NoteVerifier.parse(row.vkey)])
        except (LogVerificationError, LogFormatError):
            raise CheckpointNotSigned(f"the checkpoint carries no valid signature by the key of {cp.origin}") from None
        if req.old_size != row.size:
            raise OldSizeMismatch(f"this witness last cosigned size {row.size} of {cp.origin}", size=row.size)
        old_root = row.root_hash
        try:
            if cp.size == 0 and cp.root_hash != EMPTY_ROOT:
                raise LogVerificationError("a checkpoint of size 0 must carry the empty tree's root")
            verify_consistency(row.size, cp.size, old_root, cp.root_hash, req.proof)
            problem: str | None = None
        except LogVerificationError as exc:
            problem = exc.message
        if problem is None:
            cosig = cosigner(session, keystores).cosign(parsed.text, int(clock.now().timestamp()))
            # the log's verified signature and ours only: another line the sender added (a junk "cosignature"
            # under a trusted witness's name and key ID) would make monitors reject the note this witness serves
            note = parsed.text + "\n" + "".join(s.line for s in log_signatures) + cosig.line
            # compare-and-swap: a concurrent request that moved the record first makes this match no row
            done = cast("CursorResult[Any]", session.execute(
                update(WitnessedLog)
                .where(WitnessedLog.origin == cp.origin, WitnessedLog.size == req.old_size,
                       WitnessedLog.root_hash == old_root)
                .values(size=cp.size, root_hash=cp.root_hash, checkpoint=note, updated_at=clock.now())
                .execution_options(synchronize_session=False)))
            if done.rowcount != 1:
                session.rollback()
                now_size = session.execute(select(WitnessedLog.size).where(WitnessedLog.origin == cp.origin)
                                           ).scalar_one()
                raise OldSizeMismatch(f"this witness last cosigned size {now_size} of {cp.origin}", size=now_size)
            return cosig.line
    if (cp.size == row.size and cp.root_hash != old_root) or (cp.size == 0 and cp.root_hash != EMPTY_ROOT):
        # the log's key signed two roots for one size: a split view whatever the proof says; keep both notes
        _record_split_view(sessions, cp, row.size, old_root, req.note.decode("utf-8"), row.checkpoint, problem)
    raise InconsistentCheckpoint(f"the checkpoint is not consistent with size {row.size} this witness cosigned: "
                                 f"{problem}", size=row.size)


def _record_split_view(sessions: sessionmaker[Session], cp: Checkpoint, size: int, root: bytes, note: str,
                       cosigned: str | None, problem: str) -> None:
    """Audit a forked checkpoint once: the same fork sent again (anyone may replay it) writes nothing more."""
    with transaction(sessions) as session:
        # the audit head's lock first (audit.record takes it too): a second report of this fork waits, then sees it
        session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())
        for details in session.execute(select(AuditEntry.details).where(
                AuditEntry.action == SPLIT_VIEW, AuditEntry.subject == cp.origin)).scalars():
            seen = json.loads(details)
            if seen.get("presented_size") == cp.size and seen.get("presented_root") == cp.root_hash.hex():
                return
        log.warning("witness: log %s signed a checkpoint of size %d with another root than the one cosigned: %s",
                    cp.origin, cp.size, problem)
        audit.record(session, actor="witness", action=SPLIT_VIEW, subject=cp.origin,
                     cosigned_size=size, cosigned_root=root.hex(), presented_size=cp.size,
                     presented_root=cp.root_hash.hex(), checkpoint=note, cosigned_checkpoint=cosigned,
                     problem=problem)
