"""Revoking an issuing CA takes two operators; then the root's CRL and OCSP list it and it issues nothing more.

The CRL and the chain are judged by OpenSSL (a subprocess), not by kyso reading its own output.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x_ocsp
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import tokens
from api.container import Container
from core import audit
from core.db import transaction
from core.errors import InvalidInput, PermissionDenied
from pki import approvals, crl, issuance, ocsp, store
from pki.errors import CARevoked, RevocationConflict
from tests import factories
from tests.helpers.api import new_token
from tests.helpers.signing import CONSENTED
from tests.interop.helpers import ISSUING_CA, ROOT_CA, crl_entries, issue, openssl, openssl_serial, write_cert_pem


def bearer(pki: Container, role: tokens.Role, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_token(pki, role, name)}"}


def ca_status(pki: Container, name: str) -> str:
    with transaction(pki.sessions) as session:
        return store.get_ca(session, name).status


def issuing_serial(pki: Container) -> str:
    with transaction(pki.sessions) as session:
        return format(x509.load_der_x509_certificate(store.get_ca(session, ISSUING_CA).cert_der).serial_number, "X")


def crl_files(pki: Container, directory: Path, name: str) -> tuple[Path, Path]:
    """The CA's current full CRL as DER (for `openssl crl -text`) and PEM (for `openssl verify -CRLfile`)."""
    with transaction(pki.sessions) as session:
        der = crl.latest(session, store.get_ca(session, name), delta=False).der
    der_path, pem_path = directory / f"{name}.crl", directory / f"{name}.crl.pem"
    der_path.write_bytes(der)
    converted = openssl("crl", "-inform", "DER", "-in", der_path, "-out", pem_path)
    assert converted.returncode == 0, str(converted)
    return der_path, pem_path


def test_an_auditor_cannot_ask_and_nothing_changes(pki: Container, client: TestClient) -> None:
    auditor = bearer(pki, tokens.Role.auditor, "audit")
    refused = client.post(f"/api/v1/cas/{ISSUING_CA}/revoke", json={"reason": "cACompromise"}, headers=auditor)
    assert refused.status_code == 403, refused.text
    assert ca_status(pki, ISSUING_CA) == "active"
    assert client.get("/api/v1/approvals", headers=auditor).json() == []


