"""PostgreSQL restarts under load: while it is down every request that needs it answers 503
``database_unavailable`` with Retry-After (never a 500, never a hang), nothing is half-committed,
and the same `kyso serve` process resumes by itself when the database is back.

The database is a private PostgreSQL server (``private_pg``), never the shared one.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x_ocsp
from sqlalchemy import select

from core.db import transaction
from pki import store
from pki.models import Certificate
from signing.registry.models import DocumentFile, SignedDocument
from tests.helpers.faults import KysoServer, PrivatePostgres, assert_consistent, deploy, sample_pdfs, seal_metadata
from tests.helpers.servers import free_port

REQUEST_TIMEOUT = 20.0  # a hang fails the test instead of stalling it


KINDS = ("issue", "sign", "ocsp")


def _wait_for(check: Callable[[], bool], seconds: float, server: KysoServer, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{server.log_tail()}"
        assert server.proc.poll() is None, f"kyso serve exited:\n{server.log_tail()}"
        time.sleep(0.1)


@dataclass(frozen=True)
class Outcome:
    kind: str
    n: int  # the thread's request number (sign requests carry dossier HS-PG-<n>)
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (transport error or timeout)
    code: str | None = None
    retry_after: str | None = None
    made: str | None = None  # the serial or document id a success created
    error: str | None = None


def _error_code(r: httpx.Response) -> str | None:
    """kyso's JSON error code, or for an OCSP answer its RFC 6960 status."""
    content_type = r.headers.get("content-type", "")
    if content_type == "application/ocsp-response":
        status = x_ocsp.load_der_ocsp_response(r.content).response_status
        return "try_later" if status == x_ocsp.OCSPResponseStatus.TRY_LATER else status.name.lower()
    return r.json()["error"]["code"] if "json" in content_type else None


class Load:
    """A few client threads issuing certificates, signing PDFs and asking OCSP, recording every answer."""

    def __init__(self, url: str, requests: dict[str, Callable[[httpx.Client, int], httpx.Request]],
                 made: dict[str, Callable[[httpx.Response], str]]) -> None:
        self.url, self.requests, self.made = url, requests, made
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(kind,), daemon=True) for kind in requests]

    def _run(self, kind: str) -> None:
        with httpx.Client(base_url=self.url, timeout=REQUEST_TIMEOUT) as client:
            for n in itertools.count():
                if self._stop.is_set():
                    return
                started = time.monotonic()
                try:
                    r = client.send(self.requests[kind](client, n))
                except httpx.HTTPError as exc:
                    outcome = Outcome(kind, n, started, time.monotonic(), None, error=f"{type(exc).__name__}: {exc}")
                else:
                    ok = r.status_code in (200, 201)
                    code = None if ok else _error_code(r)
                    outcome = Outcome(kind, n, started, time.monotonic(), r.status_code, code, r.headers.get("retry-after"),
                                      self.made[kind](r) if ok and kind in self.made else None,
                                      None if ok else r.text[:300])
                with self._lock:
                    self.outcomes.append(outcome)
                time.sleep(0.05)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if not thread.is_alive():
                continue
            thread.join(REQUEST_TIMEOUT + 5)
            assert not thread.is_alive(), "a client thread hung"

    def succeeded_after(self, kind: str, moment: float) -> bool:
        with self._lock:
            return any(o.kind == kind and o.started > moment and o.status in (200, 201) for o in self.outcomes)


