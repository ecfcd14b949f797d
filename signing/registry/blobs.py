"""The blob store: content-addressed bytes (a whole PDF, the tail kyso appended over a parent, a caller's
input), named by their lower-case hex SHA-256.

Two backends, chosen by ``KYSO_BLOB_STORE``:

``database`` (default)
    The ``blobs`` table of the registry's own database (SQLite or PostgreSQL). A blob is written in the
    caller's transaction, so a signing that fails or loses a race leaves no blob behind.
``filesystem``
    Files under ``KYSO_HOME/blobs/ab/cd/<sha256>``, written atomically (a temporary file in the same
    folder, fsync, rename, fsync of the folder) *before* the registry transaction commits. A commit that
    then fails leaves an orphan file, which is harmless: nothing references it, and ``sweep`` (``kyso doc
    gc``) removes unreferenced files older than ``KYSO_BLOB_GC_GRACE_HOURS``. A blob missing from the
    folder is looked up in the ``blobs`` table, so files stored before a switch stay readable.

Storing bytes already stored refreshes their age (``created_at``, or the file's mtime), so the sweep never
takes a blob that a transaction still in flight is about to reference. The filesystem sweep moves a file
aside (``.gc-<sha256>``) before its last age check and deletes it only if still old, so a refresh racing
the deletion is never lost. Every read checks the SHA-256 of what
it read against the name; a missing or altered blob raises ``StoredFileDamaged``, never other bytes.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core import clock
from core.db import writing_connection
from core.settings import Settings
from signing.errors import StoredFileDamaged
from signing.registry.models import Blob

SWEEP_PAGE = 500  # blobs looked at per query by a sweep
GRAVE = ".gc-"  # prefix of a blob file a sweep has moved aside before deleting it
# which of these blob names something still references (``versions.referenced``)
Referenced = Callable[[Session, list[str]], set[str]]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class PrefixDigest:
    """The SHA-256 of ``data``, kept as a running state, so the digest of bytes that start with ``data`` (a
    version kyso appended to it) costs only what was appended: a large input is hashed once per signature."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._state = hashlib.sha256(data)
        self.hexdigest = self._state.hexdigest()

    def running(self) -> hashlib._Hash:
        """A fresh copy of the state after ``data``, to be continued with the bytes that follow it."""
        return self._state.copy()

    def of(self, longer: bytes) -> str:
        """The SHA-256 of ``longer``: continued from the state when it starts with ``data`` (compared byte for
        byte, not assumed), otherwise hashed whole."""
        if not longer.startswith(self.data):
            return digest(longer)
        state = self.running()
        state.update(memoryview(longer)[len(self.data):])
        return state.hexdigest()


class BlobStore(Protocol):
    """Put, get and sweep content-addressed bytes; ``session`` is the registry transaction in progress."""

    name: str

    def put(self, session: Session, data: bytes, *, sha256: str | None = None) -> str:
        """Store ``data`` (once; again only refreshes its age) and return its SHA-256. ``sha256``: the digest the
        caller already computed over exactly these bytes (``PrefixDigest.of``), so it is not computed again."""
        ...

    def get(self, session: Session, sha256: str) -> bytes:
        """The bytes named ``sha256``, checked; ``StoredFileDamaged`` when missing or altered."""
        ...

    def sweep(self, session: Session, older_than: dt.datetime, referenced: Referenced) -> int:
        """Delete blobs stored before ``older_than`` that nothing references; return how many."""
        ...


def _checked(sha256: str, data: bytes | None, where: str) -> bytes:
    if data is None:
        raise StoredFileDamaged(f"the stored blob {sha256} is missing from the {where}", blob=sha256)
    if digest(data) != sha256:
        raise StoredFileDamaged(f"the stored blob {sha256} in the {where} was altered: its bytes no longer "
                                "hash to its name", blob=sha256)
    return data


