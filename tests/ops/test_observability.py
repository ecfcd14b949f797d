"""Operations: request ids, JSON logs without secrets, Prometheus /metrics (authorized, counting the real
work, added up across `kyso serve --workers 2`), and readiness that includes the time-stamping authority."""
from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x_ocsp
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api import tokens
from api.app import create_app
from api.container import Container, build
from api.observability import TEXT_FORMAT, ContextFilter, JsonFormatter, redact_text
from core.db import transaction
from hsm import KeyType
from hsm.errors import KeystoreMisconfigured
from hsm.interfaces import SignatureScheme
from hsm.soft import SoftKeyStore
from pki import store
from pki.authorities import init_hierarchy
from signing.create.service import AppearanceOptions, SignRequest
from tests.helpers.api import new_token
from tests.helpers.db import ISSUING, ROOT, build_for_test, make_settings
from tests.helpers.servers import free_port
from tests.helpers.signing import COMMUNE, CONSENTED


@pytest.fixture
def lite(request: pytest.FixtureRequest, sqlite_url: str, tmp_path: Path) -> Iterator[Container]:
    """SQLite and the test hierarchy: for the HTTP layer's behaviour, which does not depend on the database."""
    c = build_for_test(request, make_settings(tmp_path / "home", sqlite_url))
    init_hierarchy(c.pki, root=ROOT, issuing=ISSUING, actor="test")
    yield c
    c.engine.dispose()


