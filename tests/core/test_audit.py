"""The audit chain detects edits, deletions and reordering, on both databases."""
import datetime as dt
import json

import pytest
from sqlalchemy import delete, select, update

from core import audit, clock
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


# -- reading and exporting: an auditor re-verifies an export offline --------------------------------------
def _export(container, **where):
    with transaction(container.sessions) as session:
        return list(audit.export_lines(session, audit.AuditFilter(**where)))


def test_export_is_utf8_json_lines_that_verify_offline(container):
    _fill(container)
    lines = _export(container)
    assert len(lines) >= 5 and all(line.endswith("\n") for line in lines)
    assert "Hòa Bình" in "".join(lines) and "\\u" not in "".join(lines)  # Vietnamese as written, not escaped
    first = json.loads(lines[0])
    assert first["seq"] == 1 and first["prev_hash"] == audit.GENESIS
    report = audit.verify_export(lines)
    assert report.ok and report.entries == len(lines) and report.problem is None


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder", "truncate-head", "relink"])
def test_tampered_export_fails_offline(container, tamper):
    _fill(container)
    lines = _export(container)
    if tamper == "edit":
        item = json.loads(lines[2])
        item["subject"] = "forged"
        lines[2] = json.dumps(item, ensure_ascii=False) + "\n"
    elif tamper == "delete":
        del lines[2]
    elif tamper == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
    elif tamper == "truncate-head":
        del lines[0]
    else:  # an entry rewritten with a fresh, self-consistent hash: its successor's link breaks
        item = json.loads(lines[2])
        item["actor"] = "someone-else"
        item["hash"] = audit._digest(item["seq"], dt.datetime.fromisoformat(item["at"]), item["actor"], item["action"],
                                     item["subject"], item["details"], item["prev_hash"])
        lines[2] = json.dumps(item, ensure_ascii=False) + "\n"
    report = audit.verify_export(lines)
    assert not report.ok, tamper
    assert report.first_broken_seq is not None


def test_filters_and_paging(container):
    with transaction(container.sessions) as session:
        audit.record(session, actor="token:alice", action="pki:cert:revoke", subject="0A1B", ground="officer_moved")
        audit.record(session, actor="cli:bob", action="pki:cert:issue", subject="0C2D")
        audit.record(session, actor="token:alice", action="tokens:token:create", subject="hotich")
    with transaction(container.sessions) as session:
        by_actor = audit.entries(session, audit.AuditFilter(actor="token:alice"))
        by_prefix = audit.entries(session, audit.AuditFilter(action="pki:*"))
        by_subject = audit.entries(session, audit.AuditFilter(subject="0C2D"))
        later = audit.entries(session, audit.AuditFilter(since=clock.now() + dt.timedelta(hours=1)))
        page1 = audit.entries(session, audit.AuditFilter(limit=2))
        page2 = audit.entries(session, audit.AuditFilter(after_seq=page1[-1].seq, limit=2))
        every = audit.entries(session, audit.AuditFilter(limit=None))
    assert [e.subject for e in by_actor] == ["0A1B", "hotich"]
    assert [e.action for e in by_prefix] == ["pki:cert:revoke", "pki:cert:issue"]
    assert [e.actor for e in by_subject] == ["cli:bob"]
    assert later == []
    assert len(every) >= 4 and [e.seq for e in page1 + page2] == [e.seq for e in every[:4]] == [1, 2, 3, 4]
    # a filtered export has gaps: it verifies as partial, and a full-chain check refuses it
    lines = _export(container, actor="token:alice")
    assert audit.verify_export(lines, complete=False).ok
    assert not audit.verify_export(lines).ok


def test_the_documented_offline_check_runs_on_an_export(container, tmp_path):
    """docs/operations.md §0.1 shows an auditor how to re-verify an export with Python alone: run it."""
    import subprocess
    import sys
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text("utf-8")
    script = doc.split("**Re-verifying an export by hand.**", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    _fill(container)
    lines = _export(container)
    (tmp_path / "audit-2026-12.jsonl").write_text("".join(lines), "utf-8")
    ok = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and f"intact: {len(lines)} entries" in ok.stdout, ok.stderr
    item = json.loads(lines[1])
    item["details"] = item["details"].replace("Hòa Bình", "Hòa Bình 2")
    (tmp_path / "audit-2026-12.jsonl").write_text("".join([lines[0], json.dumps(item, ensure_ascii=False) + "\n",
                                                           *lines[2:]]), "utf-8")
    broken = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert broken.returncode != 0 and "broken at 2" in broken.stderr
