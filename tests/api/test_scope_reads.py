"""A client token scoped to some communes reads only their certificates (and those of no commune:
the CAs' service certificates, public trust material); another commune's certificate answers like an
unknown serial, and the refusal is audited. Operators, auditors and unscoped tokens see everything."""
from __future__ import annotations

import json
from collections.abc import Iterable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import tokens
from api.container import Container
from core import audit
from core.db import transaction
from pki import store
from tests.helpers.api import new_token
from tests.helpers.signing import COMMUNE, issue_credential

OTHER_COMMUNE = "00008"  # Hà Nội (province 01), like COMMUNE
OTHER_PROVINCE_COMMUNE = "01273"  # Cao Bằng (province 04)
UNKNOWN = "ABCDEF0123456789"


def scoped(container: Container, name: str, *, communes: Iterable[str] | None = None,
           operations: Iterable[str] | None = None, document_types: Iterable[str] | None = None) -> dict[str, str]:
    with transaction(container.sessions) as session:
        scope = tokens.build_scope(session, units=communes, operations=operations, document_types=document_types)
        return bearer(tokens.create(session, name, tokens.Role.client, "test", scope=scope))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def denials(container: Container, name: str) -> list[dict]:
    with transaction(container.sessions) as session:
        rows = session.execute(select(audit.AuditEntry).where(audit.AuditEntry.action == "api:authz:deny",
                                                              audit.AuditEntry.subject == name)
                               .order_by(audit.AuditEntry.seq)).scalars().all()
        return [json.loads(r.details) for r in rows]


@pytest.fixture
def serials(pki: Container) -> dict[str, str]:
    """One specialist certificate in each of three communes (two in Hà Nội, one in Cao Bằng): serial by commune."""
    out = {}
    for i, commune in enumerate((COMMUNE, OTHER_COMMUNE, OTHER_PROVINCE_COMMUNE)):
        credential = issue_credential(pki, name=f"Cán bộ {i}", commune=commune, id_number=f"00119000000{i}")
        with transaction(pki.sessions) as session:
            cred = store.get_credential(session, credential)
            out[commune] = session.get(store.Certificate, cred.certificate_id).serial
    return out


