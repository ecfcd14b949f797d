"""Reads from a real PostgreSQL streaming replica (``KYSO_DATABASE_READ_URL``).

One private primary and one hot standby made from it with ``pg_basebackup -R`` (both on free loopback
ports, never the shared server), for the whole module. The kyso under test writes to the primary and
reads from the standby: the citizen page, the registry routes, OCSP and verification's registry lookups
are answered by the standby (every statement on each engine is recorded); a document the standby has not
replayed yet (replay paused) is still found, through the primary; a revocation the standby has not
replayed is never hidden; a standby that is down costs nothing but a log line and a count; and no
statement that writes is ever sent to the standby.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x_ocsp
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from api.container import Container
from core import metrics
from core.db import transaction
from pki import issuance, revocation, store
from pki.reasons import Reason
from tests import factories
from tests.helpers.db import build_migrated, make_settings
from tests.helpers.faults import PrivatePostgres, PrivateStandby, deploy, sample_pdfs, seal_metadata

WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|TRUNCATE)\b|\bFOR UPDATE\b", re.IGNORECASE)
REGISTRY_TABLES = re.compile(r"\b(documents|document_files|signature_records)\b")


@dataclass
class Statements:
    """Every statement an engine sent, recorded by an SQLAlchemy event."""

    seen: list[str] = field(default_factory=list)

    def attach(self, engine: Engine) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def _record(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
            self.seen.append(statement)

    def registry(self) -> list[str]:
        return [s for s in self.seen if REGISTRY_TABLES.search(s)]


@dataclass
class Pair:
    primary: PrivatePostgres
    standby: PrivateStandby
    kyso: Container  # writes to the primary, reads from the standby
    seal: str
    headers: dict[str, str]
    client: TestClient
    on_primary: Statements
    on_replica: Statements
    replica_writes: list[str]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    primary = PrivatePostgres()
    standby: PrivateStandby | None = None
    made: list[Container] = []
    try:
        home = tmp_path_factory.mktemp("replica") / "home"
        deployment = deploy(home, primary.url())
        made.append(deployment.container)
        standby = PrivateStandby(primary)
        settings = make_settings(home, primary.url(), database_read_url=standby.url(), ocsp_cache_check_seconds=0)
        kyso = build_migrated(settings)
        made.append(kyso)
        assert kyso.read_engine is not None
        kyso.pki.reads.retry_seconds = 0  # a standby back up is tried again at once (the default waits 5 s)
        on_primary, on_replica = Statements(), Statements()
        on_primary.attach(kyso.engine)
        on_replica.attach(kyso.read_engine)
        with TestClient(create_app(kyso, scheduler=False), raise_server_exceptions=False) as client:
            yield Pair(primary, standby, kyso, deployment.seal, deployment.client, client, on_primary, on_replica, [])
        assert not [s for s in on_replica.seen if WRITES.search(s)], "a write was sent to the replica"
    finally:
        for container in made:
            container.dispose()
        if standby is not None:
            standby.remove()
        primary.remove()


def _replayed(pair: Pair) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    with pair.kyso.engine.connect() as conn:
        lsn = conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar_one()
    deadline = time.monotonic() + 30
    while pair.standby.sql(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn") != "t":
        assert time.monotonic() < deadline, "the standby did not catch up in 30 s"
        time.sleep(0.05)


def _sign(pair: Pair, dossier: str) -> tuple[str, bytes]:
    [pdf] = sample_pdfs(pair.kyso.settings, 1, dossier)
    r = pair.client.post("/api/v1/sign", files={"file": ("in.pdf", pdf, "application/pdf")},
                         data={"metadata": json.dumps(seal_metadata(pair.seal, dossier))}, headers=pair.headers)
    assert r.status_code == 200, r.text
    return r.headers["X-Document-Id"], r.content


def _reads(outcome: str) -> float:
    return metrics.REPLICA_READS.labels(outcome)._value.get()  # prometheus_client has no public getter


def _on_standby(pair: Pair, document_id: str) -> bool:
    return pair.standby.sql(f"SELECT count(*) FROM documents WHERE id = '{document_id}'") == "1"


def _ocsp_path(pair: Pair, der: bytes) -> str:
    with transaction(pair.kyso.sessions, read_only=True) as session:
        issuer = x509.load_der_x509_certificate(store.get_ca(session, "test-issuing").cert_der)
    request = x_ocsp.OCSPRequestBuilder().add_certificate(x509.load_der_x509_certificate(der), issuer,
                                                          hashes.SHA1()).build()
    return "/ocsp/" + base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()


def _ocsp_status(pair: Pair, path: str) -> x_ocsp.OCSPCertStatus:
    r = pair.client.get(path)
    assert r.status_code == 200, r.content
    return x_ocsp.load_der_ocsp_response(r.content).certificate_status


def test_reads_are_answered_by_the_replica(pair: Pair) -> None:
    document_id, signed = _sign(pair, "HS-REPLICA-1")
    _replayed(pair)
    del pair.on_primary.seen[:], pair.on_replica.seen[:]
    answered = _reads("replica")

    page = pair.client.get(f"/v/{document_id}")
    record = pair.client.get(f"/api/v1/documents/{document_id}", headers=pair.headers)
    file = pair.client.get(f"/api/v1/documents/{document_id}/file", headers=pair.headers)
    listed = pair.client.get("/api/v1/documents?dossier_number=HS-REPLICA-1", headers=pair.headers)
    verified = pair.client.post("/api/v1/verify", files={"file": ("doc.pdf", signed, "application/pdf")})

    assert page.status_code == 200 and document_id[:4] in page.text
    assert record.status_code == 200 and record.json()["dossier_number"] == "HS-REPLICA-1"
    assert file.status_code == 200 and file.content == signed
    assert listed.json()["total"] == 1
    assert verified.status_code == 200 and verified.json()["registry"]["document_id"] == document_id
    assert _reads("replica") - answered == 6  # the file route reads the row, then the version's blobs
    # the registry was read on the standby; the primary only re-read the document's status row (page and
    # verification: a withdrawal must never be hidden by lag), never its versions or signature records
    assert pair.on_replica.registry()
    assert all(re.search(r"\bFROM documents\b", s) and "document_files" not in s and "signature_records" not in s
               for s in pair.on_primary.registry()), pair.on_primary.registry()


def test_ocsp_is_answered_by_the_replica(pair: Pair) -> None:
    row = issuance.issue(pair.kyso.pki, issuance.IssueRequest(profile="specialist", subject=factories.specialist(),
                                                              commune_code="00004"), "test").certificate
    path = _ocsp_path(pair, row.der)
    _replayed(pair)
    del pair.on_replica.seen[:]
    pair.kyso.pki.ocsp_cache.clear()
    assert _ocsp_status(pair, path) is x_ocsp.OCSPCertStatus.GOOD
    assert any("ocsp_responses" in s or "certificates" in s for s in pair.on_replica.seen)


def test_a_document_the_replica_has_not_replayed_is_found_on_the_primary(pair: Pair) -> None:
    pair.standby.sql("SELECT pg_wal_replay_pause()")
    try:
        missed = _reads("miss")
        document_id, signed = _sign(pair, "HS-REPLICA-LAG")  # a write: the primary takes it with the replica paused
        assert not _on_standby(pair, document_id)  # really not there yet
        page = pair.client.get(f"/v/{document_id}")
        assert page.status_code == 200 and document_id[:4] in page.text
        record = pair.client.get(f"/api/v1/documents/{document_id}", headers=pair.headers)
        assert record.status_code == 200 and record.json()["document_id"] == document_id
        file = pair.client.get(f"/api/v1/documents/{document_id}/file", headers=pair.headers)
        assert file.status_code == 200 and file.content == signed
        listed = pair.client.get("/api/v1/documents?dossier_number=HS-REPLICA-LAG", headers=pair.headers)
        assert listed.json()["total"] == 1
        verified = pair.client.post("/api/v1/verify", files={"file": ("doc.pdf", signed, "application/pdf")})
        assert verified.status_code == 200
        body = verified.json()
        assert body["registry"]["document_id"] == document_id and body["registry"]["is_current"] is True
        assert _reads("miss") - missed == 6  # the file's row and its blobs: each missed, each found on the primary
        assert not _on_standby(pair, document_id)  # still paused: the primary answered every one of them
        # an id that exists nowhere is still a clean 404, after asking both
        unknown = pair.client.get("/api/v1/documents/AAAAAAAAAAAA", headers=pair.headers)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"]
    finally:
        pair.standby.sql("SELECT pg_wal_replay_resume()")


def test_replica_lag_never_hides_a_revocation(pair: Pair) -> None:
    """Attacker's view: a certificate revoked a moment ago must not be reported good by a lagging replica."""
    row = issuance.issue(pair.kyso.pki, issuance.IssueRequest(profile="specialist", subject=factories.specialist(),
                                                              commune_code="00004"), "test").certificate
    path = _ocsp_path(pair, row.der)
    _replayed(pair)
    assert _ocsp_status(pair, path) is x_ocsp.OCSPCertStatus.GOOD
    pair.standby.sql("SELECT pg_wal_replay_pause()")
    try:
        revocation.revoke(pair.kyso.pki, row.serial, Reason.keyCompromise, "test")  # on the primary only
        assert pair.standby.sql(f"SELECT status FROM certificates WHERE serial = '{row.serial}'") != "revoked"
        assert _ocsp_status(pair, path) is x_ocsp.OCSPCertStatus.REVOKED
    finally:
        pair.standby.sql("SELECT pg_wal_replay_resume()")


