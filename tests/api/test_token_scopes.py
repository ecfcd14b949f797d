"""Client tokens are scoped (communes, operations, document types), expire and rotate; each test
tries to get around one rule. Every refusal is in the audit log."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from api import tokens
from api.container import Container, build
from core import audit, clock
from core.db import make_engine, make_session_factory, transaction, upgrade
from core.errors import Conflict, InvalidInput, Unauthenticated
from tests.helpers.api import OTHER_COMMUNE, OTHER_PROVINCE_COMMUNE, bearer, commune_meta, new_token, scoped, sign
from tests.helpers.db import build_for_test, make_settings
from tests.helpers.signing import COMMUNE, SpecialistPhone


def denials(container: Container, name: str) -> list[dict]:
    with transaction(container.sessions) as session:
        rows = session.execute(select(audit.AuditEntry).where(audit.AuditEntry.action == "api:authz:deny",
                                                              audit.AuditEntry.subject == name)
                               .order_by(audit.AuditEntry.seq)).scalars().all()
        return [json.loads(r.details) | {"actor": r.actor} for r in rows]


@pytest.fixture
def other_phone(pki: Container, other_specialist: str) -> SpecialistPhone:
    return SpecialistPhone(pki, other_specialist)


@pytest.fixture
def auditor(pki: Container) -> dict[str, str]:
    return bearer(new_token(pki, tokens.Role.auditor))


@pytest.fixture
def two_documents(client: TestClient, pki: Container, specialist: str, other_specialist: str,
                  sample_pdf: bytes, operator_headers: dict[str, str], phone: SpecialistPhone,
                  other_phone: SpecialistPhone) -> dict[str, str]:
    """One document of commune A (00004) and one of commune B (00008), signed by an unscoped operator."""
    ids = {}
    for commune, credential, device in ((COMMUNE, specialist, phone), (OTHER_COMMUNE, other_specialist, other_phone)):
        r = sign(client, operator_headers, sample_pdf, commune_meta(credential, commune), device)
        assert r.status_code == 200, r.text
        ids[commune] = r.headers["x-document-id"]
    return ids


# -- signing ---------------------------------------------------------------------------------------
def test_commune_scope_refuses_another_commune_and_registers_nothing(
        client: TestClient, pki: Container, specialist: str, other_specialist: str, sample_pdf: bytes,
        auditor: dict[str, str], phone: SpecialistPhone) -> None:
    headers = scoped(pki, "hotich-a", communes=[COMMUNE])
    r = sign(client, headers, sample_pdf, commune_meta(other_specialist, OTHER_COMMUNE))
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "permission_denied"
    assert "commune scope (00004)" in error["message"] and OTHER_COMMUNE in error["message"]
    assert error["details"] == {"scope": "communes", "wanted": OTHER_COMMUNE}
    assert client.get("/api/v1/documents", headers=auditor).json()["total"] == 0
    # its own commune is fine
    assert sign(client, headers, sample_pdf, commune_meta(specialist), phone).status_code == 200
    [denial] = denials(pki, "hotich-a")
    assert denial["actor"] == "token:hotich-a" and denial["route"] == "POST /api/v1/sign"
    assert "00008" in denial["reason"] and denial["scope"] == "communes"


def test_document_type_scope(client: TestClient, pki: Container, specialist: str, sample_pdf: bytes,
                             auditor: dict[str, str]) -> None:
    headers = scoped(pki, "dossier-only", communes=[COMMUNE], document_types=["dossier-result"])
    r = sign(client, headers, sample_pdf, commune_meta(specialist, document_type="civil-status-extract-birth"))
    assert r.status_code == 403
    assert "document types (dossier-result)" in r.json()["error"]["message"]
    assert r.json()["error"]["details"]["scope"] == "document_types"
    assert client.get("/api/v1/documents", headers=auditor).json()["total"] == 0


def test_read_only_client_can_neither_sign_nor_withdraw(client: TestClient, pki: Container, specialist: str,
                                                        sample_pdf: bytes, two_documents: dict[str, str]) -> None:
    headers = scoped(pki, "reader", communes=[COMMUNE], operations=["read"])
    r = sign(client, headers, sample_pdf, commune_meta(specialist))
    assert r.status_code == 403 and "operations (read)" in r.json()["error"]["message"]
    own = two_documents[COMMUNE]
    for verb, body in (("withdraw", {"reason": "sai sót"}), ("supersede", {"by": own, "reason": "x"})):
        r = client.post(f"/api/v1/documents/{own}/{verb}", json=body, headers=headers)
        assert r.status_code == 403 and repr(verb) in r.json()["error"]["message"], r.text
    batch = client.post("/api/v1/sign/batch", files=[("files", ("a.pdf", sample_pdf, "application/pdf"))],
                        data={"metadata": json.dumps({"defaults": commune_meta(specialist)})}, headers=headers)
    assert batch.status_code == 403
    # what it may do, it does
    assert client.get(f"/api/v1/documents/{own}", headers=headers).json()["status"] == "valid"
    assert [d["route"] for d in denials(pki, "reader")] == [
        "POST /api/v1/sign", f"POST /api/v1/documents/{own}/withdraw", f"POST /api/v1/documents/{own}/supersede",
        "POST /api/v1/sign/batch"]


def test_batch_item_out_of_scope_fails_alone(client: TestClient, pki: Container, specialist: str,
                                             other_specialist: str, sample_pdf: bytes, phone: SpecialistPhone) -> None:
    headers = scoped(pki, "batcher", communes=[COMMUNE])
    files = [("files", (f"{i}.pdf", sample_pdf, "application/pdf")) for i in range(2)]
    body = {"defaults": commune_meta(specialist, sad=phone.authorize(client, headers, sample_pdf)),
            "items": [{}, {"commune_code": OTHER_COMMUNE, "credential_id": other_specialist}]}
    r = client.post("/api/v1/sign/batch", files=files, data={"metadata": json.dumps(body)}, headers=headers)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["signed"], out["failed"]) == (1, 1)
    assert out["items"][1]["error"]["status"] == 403 and out["items"][1]["error"]["code"] == "permission_denied"
    assert client.get("/api/v1/documents", headers=headers).json()["total"] == 1
    [denial] = denials(pki, "batcher")
    assert denial["item"] == 1 and denial["route"] == "POST /api/v1/sign/batch"


def test_province_scope_covers_its_communes_only(client: TestClient, pki: Container, specialist: str,
                                                 other_specialist: str, sample_pdf: bytes, phone: SpecialistPhone,
                                                 other_phone: SpecialistPhone) -> None:
    headers = scoped(pki, "ha-noi", communes=["01"])
    assert sign(client, headers, sample_pdf, commune_meta(specialist), phone).status_code == 200
    assert sign(client, headers, sample_pdf, commune_meta(other_specialist, OTHER_COMMUNE), other_phone).status_code == 200
    r = sign(client, headers, sample_pdf, commune_meta(specialist, OTHER_PROVINCE_COMMUNE))
    assert r.status_code == 403 and "commune scope (01)" in r.json()["error"]["message"]
    assert client.get("/api/v1/documents", headers=headers).json()["total"] == 2


# -- the registry ----------------------------------------------------------------------------------
def test_scoped_client_cannot_see_or_touch_another_communes_documents(
        client: TestClient, pki: Container, two_documents: dict[str, str], auditor: dict[str, str]) -> None:
    headers = scoped(pki, "hotich-a", communes=[COMMUNE])
    own, other = two_documents[COMMUNE], two_documents[OTHER_COMMUNE]
    listing = client.get("/api/v1/documents", headers=headers).json()
    assert listing["total"] == 1 and [d["document_id"] for d in listing["items"]] == [own]
    assert client.get(f"/api/v1/documents?commune_code={OTHER_COMMUNE}", headers=headers).json()["total"] == 0

    unknown = "ZZZZZZZZZZZZ"
    for suffix in ("", "/file", "/file?version=7"):
        hidden = client.get(f"/api/v1/documents/{other}{suffix}", headers=headers)
        missing = client.get(f"/api/v1/documents/{unknown}{suffix}", headers=headers)
        assert hidden.status_code == missing.status_code == 404, suffix
        assert hidden.json()["error"]["message"].replace(other, "ID") == \
            missing.json()["error"]["message"].replace(unknown, "ID")
        assert hidden.json()["error"]["code"] == missing.json()["error"]["code"] == "unknown_document"
    r = client.post(f"/api/v1/documents/{other}/withdraw", json={"reason": "thử"}, headers=headers)
    assert r.status_code == 404
    # superseding one's own document by another commune's would confirm that id: refused the same way
    r = client.post(f"/api/v1/documents/{own}/supersede", json={"by": other, "reason": "thử"}, headers=headers)
    assert r.status_code == 404 and other in r.json()["error"]["message"]
    assert {d["status"] for d in client.get("/api/v1/documents", headers=auditor).json()["items"]} == {"valid"}
    # the auditor (unscoped) sees both; its own document the client may withdraw
    assert client.get("/api/v1/documents", headers=auditor).json()["total"] == 2
    r = client.post(f"/api/v1/documents/{own}/withdraw", json={"reason": "sai sót"}, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"

    refused = denials(pki, "hotich-a")
    assert len(refused) == 5 and all(d["answered"] == "unknown_document" for d in refused)
    assert all(OTHER_COMMUNE in d["reason"] for d in refused)
    assert refused[0]["route"] == f"GET /api/v1/documents/{other}" and refused[0]["document"] == other


def test_document_type_scope_hides_other_types(client: TestClient, pki: Container,
                                               two_documents: dict[str, str]) -> None:
    headers = scoped(pki, "births-only", document_types=["civil-status-extract-birth"])
    assert client.get("/api/v1/documents", headers=headers).json()["total"] == 0
    assert client.get(f"/api/v1/documents/{two_documents[COMMUNE]}", headers=headers).status_code == 404


def test_allowed_reads_are_not_audited(client: TestClient, pki: Container, two_documents: dict[str, str]) -> None:
    headers = scoped(pki, "quiet", communes=[COMMUNE])
    with transaction(pki.sessions) as session:
        before = audit.verify(session).entries
    for _ in range(3):
        assert client.get("/api/v1/documents", headers=headers).status_code == 200
        assert client.get(f"/api/v1/documents/{two_documents[COMMUNE]}", headers=headers).status_code == 200
    with transaction(pki.sessions) as session:
        assert audit.verify(session).entries == before


def test_role_refusals_are_audited_too(client: TestClient, pki: Container) -> None:
    headers = bearer(new_token(pki, tokens.Role.client, "nosy"))
    assert client.get("/api/v1/audit/verify", headers=headers).status_code == 403
    [denial] = denials(pki, "nosy")
    assert denial["route"] == "GET /api/v1/audit/verify" and "needs one of" in denial["reason"]


# -- expiry, rotation, old tokens ----------------------------------------------------------------
@pytest.fixture
def moment() -> Iterator[list[dt.datetime]]:
    """clock.now() returns moment[0]; move time by assigning it."""
    moment = [dt.datetime.now(dt.UTC).replace(microsecond=0)]
    clock.set_clock(lambda: moment[0])
    try:
        yield moment
    finally:
        clock.set_clock(None)


def test_expired_token_is_refused_like_an_unknown_one(client: TestClient, pki: Container,
                                                      moment: list[dt.datetime]) -> None:
    headers = scoped(pki, "short-lived", communes=[COMMUNE], expires_at=moment[0] + dt.timedelta(days=1))
    assert client.get("/api/v1/documents", headers=headers).status_code == 200
    moment[0] += dt.timedelta(days=1, seconds=1)
    expired = client.get("/api/v1/documents", headers=headers)
    unknown = client.get("/api/v1/documents", headers=bearer("kyso_" + "A" * 43))
    assert expired.status_code == unknown.status_code == 401
    assert expired.json() == unknown.json()
    with transaction(pki.sessions) as session:
        [view] = [v for v in tokens.views(session) if v.name == "short-lived"]
        assert view.expired and view.state == "expired"
        with pytest.raises(InvalidInput):
            tokens.create(session, "born-dead", tokens.Role.client, "test", expires_at=moment[0])


def test_rotation_keeps_the_old_secret_for_the_grace_period_only(client: TestClient, pki: Container,
                                                                 moment: list[dt.datetime]) -> None:
    old = scoped(pki, "rotating", communes=[COMMUNE], operations=["read"])
    with transaction(pki.sessions) as session:
        new = bearer(tokens.rotate(session, "rotating", "test", grace=dt.timedelta(hours=24)))
    for headers in (old, new):
        assert client.get("/api/v1/documents", headers=headers).status_code == 200
    with transaction(pki.sessions) as session:
        principal = tokens.authenticate(session, new["Authorization"].split()[1])
        assert principal.scope.units == frozenset({COMMUNE})  # same name, same scope
        assert principal.scope.operations == frozenset({tokens.Operation.read})
        [view] = [v for v in tokens.views(session) if v.name == "rotating"]
        assert view.state == "rotating" and view.previous_secret_valid_until == moment[0] + dt.timedelta(hours=24)
    moment[0] += dt.timedelta(hours=24)
    assert client.get("/api/v1/documents", headers=old).status_code == 401
    assert client.get("/api/v1/documents", headers=new).status_code == 200
    # no grace: the secret being replaced stops at once; and a revoked token cannot be rotated back to life
    with transaction(pki.sessions) as session:
        newest = bearer(tokens.rotate(session, "rotating", "test", grace=dt.timedelta(0)))
    assert client.get("/api/v1/documents", headers=new).status_code == 401
    assert client.get("/api/v1/documents", headers=newest).status_code == 200
    with transaction(pki.sessions) as session:
        tokens.revoke(session, "rotating", "test")
        with pytest.raises(Conflict):
            tokens.rotate(session, "rotating", "test")
    assert client.get("/api/v1/documents", headers=newest).status_code == 401


def test_revocation_also_ends_the_grace_of_a_rotated_secret(client: TestClient, pki: Container) -> None:
    old = bearer(new_token(pki, tokens.Role.client, "leaked"))
    with transaction(pki.sessions) as session:
        tokens.rotate(session, "leaked", "test")
        tokens.revoke(session, "leaked", "test")
    assert client.get("/api/v1/documents", headers=old).status_code == 401


def test_tokens_from_before_scopes_keep_their_full_scope(db_url: str, tmp_path: Path) -> None:
    """A row written by the schema of revision 0003 works after the 0004 migration, with full scope."""
    upgrade(db_url, "0003")
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_tokens (name, role, token_hash, created_at, created_by) "
                          "VALUES ('legacy', 'client', :h, :at, 'test')"),
                     {"h": tokens._hash("kyso_legacy-secret"), "at": "2026-01-01 00:00:00.000000"})
    engine.dispose()
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            principal = tokens.authenticate(session, "kyso_legacy-secret")
            [view] = tokens.views(session)
    finally:
        engine.dispose()
    assert principal.scope == tokens.FULL_SCOPE and principal.scope.unrestricted
    assert view.scope == {"communes": ["*"], "operations": ["read", "sign", "supersede", "withdraw"],
                          "document_types": ["*"]}
    assert view.expires_at is None and view.state == "active"


@pytest.mark.parametrize("kwargs,problem", [
    ({"communes": ["99999"]}, "not in kyso's unit catalogue"),
    ({"communes": ["99"]}, "not in kyso's unit catalogue"),
    ({"communes": ["0004"]}, "neither a 5-digit commune code"),
    ({"communes": ["*", COMMUNE]}, "give it alone"),
    ({"operations": ["sign", "delete"]}, "unknown operation"),
    ({"document_types": ["love-letter"]}, "unknown document type"),
])
def test_unknown_scope_values_are_refused(pki: Container, kwargs: dict, problem: str) -> None:
    with transaction(pki.sessions) as session, pytest.raises(InvalidInput, match=problem):
        tokens.build_scope(session, units=kwargs.get("communes"), operations=kwargs.get("operations"),
                           document_types=kwargs.get("document_types"))


def test_operator_and_auditor_tokens_are_never_scoped(pki: Container) -> None:
    with transaction(pki.sessions) as session:
        scope = tokens.build_scope(session, units=[COMMUNE])
        for role in (tokens.Role.ca_operator, tokens.Role.auditor):
            with pytest.raises(InvalidInput, match="client tokens only"):
                tokens.create(session, f"scoped-{role.value}", role, "test", scope=scope)


def test_unauthenticated_is_the_only_failure_of_a_bad_secret(pki: Container) -> None:
    with transaction(pki.sessions) as session:
        for value in ("", "kyso_", "kyso_" + "x" * 300, "other_prefix"):
            with pytest.raises(Unauthenticated):
                tokens.authenticate(session, value)


# -- listing: REST and CLI -------------------------------------------------------------------------
def test_rest_token_list_for_operators_and_auditors(client: TestClient, pki: Container, auditor: dict[str, str],
                                                    operator_headers: dict[str, str]) -> None:
    headers = scoped(pki, "listed", communes=["01", COMMUNE], operations=["sign"], document_types=["dossier-result"])
    assert client.get("/api/v1/tokens", headers=headers).status_code == 403
    for reader in (auditor, operator_headers):
        r = client.get("/api/v1/tokens", headers=reader)
        assert r.status_code == 200
        [listed] = [t for t in r.json() if t["name"] == "listed"]
        assert listed["scope"] == {"communes": [COMMUNE, "01"], "operations": ["sign"],
                                   "document_types": ["dossier-result"]}
        assert listed["role"] == "client" and listed["state"] == "active" and listed["last_used_at"] is not None
        assert "token_hash" not in listed and not any(str(v).startswith("kyso_") for v in listed.values())


@pytest.fixture
def kyso(request: pytest.FixtureRequest, tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path / "home", db_url)
    build_for_test(request, settings).engine.dispose()  # the CLI finds the database migrated already
    env = {**os.environ, "KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": db_url,
           "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value(), "COLUMNS": "200"}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True, check=False,
                              timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"kyso {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    run.settings = settings  # type: ignore[attr-defined]
    return run


def _authenticates(settings, token: str) -> bool:  # type: ignore[no-untyped-def]
    container = build(settings)
    try:
        with transaction(container.sessions) as session:
            tokens.authenticate(session, token)
        return True
    except Unauthenticated:
        return False
    finally:
        container.engine.dispose()


def test_cli_create_list_rotate_revoke(kyso) -> None:  # type: ignore[no-untyped-def]
    helped = kyso("token", "create", "--help").stdout
    for word in ("--commune", "--operation", "--doc-type", "--expires-in-days", "province", "00004"):
        assert word in helped
    assert "--grace-hours" in kyso("token", "rotate", "--help").stdout

    created = kyso("token", "create", "--name", "hotich-ba-dinh", "--role", "client", "--commune", "00004",
                   "--commune", "01", "--operation", "sign", "--doc-type", "dossier-result",
                   "--expires-in-days", "365")
    first = created.stdout.strip()
    assert first.startswith("kyso_") and created.stdout.count("\n") == 1
    wide = kyso("token", "create", "--name", "wide", "--role", "client")
    assert "every commune" in wide.stderr  # the operator is told, the token stays alone on stdout
    bad = kyso("token", "create", "--name", "typo", "--role", "client", "--commune", "99999", check=False)
    assert bad.returncode == 2 and "99999" in bad.stderr
    bad = kyso("token", "create", "--name", "op", "--role", "ca-operator", "--commune", "00004", check=False)
    assert bad.returncode == 2 and "client tokens only" in bad.stderr

    [listed] = [t for t in json.loads(kyso("token", "list", "--json").stdout) if t["name"] == "hotich-ba-dinh"]
    assert listed["scope"] == {"communes": ["00004", "01"], "operations": ["sign"], "document_types": ["dossier-result"]}
    assert listed["expires_at"][:10] == (clock.now() + dt.timedelta(days=365)).date().isoformat()
    assert listed["state"] == "active" and listed["last_used_at"] is None and listed["revoked"] is False

    rotated = kyso("token", "rotate", "hotich-ba-dinh", "--grace-hours", "2").stdout.strip()
    assert rotated.startswith("kyso_") and rotated != first
    assert _authenticates(kyso.settings, first) and _authenticates(kyso.settings, rotated)
    [listed] = [t for t in json.loads(kyso("token", "list", "--json").stdout) if t["name"] == "hotich-ba-dinh"]
    assert listed["state"] == "rotating" and listed["rotated_at"] and listed["previous_secret_valid_until"]
    assert listed["last_used_at"] is not None
    assert listed["scope"]["communes"] == ["00004", "01"]

    immediate = kyso("token", "rotate", "hotich-ba-dinh", "--grace-hours", "0").stdout.strip()
    assert not _authenticates(kyso.settings, rotated) and _authenticates(kyso.settings, immediate)
    kyso("token", "revoke", "hotich-ba-dinh")
    assert not _authenticates(kyso.settings, immediate)
    [listed] = [t for t in json.loads(kyso("token", "list", "--json").stdout) if t["name"] == "hotich-ba-dinh"]
    assert listed["revoked"] is True and listed["state"] == "revoked"
    assert "hotich-ba-dinh" in kyso("token", "list").stdout
