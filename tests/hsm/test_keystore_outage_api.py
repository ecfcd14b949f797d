"""When a keystore misbehaves the API answers 503 naming it, and nothing is half-issued."""
from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.tokens import Role
from core import audit
from core.db import transaction
from pki.authorities import init_hierarchy
from pki.models import Certificate
from tests import factories
from tests.helpers.api import new_token
from tests.helpers.db import ISSUING, ROOT, build_for_test, make_settings
from tests.hsm.vault_fixtures import start_bao

SPECIALIST = {"profile": "specialist", "commune_code": "00004",
              "subject": {"common_name": "Nguyễn Thị Hoa", "id_number": "001190000001"}}


def _count(container) -> int:
    with transaction(container.sessions) as session:
        return session.execute(select(func.count()).select_from(Certificate)).scalar_one()


def test_vault_sealed_then_stopped(request, tmp_path):
    server = start_bao(tmp_path / "bao")
    try:
        server.client().sys.enable_secrets_engine("transit", path="transit")
        settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'kyso.db'}", vault_addr=server.addr,
                                 vault_token=server.root_token, vault_timeout_seconds=2)
        container = build_for_test(request, settings)
        init_hierarchy(container.pki, root=ROOT, issuing=ISSUING, actor="test", keystore="vault")
        headers = {"Authorization": f"Bearer {new_token(container, Role.ca_operator)}"}
        with TestClient(create_app(container, scheduler=False), raise_server_exceptions=False) as client:
            ok = client.post("/api/v1/certificates", json={**SPECIALIST, "keystore": "vault"}, headers=headers)
            assert ok.status_code == 201, ok.text
            assert ok.json()["key_ref"].startswith("vault:")
            assert client.get("/readyz").json()["checks"]["keystore:vault"] == "ok"

            server.client().sys.seal()
            before = _count(container)
            csr, _ = factories.csr_pem()
            for body in ({**SPECIALIST, "keystore": "vault"}, {**SPECIALIST, "csr": csr.decode()}):
                r = client.post("/api/v1/certificates", json=body, headers=headers)
                assert r.status_code == 503, r.text
                assert "sealed" in r.json()["error"]["message"] and "Vault" in r.json()["error"]["message"]
                assert r.headers["Retry-After"]
            assert _count(container) == before
            ready = client.get("/readyz")
            assert ready.status_code == 503 and "unavailable" in ready.json()["checks"]["keystore:vault"]

            server.stop()
            r = client.post("/api/v1/certificates", json={**SPECIALIST, "csr": csr.decode()}, headers=headers)
            assert r.status_code == 503 and "Vault" in r.json()["error"]["message"]
            assert _count(container) == before
            assert client.get("/healthz").status_code == 200  # alive, just not ready
        with transaction(container.sessions) as session:
            assert audit.verify(session).ok
        container.engine.dispose()
    finally:
        server.stop()


def test_softhsm_token_removed(request, tmp_path, tmp_path_factory, monkeypatch):
    from tests.hsm.pkcs11_fixtures import USER_PIN, softhsm

    hsm = softhsm(tmp_path_factory)
    label = hsm.new_token(monkeypatch)
    settings = make_settings(tmp_path / "home", f"sqlite:///{tmp_path / 'kyso.db'}", pkcs11_module=hsm.module,
                             pkcs11_token_label=label, pkcs11_pin=USER_PIN)
    container = build_for_test(request, settings)
    init_hierarchy(container.pki, root=ROOT, issuing=ISSUING, actor="test", keystore="pkcs11")
    headers = {"Authorization": f"Bearer {new_token(container, Role.ca_operator)}"}
    with TestClient(create_app(container, scheduler=False), raise_server_exceptions=False) as client:
        ok = client.post("/api/v1/certificates", json={**SPECIALIST, "keystore": "pkcs11"}, headers=headers)
        assert ok.status_code == 201 and ok.json()["key_ref"].startswith("pkcs11:")
        assert client.get("/readyz").json()["checks"]["keystore:pkcs11"] == "ok"
        before = _count(container)
        hsm.delete_token(label)
        r = client.post("/api/v1/certificates", json={**SPECIALIST, "keystore": "pkcs11"}, headers=headers)
        assert r.status_code == 503, r.text
        assert f"PKCS#11 token '{label}'" in r.json()["error"]["message"]
        assert USER_PIN not in r.text
        assert _count(container) == before
        assert client.get("/readyz").status_code == 503
    with transaction(container.sessions) as session:
        assert audit.verify(session).ok
    container.engine.dispose()
