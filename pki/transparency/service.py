"""The log service: create the log, sequence pending entries into signed checkpoints, read it back.

**Sequencing** (``sequence``), one transaction: lock the ``transparency_log`` row (``FOR UPDATE``
on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` holds the write lock from the start), take up to
``batch`` pending rows in id order, give them the next indices, store them, extend the hash tiles,
sign a checkpoint with the log's Ed25519 keystore key, delete the pending rows. A second sequencer
waits for the lock and then sees the new size and the remaining rows; the conditional ``UPDATE …
WHERE size = old`` and the ``DELETE`` row count make a lost race roll back rather than write a
duplicate or skip an index. Events only INSERT pending rows, so signing never waits for this.

Every ``anchor_seconds`` the sequencer also logs an ``audit-anchor`` entry: the audit chain's head
(sequence and hash), so a rewritten audit log no longer matches what was published.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction
from core.errors import Conflict, NotFound
from hsm import KeyType
from hsm.errors import UnsupportedAlgorithm

from ..context import PkiContext
from . import events
from .entry import Entry, EntryType
from .errors import LogFormatError, NotYetLogged
from .merkle import EMPTY_ROOT, consistency_proof, inclusion_proof, leaf_hash, tree_hash
from .models import LogCheckpoint, LogEntry, LogPending, LogTile, TransparencyLog
from .note import Checkpoint, NoteSigner, NoteVerifier, raw_ed25519, verifier_key
from .proof import TlogProof
from .tiles import TILE_WIDTH, TileHashReader, append_leaves, bundles_for_size, encode_bundle, tiles_for_size

log = logging.getLogger("kyso.transparency")

DEFAULT_BATCH = 4096
DEFAULT_ANCHOR_SECONDS = 3600


class LogNotInitialised(NotFound):
    code = "log_not_initialised"


def origin_for(base_url: str) -> str:
    """The checkpoint origin: the scheme-less URL prefix of the log (``kyso.example.vn/log``)."""
    parts = urlsplit(base_url)
    return f"{parts.netloc}{parts.path.rstrip('/')}/log"


@dataclass(frozen=True)
class LogInfo:
    origin: str
    vkey: str
    size: int
    root_hash: bytes
    checkpoint: str
    created: bool = False


def _info(row: TransparencyLog, created: bool = False) -> LogInfo:
    return LogInfo(row.origin, verifier_key(row.origin, row.public_key), row.size, row.root_hash, row.checkpoint,
                   created)


def _signer(ctx: PkiContext, row: TransparencyLog) -> NoteSigner:
    store = ctx.keystores.for_ref(row.key_ref)
    return NoteSigner(row.origin, row.public_key, lambda message: store.sign_message(row.key_ref, message))


def init_log(ctx: PkiContext, actor: str, *, keystore: str | None = None, origin: str | None = None) -> LogInfo:
    """Create the log (an Ed25519 key in the keystore, the empty checkpoint), or return the existing one."""
    with transaction(ctx.sessions, read_only=True) as session:
        row = session.get(TransparencyLog, 1)
        if row is not None:
            return _info(row)
    origin = origin or origin_for(ctx.settings.base_url)
    store = ctx.keystores.get(keystore)
    try:
        ref = store.generate(KeyType.ED25519, f"log:{origin}")
    except (KeyError, NotImplementedError):  # a backend without Ed25519 support yet
        raise UnsupportedAlgorithm(f"the {store.scheme} keystore cannot make Ed25519 keys for the log's checkpoints; "
                                   "run `kyso log init --keystore soft` (or a keystore that can)") from None
    try:
        public = store.public_key(ref)
        if not isinstance(public, Ed25519PublicKey):
            raise TypeError(f"keystore key {ref} is not an Ed25519 key")
        raw = raw_ed25519(public)
        with transaction(ctx.sessions) as session:
            if session.get(TransparencyLog, 1, with_for_update=True) is not None:
                raise _Present
            now = clock.now()
            signer = NoteSigner(origin, raw, lambda m: store.sign_message(ref, m))
            note = Checkpoint(origin, 0, EMPTY_ROOT).sign([signer])
            row = TransparencyLog(id=1, origin=origin, key_ref=ref, public_key=raw, size=0, root_hash=EMPTY_ROOT,
                                  checkpoint=note, created_at=now, updated_at=now)
            session.add(row)
            session.add(LogCheckpoint(size=0, note=note, created_at=now))
            audit.record(session, actor=actor, action="pki:log:create", subject=origin, key_ref=ref,
                         vkey=verifier_key(origin, raw))
            session.flush()
            return _info(row, created=True)
    except BaseException as exc:
        store.delete(ref)
        if isinstance(exc, _Present):
            return log_info(ctx)
        raise


class _Present(Exception):
    """Another process created the log while our key was being generated."""


def log_info(ctx: PkiContext) -> LogInfo:
    with transaction(ctx.sessions, read_only=True) as session:
        return _info(_row(session))


def _row(session: Session, *, lock: bool = False) -> TransparencyLog:
    row = session.get(TransparencyLog, 1, with_for_update=lock)
    if row is None:
        raise LogNotInitialised("the transparency log is not set up here; run `kyso log init`")
    return row


@dataclass(frozen=True)
class _Row:
    """A pending entry with what the tables index it by (taken when it was queued, not re-parsed)."""

    entry: bytes
    type: str
    commune: str | None
    document_id: str | None


@dataclass(frozen=True)
class SequenceResult:
    appended: int
    size: int
    anchored: bool = False


def sequence(ctx: PkiContext, *, batch: int = DEFAULT_BATCH, anchor_seconds: int | None = DEFAULT_ANCHOR_SECONDS,
             actor: str = "system:sequencer") -> SequenceResult:
    """One batch: pending entries → indices, tiles, a signed checkpoint. Safe to run concurrently.

    An idle pass only reads (no write lock on SQLite), so a sequencer in every worker costs nothing."""
    with transaction(ctx.sessions, read_only=True) as session:
        row = session.get(TransparencyLog, 1)
        if row is None:
            return SequenceResult(0, 0)
        idle = session.execute(select(LogPending.id).limit(1)).first() is None
        if idle and not _anchor_due(row, anchor_seconds, clock.now()):
            return SequenceResult(0, row.size)
    with transaction(ctx.sessions) as session:
        row = session.get(TransparencyLog, 1, with_for_update=True)
        if row is None:
            return SequenceResult(0, 0)
        pending = session.execute(select(LogPending.id, LogPending.entry, LogPending.type, LogPending.commune_code,
                                         LogPending.document_id).order_by(LogPending.id).limit(batch)).all()
        now = clock.now()
        entries = [_Row(entry, type_, commune, document_id) for _, entry, type_, commune, document_id in pending]
        anchored = False
        if _anchor_due(row, anchor_seconds, now):
            head = session.get(audit.AuditHead, 1)
            if head is not None:
                anchor = events.audit_anchor(seq=head.seq, head=head.hash, at=now)
                entries.append(_Row(anchor.encode(), anchor.type.value, None, None))
                row.anchored_at, anchored = now, True
        if not entries:
            return SequenceResult(0, row.size)
        old = row.size
        tiles: dict[tuple[int, int], bytes] = {}

        def read(level: int, index: int) -> bytes:
            if (level, index) in tiles:
                return tiles[(level, index)]
            tile = session.get(LogTile, (level, index))
            return tile.data if tile is not None else b""

        changed = append_leaves(old, [leaf_hash(e.entry) for e in entries], read)
        tiles.update(changed)
        new_size = old + len(entries)
        root = tree_hash(new_size, TileHashReader(read))
        for (level, index), data in changed.items():
            tile = session.get(LogTile, (level, index))
            if tile is None:
                session.add(LogTile(level=level, idx=index, data=data))
            else:
                tile.data = data
        session.execute(insert(LogEntry), [
            {"idx": old + offset, "entry": e.entry, "type": e.type, "commune_code": e.commune,
             "document_id": e.document_id, "sequenced_at": now} for offset, e in enumerate(entries)])
        if pending:
            gone = session.execute(delete(LogPending).where(LogPending.id.in_([p[0] for p in pending])))
            if gone.rowcount != len(pending):  # type: ignore[attr-defined]  # CursorResult of a DELETE
                raise Conflict("another sequencer took these entries; this batch is rolled back")
        note = Checkpoint(row.origin, new_size, root).sign([_signer(ctx, row)])
        moved = session.execute(update(TransparencyLog).where(TransparencyLog.id == 1, TransparencyLog.size == old)
                                .values(size=new_size, root_hash=root, checkpoint=note, updated_at=now,
                                        anchored_at=row.anchored_at)
                                .execution_options(synchronize_session=False))
        if moved.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
            raise Conflict("the log grew while this batch was prepared; this batch is rolled back")
        session.add(LogCheckpoint(size=new_size, note=note, created_at=now))
        session.flush()
        return SequenceResult(len(entries), new_size, anchored)


def _anchor_due(row: TransparencyLog, anchor_seconds: int | None, now: dt.datetime) -> bool:
    if anchor_seconds is None:
        return False
    return row.anchored_at is None or clock.aware(row.anchored_at) + dt.timedelta(seconds=anchor_seconds) <= now


def sequence_all(ctx: PkiContext, *, batch: int = DEFAULT_BATCH) -> SequenceResult:
    """Sequence until nothing is pending (``kyso log sequence``)."""
    total, size, anchored = 0, 0, False
    while True:
        result = sequence(ctx, batch=batch, anchor_seconds=None if total else DEFAULT_ANCHOR_SECONDS)
        total, size, anchored = total + result.appended, result.size, anchored or result.anchored
        if result.appended < batch:
            return SequenceResult(total, size, anchored)


def pending_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(LogPending)).scalar_one())


# -- reading -------------------------------------------------------------------------------------


def current_checkpoint(session: Session) -> str:
    return _row(session).checkpoint


def read_tile(session: Session, level: int, index: int, width: int) -> bytes:
    """The hash tile ``level/index`` at ``width`` hashes, as a tree that had it at that width served it."""
    missing = NotFound(f"no such tile in this log: level {level}, index {index}, width {width}")
    if (index * TILE_WIDTH + width) << (8 * level) > _row(session).size:  # before any query: no huge numbers in SQL
        raise missing
    tile = session.get(LogTile, (level, index))
    if tile is None or len(tile.data) < width * 32:
        raise missing
    return tile.data[:width * 32]


def read_bundle(session: Session, index: int, width: int) -> bytes:
    """The entry bundle ``index`` at ``width`` entries, if the current tree is that large.

    It is served as stored, even if storage lost or gained rows: verifiers then see it (the checkpoint
    says how many entries the bundle must hold and what they hash to); kyso never patches it up."""
    start = index * TILE_WIDTH
    if start + width > _row(session).size:
        raise NotFound(f"no such entry bundle in this log: index {index}, width {width}")
    rows = list(session.execute(select(LogEntry.entry).where(LogEntry.idx >= start, LogEntry.idx < start + width)
                                .order_by(LogEntry.idx)).scalars())
    return encode_bundle(rows)


def _tile_reader(session: Session) -> TileHashReader:
    def read(level: int, index: int) -> bytes:
        tile = session.get(LogTile, (level, index))
        return tile.data if tile is not None else b""
    return TileHashReader(read)


def proof_for_entry(session: Session, idx: int) -> TlogProof:
    row = _row(session)
    entry = session.get(LogEntry, idx)
    if entry is None or idx >= row.size:
        raise NotFound(f"entry {idx} is not in the log")
    path = inclusion_proof(idx, row.size, _tile_reader(session))
    return TlogProof(idx, tuple(path), row.checkpoint, entry.entry)


def proof_for_document(session: Session, document_id: str, version: int | None = None) -> TlogProof:
    """The tlog-proof of the document's newest registration entry (or of ``version``'s), the entry as ``extra``."""
    _row(session)
    idx = registration_index(session, document_id, version)
    if idx is None:
        if registration_pending(session, document_id, version):
            raise NotYetLogged(f"document {document_id} is queued for the log but not yet in a checkpoint; "
                               "wait a second and ask again", document_id=document_id)
        which = f"version {version} of document {document_id}" if version is not None else f"document {document_id}"
        raise NotFound(f"{which} is not in the log", document_id=document_id)
    return proof_for_entry(session, idx)


def _version_of(data: bytes) -> int | None:
    try:
        v = Entry.parse(data).get("version")
    except LogFormatError:
        return None
    return int(v) if v is not None else None


def document_entries(session: Session, document_id: str,
                     types: tuple[EntryType, ...] = (EntryType.DOCUMENT_REGISTERED,)) -> list[tuple[int, bytes]]:
    """The document's sequenced entries of ``types`` (index, bytes), oldest first, as storage says."""
    rows = session.execute(select(LogEntry.idx, LogEntry.entry).where(
        LogEntry.document_id == document_id, LogEntry.type.in_([t.value for t in types])).order_by(LogEntry.idx))
    return [(int(idx), bytes(data)) for idx, data in rows]


