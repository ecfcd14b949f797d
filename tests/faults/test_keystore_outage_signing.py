"""Signing (not only issuance: see tests/hsm/test_keystore_outage_api.py) while the signer's keystore
is away: OpenBao sealed, the SoftHSM token removed. The API answers 503 naming the keystore, records
nothing, and signs again once the keystore is back, without restarting kyso."""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from api.app import create_app
from core.db import transaction
from pki import issuance
from pki.names import SubjectInfo
from signing.registry.models import SignedDocument
from tests.helpers.faults import COMMUNE, Deployment, assert_consistent, deploy, sample_pdfs, seal_metadata
from tests.hsm.vault_fixtures import BaoServer, start_bao


def _seal_in(dep: Deployment, keystore: str) -> str:
    """An organisation seal credential whose key lives in ``keystore``."""
    result = issuance.issue(dep.container.pki, issuance.IssueRequest(
        profile="seal", subject=SubjectInfo(common_name="Ủy ban nhân dân Phường Ba Đình"), commune_code=COMMUNE,
        keystore=keystore), actor="test")
    assert result.credential_id and result.key_ref and result.key_ref.startswith(keystore + ":")
    return result.credential_id


def _sign(client: TestClient, dep: Deployment, credential: str, pdf: bytes, key: str) -> Response:
    return client.post("/api/v1/sign", headers={**dep.client, "Idempotency-Key": key},
                       files={"file": ("in.pdf", pdf, "application/pdf")},
                       data={"metadata": json.dumps(seal_metadata(credential, key))})


def _documents(dep: Deployment) -> int:
    with transaction(dep.container.sessions) as session:
        return session.execute(select(func.count()).select_from(SignedDocument)).scalar_one()


def _sign_until_ok(client: TestClient, dep: Deployment, credential: str, pdf: bytes, key: str) -> Response:
    """The client's retry loop after a 503 (bounded)."""
    deadline = time.monotonic() + 20
    while True:
        r = _sign(client, dep, credential, pdf, key)
        if r.status_code != 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def _unseal_key(server: BaoServer) -> str:
    found = re.search(r"Unseal Key: (\S+)", server.log_path.read_text(errors="replace"))
    assert found, "the OpenBao dev server printed no unseal key"
    return found.group(1)


def test_signing_while_openbao_sealed(tmp_path: Path) -> None:
    server = start_bao(tmp_path / "bao")
    try:
        server.client().sys.enable_secrets_engine("transit", path="transit")
        dep = deploy(tmp_path / "home", f"sqlite:///{tmp_path / 'kyso.db'}", vault_addr=server.addr,
                     vault_token=server.root_token, vault_timeout_seconds=2)
        seal = _seal_in(dep, "vault")
        first, second, third = sample_pdfs(dep.container.settings, 3, "bao")
        with TestClient(create_app(dep.container, scheduler=False), raise_server_exceptions=False) as client:
            assert _sign(client, dep, seal, first, "HS-BAO-1").status_code == 200

            server.client().sys.seal()
            before = _documents(dep)
            r = _sign(client, dep, seal, second, "HS-BAO-2")
            assert r.status_code == 503, r.text
            error = r.json()["error"]
            assert error["code"] == "keystore_unavailable" and r.headers["Retry-After"]
            assert "Vault" in error["message"] and "sealed" in error["message"] and "unseal" in error["message"]
            assert server.root_token not in r.text
            assert _documents(dep) == before
            assert client.get("/readyz").json()["checks"]["keystore:vault"].startswith("unavailable")

            server.client().sys.submit_unseal_key(_unseal_key(server))
            r = _sign_until_ok(client, dep, seal, second, "HS-BAO-2")  # the same Idempotency-Key: nothing was kept
            assert r.status_code == 200, r.text
            assert r.headers["x-document-id"] and _documents(dep) == before + 1
            assert _sign(client, dep, seal, third, "HS-BAO-3").status_code == 200
            assert client.get("/readyz").json()["checks"]["keystore:vault"] == "ok"
        assert assert_consistent(dep.container)["signatures"] == 3
        dep.container.engine.dispose()
    finally:
        server.stop()


def _token_dir(tokens: Path, label: str) -> Path:
    """SoftHSM2 keeps each token in a directory named by a UUID; its token.object holds the label."""
    found = [d for d in tokens.iterdir() if (d / "token.object").is_file()
             and label.encode() in (d / "token.object").read_bytes()]
    assert len(found) == 1, found
    return found[0]


def test_signing_while_softhsm_token_removed(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.hsm.pkcs11_fixtures import USER_PIN, softhsm

    hsm = softhsm(tmp_path_factory)
    label = hsm.new_token(monkeypatch)
    dep = deploy(tmp_path / "home", f"sqlite:///{tmp_path / 'kyso.db'}", pkcs11_module=hsm.module,
                 pkcs11_token_label=label, pkcs11_pin=USER_PIN)
    seal = _seal_in(dep, "pkcs11")
    first, second, third = sample_pdfs(dep.container.settings, 3, "hsm")
    tokens = Path(hsm.conf.read_text().split("directories.tokendir = ", 1)[1].splitlines()[0])
    where, away = _token_dir(tokens, label), tmp_path / "token-away"
    try:
        with TestClient(create_app(dep.container, scheduler=False), raise_server_exceptions=False) as client:
            assert _sign(client, dep, seal, first, "HS-HSM-1").status_code == 200

            shutil.move(where, away)  # the token is pulled out
            before = _documents(dep)
            r = _sign(client, dep, seal, second, "HS-HSM-2")
            assert r.status_code == 503, r.text
            error = r.json()["error"]
            assert error["code"] == "keystore_unavailable" and r.headers["Retry-After"]
            assert f"PKCS#11 token '{label}'" in error["message"] and USER_PIN not in r.text
            assert _documents(dep) == before
            assert client.get("/readyz").status_code == 503

            shutil.move(away, where)  # and put back
            r = _sign_until_ok(client, dep, seal, second, "HS-HSM-2")
            assert r.status_code == 200, r.text
            assert _documents(dep) == before + 1
            assert _sign(client, dep, seal, third, "HS-HSM-3").status_code == 200
            assert client.get("/readyz").json()["checks"]["keystore:pkcs11"] == "ok"
    finally:
        if away.exists():
            shutil.move(away, where)
        hsm.delete_token(label)
    assert assert_consistent(dep.container)["signatures"] == 3
    dep.container.engine.dispose()
