"""Four eyes on the CLI are two people: each operator proves who they are with their own ca-operator token,
recorded as ``token:<name>`` exactly as the REST API records it, whatever OS login they run under."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from api import tokens
from api.container import Container
from core import audit
from core.db import transaction
from pki.models import Credential
from tests.helpers.api import bearer, new_token
from tests.helpers.signing import issue_credential


def revoked_credential(pki: Container) -> str:
    from pki import revocation
    from pki.reasons import Reason
    from pki.store import get_credential

    credential = issue_credential(pki)
    with transaction(pki.sessions) as session:
        serial = get_credential(session, credential).certificate.serial
    revocation.revoke(pki.pki, serial, Reason.keyCompromise, "test")
    return credential


def cli(pki: Container, *args: str, user: str = "ops", token: str | None = None,
        extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    settings = pki.settings
    env = {k: v for k, v in os.environ.items() if k != "KYSO_OPERATOR_TOKEN"}
    env.update({"KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": settings.resolved_database_url,
                "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value(), "COLUMNS": "200",
                "USER": user, "LOGNAME": user, **(extra or {})})
    if token is not None:
        env["KYSO_OPERATOR_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def actions(pki: Container, subject: str) -> list[tuple[str, str]]:
    with transaction(pki.sessions) as session:
        rows = session.execute(select(audit.AuditEntry.action, audit.AuditEntry.actor)
                               .where(audit.AuditEntry.subject == subject).order_by(audit.AuditEntry.id)).all()
    return [(a, b) for a, b in rows]


def test_one_person_under_two_logins_is_still_one_person(pki: Container) -> None:
    credential = revoked_credential(pki)
    alice = new_token(pki, tokens.Role.ca_operator, "alice")
    bob = new_token(pki, tokens.Role.ca_operator, "bob")
    asked = cli(pki, "key", "destroy", credential, "--reason", "token lost", "--json", user="alice", token=alice)
    assert asked.returncode == 0, asked.stderr
    approval = json.loads(asked.stdout)
    assert approval["requested_by"] == "token:alice"
    for login in ("alice", "bob"):  # the login changes, the person does not
        own = cli(pki, "approval", "approve", approval["id"], user=login, token=alice)
        assert own.returncode == 2 and "four_eyes" in own.stderr and "Traceback" not in own.stderr, own.stderr
    with transaction(pki.sessions) as session:
        assert session.get(Credential, credential).status != "destroyed"
    done = cli(pki, "approval", "approve", approval["id"], "--json", user="alice", token=bob)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "destroyed"
    assert actions(pki, approval["id"]) == [
        ("pki:approval:request", "token:alice"),
        ("pki:approval:self-approval-refused", "token:alice"),
        ("pki:approval:self-approval-refused", "token:alice"),
        ("pki:approval:approve", "token:bob")]
    assert actions(pki, credential)[-1] == ("hsm:key:destroy", "token:bob")


def test_four_eyes_commands_refuse_without_a_ca_operator_token(pki: Container, tmp_path: Path) -> None:
    credential = revoked_credential(pki)
    bare = cli(pki, "key", "destroy", credential, "--reason", "lost")
    assert bare.returncode == 2 and "Traceback" not in bare.stderr
    assert "operator_token_required" in bare.stderr and "kyso token create" in bare.stderr
    assert "--role ca-operator" in bare.stderr and "KYSO_OPERATOR_TOKEN" in bare.stderr, bare.stderr
    for args in (("approval", "approve", "apr_x"), ("approval", "reject", "apr_x", "--reason", "no"),
                 ("ca", "revoke", "kyso-issuing", "--reason", "superseded")):
        refused = cli(pki, *args)
        assert refused.returncode == 2 and "operator_token_required" in refused.stderr, (args, refused.stderr)
    client_token = new_token(pki, tokens.Role.client, "hotich")
    wrong_role = cli(pki, "key", "destroy", credential, "--reason", "lost", token=client_token)
    assert wrong_role.returncode == 2 and "ca-operator" in wrong_role.stderr, wrong_role.stderr
    unknown = cli(pki, "key", "destroy", credential, "--reason", "lost", token="kyso_" + "x" * 43)
    assert unknown.returncode == 2 and "unauthenticated" in unknown.stderr, unknown.stderr
    revoked = new_token(pki, tokens.Role.ca_operator, "mallory")
    with transaction(pki.sessions) as session:
        tokens.revoke(session, "mallory", "test")
    gone = cli(pki, "key", "destroy", credential, "--reason", "lost", token=revoked)
    assert gone.returncode == 2 and "unauthenticated" in gone.stderr, gone.stderr
    with transaction(pki.sessions) as session:
        requests = session.execute(select(audit.AuditEntry).where(
            audit.AuditEntry.action == "pki:approval:request")).scalars().all()
    assert requests == []  # nothing was filed
    helped = cli(pki, "approval", "approve", "--help").stdout
    assert "--token-file" in helped and "KYSO_OPERATOR_TOKEN" in helped
    assert "cli:USER" in cli(pki, "--help").stdout  # what the other commands record
    # single-operator commands still run without a token
    listed = cli(pki, "approval", "list", "--json", user="carol")
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr
    created = cli(pki, "token", "create", "--name", "carol-audit", "--role", "auditor", user="carol")
    assert created.returncode == 0, created.stderr
    assert actions(pki, "carol-audit") == [("api:token:create", "cli:carol")]  # and record the login


def test_the_token_file_and_one_identity_on_cli_and_api(pki: Container, client: TestClient,
                                                        tmp_path: Path) -> None:
    credential = revoked_credential(pki)
    alice = new_token(pki, tokens.Role.ca_operator, "alice")
    token_file = tmp_path / "alice.token"
    token_file.write_text(alice + "\n")
    token_file.chmod(0o600)
    asked = cli(pki, "key", "destroy", credential, "--reason", "lost", "--token-file", str(token_file), "--json")
    assert asked.returncode == 0, asked.stderr
    approval_id = json.loads(asked.stdout)["id"]
    own = client.post(f"/api/v1/approvals/{approval_id}/approve", headers=bearer(alice))
    assert own.status_code == 403 and own.json()["error"]["code"] == "four_eyes", own.text
    assert "chmod 600" not in asked.stderr
    token_file.chmod(0o644)
    told = cli(pki, "approval", "approve", approval_id, "--token-file", str(token_file))
    assert told.returncode == 2 and f"chmod 600 {token_file}" in told.stderr, told.stderr  # and four eyes refuse
    missing = cli(pki, "approval", "approve", approval_id, "--token-file", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "cannot read the operator token file" in missing.stderr, missing.stderr
    bob = new_token(pki, tokens.Role.ca_operator, "bob")
    done = client.post(f"/api/v1/approvals/{approval_id}/approve", headers=bearer(bob))
    assert done.status_code == 200 and done.json()["status"] == "destroyed", done.text
    assert actions(pki, approval_id)[-1] == ("pki:approval:approve", "token:bob")


def test_api_request_and_cli_approval_by_the_same_token_is_refused(pki: Container, client: TestClient) -> None:
    credential = revoked_credential(pki)
    alice = new_token(pki, tokens.Role.ca_operator, "alice")
    asked = client.post(f"/api/v1/credentials/{credential}/destroy-key", json={"reason": "lost"},
                        headers=bearer(alice))
    assert asked.status_code == 202, asked.text
    own = cli(pki, "approval", "approve", asked.json()["id"], user="root", token=alice)
    assert own.returncode == 2 and "four_eyes" in own.stderr, own.stderr
    rejected = cli(pki, "approval", "reject", asked.json()["id"], "--reason", "wrong key",
                   token=new_token(pki, tokens.Role.ca_operator, "bob"))
    assert rejected.returncode == 0, rejected.stderr
    assert actions(pki, asked.json()["id"])[-1] == ("pki:approval:reject", "token:bob")