def test_second_operator_revokes_the_issuing_ca(pki: Container, client: TestClient, tmp_path: Path) -> None:
    leaf = issue(pki)  # a specialist issued while the CA was good
    alice, bob = bearer(pki, tokens.Role.ca_operator, "alice"), bearer(pki, tokens.Role.ca_operator, "bob")

    asked = client.post(f"/api/v1/cas/{ISSUING_CA}/revoke", headers=alice,
                        json={"reason": "keyCompromise", "why": "HSM backup tape lost"})
    assert asked.status_code == 202, asked.text
    pending = asked.json()
    assert (pending["operation"], pending["subject"], pending["status"]) == ("revoke-ca", ISSUING_CA, "pending")
    assert pending["revocation_reason"] == "cACompromise"  # a CA's key compromise is cACompromise
    assert pending["reason"] == "HSM backup tape lost"
    assert ca_status(pki, ISSUING_CA) == "active"  # nothing runs on a request

    own = client.post(f"/api/v1/approvals/{pending['id']}/approve", headers=alice)
    assert own.status_code == 403 and own.json()["error"]["code"] == "four_eyes", own.text
    assert ca_status(pki, ISSUING_CA) == "active"

    done = client.post(f"/api/v1/approvals/{pending['id']}/approve", headers=bob)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "revoked" and done.json()["parent"] == ROOT_CA
    cas = {ca["name"]: ca["status"] for ca in client.get("/api/v1/cas", headers=alice).json()}
    assert cas == {ROOT_CA: "active", ISSUING_CA: "revoked"}

    # the root's fresh CRL lists the issuing CA with its reason, as OpenSSL reads it
    serial = issuing_serial(pki)
    root_der, root_pem = crl_files(pki, tmp_path, ROOT_CA)
    text = openssl("crl", "-inform", "DER", "-in", root_der, "-noout", "-text")
    assert text.returncode == 0, str(text)
    assert crl_entries(text.stdout) == {openssl_serial(serial): "CA Compromise"}, str(text)

    # a relying party checking the whole chain rejects the specialist: its issuer is revoked
    _, issuing_pem = crl_files(pki, tmp_path, ISSUING_CA)
    root_cert = write_cert_pem(tmp_path / "root.pem", store_der(pki, ROOT_CA))
    issuing_cert = write_cert_pem(tmp_path / "issuing.pem", store_der(pki, ISSUING_CA))
    leaf_pem = write_cert_pem(tmp_path / "leaf.pem", leaf.der)
    chain = openssl("verify", "-CAfile", root_cert, "-untrusted", issuing_cert, "-crl_check_all",
                    "-CRLfile", root_pem, "-CRLfile", issuing_pem, leaf_pem)
    assert chain.returncode != 0, str(chain)
    assert "certificate revoked" in chain.output, str(chain)
    assert "error 23 at 1 depth lookup" in chain.output, str(chain)  # depth 1: the issuing CA

    # the root's OCSP responder says so too
    status = root_ocsp(pki)
    assert status.certificate_status is x_ocsp.OCSPCertStatus.REVOKED
    assert status.revocation_reason is x509.ReasonFlags.ca_compromise

    # the revoked CA issues and renews nothing, over REST too
    with pytest.raises(CARevoked, match="revoked"):
        issue(pki, subject=factories.specialist(id_number="001190000002"))
    with pytest.raises(CARevoked):
        issuance.renew(pki.pki, leaf.serial, "test")
    refused = client.post("/api/v1/certificates", headers=alice, json={
        "profile": "specialist", "commune_code": "00004", "ca": ISSUING_CA,
        "subject": {"common_name": "Trần Văn Bình", "id_number": "001190000003"}})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "ca_revoked", refused.text

    with pytest.raises(RevocationConflict, match="already revoked"):
        approvals.request(pki.pki, "revoke-ca", ISSUING_CA, "again", "cli:alice",
                          params={"revocation_reason": "superseded"})

    with transaction(pki.sessions) as session:
        assert audit.verify(session).ok
        entry = session.execute(select(audit.AuditEntry).where(audit.AuditEntry.action == "pki:ca:revoke")).scalar_one()
        actions = set(session.execute(select(audit.AuditEntry.action)).scalars())
    assert (entry.subject, entry.actor) == (ISSUING_CA, "token:bob")
    assert json.loads(entry.details)["reason"] == "cACompromise"
    assert {"pki:approval:request", "pki:approval:self-approval-refused", "pki:approval:approve",
            "pki:certificate:revoke", "pki:ca:revoke"} <= actions


def store_der(pki: Container, name: str) -> bytes:
    with transaction(pki.sessions) as session:
        return store.get_ca(session, name).cert_der


def root_ocsp(pki: Container) -> x_ocsp.OCSPResponse:
    """The root's (pre-produced) OCSP answer about the issuing CA's certificate."""
    issuing = x509.load_der_x509_certificate(store_der(pki, ISSUING_CA))
    root = x509.load_der_x509_certificate(store_der(pki, ROOT_CA))
    request = x_ocsp.OCSPRequestBuilder().add_certificate(issuing, root, hashes.SHA1()).build()
    with transaction(pki.sessions) as session:
        answer = ocsp.answer(pki.pki, session, request.public_bytes(serialization.Encoding.DER))
    assert answer.pre_produced
    return x_ocsp.load_der_ocsp_response(answer.der)


def test_the_root_cannot_be_revoked(pki: Container, client: TestClient, operator_headers: dict[str, str]) -> None:
    with pytest.raises(InvalidInput, match="trust stores") as refused:
        approvals.request(pki.pki, "revoke-ca", ROOT_CA, "retire it", "cli:alice",
                          params={"revocation_reason": "cessationOfOperation"})
    assert refused.value.code == "root_ca_not_revocable"
    answer = client.post(f"/api/v1/cas/{ROOT_CA}/revoke", json={"reason": "cessationOfOperation"},
                         headers=operator_headers)
    assert answer.status_code == 422 and "root CA" in answer.json()["error"]["message"], answer.text
    assert client.get("/api/v1/approvals", headers=operator_headers).json() == []


@pytest.mark.parametrize("reason", ["bogus", "certificateHold", "removeFromCRL", ""])
def test_a_bad_reason_is_a_readable_422(pki: Container, client: TestClient, operator_headers: dict[str, str],
                                        reason: str) -> None:
    answer = client.post(f"/api/v1/cas/{ISSUING_CA}/revoke", json={"reason": reason}, headers=operator_headers)
    assert answer.status_code == 422, answer.text
    message = answer.json()["error"]["message"]
    assert "reason" in message, message
    if reason:
        assert "cessationOfOperation" in message and reason in message, message
    assert client.get("/api/v1/approvals", headers=operator_headers).json() == []


