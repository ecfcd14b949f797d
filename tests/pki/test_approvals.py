"""Destroying a key needs two operators: one asks, a different one approves; nothing runs before that."""
from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import tokens
from api.container import Container
from core import audit, clock
from core.db import transaction
from core.errors import Conflict, InvalidInput, PermissionDenied
from hsm.errors import KeyNotFound
from pki import approvals, revocation
from pki.models import Credential
from pki.reasons import Reason
from pki.store import get_credential
from tests.helpers.api import new_token
from tests.helpers.signing import issue_credential


def revoked_credential(pki: Container) -> tuple[str, str]:
    credential = issue_credential(pki)
    with transaction(pki.sessions) as session:
        row = get_credential(session, credential)
        serial, key_ref = row.certificate.serial, row.key_ref
    revocation.revoke(pki.pki, serial, Reason.keyCompromise, "test")
    return credential, key_ref


def test_second_operator_destroys_the_key(pki: Container) -> None:
    credential, key_ref = revoked_credential(pki)
    store = pki.pki.keystores.for_ref(key_ref)
    store.public_key(key_ref)  # present
    asked = approvals.request(pki.pki, "destroy-key", credential, "token lost", "cli:alice")
    store.public_key(key_ref)  # still present: nothing runs on a request
    with pytest.raises(PermissionDenied) as own:
        approvals.approve(pki.pki, asked.id, "cli:alice")
    assert own.value.code == "four_eyes"
    result = approvals.approve(pki.pki, asked.id, "cli:bob")
    assert result["status"] == "destroyed"
    with pytest.raises(KeyNotFound):
        store.public_key(key_ref)
    with transaction(pki.sessions) as session:
        assert session.get(Credential, credential).status == "destroyed"
        actions = session.execute(select(audit.AuditEntry.action).where(
            audit.AuditEntry.action.like("pki:approval:%") | (audit.AuditEntry.action == "hsm:key:destroy"))).scalars().all()
    assert {"pki:approval:request", "pki:approval:self-approval-refused", "pki:approval:approve",
            "hsm:key:destroy"} <= set(actions)
    with pytest.raises(Conflict):
        approvals.approve(pki.pki, asked.id, "cli:carol")  # already decided


def test_a_key_in_use_cannot_even_be_requested(pki: Container) -> None:
    credential = issue_credential(pki)
    with pytest.raises(InvalidInput) as err:
        approvals.request(pki.pki, "destroy-key", credential, "oops", "cli:alice")
    assert err.value.code == "key_in_use"


def test_expired_and_rejected_requests_do_nothing(pki: Container) -> None:
    credential, key_ref = revoked_credential(pki)
    asked = approvals.request(pki.pki, "destroy-key", credential, "lost", "cli:alice")
    later = clock.now() + dt.timedelta(hours=approvals.APPROVAL_HOURS + 1)
    clock.set_clock(lambda: later)
    try:
        with pytest.raises(Conflict) as expired:
            approvals.approve(pki.pki, asked.id, "cli:bob")
        assert "expired" in expired.value.message
    finally:
        clock.set_clock(None)
    second = approvals.request(pki.pki, "destroy-key", credential, "lost", "cli:alice")
    approvals.reject(pki.pki, second.id, "cli:bob", "wrong credential")
    with pytest.raises(Conflict):
        approvals.approve(pki.pki, second.id, "cli:carol")
    pki.pki.keystores.for_ref(key_ref).public_key(key_ref)  # untouched


def test_over_http_roles_and_four_eyes(pki: Container, client: TestClient) -> None:
    credential, _ = revoked_credential(pki)
    alice = {"Authorization": f"Bearer {new_token(pki, tokens.Role.ca_operator, 'alice')}"}
    bob = {"Authorization": f"Bearer {new_token(pki, tokens.Role.ca_operator, 'bob')}"}
    auditor = {"Authorization": f"Bearer {new_token(pki, tokens.Role.auditor, 'audit')}"}
    assert client.post(f"/api/v1/credentials/{credential}/destroy-key", json={"reason": "x"},
                       headers=auditor).status_code == 403
    asked = client.post(f"/api/v1/credentials/{credential}/destroy-key", json={"reason": "lost"}, headers=alice)
    assert asked.status_code == 202, asked.text
    approval_id = asked.json()["id"]
    assert [a["id"] for a in client.get("/api/v1/approvals", headers=auditor).json()] == [approval_id]
    assert client.post(f"/api/v1/approvals/{approval_id}/approve", headers=auditor).status_code == 403
    own = client.post(f"/api/v1/approvals/{approval_id}/approve", headers=alice)
    assert own.status_code == 403 and own.json()["error"]["code"] == "four_eyes"
    done = client.post(f"/api/v1/approvals/{approval_id}/approve", headers=bob)
    assert done.status_code == 200 and done.json()["status"] == "destroyed"
    assert client.get("/api/v1/approvals", headers=auditor).json() == []
