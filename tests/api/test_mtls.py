"""mTLS client certificates: `kyso token cert` issues one from the client's own CSR (made with openssl),
bound to a client token; a TLS proxy in KYSO_TRUSTED_PROXIES forwards it URL-encoded, as nginx's
$ssl_client_escaped_cert, and kyso checks it itself. Each refusal test breaks one check."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from typer.testing import CliRunner

from api import cli, mtls, tokens
from api.app import create_app
from api.container import Container
from api.models import TokenCertificate
from core import audit, clock
from core.db import transaction
from core.errors import Conflict, InvalidInput, NotFound
from core.settings import Settings
from pki import issuance, revocation, store
from pki.errors import BadCSR
from pki.models import Certificate
from pki.reasons import Reason
from tests import factories
from tests.helpers.api import OTHER_COMMUNE, bearer, commune_meta, new_token, scoped, sign
from tests.helpers.db import ISSUING, ROOT, make_settings
from tests.helpers.signing import COMMUNE, SpecialistPhone
from tests.interop.helpers import openssl

PROXY = "10.20.30.40"  # the TLS proxy's address, inside KYSO_TRUSTED_PROXIES
HEADER = "X-Client-Cert"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """conftest's settings, with a trusted proxy network (``client``'s peer, 'testclient', is not in it)."""
    return make_settings(tmp_path / "home", db_url, trusted_proxies=["10.20.30.0/24"])


@pytest.fixture
def via_proxy(pki: Container) -> Iterator[TestClient]:
    """Requests arriving from the trusted TLS proxy."""
    with TestClient(create_app(pki, scheduler=False), raise_server_exceptions=False, client=(PROXY, 44312)) as c:
        yield c


@pytest.fixture
def kyso(pki: Container, monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """`kyso ARGS…` in process (Typer's CliRunner), on the test's own container."""
    monkeypatch.setattr("api.cli.common.container", lambda: pki)

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "200"})

    return run


def openssl_csr(directory: Path, stem: str = "client") -> tuple[Path, Path]:
    """The client's key and CSR, made by openssl the way the client's administrator would; the key stays here."""
    key, csr = directory / f"{stem}.key", directory / f"{stem}.csr"
    made = openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                   "-subj", "/CN=whatever the client wrote", "-keyout", key, "-out", csr)
    assert made.returncode == 0, str(made)
    return key, csr


def issue_for(pki: Container, tmp_path: Path, name: str, **kwargs: object) -> x509.Certificate:
    _, csr = openssl_csr(tmp_path, name)
    issued = mtls.issue_certificate(pki.pki, name, csr.read_bytes(), "test", **kwargs)  # type: ignore[arg-type]
    return x509.load_der_x509_certificate(issued.der)


def escaped(cert: x509.Certificate | bytes) -> dict[str, str]:
    """The header as nginx writes it ($ssl_client_escaped_cert: the PEM, URL-encoded)."""
    pem = cert if isinstance(cert, bytes) else cert.public_bytes(serialization.Encoding.PEM)
    return {HEADER: quote(pem.decode(), safe="")}


def ca_pem(pki: Container, name: str, path: Path) -> Path:
    with transaction(pki.sessions) as session:
        der = store.get_ca(session, name).cert_der
    assert der is not None
    path.write_bytes(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM))
    return path


def mtls_denials(pki: Container) -> list[dict]:
    with transaction(pki.sessions) as session:
        rows = session.execute(select(audit.AuditEntry).where(audit.AuditEntry.action == "api:authz:deny",
                                                              audit.AuditEntry.actor.startswith("mtls:"))
                               .order_by(audit.AuditEntry.seq)).scalars().all()
        return [json.loads(r.details) | {"actor": r.actor, "subject": r.subject} for r in rows]


def refused(response, check: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthenticated" and error["details"] == {"check": check}, error
    assert f"client certificate refused ({check})" in error["message"]


# -- issuance ------------------------------------------------------------------------------------------
def test_token_cert_from_an_openssl_csr_passes_openssl_verify(pki: Container, kyso, tmp_path: Path) -> None:
    scoped(pki, "hotich-ba-dinh", communes=[COMMUNE])
    key, csr = openssl_csr(tmp_path)
    cert_pem = tmp_path / "client.pem"
    done = kyso("token", "cert", "hotich-ba-dinh", "--csr", str(csr), "--out", str(cert_pem))
    assert done.exit_code == 0, (done.output, done.exception)

    root, issuing = ca_pem(pki, ROOT.name, tmp_path / "root.pem"), ca_pem(pki, ISSUING.name, tmp_path / "issuing.pem")
    verified = openssl("verify", "-CAfile", root, "-untrusted", issuing, "-purpose", "sslclient", cert_pem)
    assert verified.returncode == 0 and verified.stdout.strip().endswith(": OK"), str(verified)
    # the key in the certificate is the client's (it never left the client), and nothing else names the client
    assert (openssl("x509", "-in", cert_pem, "-noout", "-pubkey").stdout
            == openssl("pkey", "-in", key, "-pubout").stdout)
    text = openssl("x509", "-in", cert_pem, "-noout", "-text", "-nameopt", "RFC2253").stdout
    assert "Subject: CN=hotich-ba-dinh,O=kyso\n" in text
    assert "TLS Web Client Authentication\n" in text and "Code Signing" not in text and "E-mail" not in text
    assert "Digital Signature\n" in text  # and only that key usage

    # --json, and plain stdout (the PEM alone on it)
    as_json = json.loads(kyso("token", "cert", "hotich-ba-dinh", "--csr", str(csr), "--json").stdout)
    assert as_json["token"] == "hotich-ba-dinh" and as_json["profile"] == "api-client"
    assert as_json["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")
    plain = kyso("token", "cert", "hotich-ba-dinh", "--csr", str(csr)).stdout
    assert plain.startswith("-----BEGIN CERTIFICATE-----") and plain.endswith("-----END CERTIFICATE-----\n")
    with transaction(pki.sessions) as session:
        entries = session.execute(select(audit.AuditEntry).where(
            audit.AuditEntry.action == "api:token:certificate")).scalars().all()
        assert [e.subject for e in entries] == ["hotich-ba-dinh"] * 3
        assert json.loads(entries[1].details)["serial"] == as_json["serial"]
        assert store.get_certificate(session, as_json["serial"]).profile == "api-client"


def test_token_cert_refusals(pki: Container, kyso, tmp_path: Path) -> None:
    _, csr = openssl_csr(tmp_path)
    good = csr.read_bytes()
    der = x509.load_pem_x509_csr(good).public_bytes(serialization.Encoding.DER)
    forged = der[:-1] + bytes([der[-1] ^ 0x01])  # a bit of the signature changed
    scoped(pki, "client-a", communes=[COMMUNE])
    with pytest.raises(BadCSR, match="self-signature is invalid"):
        mtls.issue_certificate(pki.pki, "client-a", forged, "test")

    new_token(pki, tokens.Role.ca_operator, "an-operator")
    with pytest.raises(InvalidInput, match="role ca-operator; client certificates are for client tokens only"):
        mtls.issue_certificate(pki.pki, "an-operator", good, "test")
    with pytest.raises(NotFound, match="no token named 'nobody'"):
        mtls.issue_certificate(pki.pki, "nobody", good, "test")

    scoped(pki, "revoked-client")
    with transaction(pki.sessions) as session:
        tokens.revoke(session, "revoked-client", "test")
    with pytest.raises(Conflict, match="token 'revoked-client' was revoked"):
        mtls.issue_certificate(pki.pki, "revoked-client", good, "test")

    now = clock.now()
    scoped(pki, "short-lived", expires_at=now + dt.timedelta(hours=1))
    clock.set_clock(lambda: now + dt.timedelta(hours=2))
    try:
        with pytest.raises(Conflict, match="token 'short-lived' expired"):
            mtls.issue_certificate(pki.pki, "short-lived", good, "test")
    finally:
        clock.set_clock(None)

    # through the CLI the error rises to `main`, which prints it; nothing was issued for any of them
    forged_file = tmp_path / "forged.csr"
    forged_file.write_bytes(forged)
    failed = kyso("token", "cert", "client-a", "--csr", str(forged_file))
    assert failed.exit_code != 0 and isinstance(failed.exception, BadCSR)
    with transaction(pki.sessions) as session:
        assert session.execute(select(TokenCertificate)).first() is None
        assert session.execute(select(Certificate).where(Certificate.profile == "api-client")).first() is None


# -- authentication ------------------------------------------------------------------------------------
def test_forwarded_certificate_acts_with_the_tokens_scope(
        pki: Container, via_proxy: TestClient, tmp_path: Path, specialist: str, other_specialist: str,
        sample_pdf: bytes, phone: SpecialistPhone) -> None:
    scoped(pki, "hotich-a", communes=[COMMUNE])
    cert = issue_for(pki, tmp_path, "hotich-a")
    headers = escaped(cert)

    signed = sign(via_proxy, headers, sample_pdf, commune_meta(specialist), phone)  # the SAD too is asked for over mTLS
    assert signed.status_code == 200, signed.text
    # commune B is outside the token's scope, through mTLS as through its bearer secret
    other = sign(via_proxy, headers, sample_pdf, commune_meta(other_specialist, OTHER_COMMUNE))
    assert other.status_code == 403, other.text
    error = other.json()["error"]
    assert "commune scope (00004)" in error["message"] and error["details"] == {"scope": "communes",
                                                                                "wanted": OTHER_COMMUNE}
    listed = via_proxy.get("/api/v1/documents", headers=headers).json()
    assert listed["total"] == 1 and listed["items"][0]["commune_code"] == COMMUNE
    # HAProxy / Traefik style (base64 DER) is accepted too
    der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    assert via_proxy.get("/api/v1/documents", headers={HEADER: der}).status_code == 200

    with transaction(pki.sessions) as session:
        [view] = [v for v in tokens.views(session) if v.name == "hotich-a"]
        assert view.last_used_at is not None
        denial = session.execute(select(audit.AuditEntry).where(
            audit.AuditEntry.action == "api:authz:deny")).scalar_one()
        assert denial.actor == "token:hotich-a"  # the same principal as the token's own
    assert mtls_denials(pki) == []


def test_header_from_an_untrusted_address_is_not_believed(pki: Container, client: TestClient,
                                                          tmp_path: Path) -> None:
    scoped(pki, "hotich-a", communes=[COMMUNE])
    headers = escaped(issue_for(pki, tmp_path, "hotich-a"))
    r = client.get("/api/v1/documents", headers=headers)  # peer 'testclient', not a trusted proxy
    refused(r, "trusted_proxy")
    assert "KYSO_TRUSTED_PROXIES" in r.json()["error"]["message"]
    [denial] = mtls_denials(pki)
    assert denial["actor"] == "mtls:testclient" and denial["check"] == "trusted_proxy"
    assert denial["route"] == "GET /api/v1/documents"


def test_a_bearer_token_wins_over_a_certificate(pki: Container, via_proxy: TestClient, client: TestClient,
                                                tmp_path: Path) -> None:
    scoped(pki, "hotich-a", communes=[COMMUNE])
    headers = escaped(issue_for(pki, tmp_path, "hotich-a"))
    # a bad bearer is refused even though the certificate is good: there is no fallback
    r = via_proxy.get("/api/v1/documents", headers={**headers, **bearer("kyso_" + "A" * 43)})
    assert r.status_code == 401 and "bearer token" in r.json()["error"]["message"]
    # and a good bearer is enough, whatever header an untrusted caller adds
    auditor = bearer(new_token(pki, tokens.Role.auditor))
    assert client.get("/api/v1/audit/verify", headers={**auditor, **headers}).status_code == 200
    assert via_proxy.get("/api/v1/audit/verify", headers={**auditor, HEADER: "garbage"}).status_code == 200


# -- refusals, one check each ----------------------------------------------------------------------------
def _openssl_leaf(tmp_path: Path, ca_cert: Path, ca_key: Path) -> bytes:
    _, csr = openssl_csr(tmp_path, "leaf")
    ext = tmp_path / "leaf.ext"
    ext.write_text("keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n")
    leaf = tmp_path / "leaf.pem"
    made = openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-set_serial", "4242",
                   "-days", "2", "-extfile", ext, "-out", leaf)
    assert made.returncode == 0, str(made)
    return leaf.read_bytes()


def foreign_ca(pki: Container, tmp_path: Path) -> bytes:
    """A leaf of a CA kyso never saw, made with openssl."""
    key, cert = tmp_path / "foreign-ca.key", tmp_path / "foreign-ca.pem"
    made = openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                   "-subj", "/CN=Foreign CA", "-days", "2", "-keyout", key, "-out", cert,
                   "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    assert made.returncode == 0, str(made)
    return _openssl_leaf(tmp_path, cert, key)


def impostor_ca(pki: Container, tmp_path: Path) -> bytes:
    """A leaf of a CA that copies kyso's issuing CA's exact name (same issuer DN, another key)."""
    key, csr, cert = tmp_path / "impostor.key", tmp_path / "impostor.csr", tmp_path / "impostor.pem"
    assert openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key).returncode == 0
    real = ca_pem(pki, ISSUING.name, tmp_path / "real-issuing.pem")
    assert openssl("x509", "-x509toreq", "-in", real, "-signkey", key, "-out", csr).returncode == 0
    ext = tmp_path / "ca.ext"
    ext.write_text("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n")
    made = openssl("x509", "-req", "-in", csr, "-signkey", key, "-days", "2", "-extfile", ext, "-out", cert)
    assert made.returncode == 0, str(made)
    leaf = _openssl_leaf(tmp_path, cert, key)
    issuer = x509.load_pem_x509_certificate(leaf).issuer
    assert issuer == x509.load_pem_x509_certificate(real.read_bytes()).subject  # only the signature differs
    return leaf


def specialist_certificate(pki: Container, tmp_path: Path) -> bytes:
    """A valid kyso certificate of another profile."""
    row = issuance.issue(pki.pki, issuance.IssueRequest(profile="specialist", subject=factories.specialist(),
                                                        commune_code=COMMUNE), "test").certificate
    return x509.load_der_x509_certificate(row.der).public_bytes(serialization.Encoding.PEM)


def unbound_certificate(pki: Container, tmp_path: Path) -> bytes:
    """A valid api-client certificate whose binding is gone (generic issuance cannot even make one: the
    profile allows no C, which `kyso cert issue` always sets)."""
    cert = issue_for(pki, tmp_path, "hotich-a")
    with transaction(pki.sessions) as session:
        session.execute(delete(TokenCertificate))
    return _pem(cert)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def revoked_certificate(pki: Container, tmp_path: Path) -> bytes:
    cert = issue_for(pki, tmp_path, "hotich-a")
    revocation.revoke(pki.pki, format(cert.serial_number, "X"), Reason.keyCompromise, "test")
    return _pem(cert)


def held_certificate(pki: Container, tmp_path: Path) -> bytes:
    cert = issue_for(pki, tmp_path, "hotich-a")
    revocation.revoke(pki.pki, format(cert.serial_number, "X"), Reason.certificateHold, "test")
    return _pem(cert)


def revoked_token(pki: Container, tmp_path: Path) -> bytes:
    cert = issue_for(pki, tmp_path, "hotich-a")
    with transaction(pki.sessions) as session:
        tokens.revoke(session, "hotich-a", "test")
    return _pem(cert)


def certificate_of_a_revoked_ca(pki: Container, tmp_path: Path) -> bytes:
    cert = issue_for(pki, tmp_path, "hotich-a")
    with transaction(pki.sessions) as session:
        store.get_ca(session, ISSUING.name).status = "revoked"  # as a CA revocation leaves it
    return _pem(cert)


CASES: dict[str, tuple[Callable[[Container, Path], bytes], str, str]] = {  # case -> (make, check, said)
    "foreign-ca": (foreign_ca, "issuer", "not signed by a kyso CA"),
    "impostor-ca": (impostor_ca, "issuer", "not signed by a kyso CA"),  # the name matched; the signature did not
    "revoked-ca": (certificate_of_a_revoked_ca, "issuer", "which issued certificate"),
    "specialist": (specialist_certificate, "profile", "has profile 'specialist', not 'api-client'"),
    "unbound": (unbound_certificate, "binding", "is not bound to any token"),
    "revoked": (revoked_certificate, "revocation", "is revoked (keyCompromise)"),
    "on-hold": (held_certificate, "revocation", "is on_hold (certificateHold)"),
    "revoked-token": (revoked_token, "token", "token 'hotich-a', to which certificate"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_certificates(pki: Container, via_proxy: TestClient, tmp_path: Path, case: str) -> None:
    scoped(pki, "hotich-a", communes=[COMMUNE])
    make, check, said = CASES[case]
    pem = make(pki, tmp_path)
    r = via_proxy.get("/api/v1/documents", headers=escaped(pem))
    refused(r, check)
    assert said in r.json()["error"]["message"]
    [denial] = mtls_denials(pki)
    assert denial["actor"] == f"mtls:{PROXY}" and denial["check"] == check and denial["answered"] == "unauthenticated"
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    assert denial["subject"] == hashlib.sha256(der).hexdigest() and said in denial["reason"]


def test_expired_token_and_expired_certificate(pki: Container, via_proxy: TestClient, tmp_path: Path) -> None:
    now = clock.now()
    # held at one moment while setting up: a busy machine takes seconds over the two CSRs (openssl), and a
    # certificate issued two seconds later would still be valid one day and one second after `now`
    clock.set_clock(lambda: now)
    try:
        scoped(pki, "short-lived", communes=[COMMUNE], expires_at=now + dt.timedelta(days=1))
        token_bound = escaped(issue_for(pki, tmp_path, "short-lived"))
        scoped(pki, "long-lived", communes=[COMMUNE])
        one_day = escaped(issue_for(pki, tmp_path, "long-lived", validity_days=1))
        assert via_proxy.get("/api/v1/documents", headers=token_bound).status_code == 200
        assert via_proxy.get("/api/v1/documents", headers=one_day).status_code == 200
        clock.set_clock(lambda: now + dt.timedelta(days=1, seconds=1))
        refused(via_proxy.get("/api/v1/documents", headers=token_bound), "token")
        refused(via_proxy.get("/api/v1/documents", headers=one_day), "validity")
    finally:
        clock.set_clock(None)
    assert [d["check"] for d in mtls_denials(pki)] == ["token", "validity"]


@pytest.mark.parametrize("value", ["garbage", quote("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
                                   "x" * 20_000])
def test_malformed_header_is_a_401_not_a_500(pki: Container, via_proxy: TestClient, value: str) -> None:
    refused(via_proxy.get("/api/v1/documents", headers={HEADER: value}), "format")


def test_no_header_or_an_empty_one_is_the_usual_401(via_proxy: TestClient) -> None:
    for headers in ({}, {HEADER: ""}):
        r = via_proxy.get("/api/v1/documents", headers=headers)
        assert r.status_code == 401 and "Authorization: Bearer" in r.json()["error"]["message"]
