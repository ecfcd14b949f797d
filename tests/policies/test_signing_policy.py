"""The signing policy: who may sign what, for which commune, in which order; reload; entitlement in reports."""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import tokens
from api.app import create_app
from api.container import Container
from core.audit import AuditEntry
from core.db import transaction
from policies import history, store
from policies.documents import DOCUMENTS_FILE, parse
from policies.engine import SignerFacts, Target, decide
from policies.errors import PolicyInvalid
from signing.create.service import AppearanceOptions, SignRequest
from signing.errors import SigningRefused
from signing.registry.models import DocumentFile
from tests.helpers.api import new_token
from tests.helpers.signing import COMMUNE, CONSENTED, issue_credential

POLICY = """
version: "test-1"
jurisdiction:
  independent_reception_provinces: ["79"]
document_types:
  construction-permit:
    title_vi: Giấy phép xây dựng
    title_en: Construction permit
    level: B-B
    qr: false
    signers:
      - {name: specialist, profile: specialist}
      - {name: chairman, profile: specialist, titles: ["Chủ tịch", "Phó Chủ tịch"]}
      - {name: seal, profile: seal}
    approval_chain: [specialist, chairman, seal]
  dossier-result:
    title_vi: Kết quả giải quyết hồ sơ
    title_en: Dossier result
    level: B-B
    qr: false
    signers:
      - {name: hotich, profile: specialist, units: ["Tư pháp - Hộ tịch"]}
"""


def policy():  # type: ignore[no-untyped-def]
    return parse(POLICY.encode(), "test")


HANOI_A = SignerFacts("specialist", "00004", "01", "Công chức Tư pháp - Hộ tịch")


def test_own_commune_allowed_other_refused() -> None:
    p = policy()
    ok = decide(p, HANOI_A, Target("construction-permit", "00004", "01", 0))
    assert ok.allowed and ok.rule == "jurisdiction.own-commune" and ok.signer_rule == "specialist"
    no = decide(p, HANOI_A, Target("construction-permit", "00008", "01", 0))
    assert not no.allowed and no.rule == "jurisdiction.own-commune" and "00004" in no.reason and "00008" in no.reason


def test_province_wide_reception_only_where_turned_on() -> None:
    p = policy()
    hcm = SignerFacts("specialist", "26734", "79", None)
    allowed = decide(p, hcm, Target("construction-permit", "26737", "79", 0))
    assert allowed.allowed and allowed.reception == "province-wide" and allowed.rule == "jurisdiction.province-wide:79"
    other_province = decide(p, hcm, Target("construction-permit", "00004", "01", 0))
    assert not other_province.allowed


def test_approval_chain_order_and_titles() -> None:
    p = policy()
    chairman = SignerFacts("specialist", "00004", "01", "Chủ tịch")
    seal = SignerFacts("seal", "00004", "01")
    assert decide(p, chairman, Target("construction-permit", "00004", "01", 1)).signer_rule == "chairman"
    early_seal = decide(p, seal, Target("construction-permit", "00004", "01", 1))
    assert not early_seal.allowed and early_seal.rule == "construction-permit.approval_chain"
    assert decide(p, seal, Target("construction-permit", "00004", "01", 2)).allowed
    assert not decide(p, HANOI_A, Target("construction-permit", "00004", "01", 1)).allowed, "step 2 needs the chairman"
    assert not decide(p, seal, Target("construction-permit", "00004", "01", 3)).allowed, "the chain is complete"


def test_signer_rules_by_profile_and_unit() -> None:
    p = policy()
    no_unit = decide(p, HANOI_A, Target("dossier-result", "00004", "01", 0))
    assert not no_unit.allowed and no_unit.rule == "dossier-result.signers"
    in_unit = dataclasses.replace(HANOI_A, unit="tư pháp - hộ tịch")  # NFC + case-insensitive
    assert decide(p, in_unit, Target("dossier-result", "00004", "01", 0)).allowed
    assert not decide(p, SignerFacts("seal", "00004", "01"), Target("dossier-result", "00004", "01", 0)).allowed


@pytest.mark.parametrize("text, line, words", [
    ("version: x\ndocument_types:\n  a-b:\n    title_vi: x\n    title_en: y\n    level: B-Z\n", 6, "level"),
    ("version: x\ndocument_types:\n  a-b:\n    title_vi: x\n    title_en: y\n    approval_chain: [nobody]\n", 4,
     "approval_chain"),
    ("version: x\njurisdiction:\n  independent_reception_provinces: ['1']\ndocument_types: {}\n", 3, "2 digits"),
    ("version: x\ndocument_types:\n  a-b: [\n", 4, "YAML"),
])
def test_bad_policy_names_line_and_reason(text: str, line: int, words: str) -> None:
    with pytest.raises(PolicyInvalid) as err:
        parse(text.encode(), "p.yaml")
    assert f"line {line}" in err.value.message and words in err.value.message


