"""UTF-8 JSON everywhere: Vietnamese travels as written (ỗ, not \\u1ed7) in every JSON answer of the API,
in the error bodies and in the CLI's --json output."""
from __future__ import annotations

import re

from api import tokens
from core import audit
from core.db import transaction
from tests.helpers.api import new_token
from tests.helpers.signing import issue_credential

ESCAPE = re.compile(rb"\\u[0-9a-fA-F]{4}")


def test_every_listing_answers_vietnamese_as_utf8(client, pki):
    issue_credential(pki, name="Nguyễn Thị Hồng Nhung")
    with transaction(pki.sessions) as session:
        audit.record(session, actor="test", action="test:entry:add", subject="s", note="Ủy ban nhân dân phường Ba Đình")
    headers = {"Authorization": f"Bearer {new_token(pki, tokens.Role.ca_operator)}"}
    checked = 0
    for path, operations in client.app.openapi()["paths"].items():
        if "get" not in operations or "{" in path or not path.startswith("/api/v1"):
            continue
        r = client.get(path, headers=headers)
        if r.headers.get("content-type", "").startswith("application/json"):
            assert not ESCAPE.search(r.content), (path, ESCAPE.search(r.content))
            checked += 1
    assert checked >= 5
    listing = client.get("/api/v1/certificates", headers=headers).content
    assert "Nguyễn Thị Hồng Nhung".encode() in listing
    assert "Ủy ban nhân dân phường Ba Đình".encode() in client.get("/api/v1/audit", headers=headers).content


def test_error_bodies_are_utf8(client, pki):
    headers = {"Authorization": f"Bearer {new_token(pki, tokens.Role.ca_operator)}"}
    r = client.get("/api/v1/certificates/Nguyễn", headers=headers)  # echoed back in the error message
    assert r.status_code in (400, 404, 422) and "error" in r.json()
    assert "Nguyễn".encode() in r.content and not ESCAPE.search(r.content), r.content
