"""Every operation the OpenAPI schema lists, called without credentials and with junk: refused or
answered, never a 500. Public operations are named here on purpose; anything else must answer 401."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api import tokens
from tests.helpers.api import new_token

# open by design: protocol endpoints (RFC 5280/6960/3161, C2SP tlog-witness: the log's signature is its only
# authentication), operations, verification for anyone
PUBLIC = re.compile(r"^/(healthz|readyz|ocsp|tsa|crl/|ca/|log/|witness/|api/v1/verify(/signed-revision)?$|csc/v2/info$)")
BODIES = [dict(json={}), dict(content=b"\x00\xffjunk", headers={"Content-Type": "application/octet-stream"}),
          dict(data={"metadata": "{not json"}, files={"file": ("x.pdf", b"%PDF-1.4 broken", "application/pdf")})]


def operations(app):  # type: ignore[no-untyped-def]
    for path, ops in app.openapi()["paths"].items():
        for method in ops:
            yield method.upper(), path, re.sub(r"\{[^}]+\}", "ZZZ", path)


def test_schema_lists_the_public_and_private_routes(client: TestClient) -> None:
    ops = list(operations(client.app))
    assert any(PUBLIC.match(p) for _, p, _ in ops) and any(not PUBLIC.match(p) for _, p, _ in ops)


@pytest.mark.parametrize("auth", [None, "Bearer kyso_" + "B" * 43])
def test_without_valid_credentials_every_private_operation_is_refused(client: TestClient, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    for method, path, url in operations(client.app):
        for body in BODIES:
            extra = dict(body)
            extra["headers"] = {**extra.get("headers", {}), **headers}
            r = client.request(method, url, **extra)
            assert r.status_code < 500, (method, url, r.status_code, r.text[:300])
            if not PUBLIC.match(path):
                assert r.status_code == 401, (method, url, r.status_code, r.text[:300])
            assert r.headers["content-type"].split(";")[0] in (
                "application/json", "application/pkix-crl", "application/ocsp-response", "application/timestamp-reply",
                "application/pkix-cert", "text/plain", "application/problem+json"), (method, url, r.headers)


@pytest.mark.parametrize("role", list(tokens.Role))
def test_junk_from_every_role_is_never_a_500(client: TestClient, pki, role: tokens.Role) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {new_token(pki, role)}"}
    for method, _, url in operations(client.app):
        for body in BODIES:
            extra = dict(body)
            extra["headers"] = {**extra.get("headers", {}), **headers}
            r = client.request(method, url, **extra)
            assert r.status_code < 500 or r.status_code == 503, (role, method, url, r.status_code, r.text[:300])
            assert r.status_code != 500, (role, method, url, r.text[:300])
