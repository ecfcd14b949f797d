"""Every /api/v1 route demands a live bearer token and the right role; protocol routes are public."""
from __future__ import annotations

import re

import pytest

from api import tokens
from api.tokens import Role
from core.db import transaction
from tests.helpers.api import new_token

READ_ONLY_FOR = {Role.auditor, Role.client, Role.read_only, Role.policy_admin}
POLICY_ADMIN_WRITES = {("POST", "/api/v1/policies/reload")}
# what civil-registration software (a client token) may change: its own signing requests and records
CLIENT_WRITES = {("POST", "/api/v1/sign"), ("POST", "/api/v1/sign/batch"), ("POST", "/api/v1/sign/requests"),
                 ("POST", "/api/v1/documents/00004/withdraw"), ("POST", "/api/v1/documents/00004/supersede")}


# open on purpose: anyone (a citizen's browser included) may ask whether a PDF is genuine; rate-limited instead
PUBLIC_V1 = {("POST", "/api/v1/verify"), ("POST", "/api/v1/verify/signed-revision")}


def _v1_routes(app, *, include_public: bool = False):
    """Every documented /api/v1 operation (the OpenAPI schema lists what the app really serves)."""
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/api/v1"):
            for method in operations:
                route = (method.upper(), re.sub(r"\{[^}]+\}", "00004", path))
                if include_public or route not in PUBLIC_V1:
                    yield route


def test_public_v1_routes_are_exactly_the_listed_ones(client):
    """A new route without authentication cannot slip in: it would have to be added here on purpose."""
    every = set(_v1_routes(client.app, include_public=True))
    assert every >= PUBLIC_V1
    for method, path in every - PUBLIC_V1:
        assert client.request(method, path, json={}).status_code == 401, (method, path)
    for method, path in PUBLIC_V1:
        assert client.request(method, path, json={}).status_code != 401, (method, path)


def test_there_are_v1_routes(client):
    assert len(list(_v1_routes(client.app))) >= 10


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer kyso_" + "A" * 43])
def test_every_v1_route_refuses_missing_or_bad_tokens(client, header):
    headers = {"Authorization": header} if header else {}
    for method, path in _v1_routes(client.app):
        r = client.request(method, path, headers=headers, json={})
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "unauthenticated"
        assert r.headers["WWW-Authenticate"] == "Bearer"


def test_revoked_token_stops_working(pki, client):
    token = new_token(pki, Role.ca_operator, "soon-revoked")
    assert client.get("/api/v1/cas", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with transaction(pki.sessions) as session:
        tokens.revoke(session, "soon-revoked", "test")
    assert client.get("/api/v1/cas", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize("role", sorted(READ_ONLY_FOR, key=lambda r: r.value))
def test_non_operators_cannot_change_anything(pki, client, role):
    headers = {"Authorization": f"Bearer {new_token(pki, role)}"}
    for method, path in _v1_routes(client.app):
        if method == "GET" or (role is Role.client and (method, path) in CLIENT_WRITES):
            continue
        if role is Role.policy_admin and (method, path) in POLICY_ADMIN_WRITES:
            continue
        r = client.request(method, path, headers=headers, json={})
        assert r.status_code == 403, (role, method, path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "permission_denied"


def test_client_cannot_read_the_audit_log_but_auditor_can(pki, client):
    client_headers = {"Authorization": f"Bearer {new_token(pki, Role.client)}"}
    auditor_headers = {"Authorization": f"Bearer {new_token(pki, Role.auditor)}"}
    assert client.get("/api/v1/audit/verify", headers=client_headers).status_code == 403
    r = client.get("/api/v1/audit/verify", headers=auditor_headers)
    assert r.status_code == 200 and r.json()["ok"] is True


def test_protocol_and_health_endpoints_are_public(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json()["status"] == "ready"
    assert client.get("/ca/test-issuing.crt").headers["content-type"] == "application/pkix-cert"
    assert client.get("/crl/test-issuing.crl").headers["content-type"] == "application/pkix-crl"
    assert client.get("/crl/test-issuing-delta.crl").status_code == 200


def test_tokens_are_stored_only_as_hashes(pki):
    token = new_token(pki, Role.client, "hashed")
    with transaction(pki.sessions) as session:
        row = next(t for t in tokens.list_tokens(session) if t.name == "hashed")
        assert token not in row.token_hash and len(row.token_hash) == 64


def test_token_creation_is_audited(pki):
    from sqlalchemy import select

    from core import audit

    new_token(pki, Role.auditor, "audited")
    with transaction(pki.sessions) as session:
        actions = session.execute(select(audit.AuditEntry.action).where(audit.AuditEntry.subject == "audited")).scalars().all()
    assert actions == ["api:token:create"]


def test_clients_reach_the_signing_routes_only(pki, client):
    """A client token passes authorization on its writes (then fails validation on an empty body)."""
    headers = {"Authorization": f"Bearer {new_token(pki, Role.client)}"}
    for method, path in sorted(CLIENT_WRITES):
        r = client.request(method, path, headers=headers, json={})
        assert r.status_code in (404, 422), (method, path, r.status_code, r.text)


def test_only_the_policy_admin_reloads_the_policy(pki, client):
    """Separation of duties: a CA operator runs the PKI but does not change who may sign."""
    for role, status in ((Role.ca_operator, 403), (Role.auditor, 403), (Role.read_only, 403), (Role.policy_admin, 200)):
        headers = {"Authorization": f"Bearer {new_token(pki, role)}"}
        assert client.post("/api/v1/policies/reload", headers=headers).status_code == status, role
    read_only = {"Authorization": f"Bearer {new_token(pki, Role.read_only)}"}
    assert client.get("/api/v1/policies", headers=read_only).status_code == 200
    assert client.get("/api/v1/certificates", headers=read_only).status_code == 200
    assert client.get("/api/v1/audit/verify", headers=read_only).status_code == 403
