"""Profiles are validated when loaded; the unit catalogue is versioned, never edited in place."""
from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from core.db import transaction
from policies import units
from policies.errors import CatalogueInvalid, ProfileInvalid
from policies.profiles import PROFILES_DIR, ProfileSet


def test_shipped_profiles_load():
    profiles = ProfileSet.load()
    assert set(profiles.names()) >= {"root-ca", "issuing-ca", "specialist", "seal", "ocsp-responder", "tsa"}
    specialist = profiles.get("specialist")
    assert specialist.eku_oids == ["1.3.6.1.5.5.7.3.36", "1.3.6.1.5.5.7.3.4"]  # documentSigning, emailProtection
    assert set(specialist.key_usage) == {"digitalSignature", "nonRepudiation"}
    tsa = profiles.get("tsa")
    assert tsa.extended_key_usage_critical and tsa.eku_oids == ["1.3.6.1.5.5.7.3.8"]


@pytest.mark.parametrize("mutation,words", [
    (lambda t: t + "colour: red\n", "colour"),
    (lambda t: t.replace("validity_days: 730", "validity_days: -1"), "validity_days"),
    (lambda t: t.replace("[documentSigning, emailProtection]", "[madeUpUsage]"), "madeUpUsage"),
    (lambda t: t.replace("key_usage: [digitalSignature, nonRepudiation]", "key_usage: [keyCertSign]"), "end-entity"),
    (lambda t: t + "  - : [\n", "YAML"),
])
def test_bad_profile_is_refused_with_file_and_reason(tmp_path, mutation, words):
    target = tmp_path / "profiles"
    shutil.copytree(PROFILES_DIR, target)
    path = target / "specialist.yaml"
    path.write_text(mutation(path.read_text("utf-8")), "utf-8")
    with pytest.raises(ProfileInvalid, match="specialist.yaml") as info:
        ProfileSet.load(target)
    assert words in str(info.value)


def test_seeded_catalogue(container):
    with transaction(container.sessions) as session:
        today = dt.date(2026, 11, 22)
        hanoi = units.view(session, "01", today)
        assert hanoi.level == "province" and hanoi.full_name == "Thành phố Hà Nội"
        assert len(units.search(session, today, province="01", limit=1000)) > 100
        communes = units.search(session, today, limit=5000)
        assert len([u for u in communes if u.level == "commune"]) == 3321
        assert len([u for u in communes if u.level == "province"]) == 34
        with pytest.raises(Exception, match="does not exist"):
            units.lookup(session, "00004", dt.date(2025, 6, 30))  # before the two-tier reform


def test_import_is_versioned_and_idempotent(container):
    raw = json.loads(units.SEED_CATALOGUE.read_text("utf-8"))
    raw[0]["Wards"][0]["Name"] = "Ba Đình Mới"
    raw[0]["Wards"][0]["FullName"] = "Phường Ba Đình Mới"
    data = json.dumps(raw).encode()
    effective = dt.date(2026, 12, 1)
    with transaction(container.sessions) as session:
        report = units.import_catalogue(session, data, effective, "2026-12")
        assert report.changed == ["00004"] and report.added == [] and report.closed == []
    with transaction(container.sessions) as session:
        again = units.import_catalogue(session, data, effective, "2026-12")
        assert again.changed == [] and again.unchanged == 3321 + 34
        assert units.view(session, "00004", dt.date(2026, 11, 30)).full_name == "Phường Ba Đình"
        assert units.view(session, "00004", effective).full_name == "Phường Ba Đình Mới"


@pytest.mark.parametrize("raw,words", [
    (b"not json", "not valid JSON"),
    (b"[]", "non-empty"),
    (json.dumps([{"Code": "1"}]).encode(), "2 digits"),
    (json.dumps([{"Code": "01"}]).encode(), "lacks a field"),
])
def test_bad_catalogue_is_refused(container, raw, words):
    with transaction(container.sessions) as session, pytest.raises(CatalogueInvalid, match=words):
        units.import_catalogue(session, raw, dt.date(2026, 12, 1))
