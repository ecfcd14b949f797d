"""Revocation with an invalidity date (RFC 5280 5.3.2; issue 15, item 9).

The date is kept in ``certificates.invalidity_date``, checked (not in the future, not before the
certificate's notBefore, no hold), and put on the CRL entry (full and delta) and in the OCSP answer
as a singleExtension (RFC 6960 4.4), whose re-signed response still verifies — with pyca/cryptography,
asn1crypto and ``openssl ocsp``. The REST route and the CLI take it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from fastapi.testclient import TestClient

from api.container import Container
from core import clock
from core.db import transaction
from core.errors import InvalidInput
from pki import crl, ocsp as pki_ocsp, revocation, store
from pki.reasons import Reason
from tests.helpers.db import make_settings
from tests.interop.helpers import ISSUING_CA, ca_cert_der, issue, openssl, responder_cert_der, write_cert_pem

UTC = dt.UTC


def _crl_entry(pki: Container, serial: str, *, delta: bool) -> x509.RevokedCertificate:
    with transaction(pki.sessions) as session:
        der = crl.latest(session, store.get_ca(session, ISSUING_CA), delta=delta).der  # type: ignore[union-attr]
    entry = x509.load_der_x509_crl(der).get_revoked_certificate_by_serial_number(int(serial, 16))
    assert entry is not None
    return entry


def _ocsp_der(pki: Container, serial: str, *, nonce: bool) -> bytes:
    cert = x509.load_der_x509_certificate(_der_of(pki, serial))
    issuer = x509.load_der_x509_certificate(ca_cert_der(pki, ISSUING_CA))
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(b"\x07" * 32), critical=False)
    request = builder.build().public_bytes(serialization.Encoding.DER)
    with transaction(pki.sessions) as session:
        return pki_ocsp.answer(pki.pki, session, request).der


def _der_of(pki: Container, serial: str) -> bytes:
    with transaction(pki.sessions) as session:
        return store.get_certificate(session, serial).der


@pytest.mark.parametrize("nonce", [False, True], ids=["pre-produced", "signed-on-demand"])
def test_key_compromise_with_invalidity_date_on_crl_and_ocsp(pki: Container, tmp_path: Path, nonce: bool) -> None:
    row = issue(pki)
    since = clock.now().replace(microsecond=0) - dt.timedelta(minutes=3)
    revocation.revoke(pki.pki, row.serial, Reason.keyCompromise, "test", invalidity_date=since)

    with transaction(pki.sessions) as session:
        stored = store.get_certificate(session, row.serial)
        assert clock.aware(stored.invalidity_date) == since  # type: ignore[arg-type]
        assert clock.aware(stored.revoked_at) > since  # type: ignore[arg-type]

    for delta in (False, True):
        entry = _crl_entry(pki, row.serial, delta=delta)
        value = entry.extensions.get_extension_for_class(x509.InvalidityDate)
        assert value.critical is False and value.value.invalidity_date_utc == since
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise

    der = _ocsp_der(pki, row.serial, nonce=nonce)
    parsed = asn1_ocsp.OCSPResponse.load(der)
    [single] = parsed.basic_ocsp_response["tbs_response_data"]["responses"]
    assert single["cert_status"].name == "revoked"
    assert single["cert_status"].chosen["revocation_reason"].native == "key_compromise"
    [extension] = single["single_extensions"]
    assert (extension["extn_id"].native, extension["critical"].native) == ("invalidity_date", False)
    assert extension["extn_value"].parsed.native == since
    # the amended response is signed again, and verifies
    answer = ocsp.load_der_ocsp_response(der)
    responder = x509.load_der_x509_certificate(responder_cert_der(pki, ISSUING_CA))
    responder.public_key().verify(answer.signature, answer.tbs_response_bytes,
                                  *_verify_args(responder, answer.signature_hash_algorithm))
    if nonce:
        assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"\x07" * 32
    (tmp_path / "resp.der").write_bytes(der)
    write_cert_pem(tmp_path / "issuing.pem", ca_cert_der(pki, ISSUING_CA))
    write_cert_pem(tmp_path / "leaf.pem", row.der)
    text = openssl("ocsp", "-respin", "resp.der", "-resp_text", "-issuer", "issuing.pem", "-cert", "leaf.pem",
                   "-CAfile", "issuing.pem", "-partial_chain", "-no_nonce", cwd=tmp_path)
    assert text.returncode == 0 and "Response verify OK" in text.output, str(text)
    assert "Invalidity Date" in text.stdout and "leaf.pem: revoked" in text.stdout, str(text)


def _verify_args(cert: x509.Certificate, algorithm: hashes.HashAlgorithm | None) -> tuple:  # type: ignore[type-arg]
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return (padding.PKCS1v15(), algorithm)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return (ec.ECDSA(algorithm),)


def test_without_invalidity_date_nothing_is_added(pki: Container) -> None:
    row = issue(pki)
    revocation.revoke(pki.pki, row.serial, Reason.keyCompromise, "test")
    with pytest.raises(x509.ExtensionNotFound):
        _crl_entry(pki, row.serial, delta=False).extensions.get_extension_for_class(x509.InvalidityDate)
    [single] = asn1_ocsp.OCSPResponse.load(_ocsp_der(pki, row.serial, nonce=False)).basic_ocsp_response[
        "tbs_response_data"]["responses"]
    assert not single["single_extensions"]


@pytest.mark.parametrize("case", ["future", "before-not-before", "hold"])
def test_invalid_invalidity_dates_are_refused(pki: Container, case: str) -> None:
    row = issue(pki)
    now = clock.now()
    when, reason, match = {
        "future": (now + dt.timedelta(minutes=5), Reason.keyCompromise, "in the future"),
        "before-not-before": (clock.aware(row.not_before) - dt.timedelta(seconds=1), Reason.keyCompromise,
                              "before certificate .* was valid"),
        "hold": (now - dt.timedelta(minutes=1), Reason.certificateHold, "hold takes no invalidity date"),
    }[case]
    with pytest.raises(InvalidInput, match=match):
        revocation.revoke(pki.pki, row.serial, reason, "test", invalidity_date=when)
    with transaction(pki.sessions) as session:
        assert store.get_certificate(session, row.serial).status == "valid"  # nothing changed


def test_rest_route_takes_the_invalidity_date(client: TestClient, pki: Container,
                                              operator_headers: dict[str, str]) -> None:
    row = issue(pki)
    since = (clock.now() - dt.timedelta(minutes=2)).replace(microsecond=0)
    future = client.post(f"/api/v1/certificates/{row.serial}/revoke", headers=operator_headers,
                         json={"reason": "keyCompromise", "invalidity_date": (clock.now() + dt.timedelta(days=1)).isoformat()})
    assert future.status_code in (400, 422) and "future" in future.text, future.text
    answer = client.post(f"/api/v1/certificates/{row.serial}/revoke", headers=operator_headers,
                         json={"reason": "keyCompromise", "invalidity_date": since.astimezone(
                             dt.timezone(dt.timedelta(hours=7))).isoformat()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "revoked" and dt.datetime.fromisoformat(body["invalidity_date"]) == since
    assert _crl_entry(pki, row.serial, delta=False).extensions.get_extension_for_class(
        x509.InvalidityDate).value.invalidity_date_utc == since


def test_cli_takes_the_invalidity_date(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path / "home", sqlite_url)
    env = {**os.environ, "KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": sqlite_url,
           "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value(), "COLUMNS": "200"}

    def kyso(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    assert kyso("ca", "init", "--org", "Sở KH&CN thử nghiệm", "--json").returncode == 0
    issued = json.loads(kyso("cert", "issue", "--cn", "Nguyễn Thị Hoa", "--commune", "00004",
                             "--id-number", "001190000001", "--json").stdout)
    # a future date is refused for what it is, on a certificate that could still be revoked
    refused = kyso("cert", "revoke", issued["serial"], "--reason", "keyCompromise", "--invalidity-date", "2999-01-01")
    assert refused.returncode != 0 and "future" in refused.stderr + refused.stdout, refused.stderr
    since = (dt.datetime.now(UTC) - dt.timedelta(minutes=2)).replace(microsecond=0)
    local = since.astimezone(dt.timezone(dt.timedelta(hours=7))).strftime("%Y-%m-%dT%H:%M:%S%z")
    done = kyso("cert", "revoke", issued["serial"], "--reason", "keyCompromise", "--invalidity-date", local, "--json")
    assert done.returncode == 0, done.stderr
    assert dt.datetime.fromisoformat(json.loads(done.stdout)["invalidity_date"]) == since
