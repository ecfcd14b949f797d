"""GET /api/v1/audit: auditors and CA operators read the audit log (filters, paging, one entry, a JSON-lines
export that re-verifies offline); every other role is refused."""
from __future__ import annotations

import json

import pytest

from api import tokens
from core import audit
from core.db import transaction
from tests.helpers.api import new_token


def _headers(pki, role):
    return {"Authorization": f"Bearer {new_token(pki, role)}"}


def _seed(pki):
    with transaction(pki.sessions) as session:
        audit.record(session, actor="token:alice", action="pki:cert:revoke", subject="0A1B", note="Ủy ban Ba Đình")
        audit.record(session, actor="cli:bob", action="pki:cert:issue", subject="0C2D")


@pytest.mark.parametrize("role", [tokens.Role.auditor, tokens.Role.ca_operator])
def test_auditor_and_operator_read_filter_and_page(client, pki, role):
    _seed(pki)
    headers = _headers(pki, role)
    r = client.get("/api/v1/audit", params={"actor": "token:alice", "action": "pki:*"}, headers=headers)
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["subject"] == "0A1B" and item["details_parsed"]["note"] == "Ủy ban Ba Đình"
    assert "Ủy ban Ba Đình" in r.content.decode("utf-8")  # UTF-8 JSON, no \u escapes
    assert r.json()["next_after"] is None
    page = client.get("/api/v1/audit", params={"limit": 1}, headers=headers).json()
    assert len(page["items"]) == 1 and page["next_after"] == page["items"][0]["seq"]
    following = client.get("/api/v1/audit", params={"limit": 1, "after": page["next_after"]}, headers=headers).json()
    assert following["items"][0]["seq"] == page["next_after"] + 1
    assert client.get("/api/v1/audit", params={"since": "2999-01-01T00:00:00+07:00"}, headers=headers).json()["items"] == []
    one = client.get(f"/api/v1/audit/{item['seq']}", headers=headers)
    assert one.status_code == 200 and one.json()["hash"] == item["hash"]
    verified = client.get("/api/v1/audit/verify", headers=headers)  # the chain check, not an entry named "verify"
    assert verified.status_code == 200 and verified.json()["ok"] is True
    missing = client.get("/api/v1/audit/999999", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "audit_entry_not_found"


def test_export_is_json_lines_that_verify_offline_and_fail_when_tampered(client, pki):
    _seed(pki)
    r = client.get("/api/v1/audit/export", headers=_headers(pki, tokens.Role.auditor))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = r.content.decode("utf-8").splitlines(keepends=True)
    assert "Ủy ban Ba Đình" in "".join(lines)
    report = audit.verify_export(lines)
    assert report.ok and report.entries == len(lines) >= 2
    forged = json.loads(lines[-1])
    forged["actor"] = "token:mallory"
    assert not audit.verify_export([*lines[:-1], json.dumps(forged) + "\n"]).ok


@pytest.mark.parametrize("role", [tokens.Role.client, tokens.Role.read_only, tokens.Role.policy_admin])
def test_other_roles_are_refused(client, pki, role):
    headers = _headers(pki, role)
    for path in ("/api/v1/audit", "/api/v1/audit/1", "/api/v1/audit/export"):
        r = client.get(path, headers=headers)
        assert r.status_code == 403, (role, path, r.status_code)
        assert r.json()["error"]["code"] == "permission_denied"


def test_listed_in_openapi(client):
    paths = client.app.openapi()["paths"]
    assert {"/api/v1/audit", "/api/v1/audit/{seq}", "/api/v1/audit/export"} <= set(paths)
