"""The audit chain detects edits, deletions and reordering, on both databases."""
from sqlalchemy import delete, select, update

from core import audit
from core.db import transaction


def _fill(container, n=5):
    with transaction(container.sessions) as session:
        for i in range(n):
            audit.record(session, actor="test", action="test:entry:add", subject=f"s{i}", n=i, note="Hòa Bình")


def test_intact_chain_verifies(container):
    _fill(container)
    with transaction(container.sessions) as session:
        report = audit.verify(session)
    assert report.ok and report.entries >= 5


def test_edited_row_is_reported_with_first_broken_entry(container):
    _fill(container)
    with transaction(container.sessions) as session:
        target = session.execute(select(audit.AuditEntry).order_by(audit.AuditEntry.seq.desc())).scalars().all()[2]
        session.execute(update(audit.AuditEntry).where(audit.AuditEntry.id == target.id).values(subject="forged"))
        seq = target.seq
    with transaction(container.sessions) as session:
        report = audit.verify(session)
    assert not report.ok
    assert report.first_broken_seq == seq
    assert "edited" in report.problem


def test_deleted_row_is_reported(container):
    _fill(container)
    with transaction(container.sessions) as session:
        session.execute(delete(audit.AuditEntry).where(audit.AuditEntry.seq == 3))
    with transaction(container.sessions) as session:
        report = audit.verify(session)
    assert not report.ok and report.first_broken_seq == 3


def test_deleted_tail_is_reported(container):
    _fill(container)
    with transaction(container.sessions) as session:
        last = session.execute(select(audit.AuditEntry.seq).order_by(audit.AuditEntry.seq.desc())).scalars().first()
        session.execute(delete(audit.AuditEntry).where(audit.AuditEntry.seq == last))
    with transaction(container.sessions) as session:
        report = audit.verify(session)
    assert not report.ok and "deleted" in report.problem


def test_entry_rolls_back_with_its_transaction(container):
    _fill(container, 1)
    with transaction(container.sessions) as session:
        before = audit.verify(session).entries
    try:
        with transaction(container.sessions) as session:
            audit.record(session, actor="test", action="test:entry:add", subject="lost")
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    with transaction(container.sessions) as session:
        report = audit.verify(session)
    assert report.ok and report.entries == before
