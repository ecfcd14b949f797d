"""Commune mergers: one transaction re-issues under the new unit and revokes the old certificates."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from core import audit, clock
from core.db import transaction
from core.errors import InvalidInput
from pki import issuance, merger, store
from pki.models import Certificate, Credential
from pki.reasons import Reason
from policies import units
from policies.errors import UnknownUnit
from tests import factories

# Ba Đình (00004) and Ngọc Hà (00008) merge into Giảng Võ (00025), all in Hà Nội.


def _issue(pki, commune, name, n):
    return issuance.issue(pki.pki, issuance.IssueRequest(profile="specialist", subject=factories.specialist(name, n),
                                                         commune_code=commune), "test")


@pytest.fixture
def staff(pki):
    return {
        "hoa": _issue(pki, "00004", "Nguyễn Thị Hoa", "001190000001"),
        "binh": _issue(pki, "00008", "Trần Văn Bình", "001190000002"),
        "an": _issue(pki, "00025", "Lê Văn An", "001190000003"),  # already in the new unit: untouched
    }


def _snapshot(pki):
    with transaction(pki.sessions) as session:
        return sorted((c.serial, c.status) for c in session.execute(select(Certificate)).scalars()), audit.verify(session).entries


def test_dry_run_reports_and_changes_nothing(pki, staff):
    before = _snapshot(pki)
    report = merger.merge(pki.pki, ["00004", "00008"], "00025", "test", dry_run=True)
    assert report.dry_run and len(report.changes) == 2
    assert {c.common_name for c in report.changes} == {"Nguyễn Thị Hoa", "Trần Văn Bình"}
    assert all(c.new_serial is None and "Phường Giảng Võ" in c.new_subject for c in report.changes)
    assert _snapshot(pki) == before


def test_merger_reissues_and_revokes(pki, staff):
    progress = []
    report = merger.merge(pki.pki, ["00004", "00008"], "00025", "test", progress=lambda d, t: progress.append((d, t)))
    assert progress[-1] == (2, 2)
    by_name = {c.common_name: c for c in report.changes}
    hoa = by_name["Nguyễn Thị Hoa"]
    with transaction(pki.sessions) as session:
        old = store.get_certificate(session, staff["hoa"].certificate.serial)
        new = store.get_certificate(session, hoa.new_serial)
        assert (old.status, old.revocation_reason) == ("revoked", "affiliationChanged")
        assert new.status == "valid" and new.commune_code == "00025" and new.replaces_serial == old.serial
        cred = session.get(Credential, staff["hoa"].credential_id)
        assert cred.certificate_id == new.id and cred.status == "active"  # the specialist keeps signing
        untouched = store.get_certificate(session, staff["an"].certificate.serial)
        assert untouched.status == "valid"
        entry = session.execute(select(audit.AuditEntry).where(audit.AuditEntry.action == "pki:merger:apply")).scalar_one()
        assert json.loads(entry.details)["reissued"] == 2
        assert audit.verify(session).ok
    cert = x509.load_der_x509_certificate(new.der)
    old_cert = x509.load_der_x509_certificate(old.der)
    assert cert.public_key().public_numbers() == old_cert.public_key().public_numbers()
    assert cert.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)[0].value == "Phường Giảng Võ"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Ủy ban nhân dân Phường Giảng Võ"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Nguyễn Thị Hoa"
    # nothing left to do: running it again changes nothing
    assert merger.merge(pki.pki, ["00004", "00008"], "00025", "test").changes == []


def test_merger_with_catalogue_change(pki, staff):
    """A newer catalogue closes the merged units; the merger still finds them the day before."""
    raw = json.loads(units.SEED_CATALOGUE.read_text("utf-8"))
    for province in raw:
        if province["Code"] == "01":
            province["Wards"] = [w for w in province["Wards"] if w["Code"] not in ("00004", "00008")]
    effective = clock.now().date()
    with transaction(pki.sessions) as session:
        report = units.import_catalogue(session, json.dumps(raw).encode(), effective, "test-merger")
        assert sorted(report.closed) == ["00004", "00008"] and report.unchanged > 3000
        with pytest.raises(UnknownUnit):
            units.lookup(session, "00004", effective)
        assert units.lookup(session, "00004", effective - dt.timedelta(days=1)).name == "Ba Đình"
    with pytest.raises(UnknownUnit):  # new certificates cannot name a closed unit
        _issue(pki, "00004", "Phạm Thị Cúc", "001190000009")
    result = merger.merge(pki.pki, ["00004", "00008"], "00025", "test", reason=Reason.superseded, effective=effective)
    assert len(result.changes) == 2 and result.reason == "superseded"


def test_merger_refuses_bad_input(pki, staff):
    with pytest.raises(UnknownUnit):
        merger.merge(pki.pki, ["00004"], "99999", "test")
    with pytest.raises(InvalidInput, match="province"):
        merger.merge(pki.pki, ["00004"], "01", "test")
    with pytest.raises(InvalidInput, match="revokes as one of"):
        merger.merge(pki.pki, ["00004"], "00025", "test", reason=Reason.keyCompromise)
    with pytest.raises(UnknownUnit):
        merger.merge(pki.pki, ["12345"], "00025", "test")