def registration_index(session: Session, document_id: str, version: int | None = None) -> int | None:
    """The index of the document's newest registration entry, or of ``version``'s; None if not sequenced."""
    for idx, data in reversed(document_entries(session, document_id)):
        if version is None or _version_of(data) == version:
            return int(idx)
    return None


def registration_pending(session: Session, document_id: str, version: int | None = None,
                         types: tuple[EntryType, ...] = (EntryType.DOCUMENT_REGISTERED,)) -> bool:
    """Whether an entry of ``types`` for the document (and ``version``) waits for the sequencer."""
    rows = session.execute(select(LogPending.entry).where(
        LogPending.document_id == document_id, LogPending.type.in_([t.value for t in types]))).scalars()
    return any(version is None or _version_of(data) == version for data in rows)


def consistency(session: Session, old_size: int, new_size: int | None = None) -> list[bytes]:
    """The consistency proof from ``old_size`` to ``new_size`` (default: the current size)."""
    row = _row(session)
    new_size = row.size if new_size is None else new_size
    if not 0 <= old_size <= new_size <= row.size:
        raise NotFound(f"the log has {row.size} entries; no proof from size {old_size} to {new_size}")
    return consistency_proof(old_size, new_size, _tile_reader(session))


def entries_for_commune(session: Session, commune: str) -> Iterator[tuple[int, Entry]]:
    for idx, data in session.execute(select(LogEntry.idx, LogEntry.entry).where(LogEntry.commune_code == commune)
                                     .order_by(LogEntry.idx)):
        yield idx, Entry.parse(data)


