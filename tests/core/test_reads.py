"""``core.db.Reads`` on its own (two SQLite files standing for a primary and a replica): what goes where,
and which failures put the replica aside. The real streaming replica is in tests/faults/test_read_replica.py."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.db import Reads, make_engine, make_session_factory


class _Driver(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("driver error")
        self.sqlstate = sqlstate


@pytest.fixture
def reads(tmp_path: Path) -> Reads:
    made = {}
    for name in ("primary", "replica"):
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE which (name TEXT)"))
            conn.execute(text("INSERT INTO which VALUES (:n)"), {"n": name})
        made[name] = make_session_factory(engine)
    return Reads(made["primary"], made["replica"], retry_seconds=60)


def _which(session: Session) -> str:
    return str(session.execute(text("SELECT name FROM which")).scalar_one())


def _failing(sqlstate: str | None):  # type: ignore[no-untyped-def]
    def work(session: Session) -> str:
        name = _which(session)
        if name == "replica":
            raise OperationalError("SELECT …", {}, _Driver(sqlstate))
        return name
    return work


def test_reads_go_to_the_replica_and_misses_to_the_primary(reads: Reads) -> None:
    assert reads.run(_which) == "replica"
    assert reads.run(_which, missed=lambda name: name == "replica") == "primary"

    def unknown(session: Session) -> str:
        if _which(session) == "replica":
            raise LookupError("not there yet")
        return "primary"

    assert reads.run(unknown, miss_errors=(LookupError,)) == "primary"
    with pytest.raises(LookupError):  # not a miss error: the caller sees it
        reads.run(unknown)


def test_a_recovery_conflict_reads_on_the_primary_and_keeps_the_replica(reads: Reads) -> None:
    assert reads.run(_failing("40001")) == "primary"
    assert reads.run(_which) == "replica"  # not put aside


def test_an_unreachable_replica_is_put_aside(reads: Reads) -> None:
    assert reads.run(_failing("08006")) == "primary"
    assert reads.run(_which) == "primary"  # skipped for retry_seconds, not tried per request


def test_without_a_replica_everything_reads_the_primary(reads: Reads) -> None:
    alone = Reads(reads.primary)
    assert alone.run(_which) == "primary"
    assert alone.run(_which, missed=lambda _: True) == "primary"


def test_an_unreachable_replica_never_shows_its_password(reads: Reads, caplog: pytest.LogCaptureFixture) -> None:
    """Attacker's view (whoever reads the logs or /metrics): a replica URL carrying a password that cannot be
    reached is logged by its failure, never by its URL, and the metric has no label but the outcome."""
    import logging

    from core import metrics

    replica = make_session_factory(make_engine("postgresql+psycopg://kyso:S3CRET-REPLICA@127.0.0.1:9/kyso"))
    lonely = Reads(reads.primary, replica, retry_seconds=60)
    with caplog.at_level(logging.DEBUG):
        assert lonely.run(_which) == "primary"
    said = [r.getMessage() for r in caplog.records if "read replica" in r.getMessage()]
    assert said, caplog.text
    assert "S3CRET" not in caplog.text and b"S3CRET" not in metrics.render()[0]
