"""Database engine, sessions and migrations (SQLAlchemy 2 + Alembic).

SQLite is the embedded default; PostgreSQL is used when ``KYSO_DATABASE_URL`` points at it.
No engine is created at import time: callers build one from ``Settings``.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, DateTime, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from . import metrics
from .errors import Unavailable
from .production import sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HEAD_REVISION = "0019"  # the newest migration; tests/core/test_migrations.py checks it against Alembic's head
CONNECT_TIMEOUT_SECONDS = 10
READ_ONLY = "kyso_read_only"  # connection execution option: begin a SQLite transaction without the write lock
SQLITE_BUSY_SECONDS = 30  # how long a SQLite transaction waits for the write lock before "database is locked"
DATABASE_UNAVAILABLE = "the database cannot be reached; retry in a few seconds"
REPLICA_RETRY_SECONDS = 5.0  # after the replica failed, reads go to the primary this long before it is tried again

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_unreachable(exc: BaseException) -> bool:
    """True for the errors of a database that is down, restarting or out of connections, as opposed to
    a bad statement or a broken constraint: the request may be retried as it is."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def unavailable() -> Unavailable:
    """What a request that met an unreachable database answers (HTTP 503 with Retry-After)."""
    return Unavailable(DATABASE_UNAVAILABLE, code="database_unavailable")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores aware UTC datetimes on every backend; SQLite hands back naive ones otherwise."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; kyso stores UTC only")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every kyso table."""


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20) -> Engine:
    """An engine tuned per backend: SQLite gets WAL, foreign keys and a busy timeout; a server database gets a
    pool of ``pool_size`` (+ ``max_overflow`` at peaks) connections per process, so workers × that must fit
    the server's ``max_connections``."""
    if url.startswith("sqlite"):
        _create_private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS})
        _serialize_sqlite_writers(engine)
        return engine
    # pre-ping: a connection the server dropped (restart, failover) is replaced at checkout, so service
    # resumes by itself; a bounded connect, so requests answer 503 instead of hanging on a dead host
    connect_args = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow,
                         connect_args=connect_args)


def _create_private_sqlite_file(url: str) -> None:
    """Create a new SQLite database file 0600 (owner only) before SQLite creates it 0644: it holds personal
    data. SQLite gives its -wal and -shm files the database file's permissions. An existing file is left
    as it is (production refuses to start on a loose one: core/production.py)."""
    path = sqlite_path(url)
    if path is None or path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):  # another process made it first
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # an empty file is an empty database


def _serialize_sqlite_writers(engine: Engine) -> None:
    """Every SQLite transaction starts with ``BEGIN IMMEDIATE``: it takes the database's write lock up front
    (waiting up to ``SQLITE_BUSY_SECONDS`` for it), across threads and worker processes alike.

    Why: SQLite has no row locks, so ``SELECT … FOR UPDATE`` (the audit head, counters) locks nothing, and
    Python's sqlite3 driver only opens a transaction at the first write, after the reads it depends on.
    Two appenders then read the same audit head and the second fails on a duplicate ``seq``; a deferred
    transaction that read first and writes later cannot even wait for the lock (``SQLITE_BUSY_SNAPSHOT``
    under WAL). Taking the lock at ``BEGIN`` makes read-then-write units behave as they do on PostgreSQL
    under ``FOR UPDATE``. A unit that only reads can say so (``transaction(read_only=True)``): it begins
    without the lock, and under WAL it reads its snapshot while others write. This is SQLAlchemy's
    documented pysqlite recipe: the driver's own transaction handling is switched off and SQLAlchemy's
    ``begin`` emits the BEGIN.
    """

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver never BEGINs by itself; the "begin" hook below does
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


_READ_ONLY_WRITE = "a read-only database unit tried to write; open it without read_only=True"


