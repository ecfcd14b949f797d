"""Document versions in the blob store (``signing/registry/blobs.py``, ``versions.py``): every version kyso
handed out is rebuilt byte for byte, through sign → upgrade → upgrade → upgrade → seal, on both databases
and both blob backends; a failed or lost signing leaves no blob; an altered or missing blob is an error,
never other bytes; dropping the caller's input keeps every version rebuildable."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import os
import threading
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, delete, func, inspect, select, text, update

from api.container import Container
from core import clock
from core.db import alembic_config, transaction
from core.errors import KysoError
from signing.create import upgrade
from signing.create.sample import sample_document
from signing.create.service import SigningService, SignResult
from signing.errors import StoredFileDamaged
from signing.registry import lifecycle, versions
from signing.registry.blobs import FileBlobStore, store_for
from signing.registry.models import Blob, DocumentFile, SignedDocument, StorageKind, UpgradeStatus
from tests.helpers.pdfs import many_pages
from tests.helpers.signing import CONSENTED, request

TSA_DOWN = {"tsa_url": "http://127.0.0.1:9/tsa", "tsa_timeout_seconds": 1}


def service(pki: Container, **update: object) -> SigningService:
    return SigningService(dataclasses.replace(pki.pki, settings=pki.settings.model_copy(update=update)))


def document(pki: Container, pages: int) -> bytes:
    return sample_document(pki.settings.stamp_font) if pages == 1 else many_pages(pages)


def files(pki: Container, document_id: str) -> list[DocumentFile]:
    with transaction(pki.sessions) as session:
        return list(session.execute(select(DocumentFile).where(DocumentFile.document_id == document_id)
                                    .order_by(DocumentFile.version)).scalars())


def rebuilt(pki: Container, svc: SigningService, document_id: str) -> list[bytes]:
    with transaction(pki.sessions, read_only=True) as session:
        rows = session.execute(select(DocumentFile).where(DocumentFile.document_id == document_id)
                               .order_by(DocumentFile.version)).scalars().all()
        return [lifecycle.file_bytes(session, svc.ctx.settings, row) for row in rows]


def raise_target(pki: Container, document_id: str, level: str) -> None:
    """The level asked for goes up (as a policy change would): the upgrader takes the document again."""
    with transaction(pki.sessions) as session:
        session.execute(update(SignedDocument).where(SignedDocument.id == document_id).values(
            requested_level=level, upgrade_status=UpgradeStatus.PENDING, next_attempt_at=clock.now()))


def stored_bytes(pki: Container, svc: SigningService) -> int:
    settings = svc.ctx.settings
    if settings.blob_store == "filesystem":
        return sum(p.stat().st_size for p in settings.blob_dir.rglob("*") if p.is_file())
    with transaction(pki.sessions) as session:
        return int(session.execute(select(func.coalesce(func.sum(Blob.size), 0))).scalar_one())


@pytest.mark.parametrize("backend", ["database", "filesystem"])
@pytest.mark.parametrize("pages", [1, 50])
def test_every_version_rebuilds_byte_exact(pki: Container, specialist: str, seal: str, backend: str,
                                           pages: int) -> None:
    pdf = document(pki, pages)
    svc, down = service(pki, blob_store=backend), service(pki, blob_store=backend, **TSA_DOWN)
    first = down.sign(request(pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    assert (first.level, first.pending_upgrade) == ("B-B", True)
    [v1] = files(pki, first.document_id)
    assert (v1.storage, v1.base_sha256) == (StorageKind.DELTA, hashlib.sha256(pdf).hexdigest()), "input kept"
    assert rebuilt(pki, svc, first.document_id) == [first.pdf]

    assert upgrade.upgrade_one(svc, first.document_id) == "upgraded"  # B-T: the final level
    for level in ("B-LT", "B-LTA"):
        raise_target(pki, first.document_id, level)
        assert upgrade.upgrade_one(svc, first.document_id) == "upgraded"
    handed = rebuilt(pki, svc, first.document_id)
    sealed = svc.sign(request(handed[-1], seal, "B-LTA"), actor="test", activation=CONSENTED)

    rows = files(pki, first.document_id)
    assert [r.level for r in rows] == ["B-B", "B-T", "B-LT", "B-LTA", "B-LTA"]
    everything = rebuilt(pki, svc, first.document_id)
    assert everything[0] == first.pdf and everything[-1] == sealed.pdf and everything[:4] == handed
    for row, data in zip(rows, everything, strict=True):
        assert hashlib.sha256(data).hexdigest() == row.sha256 and len(data) == row.size
    for parent, child in itertools.pairwise(everything):
        assert child.startswith(parent)
    assert [r.storage for r in rows] == [StorageKind.WHOLE] + [StorageKind.DELTA] * 4, "v1 rebased at B-T"
    assert all(r.base_sha256 == p.sha256 for p, r in itertools.pairwise(rows))
    whole = sum(r.size for r in rows)
    kept = stored_bytes(pki, svc)  # the dropped input included: nothing swept yet
    assert kept < whole - 3 * len(pdf), (kept, whole)
    if backend == "filesystem":
        with transaction(pki.sessions) as session:
            assert session.execute(select(func.count()).select_from(Blob)).scalar_one() == 0


@pytest.mark.parametrize("backend", ["database", "filesystem"])
def test_a_failed_commit_leaves_no_registry_row_and_no_referenced_blob(pki: Container, specialist: str,
                                                                      sample_pdf: bytes, backend: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    svc = service(pki, blob_store=backend)
    kept = svc.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)

    def refuse(*_: object, **__: object) -> None:
        raise RuntimeError("the audit write failed")

    monkeypatch.setattr("signing.create.service.audit.record", refuse)
    other = many_pages(3)
    with pytest.raises(RuntimeError, match="audit write failed"):
        svc.sign(request(other, specialist, "B-T"), actor="test", activation=CONSENTED)
    monkeypatch.undo()
    with transaction(pki.sessions) as session:
        assert session.execute(select(func.count()).select_from(SignedDocument)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(DocumentFile)).scalar_one() == 1
        blobs = set(session.execute(select(Blob.sha256)).scalars())
        used = versions.referenced(session, sorted(blobs))
    assert blobs == used, "the database store wrote nothing the failed transaction did not roll back"
    if backend == "filesystem":  # the file was written before the commit failed: an orphan, harmless
        store = FileBlobStore(svc.ctx.settings.blob_dir)
        names = {p.name for p in svc.ctx.settings.blob_dir.rglob("*") if p.is_file()}
        with transaction(pki.sessions) as session:
            orphans = names - versions.referenced(session, sorted(names))
            assert orphans, "the failed signing's tail or whole file is on disk"
            assert store.sweep(session, clock.now() - dt.timedelta(hours=1), versions.referenced) == 0, "too young"
            assert store.sweep(session, clock.now() + dt.timedelta(hours=1), versions.referenced) == len(orphans)
    assert rebuilt(pki, svc, kept.document_id) == [kept.pdf]


@pytest.mark.parametrize("backend", ["database", "filesystem"])
def test_an_altered_or_missing_blob_is_an_error_never_other_bytes(pki: Container, specialist: str, seal: str,
                                                                   sample_pdf: bytes, backend: str) -> None:
    svc = service(pki, blob_store=backend)
    person = svc.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    sealed = svc.sign(request(person.pdf, seal, "B-T"), actor="test", activation=CONSENTED)
    v1, v2 = files(pki, person.document_id)
    assert v2.storage == StorageKind.DELTA
    target = v1.blob_sha256  # the first version's bytes: both versions are rebuilt from them

    def alter(data: bytes) -> None:
        if backend == "filesystem":
            FileBlobStore(svc.ctx.settings.blob_dir).path(target).write_bytes(data)
        else:
            with transaction(pki.sessions) as session:
                session.execute(update(Blob).where(Blob.sha256 == target).values(data=data))

    original = person.pdf
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    alter(bytes(flipped))
    for version in (1, 2):
        with transaction(pki.sessions, read_only=True) as session, pytest.raises(StoredFileDamaged) as caught:
            lifecycle.file_bytes(session, svc.ctx.settings, lifecycle.get_file(session, person.document_id, version))
        assert caught.value.details["blob"] == target and caught.value.details["version"] == version
    if backend == "filesystem":
        FileBlobStore(svc.ctx.settings.blob_dir).path(target).unlink()
    else:
        with transaction(pki.sessions) as session:
            session.execute(delete(Blob).where(Blob.sha256 == target))
    with transaction(pki.sessions, read_only=True) as session, pytest.raises(StoredFileDamaged, match="missing"):
        lifecycle.file_bytes(session, svc.ctx.settings, lifecycle.get_file(session, person.document_id, 2))
    assert sealed.version == 2


def test_a_damaged_store_answers_a_clear_error_over_http(pki: Container, specialist: str, sample_pdf: bytes,
                                                         client: TestClient, operator_headers: dict[str, str]) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    [v1] = files(pki, signed.document_id)
    with transaction(pki.sessions) as session:
        session.execute(update(Blob).where(Blob.sha256 == v1.blob_sha256).values(data=b"%PDF-not-it"))
    r = client.get(f"/api/v1/documents/{signed.document_id}/file", headers=operator_headers)
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "stored_file_damaged"
    assert b"%PDF" not in r.content


@pytest.mark.parametrize("backend", ["database", "filesystem"])
def test_dropping_the_input_keeps_every_version_rebuildable(pki: Container, specialist: str, backend: str) -> None:
    pdf = many_pages(5)
    svc, down = service(pki, blob_store=backend), service(pki, blob_store=backend, **TSA_DOWN)
    first = down.sign(request(pdf, specialist, "B-LT"), actor="test", activation=CONSENTED)
    input_sha = hashlib.sha256(pdf).hexdigest()
    keeping = svc.ctx.settings.model_copy(update={"input_retention_days": 30})
    assert versions.collect(pki.sessions, keeping).rebased == 0, "pending, within retention: the input stays"
    [v1] = files(pki, first.document_id)
    assert v1.base_sha256 == input_sha

    # past retention (0 days) while still pending: v1 is stored whole, the input unreferenced
    expired = svc.ctx.settings.model_copy(update={"input_retention_days": 0})
    assert versions.collect(pki.sessions, expired).rebased == 1
    [v1] = files(pki, first.document_id)
    assert (v1.storage, v1.base_sha256, v1.blob_sha256) == (StorageKind.WHOLE, None, first.sha256)
    store = store_for(svc.ctx.settings)
    with transaction(pki.sessions) as session:
        assert input_sha not in versions.referenced(session, [input_sha])
        store.sweep(session, clock.now() + dt.timedelta(hours=1), versions.referenced)  # the grace passed
        with pytest.raises(StoredFileDamaged, match="missing"):
            store.get(session, input_sha)
    assert rebuilt(pki, svc, first.document_id) == [first.pdf]
    assert upgrade.upgrade_one(svc, first.document_id) == "upgraded"
    [one, two] = rebuilt(pki, svc, first.document_id)
    assert one == first.pdf and two.startswith(one)
    assert hashlib.sha256(two).hexdigest() == files(pki, first.document_id)[1].sha256


def test_a_final_level_at_signing_stores_the_first_version_whole(pki: Container, specialist: str,
                                                                 sample_pdf: bytes) -> None:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-LT"), actor="test", activation=CONSENTED)
    [v1] = files(pki, signed.document_id)
    assert (v1.storage, v1.blob_sha256, v1.base_sha256) == (StorageKind.WHOLE, signed.sha256, None)
    with transaction(pki.sessions) as session:
        assert hashlib.sha256(sample_pdf).hexdigest() not in set(session.execute(select(Blob.sha256)).scalars())


@pytest.mark.parametrize("backend", ["database", "filesystem"])
def test_two_signings_of_one_parent_one_wins_the_loser_stores_nothing(pki: Container, specialist: str, seal: str,
                                                                      sample_pdf: bytes, backend: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    svc = service(pki, blob_store=backend)
    person = svc.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    both_signed = threading.Barrier(2, timeout=60)
    record = SigningService._record

    def together(self: SigningService, *args: object, **kwargs: object) -> object:
        both_signed.wait()  # both have signed the same parent; now both try to register
        return record(self, *args, **kwargs)  # type: ignore[arg-type]  # passed through as received

    monkeypatch.setattr(SigningService, "_record", together)
    outcomes: list[object] = []

    def run(title: str) -> None:
        try:
            outcomes.append(svc.sign(request(person.pdf, seal, "B-T", reason=title), actor="test",
                                     activation=CONSENTED))
        except KysoError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    won = [o for o in outcomes if isinstance(o, SignResult)]
    lost = [o for o in outcomes if isinstance(o, KysoError)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert "changed while it was being signed" in str(lost[0])
    rows = files(pki, person.document_id)
    assert [r.version for r in rows] == [1, 2]
    with transaction(pki.sessions) as session:
        names = set(session.execute(select(Blob.sha256)).scalars())
        if backend == "filesystem":
            names |= {p.name for p in svc.ctx.settings.blob_dir.rglob("*") if p.is_file()}
        assert names == versions.referenced(session, sorted(names)), "no blob of the loser's"
    assert rebuilt(pki, svc, person.document_id) == [person.pdf, won[0].pdf]


def test_the_blob_folder_refuses_names_that_are_not_digests(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    for name in ("../../etc/passwd", "A" * 64, "0" * 63, "g" * 64):
        with pytest.raises(ValueError, match="SHA-256"):
            store.path(name)
        with pytest.raises(StoredFileDamaged, match="not a SHA-256"):  # a row naming it: damage, not a 500
            store.get(None, name)  # type: ignore[arg-type]  # never reaches the database


def test_migration_moves_whole_pdfs_to_blobs_and_back(pki: Container, specialist: str, seal: str,
                                                      sample_pdf: bytes) -> None:
    """Versions stored whole before 0017 (``document_files.pdf``) are moved: a first version stays whole, a
    version that extends its predecessor becomes its tail; every byte reads back, and downgrade restores."""
    person = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    sealed = pki.signing.sign(request(person.pdf, seal, "B-T"), actor="test", activation=CONSENTED)
    pki.engine.dispose()
    url = pki.settings.resolved_database_url
    command.downgrade(alembic_config(url), "0016")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT version, pdf FROM document_files WHERE document_id = :d "
                                       "ORDER BY version"), {"d": person.document_id}).all()
            assert [bytes(pdf) for _, pdf in stored] == [person.pdf, sealed.pdf]
            assert "blobs" not in inspect(conn).get_table_names()
    finally:
        engine.dispose()
    command.upgrade(alembic_config(url), "head")
    rows = files(pki, person.document_id)
    assert [r.storage for r in rows] == [StorageKind.WHOLE, StorageKind.DELTA]
    assert rows[1].base_sha256 == rows[0].sha256
    assert rebuilt(pki, pki.signing, person.document_id) == [person.pdf, sealed.pdf]


def test_gc_names_a_document_it_cannot_rebase_and_goes_on(pki: Container, specialist: str) -> None:
    down = service(pki, **TSA_DOWN)
    lost, kept, other = (down.sign(request(many_pages(n), specialist, "B-LT"), actor="test", activation=CONSENTED)
                         for n in (2, 3, 4))
    [v1] = files(pki, lost.document_id)
    with transaction(pki.sessions) as session:
        session.execute(delete(Blob).where(Blob.sha256 == v1.base_sha256))  # the input, lost
    expired = pki.settings.model_copy(update={"input_retention_days": 0})
    result = versions.collect(pki.sessions, expired, page=1)  # one document a page: the paging too
    assert result.damaged == (lost.document_id,) and result.rebased == 2
    assert files(pki, lost.document_id)[0].storage == StorageKind.DELTA, "left as it was"
    for signed in (kept, other):
        assert files(pki, signed.document_id)[0].storage == StorageKind.WHOLE
        assert rebuilt(pki, pki.signing, signed.document_id) == [signed.pdf]


def test_a_sweep_never_deletes_a_file_stored_again_while_it_looks(pki: Container, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Attacker's view (a signing racing ``kyso doc gc``): the signing stores bytes already in the folder,
    which only refreshes the file's age, in the instant between the sweep's age check and its deletion. The
    signing then commits a version naming that file; it must still be there."""
    store = FileBlobStore(tmp_path / "blobs")
    data = b"%PDF-1.7 the caller's input, shared by a signing in progress"
    with transaction(pki.sessions) as session:
        sha = store.put(session, data)
    old = (clock.now() - dt.timedelta(days=3)).timestamp()
    os.utime(store.path(sha), (old, old))
    stat, seen = Path.stat, []

    def racing(self: Path, *args: object, **kwargs: object) -> os.stat_result:
        result = stat(self, *args, **kwargs)  # type: ignore[arg-type]  # passed through as received
        if sha in self.name:
            seen.append(self.name)
            if len(seen) == 3:  # listed, aged, then the last look just before deleting: a signing stores it again
                with transaction(pki.sessions) as racer:
                    store.put(racer, data)
        return result

    monkeypatch.setattr(Path, "stat", racing)
    with transaction(pki.sessions) as session:
        store.sweep(session, clock.now() - dt.timedelta(hours=1), versions.referenced)
    monkeypatch.undo()
    assert len(seen) == 3, seen
    assert store.path(sha).read_bytes() == data, "a blob stored again during the sweep was deleted"
    with transaction(pki.sessions) as session:  # and a later sweep, past its new age, does take it
        assert store.sweep(session, clock.now() + dt.timedelta(hours=1), versions.referenced) == 1
    assert not list((tmp_path / "blobs").rglob("*" + sha))


