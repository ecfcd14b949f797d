"""A worker is killed in the middle of a batch; the client retries with the same Idempotency-Key and
every document ends signed exactly once, with the registry and the audit log agreeing.

To kill at a known point, the test holds ``LOCK TABLE documents IN SHARE MODE`` (which only signing's
INSERT waits for), lets exactly one item through by handing the lock to a second connection queued
behind it, and SIGKILLs the workers while the next item waits inside its transaction. Real processes
(`kyso serve --workers 2`), real PostgreSQL, no stand-ins.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import Connection, create_engine, func, select, text

from core import audit
from core.db import transaction
from signing.registry.models import DocumentFile, IdempotencyRecord, SignedDocument
from tests.helpers.faults import KysoServer, assert_consistent, deploy, sample_pdfs, seal_metadata
from tests.helpers.servers import free_port
from tests.helpers.waiting import until

ITEMS = 10
KEY = "batch-kill-1"
RETRY_ANSWER_SECONDS = 300  # a loaded CI machine signing ten documents on freshly started workers


def _waiting_on_documents(admin: Connection) -> int:
    return admin.execute(text("SELECT count(*) FROM pg_locks WHERE relation = 'documents'::regclass "
                              "AND NOT granted")).scalar_one()


def test_worker_killed_mid_batch_then_retried(tmp_path: Path, pg_schema_url: str) -> None:
    dep = deploy(tmp_path / "home", pg_schema_url)
    pdfs = sample_pdfs(dep.container.settings, ITEMS, "kill")
    files = [("files", (f"{i}.pdf", pdf, "application/pdf")) for i, pdf in enumerate(pdfs)]
    body = {"defaults": seal_metadata(dep.seal, "HS-KILL"),
            "items": [{"dossier_number": f"HS-KILL-{i}"} for i in range(ITEMS)]}
    form = {"metadata": json.dumps(body)}
    headers = {**dep.client, "Idempotency-Key": KEY}
    server = KysoServer(dep.container.settings, free_port(), workers=2)
    engine = create_engine(pg_schema_url)
    holder, queued, admin = engine.connect(), engine.connect(), engine.connect()
    admin.execution_options(isolation_level="AUTOCOMMIT")
    first: dict[str, object] = {}
    try:
        warm = httpx.get(server.url + "/api/v1/documents", headers=dep.client, timeout=30)
        assert warm.status_code == 200, warm.text
        time.sleep(1)  # the workers' start-up republication (CRLs) is done

        holder.begin()
        holder.execute(text("LOCK TABLE documents IN SHARE MODE"))

        def post_batch() -> None:
            try:
                first["response"] = httpx.post(server.url + "/api/v1/sign/batch", files=files, data=form,
                                               headers=headers, timeout=60)
            except httpx.HTTPError as exc:
                first["error"] = exc

        poster = threading.Thread(target=post_batch)
        poster.start()
        until(lambda: _waiting_on_documents(admin) == 1, 30, "item 0 to wait for the documents lock")

        def queue_behind() -> None:
            queued.begin()
            queued.execute(text("LOCK TABLE documents IN SHARE MODE"))

        second = threading.Thread(target=queue_behind)
        second.start()
        until(lambda: _waiting_on_documents(admin) == 2, 10, "the test's second lock to queue behind item 0")
        holder.commit()  # item 0 inserts and commits; then the queued lock is granted before item 1's insert
        second.join(10)
        assert not second.is_alive()
        until(lambda: _waiting_on_documents(admin) == 1, 10, "item 1 to wait inside its transaction")
        assert admin.execute(select(func.count()).select_from(SignedDocument)).scalar_one() == 1

        killed = server.kill_workers()
        assert len(killed) == 2, killed
        queued.commit()  # item 1's transaction goes on and is dropped: its client is gone
        poster.join(60)
        assert not poster.is_alive()
        assert "error" in first, f"the killed batch got an answer: {first.get('response')}"
        until(lambda: admin.execute(select(func.count()).select_from(IdempotencyRecord)).scalar_one() == 1
               and _waiting_on_documents(admin) == 0, 10, "the cut-off transaction to be rolled back")
        assert admin.execute(select(func.count()).select_from(SignedDocument)).scalar_one() == 1

        # the client retries with the same key until the restarted workers answer
        # workers restart slowly on a busy machine. A retry that reached a worker is waited for as long as
        # it takes: had the client given up on it, the server would still sign items 1-9 and the next retry
        # would (rightly) replay them all, so the check below on what this answer signed could not hold.
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            try:
                answer = httpx.post(server.url + "/api/v1/sign/batch", files=files, data=form, headers=headers,
                                    timeout=httpx.Timeout(RETRY_ANSWER_SECONDS, connect=10))
                if answer.status_code == 200:
                    break
                assert answer.status_code == 503, answer.text
            except httpx.ReadTimeout:
                raise AssertionError(f"a retry got no answer in {RETRY_ANSWER_SECONDS} s\n{server.log_tail()}") from None
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        assert answer is not None and answer.status_code == 200, server.log_tail()
        assert set(server.worker_pids()).isdisjoint(killed)
        out = answer.json()
        assert (out["signed"], out["failed"]) == (ITEMS, 0), out
        replayed = [item["result"]["replayed"] for item in out["items"]]
        assert replayed == [True] + [False] * (ITEMS - 1)

        again = httpx.post(server.url + "/api/v1/sign/batch", files=files, data=form, headers=headers,
                           timeout=RETRY_ANSWER_SECONDS)
        assert again.status_code == 200 and all(item["result"]["replayed"] for item in again.json()["items"])
        assert [i["result"]["document_id"] for i in again.json()["items"]] == \
               [i["result"]["document_id"] for i in out["items"]]
    finally:
        for conn in (holder, queued, admin):
            conn.close()
        engine.dispose()
        server.stop()

    ids = [item["result"]["document_id"] for item in out["items"]]
    assert len(set(ids)) == ITEMS
    with transaction(dep.container.sessions) as session:
        documents = session.execute(select(SignedDocument.id, SignedDocument.dossier_number)).all()
        assert sorted(d for _, d in documents) == sorted(f"HS-KILL-{i}" for i in range(ITEMS))
        assert {d for d, _ in documents} == set(ids)
        versions = session.execute(select(DocumentFile.document_id, DocumentFile.version)).all()
        assert sorted(versions) == sorted((d, 1) for d in ids)
        signings = session.execute(select(audit.AuditEntry.subject)
                                   .where(audit.AuditEntry.action == "signing:document:sign")).scalars().all()
        assert sorted(signings) == sorted(ids)  # exactly one signing entry per document
        keys = session.execute(select(IdempotencyRecord.key)).scalars().all()
        assert sorted(keys) == sorted(f"{KEY}:{i}" for i in range(ITEMS))
    assert assert_consistent(dep.container)["signatures"] == ITEMS
    dep.container.engine.dispose()
