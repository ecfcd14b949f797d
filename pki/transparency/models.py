"""The log's tables: events waiting for the sequencer, sequenced entries, hash tiles, checkpoints.

``log_pending`` is written in the transaction of the event it records (an INSERT, no shared row),
so signing never waits for the log. The sequencer moves pending rows into ``log_entries`` in
batches, under the lock of the single ``transparency_log`` row.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime


class TransparencyLog(Base):
    """The one log of this kyso (``id`` = 1): its identity, key and current checkpoint."""

    __tablename__ = "transparency_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin: Mapped[str] = mapped_column(String(200), nullable=False)
    key_ref: Mapped[str] = mapped_column(String(300), nullable=False)
    public_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)  # raw Ed25519, 32 bytes
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    checkpoint: Mapped[str] = mapped_column(Text, nullable=False)  # the signed note now served
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    anchored_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)  # last audit-anchor entry


class LogPending(Base):
    __tablename__ = "log_pending"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    commune_code: Mapped[str | None] = mapped_column(String(5), nullable=True)
    document_id: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class LogEntry(Base):
    __tablename__ = "log_entries"

    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entry: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    commune_code: Mapped[str | None] = mapped_column(String(5), nullable=True, index=True)
    document_id: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    sequenced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class LogTile(Base):
    """A hash tile as it is now: a partial tile grows in place until it is full (8,192 bytes)."""

    __tablename__ = "log_tiles"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class LogCheckpoint(Base):
    """Every checkpoint signed, kept: proof of what the log said at each size."""

    __tablename__ = "log_checkpoints"

    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    note: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