def test_a_replica_that_is_down_is_skipped(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    document_id, signed = _sign(pair, "HS-REPLICA-DOWN")
    _replayed(pair)
    pair.standby.stop()
    try:
        unreachable = _reads("unreachable")
        pair.kyso.pki.reads.retry_seconds = 60  # now: skipped after the first failure, not tried per request
        with caplog.at_level(logging.WARNING, logger="core.db"):
            for _ in range(3):
                page = pair.client.get(f"/v/{document_id}")
                assert page.status_code == 200 and document_id[:4] in page.text
            verified = pair.client.post("/api/v1/verify", files={"file": ("doc.pdf", signed, "application/pdf")})
            assert verified.status_code == 200 and verified.json()["registry"]["document_id"] == document_id
            # writes do not care: the replica is never asked to take one
            assert _sign(pair, "HS-REPLICA-DOWN-2")[0]
        assert _reads("unreachable") - unreachable == 4
        said = [r for r in caplog.records if "read replica cannot be reached" in r.getMessage()]
        assert len(said) == 1, [r.getMessage() for r in caplog.records]  # once per outage, not per request
        assert "password" not in said[0].getMessage()
    finally:
        pair.kyso.pki.reads.retry_seconds = 0
        pair.kyso.pki.reads._down_until = time.monotonic()  # skip the rest of the 60 s wait
        pair.standby.start()
    _replayed(pair)
    answered = _reads("replica")
    assert pair.client.get(f"/v/{document_id}").status_code == 200
    assert _reads("replica") - answered == 1  # back on the replica by itself


def test_the_replica_refuses_writes_and_none_are_sent(pair: Pair) -> None:
    """The standby really is read-only (so a write routed there would fail loudly), and across this module
    the read engine sent none (checked again at teardown, after every test)."""
    probe = create_engine(pair.standby.url())  # not kyso's read engine: its statements are being checked
    try:
        with pytest.raises(DBAPIError, match="read-only transaction"), probe.begin() as conn:
            conn.execute(text("CREATE TABLE kyso_probe (x int)"))
    finally:
        probe.dispose()
    # a read of this test's own, so the check below has statements to look at whatever ran before it
    assert pair.client.get("/api/v1/documents", headers=pair.headers).status_code == 200
    assert pair.on_replica.seen
    assert not [s for s in pair.on_replica.seen if WRITES.search(s)]


def test_settings_refuse_a_replica_without_a_primary(tmp_path: Path) -> None:
    from core.errors import ConfigurationError
    from core.settings import load_settings

    with pytest.raises(ConfigurationError, match="KYSO_DATABASE_READ_URL"):
        load_settings(home=tmp_path, database_read_url="postgresql+psycopg://127.0.0.1/x")  # SQLite primary
    with pytest.raises(ConfigurationError, match="KYSO_DATABASE_READ_URL"):
        load_settings(home=tmp_path, database_url="postgresql+psycopg://127.0.0.1/x",
                      database_read_url="sqlite:///x.db")


def test_replica_lag_never_hides_a_withdrawal_or_the_signers_revocation(pair: Pair) -> None:
    """Attacker's view: a document withdrawn a moment ago, or one whose signer's key was reported
    compromised a moment ago, must not be shown valid by a lagging replica (page or upload verification).
    Last in the module: it revokes the signer every other test signs with."""
    from signing.registry import lifecycle
    from signing.registry.models import SignedDocument

    withdrawn, withdrawn_pdf = _sign(pair, "HS-REPLICA-WD")
    kept, kept_pdf = _sign(pair, "HS-REPLICA-RV")
    _replayed(pair)
    assert 'data-status="valid"' in pair.client.get(f"/v/{withdrawn}").text
    with transaction(pair.kyso.sessions, read_only=True) as session:
        serial = session.get(SignedDocument, kept).signer_serial
    pair.standby.sql("SELECT pg_wal_replay_pause()")
    try:
        lifecycle.withdraw(pair.kyso.pki, withdrawn, "issued in error", "test")  # on the primary only
        revocation.revoke(pair.kyso.pki, serial, Reason.keyCompromise, "test")
        assert pair.standby.sql(f"SELECT status FROM documents WHERE id = '{withdrawn}'").lower() == "valid"
        assert pair.standby.sql(f"SELECT status FROM certificates WHERE serial = '{serial}'") != "revoked"

        assert 'data-status="withdrawn"' in pair.client.get(f"/v/{withdrawn}").text
        assert 'data-status="revoked"' in pair.client.get(f"/v/{kept}").text
        verified = pair.client.post("/api/v1/verify", files={"file": ("doc.pdf", withdrawn_pdf, "application/pdf")})
        assert verified.status_code == 200 and verified.json()["registry"]["status"] == "withdrawn"
        assert verified.json()["genuine"] is False
    finally:
        pair.standby.sql("SELECT pg_wal_replay_resume()")