@event.listens_for(Session, "before_flush")
def _refuse_writes_when_read_only(session: Session, _context: Any, _instances: Any) -> None:
    """``read_only`` is a promise; a unit that breaks it fails loudly here (in tests), not as a SQLite
    "database is locked" that surfaces as 503 under load."""
    if session.info.get(READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise RuntimeError(_READ_ONLY_WRITE)


def writing_connection(session: Session) -> Connection:
    """The connection of ``session``'s transaction, for a prepared statement that writes without the ORM
    (the hot appends: audit entries, log entries, blobs, signature records). Refused in a read-only unit,
    as a flush there is."""
    if session.info.get(READ_ONLY):
        raise RuntimeError(_READ_ONLY_WRITE)
    return session.connection()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session], *, read_only: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success, roll everything back on any error.

    A database that cannot be reached surfaces as ``Unavailable`` (HTTP 503), never a 500. Work cut
    off with its connection is not half-written: PostgreSQL drops an uncommitted transaction when the
    connection goes (only a COMMIT cut off in flight may have landed; an Idempotency-Key retry tells).

    ``read_only``: the unit only reads, and may stay open while other units write (an HTTP route's request
    session, while the domain functions it calls commit their own units, or a refusal is audited). On
    SQLite it begins without the write lock every other unit takes at BEGIN, so those units never wait for
    it; a write in it would still work, but without the up-front lock, so don't.
    """
    session = factory()
    try:
        if read_only:
            session.info[READ_ONLY] = True  # checked at flush: a write here would lack SQLite's up-front lock
            session.connection(execution_options={READ_ONLY: True})
        yield session
        session.commit()
    except BaseException as exc:
        _rollback(session)
        if is_unreachable(exc):
            raise unavailable() from exc
        raise
    finally:
        with suppress(DBAPIError):  # the connection died with the server: nothing is left to close
            session.close()


class Reads:
    """Where read-only units go: a streaming replica when one is configured (``KYSO_DATABASE_READ_URL``),
    else the primary. Writes never come here: they use ``transaction(primary)`` as always.

    A replica lags its primary (usually by milliseconds), so a read that finds nothing there (``missed``
    says so of the result, or it raises one of ``miss_errors``) runs again on the primary: a document
    signed a moment ago is still found. A replica that cannot be reached is skipped for
    ``REPLICA_RETRY_SECONDS`` (logged once per outage, counted in ``kyso_replica_reads``) and the primary
    answers meanwhile, so a dead replica costs one failed connection, not one per request."""

    def __init__(self, primary: sessionmaker[Session], replica: sessionmaker[Session] | None = None, *,
                 retry_seconds: float = REPLICA_RETRY_SECONDS) -> None:
        self.primary, self.replica, self.retry_seconds = primary, replica, retry_seconds
        self._down_until = 0.0
        self._lock = threading.Lock()

    def run(self, work: Callable[[Session], T], *, missed: Callable[[T], bool] | None = None,
            miss_errors: tuple[type[BaseException], ...] = ()) -> T:
        """``work(session)`` in a read-only unit on the replica, or on the primary (see the class)."""
        if self.replica is not None and time.monotonic() >= self._down_until:
            try:
                with transaction(self.replica, read_only=True) as session:
                    result = work(session)
            except Unavailable as exc:
                if exc.code != "database_unavailable":
                    raise
                if _recovery_conflict(exc.__cause__):  # the standby cancelled the query to replay WAL: not down
                    metrics.REPLICA_READS.labels("miss").inc()
                else:
                    self._replica_down(exc)
            except miss_errors:
                metrics.REPLICA_READS.labels("miss").inc()
            else:
                self._replica_up()
                if missed is None or not missed(result):
                    metrics.REPLICA_READS.labels("replica").inc()
                    return result
                metrics.REPLICA_READS.labels("miss").inc()
        elif self.replica is not None:
            metrics.REPLICA_READS.labels("unreachable").inc()
        with transaction(self.primary, read_only=True) as session:
            return work(session)

    def _replica_down(self, exc: BaseException) -> None:
        metrics.REPLICA_READS.labels("unreachable").inc()
        with self._lock:
            first = self._down_until == 0.0
            self._down_until = time.monotonic() + self.retry_seconds
        if first:  # once per outage; the cause's first line names the host, never a password (URLs are not logged)
            cause = (str(exc.__cause__ or exc).splitlines() or [""])[0]
            log.warning("the read replica cannot be reached (%s); reading from the primary until it answers", cause)

    def _replica_up(self) -> None:
        if self._down_until:
            with self._lock:
                self._down_until = 0.0
            log.info("the read replica answers again; reads go to it")


def _recovery_conflict(exc: BaseException | None) -> bool:
    """A hot standby cancels a query that conflicts with the WAL it replays (SQLSTATE 40001, "canceling
    statement due to conflict with recovery"): that read goes to the primary, the standby stays in use."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "40001"


def _rollback(session: Session) -> None:
    """Roll back; on a connection that died with the server the transaction is already gone there."""
    with suppress(DBAPIError):
        session.rollback()


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic (idempotent).

    A database already at head is seen with one query, without loading Alembic: every CLI command and
    every start-up asks, and Alembic's import and script scan cost half a second each time."""
    if revision == "head" and at_head(url):
        return
    from alembic import command

    _create_private_sqlite_file(url)  # Alembic makes its own engine
    command.upgrade(alembic_config(url), revision)


def at_head(url: str) -> bool:
    """True when the database records ``HEAD_REVISION`` as its schema version (False if it has none yet)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return False  # connecting would create an empty file
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    except DBAPIError:
        return False  # no alembic_version table: a new database
    finally:
        engine.dispose()
    return versions == [HEAD_REVISION]