def test_a_blob_a_stopped_sweep_left_aside_is_read_and_put_back(pki: Container, tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    data = b"%PDF-1.7 a version's tail"
    with transaction(pki.sessions) as session:
        sha = store.put(session, data)
    aside = store.path(sha).with_name(".gc-" + sha)
    os.rename(store.path(sha), aside)  # as a sweep that stopped between moving it and judging it leaves it
    old = (clock.now() - dt.timedelta(days=3)).timestamp()
    os.utime(aside, (old, old))
    with transaction(pki.sessions) as session:
        assert store.get(session, sha) == data
        store.sweep(session, clock.now() - dt.timedelta(hours=1), lambda _s, names: set(names))
    assert store.path(sha).read_bytes() == data and not aside.exists()


@pytest.mark.parametrize("backend", ["database", "filesystem"])
def test_an_input_shared_by_two_documents_stays_while_one_still_needs_it(pki: Container, specialist: str,
                                                                         backend: str) -> None:
    """The same bytes sent twice make two documents over one input blob: dropping it for one (its final
    level reached) must not take it from the other, still pending."""
    pdf = many_pages(2)
    down = service(pki, blob_store=backend, **TSA_DOWN)
    first = down.sign(request(pdf, specialist, "B-LT"), actor="test", activation=CONSENTED)
    second = down.sign(request(pdf, specialist, "B-LT", reason="again"), actor="test", activation=CONSENTED)
    input_sha = hashlib.sha256(pdf).hexdigest()
    assert [files(pki, d)[0].base_sha256 for d in (first.document_id, second.document_id)] == [input_sha] * 2
    store = store_for(down.ctx.settings)
    with transaction(pki.sessions) as session:
        assert versions.rebase(session, store, first.document_id) == 1
    with transaction(pki.sessions) as session:
        store.sweep(session, clock.now() + dt.timedelta(hours=1), versions.referenced)
    assert rebuilt(pki, down, first.document_id) == [first.pdf]
    assert rebuilt(pki, down, second.document_id) == [second.pdf], "the other document lost its input"


def test_migration_keeps_odd_rows_byte_exact(pki: Container, specialist: str, seal: str, sample_pdf: bytes) -> None:
    """Rows as an older kyso or a restore may have left them: a version that does not extend its parent, two
    documents holding the same bytes (one blob for both). Every one reads back byte for byte after 0017, and
    again after a downgrade."""
    person = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    pki.signing.sign(request(person.pdf, seal, "B-T"), actor="test", activation=CONSENTED)  # version 2
    other = pki.signing.sign(request(many_pages(2), specialist, "B-T"), actor="test", activation=CONSENTED)
    twin = pki.signing.sign(request(many_pages(3), specialist, "B-T"), actor="test", activation=CONSENTED)
    unrelated = b"%PDF-1.7 not an update of version 1\n%%EOF\n"
    pki.engine.dispose()
    url = pki.settings.resolved_database_url
    command.downgrade(alembic_config(url), "0016")
    engine = create_engine(url)

    def set_version(conn: Connection, document_id: str, version: int, pdf: bytes) -> None:
        conn.execute(text("UPDATE document_files SET pdf = :p, sha256 = :s, size = :n WHERE document_id = :d "
                          "AND version = :v"), {"p": pdf, "s": hashlib.sha256(pdf).hexdigest(), "n": len(pdf),
                                                "d": document_id, "v": version})

    try:
        with engine.begin() as conn:
            set_version(conn, person.document_id, 2, unrelated)  # does not extend version 1
            set_version(conn, twin.document_id, 1, other.pdf)  # the same bytes as another document's version
    finally:
        engine.dispose()
    command.upgrade(alembic_config(url), "head")
    rows = files(pki, person.document_id)
    assert [r.storage for r in rows] == [StorageKind.WHOLE, StorageKind.WHOLE]
    expected = {person.document_id: [person.pdf, unrelated], other.document_id: [other.pdf],
                twin.document_id: [other.pdf]}
    for document_id, pdfs in expected.items():
        assert rebuilt(pki, pki.signing, document_id) == pdfs
    pki.engine.dispose()
    command.downgrade(alembic_config(url), "0016")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for document_id, pdfs in expected.items():
                stored = conn.execute(text("SELECT pdf FROM document_files WHERE document_id = :d ORDER BY version"),
                                      {"d": document_id}).scalars().all()
                assert [bytes(p) for p in stored] == pdfs
    finally:
        engine.dispose()
    command.upgrade(alembic_config(url), "head")