def test_postgres_restart_under_load(tmp_path: Path, private_pg: PrivatePostgres) -> None:
    dep = deploy(tmp_path / "home", private_pg.url(connect_timeout=2))
    with transaction(dep.container.sessions) as session:
        issuer = x509.load_der_x509_certificate(store.get_ca(session, "test-issuing").cert_der)
        leaf = x509.load_der_x509_certificate(session.execute(select(Certificate.der)
                                                              .where(Certificate.profile == "seal")).scalar_one())
    ocsp_der = x_ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build() \
        .public_bytes(serialization.Encoding.DER)
    seal_subject = {"profile": "seal", "commune_code": "00004", "subject": {"common_name": "Ủy ban nhân dân thử"}}

    def issue(client: httpx.Client, n: int) -> httpx.Request:
        return client.build_request("POST", "/api/v1/certificates", json=seal_subject, headers=dep.operator)

    def sign(client: httpx.Client, n: int) -> httpx.Request:
        meta = seal_metadata(dep.seal, f"HS-PG-{n}")
        [pdf] = sample_pdfs(dep.container.settings, 1, f"pg-{n}")
        return client.build_request("POST", "/api/v1/sign", headers=dep.client, files={
            "file": ("in.pdf", pdf, "application/pdf")}, data={"metadata": json.dumps(meta)})

    def ask_ocsp(client: httpx.Client, n: int) -> httpx.Request:
        return client.build_request("POST", "/ocsp", content=ocsp_der,
                                    headers={"Content-Type": "application/ocsp-request"})

    server = KysoServer(dep.container.settings, free_port())
    load = Load(server.url, {"issue": issue, "sign": sign, "ocsp": ask_ocsp},
                {"issue": lambda r: r.json()["certificate"]["serial"], "sign": lambda r: r.headers["x-document-id"]})
    try:
        load.start()
        _wait_for(lambda: all(load.succeeded_after(kind, 0) for kind in KINDS), 30, server, "the first answers")
        time.sleep(0.5)
        private_pg.stop("fast")
        down = time.monotonic()
        time.sleep(3)
        starting = time.monotonic()
        private_pg.start()
        up = time.monotonic()
        _wait_for(lambda: all(load.succeeded_after(kind, up) for kind in KINDS), 30, server,
                  "kyso to resume after PostgreSQL came back")
        time.sleep(0.5)
        assert server.proc.poll() is None, "kyso serve must ride out the outage without a restart"
    finally:
        load.stop()
        server.stop()

    outcomes = load.outcomes
    unanswered = [o for o in outcomes if o.status is None]
    assert not unanswered, unanswered[:5]
    assert {o.status for o in outcomes} <= {200, 201, 503}, [o for o in outcomes if o.status not in (200, 201, 503)][:5]
    for o in outcomes:
        if o.status == 503:
            # OCSP clients get RFC 6960 tryLater (DER), everyone else kyso's JSON error
            assert o.code == ("try_later" if o.kind == "ocsp" else "database_unavailable") and o.retry_after, o
    during = [o for o in outcomes if o.started > down and o.ended < starting]
    for kind in ("issue", "sign"):  # OCSP may answer from its cache of pre-produced responses meanwhile
        seen = [o for o in during if o.kind == kind]
        assert seen and all(o.status == 503 for o in seen), (kind, seen[:5])
    before = [o for o in outcomes if o.ended < down]
    assert {o.kind for o in before if o.status in (200, 201)} == set(KINDS)

    # every success left its whole effect; nothing exists that is not audited; the chain holds
    with transaction(dep.container.sessions) as session:
        serials = set(session.execute(select(Certificate.serial)).scalars())
        documents = set(session.execute(select(SignedDocument.id)).scalars())
        files = set(session.execute(select(DocumentFile.document_id)).scalars())
        dossiers = set(session.execute(select(SignedDocument.dossier_number)).scalars())
    assert {o.made for o in outcomes if o.kind == "issue" and o.made} <= serials
    signed = {o.made for o in outcomes if o.kind == "sign" and o.made}
    assert signed <= documents and signed <= files
    refused = {f"HS-PG-{o.n}" for o in during if o.kind == "sign"}  # refused while nothing could commit
    assert refused and not refused & dossiers
    assert_consistent(dep.container)
    dep.container.engine.dispose()


def test_database_errors_anywhere_answer_503_and_recover(tmp_path: Path, private_pg: PrivatePostgres) -> None:
    """In process, deterministic: the routes' own transactions, a raw session that escapes them (the
    API's last line of defence) and readiness, with the database stopped and then back."""
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from api.app import create_app

    dep = deploy(tmp_path / "home", private_pg.url(connect_timeout=2))
    app = create_app(dep.container, scheduler=False)

    @app.get("/_test/raw-session")
    def raw_session() -> dict[str, int]:
        with dep.container.sessions() as session:  # no core.db.transaction around it
            return {"one": session.execute(text("SELECT 1")).scalar_one()}

    [pdf] = sample_pdfs(dep.container.settings, 1, "raw")
    sign_form = {"metadata": json.dumps(seal_metadata(dep.seal, "HS-RAW"))}
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/_test/raw-session").json() == {"one": 1}
        private_pg.stop("immediate")
        for method, path, kwargs in [
            ("GET", "/_test/raw-session", {}),
            ("GET", "/api/v1/documents", {"headers": dep.client}),
            ("POST", "/api/v1/sign", {"headers": dep.client, "data": sign_form,
                                      "files": {"file": ("in.pdf", pdf, "application/pdf")}}),
        ]:
            r = client.request(method, path, **kwargs)
            assert r.status_code == 503, (path, r.text)
            assert r.json()["error"] == {"code": "database_unavailable", "details": {},
                                         "message": "the database cannot be reached; retry in a few seconds"}
            assert r.headers["Retry-After"]
        ocsp_request = x_ocsp.OCSPRequestBuilder().add_certificate_by_hash(
            b"\x01" * 20, b"\x02" * 20, 0x1234, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
        r = client.post("/ocsp", content=ocsp_request, headers={"Content-Type": "application/ocsp-request"})
        assert r.status_code == 503 and r.headers["Retry-After"] and r.headers["content-type"] == "application/ocsp-response"
        assert x_ocsp.load_der_ocsp_response(r.content).response_status == x_ocsp.OCSPResponseStatus.TRY_LATER
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("unavailable")
        assert client.get("/healthz").status_code == 200
        private_pg.start()
        assert client.get("/_test/raw-session").json() == {"one": 1}  # the dead pooled connections were replaced
        r = client.post("/api/v1/sign", headers=dep.client, data=sign_form,
                        files={"file": ("in.pdf", pdf, "application/pdf")})
        assert r.status_code == 200, r.text
    assert assert_consistent(dep.container)["documents"] == 1
    dep.container.engine.dispose()