@lru_cache(maxsize=4)  # kept: one prepared statement per dialect (a handful), compiled once
def _upsert(dialect: str) -> postgresql.Insert | sqlite.Insert:
    """Insert a blob; bytes stored again are young again (a sweep running now leaves them), and a row altered
    since is mended."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Blob)
    return statement.on_conflict_do_update(index_elements=["sha256"], set_={
        "created_at": statement.excluded.created_at, "data": statement.excluded.data,
        "size": statement.excluded.size})


class DatabaseBlobStore:
    """Blobs in the registry's database, written in the caller's transaction."""

    name = "database"

    def put(self, session: Session, data: bytes, *, sha256: str | None = None) -> str:
        sha = sha256 or digest(data)
        connection = writing_connection(session)
        connection.execute(_upsert(connection.dialect.name),
                           {"sha256": sha, "size": len(data), "data": data, "created_at": clock.now()})
        return sha

    def get(self, session: Session, sha256: str) -> bytes:
        data = session.execute(select(Blob.data).where(Blob.sha256 == sha256)).scalar_one_or_none()
        return _checked(sha256, data, "database")

    def sweep(self, session: Session, older_than: dt.datetime, referenced: Referenced) -> int:
        removed, last = 0, ""
        while True:
            page = list(session.execute(select(Blob.sha256).where(Blob.created_at < older_than, Blob.sha256 > last)
                                        .order_by(Blob.sha256).limit(SWEEP_PAGE)).scalars())
            if not page:
                return removed
            last = page[-1]
            unused = sorted(set(page) - referenced(session, page))
            if unused:  # the age is checked again: bytes stored again meanwhile are young and stay
                gone = session.execute(delete(Blob).where(Blob.sha256.in_(unused), Blob.created_at < older_than))
                removed += getattr(gone, "rowcount", 0) or 0  # a CursorResult for a DELETE


class FileBlobStore:
    """Blobs as files named by their SHA-256 under one folder (``KYSO_HOME/blobs``)."""

    name = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._database = DatabaseBlobStore()  # blobs stored before a switch to files

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a lower-case hex SHA-256: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, session: Session, data: bytes, *, sha256: str | None = None) -> str:
        sha = sha256 or digest(data)
        target = self.path(sha)
        try:
            if digest(target.read_bytes()) == sha:
                os.utime(target)  # young again: a sweep running now leaves it
                return sha
        except FileNotFoundError:
            pass  # (an altered file is written again below)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _fsync_folder(target.parent)
        return sha

    def get(self, session: Session, sha256: str) -> bytes:
        try:
            path = self.path(sha256)
        except ValueError:  # an altered registry row: damage to report, never a path to follow
            raise StoredFileDamaged(f"the registry names a blob {sha256[:80]!r} that is not a SHA-256",
                                    blob=sha256[:80]) from None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            try:  # moved aside by a sweep this very moment (put back when something still needs it)
                data = path.with_name(GRAVE + sha256).read_bytes()
            except FileNotFoundError:
                return self._database.get(session, sha256)
        return _checked(sha256, data, f"blob folder {self.root}")

    def sweep(self, session: Session, older_than: dt.datetime, referenced: Referenced) -> int:
        cutoff = older_than.timestamp()
        removed = 0
        batch: list[Path] = []
        for path in self._files():
            try:
                if path.stat().st_mtime >= cutoff:
                    continue
            except FileNotFoundError:
                continue
            if path.name.startswith(".tmp-"):  # a write that never finished
                path.unlink(missing_ok=True)
                removed += 1
                continue
            if path.name.startswith(GRAVE):  # a sweep stopped mid-removal: put back, judged by the next sweep
                _restore(path)
                continue
            batch.append(path)
            if len(batch) >= SWEEP_PAGE:
                removed += self._remove_unused(session, batch, cutoff, referenced)
                batch = []
        removed += self._remove_unused(session, batch, cutoff, referenced)
        return removed + self._database.sweep(session, older_than, referenced)

    def _files(self) -> Iterator[Path]:
        if self.root.is_dir():
            yield from (p for p in self.root.glob("*/*/*") if p.is_file())

    @staticmethod
    def _remove_unused(session: Session, paths: list[Path], cutoff: float, referenced: Referenced) -> int:
        if not paths:
            return 0
        used = referenced(session, [p.name for p in paths])
        removed = 0
        for path in paths:
            if path.name in used:
                continue
            # Moved aside first, then judged: a ``put`` that refreshed the age before the move shows in the
            # moved file's age (and it is put back); one after the move finds no file and writes it again.
            # Checking the age and then deleting in place would lose bytes refreshed between the two steps.
            grave = path.with_name(GRAVE + path.name)
            try:
                os.rename(path, grave)
            except FileNotFoundError:
                continue
            if grave.stat().st_mtime < cutoff:  # not stored again meanwhile
                grave.unlink()
                removed += 1
            else:
                _restore(grave)
        return removed


def _restore(grave: Path) -> None:
    """Put a blob moved aside by a sweep back under its name (a copy written since has the same bytes)."""
    with contextlib.suppress(FileNotFoundError):
        os.replace(grave, grave.with_name(grave.name[len(GRAVE):]))


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX: the directory entry is only on disk once the folder is synced)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def store_for(settings: Settings) -> BlobStore:
    """The blob store the settings choose (cheap: no state beyond a path)."""
    if settings.blob_store == "filesystem":
        return FileBlobStore(settings.blob_dir)
    return DatabaseBlobStore()


__all__ = ["BlobStore", "DatabaseBlobStore", "FileBlobStore", "digest", "store_for"]