def test_reload_keeps_old_policy_on_a_bad_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(DOCUMENTS_FILE.read_bytes())
    loaded = []
    s = store.PolicyStore(path, on_load=loaded.append)
    first = s.current.version
    path.write_text(POLICY.replace("level: B-B", "level: nonsense", 1))
    with pytest.raises(PolicyInvalid):
        s.reload()
    assert s.current.version == first and "line" in (s.status().last_error or "")
    path.write_text(POLICY)
    os.utime(path, (time.time() + 5, time.time() + 5))
    monkeypatch.setattr(store, "CHECK_SECONDS", 0.0)
    assert s.current.version.startswith("test-1+"), "a changed file is picked up without a restart"
    assert [p.version for p in loaded] == [first, s.current.version] and s.status().last_error is None


@pytest.fixture
def strict(pki: Container, tmp_path: Path) -> Container:
    """A container whose signing service runs the test policy from a file (and records it)."""
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    settings = pki.settings.model_copy(update={"policy_file": path})
    ctx = dataclasses.replace(pki.pki, settings=settings)
    return dataclasses.replace(pki, settings=settings, pki=ctx)  # its signing and verification are made from ctx


def sign(c: Container, credential: str, commune: str = COMMUNE, pdf: bytes | None = None, **kw: object):  # type: ignore[no-untyped-def]
    from tests.helpers.signing import CORPUS

    return c.signing.sign(SignRequest(pdf=pdf or (CORPUS / "fourpages.pdf").read_bytes(),
                                      document_type="construction-permit", commune_code=commune,
                                      credential_id=credential, appearance=AppearanceOptions(visible=False), **kw),
                          actor="test", activation=CONSENTED)  # type: ignore[arg-type]


def test_service_enforces_and_records(strict: Container) -> None:
    specialist = issue_credential(strict, title="Công chức Địa chính - Xây dựng")
    chairman = issue_credential(strict, name="Trần Văn Chủ", title="Chủ tịch", id_number="001190000002")
    other = issue_credential(strict, commune="00008", name="Lê Thị Khác", id_number="001190000003")
    with pytest.raises(SigningRefused) as refused:
        sign(strict, other)  # a specialist of commune 00008 signing for 00004
    assert "jurisdiction.own-commune" in refused.value.message
    seal = issue_credential(strict, "seal", name="Ủy ban nhân dân Phường Ba Đình")
    with pytest.raises(SigningRefused) as early:
        sign(strict, seal)  # the chain starts with the specialist
    assert "approval_chain" in early.value.message
    first = sign(strict, specialist)
    second = sign(strict, chairman, pdf=first.pdf)
    with pytest.raises(SigningRefused) as third:
        sign(strict, specialist, pdf=second.pdf)  # step 3 is the seal's
    assert "approval_chain" in third.value.message
    with transaction(strict.sessions) as session:
        files = session.execute(select(DocumentFile).where(DocumentFile.document_id == first.document_id)
                                .order_by(DocumentFile.version)).scalars().all()
        assert [f.policy_rule for f in files] == ["jurisdiction.own-commune"] * 2
        assert {f.policy_version for f in files} == {strict.signing.policy.version}
        denials = session.execute(select(AuditEntry).where(AuditEntry.action == "policy:signing:deny")).scalars().all()
        assert len(denials) == 3
    report = strict.verifier.verify(second.pdf)
    assert [s.entitlement.allowed for s in report.signatures if s.entitlement] == [True, True]
    assert report.genuine


def test_verification_reports_a_signer_the_policy_did_not_entitle(strict: Container) -> None:
    """A record whose rule no longer holds under its own version (e.g. an altered registry) is reported."""
    specialist = issue_credential(strict, title="Công chức")
    signed = sign(strict, specialist)
    strict_policy = parse(POLICY.replace("- {name: specialist, profile: specialist}",
                                         "- {name: specialist, profile: specialist, titles: [Nobody]}").encode())
    history.remember(strict.sessions, strict_policy)  # its own transaction: SQLite writers do not nest
    with transaction(strict.sessions) as session:
        row = session.execute(select(DocumentFile).where(DocumentFile.document_id == signed.document_id)).scalar_one()
        row.policy_version = strict_policy.version
    report = strict.verifier.verify(signed.pdf)
    [sig] = report.signatures
    assert sig.indication == "TOTAL-PASSED" and sig.entitlement is not None and sig.entitlement.allowed is False
    assert not report.genuine and any("not entitled" in n.en for n in report.notes)


def test_policy_routes(strict: Container) -> None:
    with TestClient(create_app(strict, scheduler=False)) as client:
        operator = {"Authorization": f"Bearer {new_token(strict, tokens.Role.policy_admin)}"}
        auditor = {"Authorization": f"Bearer {new_token(strict, tokens.Role.auditor)}"}
        shown = client.get("/api/v1/policies", headers=auditor).json()
        assert shown["version"].startswith("test-1") and shown["independent_reception_provinces"] == ["79"]
        assert client.post("/api/v1/policies/reload", headers=auditor).status_code == 403
        Path(shown["file"]).write_text("version: [broken\n")
        bad = client.post("/api/v1/policies/reload", headers=operator)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "policy_invalid"
        assert "line" in bad.json()["error"]["message"]
        assert client.get("/api/v1/policies", headers=auditor).json()["version"] == shown["version"]
        specialist = issue_credential(strict)
        why = client.get("/api/v1/policies/decide", headers=auditor, params={
            "credential_id": specialist, "document_type": "construction-permit", "commune_code": "00008"}).json()
        assert why["allowed"] is False and why["rule"] == "jurisdiction.own-commune"
