"""Contacts of a unit's People's Committee (address, phone) beside the catalogue: imported from an
operator's file that names its source, checked, audited once per change, never guessed."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from core.audit import AuditEntry
from core.db import transaction
from policies import units
from policies.errors import CatalogueInvalid, UnknownUnit

TODAY = dt.date(2026, 12, 6)
BA_DINH = {"code": "00004", "address": "  Số 1 phố Thử Nghiệm,\n Ba Đình ", "phone": "024 0000 0000",
           "source": "tệp thử nghiệm (không phải dữ liệu thật)"}


def _audits(session) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(AuditEntry)
                          .where(AuditEntry.action == "policies:units:contacts"))


def test_a_unit_without_contacts_has_none(container):  # type: ignore[no-untyped-def]
    with transaction(container.sessions) as session:
        contact = units.contact(session, "00004", TODAY)
    assert contact == units.Contact("00004", "Phường Ba Đình", None, None)


def test_import_sets_changes_and_is_idempotent(container):  # type: ignore[no-untyped-def]
    raw = json.dumps([BA_DINH, {"code": "01", "source": "tệp thử nghiệm"}]).encode()
    with transaction(container.sessions) as session:
        assert units.import_contacts(session, raw, TODAY, actor="op")["changed"] == 2
        assert units.contact(session, "00004", TODAY) == units.Contact(
            "00004", "Phường Ba Đình", "Số 1 phố Thử Nghiệm, Ba Đình", "024 0000 0000")
        assert units.contact(session, "01", TODAY).phone is None
        assert _audits(session) == 1
    with transaction(container.sessions) as session:
        again = units.import_contacts(session, raw, TODAY, actor="op")
        assert again == {"changed": 0, "unchanged": 2, "codes": []} and _audits(session) == 1
    changed = json.dumps([{**BA_DINH, "phone": None}]).encode()
    with transaction(container.sessions) as session:
        assert units.import_contacts(session, changed, TODAY, actor="op")["codes"] == ["00004"]
        assert units.contact(session, "00004", TODAY).phone is None and _audits(session) == 2


@pytest.mark.parametrize("item,words", [
    ({**BA_DINH, "phone": "gọi ông Tư"}, "not a phone number"),
    ({**BA_DINH, "source": None}, "source"),
    ({**BA_DINH, "code": "4"}, "2- or 5-digit"),
    ({**BA_DINH, "email": "x@y"}, "unknown fields"),
    ({**BA_DINH, "address": "x" * 301}, "longer than 300"),
    ({**BA_DINH, "address": 5}, "must be text"),
])
def test_bad_contacts_are_refused(container, item, words):  # type: ignore[no-untyped-def]
    with transaction(container.sessions) as session, pytest.raises(CatalogueInvalid, match=words):
        units.import_contacts(session, json.dumps([item]).encode(), TODAY)


@pytest.mark.parametrize("raw,words", [(b"not json", "not valid JSON"), (b"[]", "non-empty"), (b"{}", "non-empty"),
                                       (json.dumps([BA_DINH, BA_DINH]).encode(), "twice"), (b"[1]", "code")])
def test_bad_contact_files_are_refused(container, raw, words):  # type: ignore[no-untyped-def]
    with transaction(container.sessions) as session, pytest.raises(CatalogueInvalid, match=words):
        units.import_contacts(session, raw, TODAY)


def test_a_code_the_catalogue_lacks_is_refused_and_nothing_is_written(container):  # type: ignore[no-untyped-def]
    raw = json.dumps([BA_DINH, {"code": "99999", "source": "x"}]).encode()
    with transaction(container.sessions) as session, pytest.raises(UnknownUnit):
        units.import_contacts(session, raw, TODAY)
    with transaction(container.sessions) as session:
        assert units.contact(session, "00004", TODAY).address is None and _audits(session) == 0
