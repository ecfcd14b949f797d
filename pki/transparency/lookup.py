"""What the log proves about one document, checked the way an outside verifier would, before anyone says so.

The citizen page and the verification report call ``document_log``. For each of the document's
entries it builds the C2SP tlog-proof from storage, then *verifies* it: the checkpoint's signature with
the log's key, the inclusion of the entry carried in the proof under the checkpoint's root, and that the
entry is about this document (and version, and signature). Only then is the entry "logged". Storage
that lies (an entry filed under another document, a tile changed, a checkpoint re-signed over a fork)
makes the proof fail, and the caller shows "not confirmed", never "logged".

``CheckpointWatch`` (one per process: the verifier holds it) remembers, per log key, the newest
checkpoint it verified. A checkpoint older than that one (a stale view: a rolled-back row, an old
copy) or of the same size with another root (a fork) is refused; a newer one must be consistent with
it (an RFC 6962 consistency proof from the tiles). That is what a monitor does across runs, done here across requests.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from .entry import EntryType
from .errors import LogFormatError, LogVerificationError
from .merkle import verify_consistency
from .models import TransparencyLog
from .note import Checkpoint, NoteVerifier, b64, verifier_key
from .proof import check_document_proof
from .service import consistency, document_entries, proof_for_entry, registration_pending

State = Literal["logged", "pending", "unconfirmed", "absent"]
LIFECYCLE = (EntryType.DOCUMENT_WITHDRAWN, EntryType.DOCUMENT_SUPERSEDED)


@dataclass(frozen=True)
class LoggedEntry:
    """One verified entry: where it is, the checkpoint that proves it, and the proof to download."""

    type: str
    index: int
    time: str
    version: int | None
    origin: str
    tree_size: int
    root_hash: str  # base64, as in the checkpoint
    proof: str  # the C2SP tlog-proof, verbatim


@dataclass(frozen=True)
class DocumentLog:
    """``logged``: the registration (of the asked version) is proven; ``pending``: queued, not yet in a
    checkpoint; ``unconfirmed``: storage has an entry but its proof did not verify (``reason`` says why);
    ``absent``: not in this log (or no log here). ``lifecycle``: proven withdrawal/supersession entries."""

    state: State
    registration: LoggedEntry | None = None
    lifecycle: tuple[LoggedEntry, ...] = ()
    lifecycle_pending: bool = False
    reason: str | None = None
    newer_pending: bool = False  # logged, and a later registration (a new version) waits for the sequencer


class CheckpointWatch:
    """The newest checkpoint verified so far, per log key: refuses stale and forked checkpoints."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, Checkpoint] = {}
        self._keys: dict[str, str] = {}  # origin -> the first verifier key seen for it in this process

    def check(self, key: str, cp: Checkpoint, session: Session) -> None:
        """Raise ``LogVerificationError`` for a checkpoint older than, forked from or inconsistent with the
        newest one seen; else remember it if it is newer."""
        with self._lock:
            pinned = self._keys.setdefault(cp.origin, key)
            seen = self._seen.get(key)
        if pinned != key:
            raise LogVerificationError(f"the key of log {cp.origin} changed since this process first checked it")
        if seen is not None:
            if cp.size < seen.size:
                raise LogVerificationError(f"stale checkpoint: size {cp.size}, but size {seen.size} was already seen")
            if cp.size == seen.size and cp.root_hash != seen.root_hash:
                raise LogVerificationError(f"forked log: two checkpoints of size {cp.size} with different roots")
            if cp.size > seen.size and seen.size:
                verify_consistency(seen.size, cp.size, seen.root_hash, cp.root_hash, consistency(session, seen.size))
        with self._lock:
            newest = self._seen.get(key)
            if newest is None or cp.size >= newest.size:
                self._seen[key] = cp

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()
        self._keys.clear()


def _proven(session: Session, verifier: NoteVerifier, key: str, watch: CheckpointWatch, idx: int, *,
            document_id: str, types: tuple[EntryType, ...], version: int | None,
            signature_sha256: str | None) -> LoggedEntry:
    proof = proof_for_entry(session, idx)
    cp, entry = check_document_proof(proof, verifier, document_id=document_id, types=types, version=version,
                                     signature_sha256=signature_sha256)
    if proof.index != idx:
        raise LogVerificationError(f"the proof is for entry {proof.index}, not {idx}")
    watch.check(key, cp, session)
    v = entry.get("version")
    return LoggedEntry(entry.type.value, idx, entry.get("time") or "", int(v) if v is not None else None,
                       cp.origin, cp.size, b64(cp.root_hash), proof.encode())


def document_log(session: Session, document_id: str, *, version: int | None = None,
                 signature_sha256: str | None = None, watch: CheckpointWatch) -> DocumentLog:
    """What the log proves about ``document_id`` (its ``version``, the one naming ``signature_sha256``)."""
    row = session.execute(select(TransparencyLog).where(TransparencyLog.id == 1)).scalar_one_or_none()
    if row is None:
        return DocumentLog("absent")
    key = verifier_key(row.origin, row.public_key)
    verifier = NoteVerifier.parse(key)
    candidates = [idx for idx, _ in reversed(document_entries(session, document_id))]
    registration, reason = None, None
    for idx in candidates:  # newest first: the first that proves what was asked
        try:
            registration = _proven(session, verifier, key, watch, idx, document_id=document_id,
                                   types=(EntryType.DOCUMENT_REGISTERED,), version=version,
                                   signature_sha256=signature_sha256)
            break
        except (LogVerificationError, LogFormatError) as exc:
            reason = reason or exc.message
    lifecycle: list[LoggedEntry] = []
    for idx, _ in document_entries(session, document_id, LIFECYCLE):
        try:
            lifecycle.append(_proven(session, verifier, key, watch, idx, document_id=document_id, types=LIFECYCLE,
                                     version=None, signature_sha256=None))
        except (LogVerificationError, LogFormatError) as exc:
            reason = reason or exc.message
    waiting = registration_pending(session, document_id, None, LIFECYCLE)
    if registration is not None:
        state: State = "logged"
    elif registration_pending(session, document_id, version):
        state = "pending"
    elif candidates:
        state = "unconfirmed"
        reason = reason or "no entry of this document proves what was asked"
    else:
        state = "absent"
    newer = state == "logged" and version is None and registration_pending(session, document_id)
    return DocumentLog(state, registration, tuple(lifecycle), waiting, reason if state == "unconfirmed" else None,
                       newer)


__all__ = ["CheckpointWatch", "DocumentLog", "LoggedEntry", "document_log"]
