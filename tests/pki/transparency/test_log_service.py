"""The transparency log of a real kyso: events logged in their own transactions, sequenced into signed
checkpoints, served as tiles, and checked by kyso's own client and by Go's x/mod tlog (code kyso did not
write) — then tampered with in every way an operator or a mirror could, and caught each time."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from api.cli import app as cli
from api.container import Container
from core import clock
from core.db import transaction
from core.errors import Conflict
from pki import revocation
from pki.reasons import Reason
from pki.transparency import client, events, merkle, service
from pki.transparency.entry import Entry, EntryType
from pki.transparency.errors import NotYetLogged
from pki.transparency.models import LogEntry, LogPending, LogTile, TransparencyLog
from pki.transparency.note import Checkpoint, b64
from pki.transparency.proof import TlogProof
from pki.transparency.tiles import TileHashReader, append_leaves
from signing.registry import lifecycle
from tests.helpers.pdfs import serial_of
from tests.helpers.signing import COMMUNE, CONSENTED, issue_credential, request
from tests.helpers.tlog import run_tlogcheck

ID_NUMBER = "001190000001"  # the specialist's CCCD in tests.helpers.signing: never in the log


def sign(pki: Container, credential: str, pdf: bytes) -> str:
    return pki.signing.sign(request(pdf, credential), actor="test", activation=CONSENTED).document_id


def export(pki: Container, directory: Path) -> Path:
    with transaction(pki.sessions, read_only=True) as session:
        service.export(session, directory)
    return directory


def vkey(pki: Container) -> str:
    return service.log_info(pki.pki).vkey


def cli_verify(pki: Container, directory: Path, state: Path | None = None) -> tuple[int, str]:
    args = ["log", "verify", "--dir", str(directory), "--key", vkey(pki), "--json"]
    if state is not None:
        args += ["--state", str(state)]
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output


@pytest.fixture
def history(pki: Container, specialist: str, sample_pdf: bytes, tmp_path: Path) -> dict[str, object]:
    """A log with certificates issued (the hierarchy's services, a specialist, a second one revoked), three
    documents signed, one withdrawn; sequenced in two steps, the first checkpoint kept."""
    first = sign(pki, specialist, sample_pdf)
    service.sequence_all(pki.pki)
    old = service.log_info(pki.pki)
    other = issue_credential(pki, name="Trần Văn Bình", id_number="001190000002")
    revocation.revoke(pki.pki, serial_of(pki, other), Reason.keyCompromise, "test")
    second = sign(pki, specialist, sample_pdf)
    third = sign(pki, specialist, sample_pdf)
    lifecycle.withdraw(pki.pki, third, "issued in error", actor="test")
    service.sequence_all(pki.pki)
    (tmp_path / "old-checkpoint").write_text(old.checkpoint)
    return {"documents": [first, second, third], "old": old, "old_file": tmp_path / "old-checkpoint"}


def test_every_event_is_logged_once_without_personal_data(pki: Container, history: dict[str, object]) -> None:
    with transaction(pki.sessions, read_only=True) as session:
        entries = [Entry.parse(e) for e in session.execute(select(LogEntry.entry).order_by(LogEntry.idx)).scalars()]
        assert service.pending_count(session) == 0
    kinds = [e.type for e in entries]
    assert kinds.count(EntryType.DOCUMENT_REGISTERED) == 3
    assert kinds.count(EntryType.DOCUMENT_WITHDRAWN) == 1
    assert kinds.count(EntryType.CERTIFICATE_REVOKED) == 1
    assert kinds.count(EntryType.AUDIT_ANCHOR) >= 1
    issued = [e for e in entries if e.type is EntryType.CERTIFICATE_ISSUED]
    assert {e.get("profile") for e in issued} >= {"specialist", "tsa", "ocsp-responder", "qr-seal"}
    for e in entries:
        text = e.encode().decode()
        assert ID_NUMBER not in text and "001190000002" not in text and "Nguyễn" not in text and "Trần" not in text
    documents = history["documents"]
    assert isinstance(documents, list)
    doc = next(e for e in entries if e.get("document") == documents[0])
    assert doc.commune == COMMUNE and len(doc.values("signature-sha256")) >= 1


def test_kyso_and_go_verify_a_real_log(pki: Container, history: dict[str, object], tmp_path: Path,
                                       tlogcheck: Path) -> None:
    copy = export(pki, tmp_path / "copy")
    replay = client.replay(client.directory_fetch(copy), service.verifier(pki.pki))
    assert replay.checkpoint.size == service.log_info(pki.pki).size > 10
    ok, output = run_tlogcheck(tlogcheck, "-vkey", vkey(pki), "-dir", str(copy), "-old", str(history["old_file"]))
    assert ok, output
    assert f"{replay.checkpoint.size} entries proven" in output

    documents = history["documents"]
    assert isinstance(documents, list)
    with transaction(pki.sessions, read_only=True) as session:
        proof = service.proof_for_document(session, documents[1])
        old = history["old"]
        assert isinstance(old, service.LogInfo)
        tree_proof = service.consistency(session, old.size)
    cp, entry = TlogProof.parse(proof.encode()).verify_extra(service.verifier(pki.pki))
    assert Entry.parse(entry).get("document") == documents[1]
    (tmp_path / "doc.tlog-proof").write_text(proof.encode())
    ok, output = run_tlogcheck(tlogcheck, "-vkey", vkey(pki), "-proof", str(tmp_path / "doc.tlog-proof"))
    assert ok, output
    (tmp_path / "tree-proof").write_text("\n".join(
        [str(old.size), b64(old.root_hash), str(cp.size), b64(cp.root_hash), *map(b64, tree_proof)]))
    ok, output = run_tlogcheck(tlogcheck, "-tree-proof", str(tmp_path / "tree-proof"))
    assert ok, output
    # the same proof with the sizes swapped around a forged root is refused by Go too
    (tmp_path / "bad-proof").write_text("\n".join(
        [str(old.size), b64(bytes(32)), str(cp.size), b64(cp.root_hash), *map(b64, tree_proof)]))
    assert not run_tlogcheck(tlogcheck, "-tree-proof", str(tmp_path / "bad-proof"))[0]


def _entry_rows(pki: Container) -> list[tuple[int, bytes]]:
    with transaction(pki.sessions, read_only=True) as session:
        return list(session.execute(select(LogEntry.idx, LogEntry.entry).order_by(LogEntry.idx)).all())


def _tamper(pki: Container, how: str) -> None:
    rows = _entry_rows(pki)
    k = len(rows) // 2
    with transaction(pki.sessions) as session:
        if how == "changed":
            changed = rows[k][1].replace(b"\ntime 20", b"\ntime 19")
            assert changed != rows[k][1]
            session.execute(update(LogEntry).where(LogEntry.idx == k).values(entry=changed))
        elif how == "reordered":
            session.execute(update(LogEntry).where(LogEntry.idx == k).values(entry=rows[k + 1][1]))
            session.execute(update(LogEntry).where(LogEntry.idx == k + 1).values(entry=rows[k][1]))
        elif how == "removed":
            session.execute(delete(LogEntry).where(LogEntry.idx == k))
            for idx, _ in rows[k + 1:]:
                session.execute(update(LogEntry).where(LogEntry.idx == idx).values(idx=idx - 1))


@pytest.mark.parametrize("how", ["changed", "reordered", "removed"])
def test_an_entry_tampered_in_storage_is_caught(pki: Container, history: dict[str, object], tmp_path: Path,
                                                tlogcheck: Path, how: str) -> None:
    _tamper(pki, how)
    copy = export(pki, tmp_path / "copy")
    code, output = cli_verify(pki, copy)
    assert code == 1 and json.loads(output)["ok"] is False, output
    ok, output = run_tlogcheck(tlogcheck, "-vkey", vkey(pki), "-dir", str(copy))
    assert not ok and "FAIL" in output


def _rewrite_history(pki: Container, *, grow: int) -> None:
    """What an operator holding the log key could do: change a past entry, rebuild the tiles, sign anew."""
    rows = _entry_rows(pki)
    k = len(rows) // 2
    forged = [data for _, data in rows]
    forged[k] = forged[k].replace(b"\ntime 20", b"\ntime 19")
    forged += [events.audit_anchor(seq=i, head="ab" * 32, at=clock.now())
               .encode() for i in range(grow)]
    store = append_leaves(0, [merkle.leaf_hash(e) for e in forged], lambda level, index: b"")
    root = merkle.tree_hash(len(forged), TileHashReader(lambda level, index: store.get((level, index), b"")))
    with transaction(pki.sessions) as session:
        row = session.get(TransparencyLog, 1)
        assert row is not None
        note = Checkpoint(row.origin, len(forged), root).sign([service._signer(pki.pki, row)])
        session.execute(delete(LogTile))
        session.execute(delete(LogEntry))
        for (level, index), data in store.items():
            session.add(LogTile(level=level, idx=index, data=data))
        for i, data in enumerate(forged):
            session.add(LogEntry(idx=i, entry=data, type=Entry.parse(data).type.value, sequenced_at=row.updated_at))
        session.execute(update(TransparencyLog).values(size=len(forged), root_hash=root, checkpoint=note))


@pytest.mark.parametrize("grow", [0, 3], ids=["fork-same-size", "rewritten-and-grown"])
def test_a_forked_or_rewritten_log_is_caught(pki: Container, history: dict[str, object], tmp_path: Path,
                                            tlogcheck: Path, grow: int) -> None:
    honest = export(pki, tmp_path / "honest")
    state = tmp_path / "state.json"
    assert cli_verify(pki, honest, state)[0] == 0
    (tmp_path / "honest-checkpoint").write_bytes((honest / "checkpoint").read_bytes())
    _rewrite_history(pki, grow=grow)
    forged = export(pki, tmp_path / "forged")
    assert cli_verify(pki, forged)[0] == 0  # alone, a rewritten log is self-consistent...
    code, output = cli_verify(pki, forged, state)  # ...but not with what a monitor saw before
    assert code == 1
    assert ("forked" if grow == 0 else "not a prefix") in json.loads(output)["error"]
    ok, output = run_tlogcheck(tlogcheck, "-vkey", vkey(pki), "-dir", str(forged),
                               "-old", str(tmp_path / "honest-checkpoint"))
    assert not ok and ("forked" if grow == 0 else "not a prefix") in output


def test_a_stale_checkpoint_is_caught(pki: Container, specialist: str, sample_pdf: bytes, tmp_path: Path,
                                      tlogcheck: Path) -> None:
    service.sequence_all(pki.pki)
    older = export(pki, tmp_path / "older")
    sign(pki, specialist, sample_pdf)
    service.sequence_all(pki.pki)
    newer = export(pki, tmp_path / "newer")
    state = tmp_path / "state.json"
    assert cli_verify(pki, older, state)[0] == 0
    assert cli_verify(pki, newer, state)[0] == 0  # growing is fine, and the state moves on
    code, output = cli_verify(pki, older, state)  # a mirror (or the log) now shows this client the past
    assert code == 1 and "stale" in json.loads(output)["error"]
    ok, output = run_tlogcheck(tlogcheck, "-vkey", vkey(pki), "-dir", str(older), "-old", str(newer / "checkpoint"))
    assert not ok and "stale" in output


def test_a_document_waits_for_the_sequencer_then_has_a_proof(pki: Container, specialist: str,
                                                            sample_pdf: bytes) -> None:
    document = sign(pki, specialist, sample_pdf)
    with transaction(pki.sessions, read_only=True) as session, pytest.raises(NotYetLogged, match="wait a second"):
        service.proof_for_document(session, document)
    service.sequence(pki.pki)
    with transaction(pki.sessions, read_only=True) as session:
        proof = service.proof_for_document(session, document)
    _, entry = proof.verify_extra(service.verifier(pki.pki))
    assert Entry.parse(entry).get("document") == document


def test_concurrent_sequencers_never_duplicate_or_skip(pki: Container, tmp_path: Path) -> None:
    service.sequence_all(pki.pki)
    with transaction(pki.sessions) as session:
        start = session.get(TransparencyLog, 1).size  # type: ignore[union-attr]  # made by init_hierarchy
        for i in range(400):
            events.record(session, events.audit_anchor(seq=i, head=f"{i:064x}", at=clock.now()))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(200):
                try:
                    if service.sequence(pki.pki, batch=23, anchor_seconds=None).appended == 0:
                        return
                except Conflict:
                    continue  # a lost race rolls back whole; the next pass takes the rows again
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with transaction(pki.sessions, read_only=True) as session:
        assert session.execute(select(LogPending)).first() is None
        indices = list(session.execute(select(LogEntry.idx).order_by(LogEntry.idx)).scalars())
        sequences = [Entry.parse(e).get("audit-sequence") for e in
                     session.execute(select(LogEntry.entry).where(LogEntry.idx >= start)).scalars()]
    assert indices == list(range(start + 400))
    assert sorted(map(int, sequences)) == list(range(400))  # type: ignore[arg-type]  # all present
    copy = export(pki, tmp_path / "copy")
    assert client.replay(client.directory_fetch(copy), service.verifier(pki.pki)).checkpoint.size == start + 400


def test_an_event_committed_after_the_sequencers_snapshot_is_sequenced_later_never_lost(pki: Container) -> None:
    """PostgreSQL READ COMMITTED: a signing transaction takes a lower pending id, a second one commits first and
    is sequenced, then the first commits. Its row was never visible to the first pass, so it is not skipped:
    the next pass takes it, at the next index (log order is commit order, not id order), exactly once.
    SQLite takes the write lock at BEGIN, so the second writer cannot overtake; there the open transaction
    must not hold the sequencer up, and its entry comes on the pass after its commit."""
    service.sequence_all(pki.pki)
    start = service.log_info(pki.pki).size
    late_session = pki.sessions()
    late = late_session.begin()
    events.record(late_session, events.audit_anchor(seq=1, head="1" * 64, at=clock.now()))
    late_session.flush()  # the row holds its id, uncommitted
    expected = ["1"]
    if pki.engine.dialect.name == "postgresql":
        with transaction(pki.sessions) as session:  # a higher id, committed first
            events.record(session, events.audit_anchor(seq=2, head="2" * 64, at=clock.now()))
        assert service.sequence(pki.pki, anchor_seconds=None).appended == 1
        expected = ["2", "1"]
    else:
        assert service.sequence(pki.pki, anchor_seconds=None).appended == 0  # did not wait for the lock
    late.commit()
    late_session.close()
    assert service.sequence(pki.pki, anchor_seconds=None).appended == 1
    assert service.sequence(pki.pki, anchor_seconds=None).appended == 0
    with transaction(pki.sessions, read_only=True) as session:
        assert session.execute(select(LogPending)).first() is None
        rows = session.execute(select(LogEntry.idx, LogEntry.entry).where(LogEntry.idx >= start)
                               .order_by(LogEntry.idx)).all()
    assert [idx for idx, _ in rows] == list(range(start, start + len(expected)))
    assert [Entry.parse(e).get("audit-sequence") for _, e in rows] == expected


def test_export_never_writes_outside_its_folder(pki: Container, tmp_path: Path) -> None:
    """A web root others can write to: a planted symlink must not aim kyso's export at another file."""
    service.sequence_all(pki.pki)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_text("keep me")
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "checkpoint").symlink_to(victim)  # the final name: replaced as a link, its target untouched
    (copy / "tile").symlink_to(outside, target_is_directory=True)  # a folder on the way out: refused
    with pytest.raises(service.LogFormatError, match="outside"):
        export(pki, copy)
    assert victim.read_text() == "keep me" and list(outside.iterdir()) == [victim]
    (copy / "tile").unlink()
    export(pki, copy)
    assert victim.read_text() == "keep me" and not (copy / "checkpoint").is_symlink()
    assert client.replay(client.directory_fetch(copy), service.verifier(pki.pki)).checkpoint.size > 0
