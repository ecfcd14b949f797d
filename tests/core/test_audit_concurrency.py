"""The audit chain stays whole when many writers append at once: threads of one process on SQLite and
PostgreSQL, and several processes sharing one SQLite file (``kyso serve --workers N``).

On SQLite ``SELECT … FOR UPDATE`` locks nothing, so two appenders used to read the same head and the second
failed on ``UNIQUE constraint failed: audit_log.seq`` (a 500, and the refusal it was auditing lost).
"""
from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api.container import Container
from core import audit, clock
from core.db import make_engine, make_session_factory, transaction
from signing.activation import crypto as sec, enrolment
from signing.activation.factors import InvalidActivationData
from signing.activation.throttle import Throttled
from tests.helpers.activation import PIN, Phone
from tests.helpers.clock import FrozenClock

THREADS, PER_THREAD = 4, 40


def _hammer(threads: int, per_thread: int, work: Callable[[int, int], str]) -> Counter[str]:
    """Run ``work(thread, i)`` ``per_thread`` times in each of ``threads`` threads started together."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def run(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            try:
                outcome = work(t, i)
            except Exception as exc:  # noqa: BLE001 - any other error is what this test exists to catch
                outcome = f"{type(exc).__name__}: {str(exc)[:120]}"
            with lock:
                outcomes[outcome] += 1

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return outcomes


def _entries(container: Container, action: str | None = None) -> int:
    with transaction(container.sessions) as session:
        query = select(func.count()).select_from(audit.AuditEntry)
        if action:
            query = query.where(audit.AuditEntry.action == action)
        return session.execute(query).scalar_one()


def _chain(container: Container) -> audit.ChainReport:
    with transaction(container.sessions) as session:
        return audit.verify(session)


def test_threads_appending_keep_one_chain(container: Container) -> None:
    before = _entries(container)

    def append(t: int, i: int) -> str:
        with transaction(container.sessions) as session:
            audit.record(session, actor="test", action="test:entry:add", subject=f"t{t}-{i}")
        return "recorded"

    outcomes = _hammer(THREADS, PER_THREAD, append)
    assert outcomes == {"recorded": THREADS * PER_THREAD}
    assert _entries(container) == before + THREADS * PER_THREAD
    report = _chain(container)
    assert report.ok, report


def test_concurrent_refused_confirmations_are_each_refused_and_audited(pki: Container, specialist: str,
                                                                        frozen: FrozenClock) -> None:
    """The attack of the issue: 4 threads × 40 wrong first codes. Each one is a clean refusal (wrong code,
    then throttled), never a database error, and each refusal is in the chain exactly once."""
    code = enrolment.issue(pki.pki, specialist, "token:operator").code
    start = enrolment.redeem(pki.pki, code, PIN, PIN)
    right = Phone(sec.secret_from_uri(start.uri), frozen).code()  # the clock is frozen: it stays the right one
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    def refuse(t: int, i: int) -> str:
        try:
            enrolment.finish(pki.pki, code, wrong)
        except (InvalidActivationData, Throttled):
            return "refused"
        return "accepted"

    outcomes = _hammer(THREADS, PER_THREAD, refuse)
    assert outcomes == {"refused": THREADS * PER_THREAD}, outcomes
    assert _entries(pki, "activation:enroll:deny") == THREADS * PER_THREAD
    report = _chain(pki)
    assert report.ok, report


def _append_in_process(url: str, worker: int, count: int, start: multiprocessing.synchronize.Event) -> None:
    """One worker process: its own engine on the shared file, ``count`` audited transactions."""
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    start.wait()
    try:
        for i in range(count):
            with transaction(sessions) as session:
                audit.record(session, actor=f"worker:{worker}", action="test:entry:add", subject=f"w{worker}-{i}")
    finally:
        engine.dispose()


def test_worker_processes_sharing_one_sqlite_file_keep_one_chain(tmp_path: Path) -> None:
    from core.db import upgrade

    url = f"sqlite:///{tmp_path / 'kyso.db'}"
    upgrade(url)
    ctx = multiprocessing.get_context("spawn")  # like uvicorn's workers: fresh interpreters, no shared engine
    start = ctx.Event()
    workers = [ctx.Process(target=_append_in_process, args=(url, w, PER_THREAD, start)) for w in range(THREADS)]
    for p in workers:
        p.start()
    start.set()
    for p in workers:
        p.join(120)
    assert [p.exitcode for p in workers] == [0] * THREADS
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            report = audit.verify(session)
    finally:
        engine.dispose()
    assert report.ok, report
    assert report.entries == THREADS * PER_THREAD


def test_a_reading_unit_never_makes_a_writer_wait(container: Container) -> None:
    """A request's reading session stays open while the domain writes in units of its own (a withdrawal, an
    audited refusal): it must not hold SQLite's write lock, or the writer would wait for it until timeout."""
    with transaction(container.sessions, read_only=True) as reading:
        before = reading.execute(select(func.count()).select_from(audit.AuditEntry)).scalar_one()
        # a held write lock would make this wait the busy timeout and fail ("database is locked")
        with transaction(container.sessions) as writing:
            audit.record(writing, actor="test", action="test:entry:add", subject="while a request reads")
    assert _entries(container) == before + 1


def test_a_reading_unit_cannot_write_by_either_path(container: Container) -> None:
    """A read-only unit begins without SQLite's write lock, so it must not write: neither through the ORM (the
    flush guard) nor through a prepared statement on its connection (``writing_connection``, which the audit
    log, the transparency log, the blob store and the registry use). Nothing of either attempt is kept."""
    def count() -> int:
        with transaction(container.sessions, read_only=True) as session:
            return session.execute(select(func.count()).select_from(audit.AuditEntry)).scalar_one()

    before = count()
    for write in (lambda s: audit.record(s, actor="t", action="test:read:only", subject="x"),
                  lambda s: (s.add(audit.AuditEntry(seq=10**9, at=clock.now(), actor="t", action="test:read:only",
                                                    subject="x", details="{}", prev_hash="0" * 64, hash="0" * 64)),
                             s.flush())):
        with pytest.raises(RuntimeError, match="read-only database unit"), \
                transaction(container.sessions, read_only=True) as session:
            write(session)
    assert count() == before