def listing(client: TestClient, headers: dict[str, str], **params: str) -> dict:
    r = client.get("/api/v1/certificates", params={"limit": "1000", **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_commune_scope_lists_its_certificates_and_those_of_no_commune(
        client: TestClient, pki: Container, serials: dict[str, str], operator_headers: dict[str, str]) -> None:
    headers = scoped(pki, "hotich-a", communes=[COMMUNE])
    everything = listing(client, operator_headers)["items"]
    assert {c["serial"] for c in everything} >= set(serials.values())
    public = [c["serial"] for c in everything if c["commune_code"] is None]
    assert public, "the test hierarchy has OCSP responder certificates of no commune"

    seen = listing(client, headers)
    assert seen["total"] == len(seen["items"]) == len(public) + 1
    assert {c["commune_code"] for c in seen["items"]} == {COMMUNE, None}
    assert serials[COMMUNE] in {c["serial"] for c in seen["items"]}
    # the scoped query and the store's agree on every filter: same rows, same order, same totals
    for params in ({}, {"status": "valid"}, {"profile": "specialist"}, {"province": "01"}, {"commune": COMMUNE},
                   {"subject": "Cán bộ"}, {"ca": "test-issuing"}, {"expires_before": "2099-01-01T00:00:00"},
                   {"limit": "1", "offset": "1"}):
        mine = listing(client, headers, **params)
        theirs = [c for c in listing(client, operator_headers, **{**params, "limit": "1000", "offset": "0"})["items"]
                  if c["commune_code"] in (COMMUNE, None)]
        start, size = int(params.get("offset", 0)), int(params.get("limit", 1000))
        assert mine["items"] == theirs[start:start + size], params
        assert mine["total"] == len(theirs), params
    # a service certificate of no commune is readable one by one too
    assert client.get(f"/api/v1/certificates/{public[0]}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/certificates/{serials[COMMUNE]}", headers=headers).json()["commune_code"] == COMMUNE


def test_filtering_outside_the_scope_finds_nothing(client: TestClient, pki: Container,
                                                   serials: dict[str, str]) -> None:
    headers = scoped(pki, "hotich-a", communes=[COMMUNE])
    for params in ({"commune": OTHER_COMMUNE}, {"commune": OTHER_PROVINCE_COMMUNE}, {"province": "04"},
                   {"province": "01", "profile": "specialist", "subject": "Cán bộ 1"}):
        assert listing(client, headers, **params) == {"total": 0, "items": []}, params
    assert denials(pki, "hotich-a") == []  # an empty list is an answer, not a refusal


def test_another_communes_certificate_answers_like_an_unknown_serial(
        client: TestClient, pki: Container, serials: dict[str, str]) -> None:
    headers = scoped(pki, "hotich-a", communes=[COMMUNE])
    other = serials[OTHER_COMMUNE]
    for fmt in ("json", "pem", "der"):
        hidden = client.get(f"/api/v1/certificates/{other}", params={"format": fmt}, headers=headers)
        missing = client.get(f"/api/v1/certificates/{UNKNOWN}", params={"format": fmt}, headers=headers)
        assert hidden.status_code == missing.status_code == 404, fmt
        assert hidden.headers["content-type"] == missing.headers["content-type"]
        assert hidden.text.replace(other, "SERIAL") == missing.text.replace(UNKNOWN, "SERIAL"), fmt
        assert hidden.json()["error"]["code"] == "unknown_certificate"

    refused = denials(pki, "hotich-a")
    assert len(refused) == 3  # the unknown serial is no refusal: nothing to hide
    for denial in refused:
        assert denial["route"] == f"GET /api/v1/certificates/{other}" and denial["certificate"] == other
        assert denial["answered"] == "unknown_certificate" and OTHER_COMMUNE in denial["reason"]
        assert denial["role"] == "client"


def test_province_scope_covers_its_communes(client: TestClient, pki: Container, serials: dict[str, str]) -> None:
    headers = scoped(pki, "ha-noi", communes=["01"])
    seen = {c["serial"] for c in listing(client, headers)["items"]}
    assert {serials[COMMUNE], serials[OTHER_COMMUNE]} <= seen and serials[OTHER_PROVINCE_COMMUNE] not in seen
    assert client.get(f"/api/v1/certificates/{serials[OTHER_COMMUNE]}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/certificates/{serials[OTHER_PROVINCE_COMMUNE]}", headers=headers).status_code == 404
    assert listing(client, headers, province="04")["total"] == 0
    [denial] = denials(pki, "ha-noi")
    assert denial["certificate"] == serials[OTHER_PROVINCE_COMMUNE]


def test_certificates_need_no_read_operation(client: TestClient, pki: Container, serials: dict[str, str]) -> None:
    """The commune scope applies to certificates; the operations scope is about documents."""
    headers = scoped(pki, "signer", communes=[COMMUNE], operations=["sign"])
    assert serials[COMMUNE] in {c["serial"] for c in listing(client, headers)["items"]}
    assert client.get(f"/api/v1/certificates/{serials[OTHER_COMMUNE]}", headers=headers).status_code == 404


def test_unscoped_principals_see_every_certificate(client: TestClient, pki: Container, serials: dict[str, str],
                                                   operator_headers: dict[str, str]) -> None:
    auditor = bearer(new_token(pki, tokens.Role.auditor))
    wide_client = scoped(pki, "wide")  # a client token with no scope: every commune
    for headers in (operator_headers, auditor, wide_client):
        seen = listing(client, headers)
        assert set(serials.values()) <= {c["serial"] for c in seen["items"]}
        assert listing(client, headers, commune=OTHER_PROVINCE_COMMUNE)["total"] == 1
        for serial in serials.values():
            assert client.get(f"/api/v1/certificates/{serial}", headers=headers).status_code == 200
    with transaction(pki.sessions) as session:
        assert not session.execute(select(audit.AuditEntry).where(audit.AuditEntry.action == "api:authz:deny")).first()


def test_cas_and_units_stay_public_to_scoped_clients(client: TestClient, pki: Container,
                                                     operator_headers: dict[str, str]) -> None:
    headers = scoped(pki, "hotich-a", communes=[COMMUNE])
    for path in ("/api/v1/cas", "/api/v1/units?province=04"):
        mine = client.get(path, headers=headers)
        assert mine.status_code == 200 and mine.json() == client.get(path, headers=operator_headers).json(), path
    assert client.get("/api/v1/cas/test-issuing/chain.pem", headers=headers).status_code == 200


def test_policy_file_is_not_for_clients(client: TestClient, pki: Container) -> None:
    headers = scoped(pki, "births-only", document_types=["civil-status-extract-birth"])
    assert client.get("/api/v1/policies", headers=headers).status_code == 403


def test_document_types_listing_is_filtered_by_scope(client: TestClient, pki: Container,
                                                     operator_headers: dict[str, str]) -> None:
    every = {t["name"] for t in client.get("/api/v1/document-types", headers=operator_headers).json()}
    assert {"civil-status-extract-birth", "dossier-result"} <= every
    headers = scoped(pki, "births-only", document_types=["civil-status-extract-birth"])
    r = client.get("/api/v1/document-types", headers=headers)
    assert r.status_code == 200 and [t["name"] for t in r.json()] == ["civil-status-extract-birth"]
    wide = client.get("/api/v1/document-types", headers=scoped(pki, "wide")).json()
    assert {t["name"] for t in wide} == every
