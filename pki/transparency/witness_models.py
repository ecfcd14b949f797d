"""Tables of the witness, both ways round: the logs kyso witnesses, and the witnesses kyso's log asks.

``witness_keys``     kyso's own witness key (one row): its note name and keystore reference.
``witnessed_logs``   each log kyso cosigns for: origin, the log's verifier key, and the latest checkpoint kyso
                     cosigned (size and root, moved forward only by a compare-and-swap ``UPDATE``).
``log_witness_state`` for kyso's own log: per configured witness, the size it last cosigned and that
                     cosignature, served as an extra line on ``/log/checkpoint`` while the checkpoint is current.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime


class WitnessKey(Base):
    __tablename__ = "witness_keys"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    key_ref: Mapped[str] = mapped_column(String(512), nullable=False)
    public_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class WitnessedLog(Base):
    __tablename__ = "witnessed_logs"

    origin: Mapped[str] = mapped_column(String(255), primary_key=True)
    vkey: Mapped[str] = mapped_column(Text, nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    checkpoint: Mapped[str | None] = mapped_column(Text, nullable=True)  # as cosigned: log signature + ours
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class LogWitnessState(Base):
    __tablename__ = "log_witness_state"

    witness: Mapped[str] = mapped_column(String(255), primary_key=True)  # the witness's key name
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)  # the checkpoint body it cosigned
    cosignature: Mapped[str] = mapped_column(Text, nullable=False)  # its signature line
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