@contextlib.contextmanager
def captured_logs(fmt: logging.Formatter | None = None) -> Iterator[io.StringIO]:
    """What `kyso serve` writes: kyso's loggers through the context filter and the JSON formatter."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(ContextFilter())
    handler.setFormatter(fmt or JsonFormatter())
    logger = logging.getLogger("kyso")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def json_lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def scrape(client: TestClient | httpx.Client, headers: dict[str, str]) -> dict[tuple[str, tuple], float]:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: dict[tuple[str, tuple], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def auditor(container: Container) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_token(container, tokens.Role.auditor)}"}


# -- request ids and logs ------------------------------------------------------------------------
def test_request_id_is_echoed_when_sane_and_generated_otherwise(lite: Container) -> None:
    with TestClient(create_app(lite, scheduler=False), raise_server_exceptions=False) as client:
        assert client.get("/healthz", headers={"X-Request-ID": "lb-42.a_b"}).headers["x-request-id"] == "lb-42.a_b"
        generated = client.get("/healthz").headers["x-request-id"]
        assert re.fullmatch("[0-9a-f]{32}", generated)
        for insane in ("has space", "x" * 65, "semi;colon", "\xfcn\xef".encode("latin-1")):
            answered = client.get("/healthz", headers={"X-Request-ID": insane}).headers["x-request-id"]
            assert re.fullmatch("[0-9a-f]{32}", answered), (insane, answered)
        # refusals carry it too: the 401 of the error mapping and the 413 of the body limit
        assert client.get("/api/v1/units", headers={"X-Request-ID": "r-401"}).headers["x-request-id"] == "r-401"
        r = client.post("/api/v1/tokens", content=b"x" * 2_000_000, headers={"X-Request-ID": "r-413"})
        assert r.status_code == 413 and r.headers["x-request-id"] == "r-413"


def test_access_log_is_json_with_request_id_route_and_status_and_no_secret(lite: Container) -> None:
    token = new_token(lite, tokens.Role.read_only, name="so-tu-phap-reader")
    app = create_app(lite, scheduler=False)

    @app.get("/test-log/{thing}")
    def handler_logs(thing: str) -> dict[str, str]:  # a sync handler: runs in a worker thread
        logging.getLogger("kyso.test").info("inside the handler", extra={"pin": "271828", "thing": thing})
        return {}

    with captured_logs() as buffer, TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/v1/units?q=Ba%20%C4%90%C3%ACnh&secret=hunter2",
                       headers={"Authorization": f"Bearer {token}", "X-Request-ID": "units-1"})
        assert r.status_code == 200
        client.get("/test-log/abc", headers={"X-Request-ID": "inner-1"})
    output = buffer.getvalue()
    assert token not in output and token[5:] not in output and "hunter2" not in output and "271828" not in output
    lines = json_lines(buffer)
    [access] = [e for e in lines if e["logger"] == "kyso.access" and e["request_id"] == "units-1"]
    assert access["path"] == "/api/v1/units" and access["route"] == "/api/v1/units"
    assert access["status"] == 200 and access["method"] == "GET" and access["duration_ms"] >= 0
    assert access["level"] == "info" and access["ts"].endswith("+00:00") and access["pid"] == os.getpid()
    assert "so-tu-phap-reader" in access["actor"], "the access log names who called (never their secret)"
    [inner] = [e for e in lines if e["logger"] == "kyso.test"]
    assert inner["request_id"] == "inner-1", "a log from the handler's thread carries the request id"
    assert inner["pin"] == "[redacted]" and inner["thing"] == "abc"
    [routed] = [e for e in lines if e["logger"] == "kyso.access" and e["request_id"] == "inner-1"]
    assert routed["route"] == "/test-log/{thing}" and routed["path"] == "/test-log/abc"


def test_redaction_masks_tokens_pins_otps_and_sads_in_messages_and_fields() -> None:
    token = "kyso_" + "Q" * 43
    assert "Q" * 20 not in redact_text(f"Authorization: Bearer {token}")
    assert redact_text("Authorization: Basic dXNlcjpwYXNz") == "Authorization: Basic [redacted]"
    assert token not in redact_text(f"token {token} refused")
    assert redact_text('{"pin": "271828", "otp": "123456", "sad": "abc.def"}') == (
        '{"pin": "[redacted]", "otp": "[redacted]", "sad": "[redacted]"}')
    assert redact_text("pin=1234&document=x") == "pin=[redacted]&document=x"
    assert redact_text("credential_id=c-1 signed B-LT") == "credential_id=c-1 signed B-LT"
    with captured_logs() as buffer:
        logging.getLogger("kyso.test").warning("login with %s", f"Bearer {token}", extra={
            "authorization": token, "user_pin": "1", "otp": "2", "sad": "3", "vault_token": "4", "serial": "1A"})
    [entry] = json_lines(buffer)
    assert token not in buffer.getvalue() and entry["message"] == "login with Bearer [redacted]"
    assert all(entry[k] == "[redacted]" for k in ("authorization", "user_pin", "otp", "sad", "vault_token"))
    assert entry["serial"] == "1A"


def test_text_format_carries_the_request_id_too(lite: Container) -> None:
    with captured_logs(logging.Formatter(TEXT_FORMAT)) as buffer, \
            TestClient(create_app(lite, scheduler=False)) as client:
        client.get("/healthz?pin=1234", headers={"X-Request-ID": "text-1"})
    [line] = [line for line in buffer.getvalue().splitlines() if "kyso.access" in line]
    assert "[text-1] GET /healthz 200 " in line and "1234" not in line


# -- /metrics --------------------------------------------------------------------------------------
def test_metrics_need_an_operator_auditor_or_read_only_token(lite: Container, tmp_path: Path) -> None:
    with TestClient(create_app(lite, scheduler=False), raise_server_exceptions=False) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer kyso_" + "B" * 43}).status_code == 401
        for role in (tokens.Role.client, tokens.Role.policy_admin):
            headers = {"Authorization": f"Bearer {new_token(lite, role)}"}
            assert client.get("/metrics", headers=headers).status_code == 403
        for role in (tokens.Role.ca_operator, tokens.Role.auditor, tokens.Role.read_only):
            headers = {"Authorization": f"Bearer {new_token(lite, role)}"}
            assert "kyso_http_requests_total" in client.get("/metrics", headers=headers).text
    public = build(make_settings(lite.settings.home, lite.settings.resolved_database_url, metrics_public=True,
                                 migrate_on_start=False))
    with TestClient(create_app(public, scheduler=False)) as client:
        assert client.get("/metrics").status_code == 200
    public.engine.dispose()


def _ocsp_request(container: Container, serial: str) -> bytes:
    with transaction(container.sessions) as session:
        row = store.get_certificate(session, serial)
        issuer = x509.load_der_x509_certificate(store.get_ca(session, ISSUING.name).cert_der)
        cert = x509.load_der_x509_certificate(row.der)
    request = x_ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    return request.public_bytes(serialization.Encoding.DER)


def test_metrics_count_signatures_verifications_ocsp_caches_and_audit(pki: Container, specialist: str,
                                                                       sample_pdf: bytes) -> None:
    headers = auditor(pki)
    with TestClient(create_app(pki, scheduler=False), raise_server_exceptions=False) as client:
        before = scrape(client, headers)
        signed = pki.signing.sign(SignRequest(
            pdf=sample_pdf, document_type="dossier-result", commune_code=COMMUNE, credential_id=specialist,
            level="B-T", dossier_number="HS-1", appearance=AppearanceOptions(visible=False)), actor="test", activation=CONSENTED)
        with pytest.raises(Exception):  # noqa: B017 - any refusal: it is counted, whatever its kind
            pki.signing.sign(SignRequest(pdf=b"%PDF-1.4 not really", document_type="dossier-result",
                                         commune_code=COMMUNE, credential_id=specialist, level="B-B"), actor="test", activation=CONSENTED)
        r = client.post("/api/v1/verify", files={"file": ("signed.pdf", signed.pdf, "application/pdf")})
        assert r.status_code == 200, r.text
        indication = r.json()["indication"]
        ocsp_der = _ocsp_request(pki, signed.signer_serial)
        for _ in range(2):
            answer = client.post("/ocsp", content=ocsp_der, headers={"Content-Type": "application/ocsp-request"})
            assert x_ocsp.load_der_ocsp_response(answer.content).certificate_status is x_ocsp.OCSPCertStatus.GOOD
        client.get("/ocsp/" + base64.b64encode(b"junk").decode())
        client.get("/api/v1/certificates/ABCDEF", headers=headers)
        after = scrape(client, headers)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("kyso_signatures_total", level="B-T", outcome="signed") == 1
    assert delta("kyso_signatures_total", level="none", outcome="refused") == 1
    assert delta("kyso_signature_duration_seconds_count") == 1
    assert delta("kyso_verifications_total", outcome=indication) == 1
    assert delta("kyso_ocsp_responses_total", cert_status="good") == 2
    assert delta("kyso_ocsp_responses_total", cert_status="malformed") == 1
    assert delta("kyso_cache_lookups_total", cache="ocsp_answers", result="hit") >= 1
    assert delta("kyso_cache_lookups_total", cache="signer_material", result="miss") >= 1
    assert delta("kyso_audit_entries_total", action="signing:document:sign") == 1
    # route templates, never raw paths: the serial and the OCSP request do not become labels
    assert delta("kyso_http_requests_total", method="GET", route="/api/v1/certificates/{serial}", status="404") == 1
    assert delta("kyso_http_requests_total", method="POST", route="/ocsp", status="200") == 2
    assert delta("kyso_http_requests_total", method="GET", route="/ocsp/{encoded}", status="200") == 1
    assert delta("kyso_http_request_duration_seconds_count", method="POST", route="/api/v1/verify") == 1
    assert not any("ABCDEF" in str(labels) for _, labels in after)


def test_keystore_errors_are_counted_by_backend(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    right = SoftKeyStore(tmp_path / "keys", b"the-right-master-key-0123")
    ref = right.generate(KeyType.EC_P256, "probe")
    wrong = SoftKeyStore(tmp_path / "keys", b"another-master-key-45678")
    before = REGISTRY.get_sample_value("kyso_keystore_errors_total", {"backend": "soft"}) or 0.0
    with pytest.raises(KeystoreMisconfigured):
        wrong.sign_digest(ref, b"\x00" * 32, hashes.SHA256(), SignatureScheme.ECDSA)
    assert REGISTRY.get_sample_value("kyso_keystore_errors_total", {"backend": "soft"}) == before + 1


# -- readiness -------------------------------------------------------------------------------------
def test_readiness_checks_that_the_tsa_can_sign(pki: Container) -> None:
    with TestClient(create_app(pki, scheduler=False)) as client:
        r = client.get("/readyz")
        assert r.status_code == 200 and r.json()["checks"]["tsa"] == "ok", r.json()


def test_readiness_fails_without_a_tsa_certificate(request: pytest.FixtureRequest, sqlite_url: str, tmp_path: Path) -> None:
    bare = build_for_test(request, make_settings(tmp_path / "home", sqlite_url))  # no `kyso ca init`: no TSA certificate
    with TestClient(create_app(bare, scheduler=False)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["tsa"].startswith("unavailable: ")
    assert "kyso ca init" in r.json()["checks"]["tsa"]
    bare.engine.dispose()


def test_readiness_checks_that_an_external_tsa_is_reachable(lite: Container) -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        for url, expected in ((f"http://127.0.0.1:{port}/tsa", "ok"), (f"http://127.0.0.1:{free_port()}/", "unreachable")):
            other = build(make_settings(lite.settings.home, lite.settings.resolved_database_url, tsa_url=url,
                                        migrate_on_start=False))
            with TestClient(create_app(other, scheduler=False)) as client:
                r = client.get("/readyz")
            assert r.json()["checks"]["tsa"].startswith(expected), r.json()
            assert r.status_code == (200 if expected == "ok" else 503)
            other.engine.dispose()


# -- kyso serve --workers 2 ----------------------------------------------------------------------
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_serve_with_two_workers_adds_up_their_metrics(request, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    container = build_for_test(request, settings)
    init_hierarchy(container.pki, root=ROOT, issuing=ISSUING, actor="test")
    headers = auditor(container)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": settings.resolved_database_url,
           "KYSO_BASE_URL": url, "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value()}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", "2"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_up(proc, url, log_path)
            pids, sent = set(), 0
            with ThreadPoolExecutor(8) as pool:  # concurrent new connections: both workers accept some
                while len(pids) < 2 or sent < 20:
                    assert sent < 400, f"one worker answered all {sent} requests; log:\n{log_path.read_text()[-2000:]}"
                    list(pool.map(lambda _: httpx.get(url + "/healthz", headers={"Authorization": headers["Authorization"]},
                                                      timeout=10), range(20)))
                    sent += 20
                    time.sleep(0.3)  # let the access log reach the file
                    pids = _access_pids(log_path)
            for _ in range(6):  # whichever worker answers the scrape, it reports every worker's requests
                with httpx.Client(base_url=url, timeout=10) as client:
                    samples = scrape(client, headers)
                assert value(samples, "kyso_http_requests_total", method="GET", route="/healthz", status="200") >= sent
            environ = Path(f"/proc/{next(iter(pids))}/environ").read_bytes().split(b"\0")
            metrics_dir = next(e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"PROMETHEUS_MULTIPROC_DIR="))
            assert Path(metrics_dir).is_dir()
        finally:
            proc.terminate()
            proc.wait(20)
            container.engine.dispose()
    output = log_path.read_text()
    assert headers["Authorization"].split()[1] not in output, "the bearer token was logged"
    assert not Path(metrics_dir).exists(), "serve removes its metrics folder when it stops"


def _wait_until_up(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError(f"kyso serve did not start:\n{log_path.read_text()[-3000:]}")


def _access_pids(log_path: Path) -> set[int]:
    pids = set()
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entry = json.loads(line)  # every line is JSON: uvicorn's own lines too
            if entry["logger"] == "kyso.access" and entry["route"] == "/healthz":
                assert entry["request_id"] and entry["status"] == 200
                pids.add(entry["pid"])
    return pids