def export(session: Session, directory: Path) -> int:
    """Write checkpoint, tiles and entry bundles as static files; return the tree size exported.

    Files are written beside their final name and renamed, so a web server serving ``directory``
    never shows half a tile. Full tiles never change; partial ones are rewritten.
    """
    row = _row(session)
    size = row.size
    for tile in tiles_for_size(size):
        assert tile.level is not None
        write_inside(directory, tile.path, read_tile(session, tile.level, tile.index, tile.width))
    for bundle in bundles_for_size(size):
        write_inside(directory, bundle.path, read_bundle(session, bundle.index, bundle.width))
    write_inside(directory, "checkpoint", row.checkpoint.encode())  # last: it names what is already there
    return size


def write_inside(directory: Path, name: str, data: bytes) -> None:
    """Write ``directory/name`` atomically, never outside ``directory``: a folder on the way that is a symlink
    out of it is refused, and the temporary file is created new (``O_EXCL``) without following a symlink
    someone planted at its name (a shared web root must not let its writers aim kyso's writes elsewhere)."""
    root = directory.resolve()
    path = directory / name
    if not path.parent.resolve().is_relative_to(root):  # before mkdir: no folder made out there either
        raise LogFormatError(f"{path.parent} leads outside {directory} (a symlink?); refusing to write there")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and not path.is_symlink() and path.read_bytes() == data:
        return
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # replaces a symlink at ``path`` itself, never its target
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def verifier(ctx: PkiContext) -> NoteVerifier:
    return NoteVerifier.parse(log_info(ctx).vkey)


__all__ = ["DEFAULT_ANCHOR_SECONDS", "DEFAULT_BATCH", "LogFormatError", "LogInfo", "LogNotInitialised",
           "SequenceResult", "consistency", "current_checkpoint", "document_entries", "entries_for_commune", "export",
           "init_log", "log_info", "origin_for", "pending_count", "proof_for_document", "proof_for_entry",
           "read_bundle", "read_tile", "registration_index", "registration_pending", "sequence", "sequence_all",
           "verifier", "write_inside"]