def test_the_requester_alone_changes_nothing(pki: Container) -> None:
    asked = approvals.request(pki.pki, "revoke-ca", ISSUING_CA, "moving to a new CA", "cli:alice",
                              params={"revocation_reason": "superseded"})
    with pytest.raises(PermissionDenied) as own:
        approvals.approve(pki.pki, asked.id, "cli:alice")
    assert own.value.code == "four_eyes"
    assert ca_status(pki, ISSUING_CA) == "active"
    issue(pki)  # still issuing
    with pytest.raises(InvalidInput, match="revocation_reason"):
        approvals.request(pki.pki, "revoke-ca", ISSUING_CA, "x", "cli:alice", params={"reason": "superseded"})
    with pytest.raises(InvalidInput, match="no parameters"):
        approvals.request(pki.pki, "destroy-key", "cred_x", "x", "cli:alice", params={"revocation_reason": "x"})


def test_cli_files_the_request_and_a_second_operator_approves(pki: Container) -> None:
    """Each operator gives their own ca-operator token; the OS login they run under does not count."""
    settings = pki.settings
    env = {**os.environ, "KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": settings.resolved_database_url,
           "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value(), "COLUMNS": "200"}
    held = {"alice": new_token(pki, tokens.Role.ca_operator, "alice"),
               "bob": new_token(pki, tokens.Role.ca_operator, "bob")}

    def kyso(user: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, timeout=120,
                              env={**env, "USER": "ops", "LOGNAME": "ops", "KYSO_OPERATOR_TOKEN": held[user]})

    asked = kyso("alice", "ca", "revoke", ISSUING_CA, "--reason", "cessationOfOperation", "--json")
    assert asked.returncode == 0, asked.stderr
    approval = json.loads(asked.stdout)
    assert approval["requested_by"] == "token:alice" and approval["revocation_reason"] == "cessationOfOperation"
    told = kyso("alice", "ca", "revoke", ISSUING_CA, "--reason", "cessationOfOperation")
    assert "kyso approval approve apr_" in told.stdout, told.stdout
    own = kyso("alice", "approval", "approve", approval["id"])
    assert own.returncode == 2 and "four_eyes" in own.stderr, own.stderr
    done = kyso("bob", "approval", "approve", approval["id"], "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "revoked"
    assert ca_status(pki, ISSUING_CA) == "revoked"
    root = kyso("bob", "ca", "revoke", ROOT_CA, "--reason", "superseded")
    assert root.returncode == 2 and "trust stores" in root.stderr, root.stderr


def test_revoking_a_ca_certificate_as_a_certificate_is_refused(pki: Container, client: TestClient,
                                                               operator_headers: dict[str, str]) -> None:
    """The end-entity path (kyso cert revoke, POST /certificates/{serial}/revoke) is no way around four eyes."""
    from pki import revocation
    from pki.errors import FourEyesRequired
    from pki.reasons import Reason

    serial = issuing_serial(pki)
    with pytest.raises(FourEyesRequired, match="second operator"):
        revocation.revoke(pki.pki, serial, Reason.cACompromise, "cli:mallory")
    answer = client.post(f"/api/v1/certificates/{serial}/revoke", json={"reason": "cACompromise"},
                         headers=operator_headers)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "four_eyes_required", answer.text
    assert ca_status(pki, ISSUING_CA) == "active"
    with transaction(pki.sessions) as session:
        assert store.get_certificate(session, serial).status == "valid"
        denials = session.execute(select(audit.AuditEntry).where(
            audit.AuditEntry.action == "pki:certificate:revoke:deny")).scalars().all()
    assert [d.actor for d in denials][0] == "cli:mallory" and len(denials) == 2


def test_nothing_signs_under_a_revoked_ca(pki: Container) -> None:
    from signing.create.service import SignRequest
    from signing.errors import SigningRefused
    from tests.helpers.signing import COMMUNE, CORPUS, issue_credential

    credential = issue_credential(pki)
    asked = approvals.request(pki.pki, "revoke-ca", ISSUING_CA, "key exposed", "cli:alice",
                              params={"revocation_reason": "cACompromise"})
    approvals.approve(pki.pki, asked.id, "cli:bob")
    pki.signing.material.clear()
    with pytest.raises(SigningRefused, match="is revoked"):
        pki.signing.sign(SignRequest(pdf=(CORPUS / "fourpages.pdf").read_bytes(), document_type="dossier-result",
                                     commune_code=COMMUNE, credential_id=credential), actor="test", activation=CONSENTED)
