"""Vietnam's administrative units as a versioned catalogue with effective dates.

A later change (a merger, a renamed ward) never edits a row: the old version gets a ``valid_to``
date and a new row starts on the same day. Certificates and documents record the code valid on
their date; lookups always ask "which unit had this code on that day?".
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Date, Integer, String, UniqueConstraint, insert, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import audit
from core.db import Base

from .errors import CatalogueInvalid, UnknownUnit

SEED_CATALOGUE = Path(__file__).parent / "data" / "admin-units" / "vn-units-2026-07-25.json"
SEED_EFFECTIVE = dt.date(2025, 7, 1)  # two-tier local government in force (Resolution 202/2025/QH15)


class AdminUnit(Base):
    __tablename__ = "admin_units"
    __table_args__ = (UniqueConstraint("code", "valid_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(5), index=True, nullable=False)
    level: Mapped[str] = mapped_column(String(10), nullable=False)  # province | commune
    kind: Mapped[str] = mapped_column(String(40), nullable=False)  # Thành phố, Tỉnh, Phường, Xã, Đặc khu
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    full_name: Mapped[str] = mapped_column(String(250), nullable=False)
    name_en: Mapped[str] = mapped_column(String(200), nullable=False)
    province_code: Mapped[str | None] = mapped_column(String(2), nullable=True)
    valid_from: Mapped[dt.date] = mapped_column(Date, nullable=False)
    valid_to: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    catalogue_version: Mapped[str] = mapped_column(String(80), nullable=False)

    def same_content(self, other: dict[str, Any]) -> bool:
        return all(getattr(self, key) == value for key, value in other.items())


class UnitContact(Base):
    """Where a citizen asks about a unit's papers: the People's Committee's address and phone.

    Kept beside the catalogue, keyed by unit code, because contacts change far more often than names and
    boundaries (a new phone line is not a new version of the ward). Rows come only from an operator's
    contacts file (``kyso units contacts FILE``), never from guesses: a unit without a row has no
    known phone, and the citizen page says where to ask instead.
    """

    __tablename__ = "admin_unit_contacts"

    code: Mapped[str] = mapped_column(String(5), primary_key=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    source: Mapped[str] = mapped_column(String(200), nullable=False)  # where the operator took the data from
    updated_on: Mapped[dt.date] = mapped_column(Date, nullable=False)


@dataclass(frozen=True)
class Contact:
    """What the citizen page shows: the unit's name and, only where known, its address and phone."""

    code: str
    name: str
    address: str | None
    phone: str | None


@dataclass(frozen=True)
class UnitView:
    code: str
    level: str
    kind: str
    name: str
    full_name: str
    name_en: str
    province_code: str | None
    province_name: str | None
    valid_from: dt.date
    valid_to: dt.date | None


@dataclass
class ImportReport:
    version: str
    effective: dt.date
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    unchanged: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "effective": self.effective.isoformat(), "added": len(self.added),
                "changed": len(self.changed), "closed": len(self.closed), "unchanged": self.unchanged,
                "closed_codes": self.closed, "changed_codes": self.changed}


def parse_catalogue(raw: bytes) -> list[dict[str, Any]]:
    """Flatten the provinces-with-wards JSON into unit rows, checking codes as it goes."""
    try:
        provinces = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CatalogueInvalid(f"the catalogue is not valid JSON: {exc}") from exc
    except RecursionError:
        raise CatalogueInvalid("the catalogue is not valid JSON: it nests lists or objects too deeply") from None
    if not isinstance(provinces, list) or not provinces:
        raise CatalogueInvalid("the catalogue must be a non-empty JSON list of provinces")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        for prov in provinces:
            pcode = str(prov["Code"])
            if len(pcode) != 2 or not pcode.isdigit():
                raise CatalogueInvalid(f"province code {pcode!r} is not 2 digits")
            rows.append({"code": pcode, "level": "province", "kind": prov["AdministrativeUnitShortName"],
                         "name": prov["Name"], "full_name": prov["FullName"], "name_en": prov["NameEn"],
                         "province_code": None})
            for ward in prov["Wards"]:
                wcode = str(ward["Code"])
                if len(wcode) != 5 or not wcode.isdigit():
                    raise CatalogueInvalid(f"commune code {wcode!r} is not 5 digits")
                if wcode in seen:
                    raise CatalogueInvalid(f"commune code {wcode} appears twice")
                seen.add(wcode)
                rows.append({"code": wcode, "level": "commune", "kind": ward["AdministrativeUnitShortName"],
                             "name": ward["Name"], "full_name": ward["FullName"], "name_en": ward["NameEn"],
                             "province_code": pcode})
    except (KeyError, TypeError) as exc:
        raise CatalogueInvalid(f"the catalogue lacks a field the format requires: {exc}") from exc
    return rows


def import_catalogue(session: Session, raw: bytes, effective: dt.date, version: str | None = None,
                     *, actor: str = "system") -> ImportReport:
    """Load a catalogue as the state from ``effective`` on; idempotent for an unchanged file."""
    rows = parse_catalogue(raw)
    version = version or "sha256:" + hashlib.sha256(raw).hexdigest()[:16]
    report = ImportReport(version, effective)
    current = {u.code: u for u in session.execute(select(AdminUnit).where(AdminUnit.valid_to.is_(None))).scalars()}
    incoming = {row["code"]: row for row in rows}
    new_rows: list[dict[str, Any]] = []
    for code, row in incoming.items():
        unit = current.get(code)
        if unit is not None and unit.same_content(row):
            report.unchanged += 1
            continue
        if unit is not None:
            if effective <= unit.valid_from:
                raise CatalogueInvalid(f"unit {code} already has a version from {unit.valid_from}; use a later date")
            unit.valid_to = effective
            report.changed.append(code)
        else:
            report.added.append(code)
        new_rows.append({**row, "valid_from": effective, "valid_to": None, "catalogue_version": version})
    if new_rows:
        session.flush()  # close old versions before their successors are inserted
        session.execute(insert(AdminUnit), new_rows)
    for code, unit in current.items():
        if code not in incoming:
            unit.valid_to = effective
            report.closed.append(code)
    if report.added or report.changed or report.closed:
        audit.record(session, actor=actor, action="policies:units:import", subject=version, **report.as_dict())
    session.flush()
    return report


def lookup(session: Session, code: str, on: dt.date) -> AdminUnit:
    """The unit that had ``code`` on the day ``on``; ``UnknownUnit`` otherwise."""
    unit = session.execute(
        select(AdminUnit).where(
            AdminUnit.code == code, AdminUnit.valid_from <= on,
            or_(AdminUnit.valid_to.is_(None), AdminUnit.valid_to > on),
        )
    ).scalar_one_or_none()
    if unit is None:
        raise UnknownUnit(f"administrative unit {code!r} does not exist on {on.isoformat()} in kyso's catalogue",
                          unit_code=code, on=on.isoformat())
    return unit


def view(session: Session, code: str, on: dt.date) -> UnitView:
    unit = lookup(session, code, on)
    province = lookup(session, unit.province_code, on) if unit.province_code else None
    return UnitView(unit.code, unit.level, unit.kind, unit.name, unit.full_name, unit.name_en, unit.province_code,
                    province.full_name if province else None, unit.valid_from, unit.valid_to)


def search(session: Session, on: dt.date, *, province: str | None = None, text: str | None = None,
           limit: int = 50) -> list[AdminUnit]:
    query = select(AdminUnit).where(
        AdminUnit.valid_from <= on, or_(AdminUnit.valid_to.is_(None), AdminUnit.valid_to > on)
    )
    if province:
        query = query.where(AdminUnit.province_code == province)
    if text:
        query = query.where(or_(AdminUnit.name.ilike(f"%{text}%"), AdminUnit.name_en.ilike(f"%{text}%")))
    return list(session.execute(query.order_by(AdminUnit.code).limit(limit)).scalars())


def ensure_seeded(session: Session) -> ImportReport | None:
    """Load the shipped catalogue when the table is empty (first start)."""
    if session.execute(select(AdminUnit.id).limit(1)).first() is not None:
        return None
    return import_catalogue(session, SEED_CATALOGUE.read_bytes(), SEED_EFFECTIVE,
                            version=SEED_CATALOGUE.stem)


PHONE_RE = re.compile(r"^\+?[0-9][0-9 .()-]{5,30}$")


def _clean(value: Any, field_name: str, code: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CatalogueInvalid(f"contact {code}: {field_name} must be text")
    text = " ".join(value.split())
    if len(text) > limit:
        raise CatalogueInvalid(f"contact {code}: {field_name} is longer than {limit} characters")
    return text or None


def parse_contacts(raw: bytes) -> list[dict[str, Any]]:
    """Check a contacts file: a JSON list of ``{"code", "address", "phone", "source"}`` (address and
    phone optional, ``source`` required: where the data was taken from)."""
    try:
        items = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CatalogueInvalid(f"the contacts file is not valid JSON: {exc}") from None
    if not isinstance(items, list) or not items:
        raise CatalogueInvalid("the contacts file must be a non-empty JSON list of units")
    rows: dict[str, dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("code"), str):
            raise CatalogueInvalid("every contact needs a \"code\" (the unit code, as text)")
        code = item["code"]
        if not (len(code) in (2, 5) and code.isdigit()):
            raise CatalogueInvalid(f"contact code {code!r} is not a 2- or 5-digit unit code")
        if code in rows:
            raise CatalogueInvalid(f"contact code {code} appears twice")
        unknown = set(item) - {"code", "address", "phone", "source"}
        if unknown:
            raise CatalogueInvalid(f"contact {code}: unknown fields {sorted(unknown)}")
        phone = _clean(item.get("phone"), "phone", code, 40)
        if phone is not None and not PHONE_RE.match(phone):
            raise CatalogueInvalid(f"contact {code}: {phone!r} is not a phone number")
        source = _clean(item.get("source"), "source", code, 200)
        if source is None:
            raise CatalogueInvalid(f"contact {code}: \"source\" (where the data comes from) is required")
        rows[code] = {"code": code, "address": _clean(item.get("address"), "address", code, 300), "phone": phone,
                      "source": source}
    return list(rows.values())


def import_contacts(session: Session, raw: bytes, on: dt.date, *, actor: str = "system") -> dict[str, Any]:
    """Set the contacts of the units a file names (each must exist on ``on``); others stay as they are."""
    rows = parse_contacts(raw)
    for row in rows:
        lookup(session, row["code"], on)  # UnknownUnit for a code the catalogue does not have today
    changed: list[str] = []
    for row in rows:
        current = session.get(UnitContact, row["code"])
        if current is None:
            session.add(UnitContact(**row, updated_on=on))
        elif (current.address, current.phone, current.source) != (row["address"], row["phone"], row["source"]):
            current.address, current.phone, current.source, current.updated_on = (
                row["address"], row["phone"], row["source"], on)
        else:
            continue
        changed.append(row["code"])
    result = {"changed": len(changed), "unchanged": len(rows) - len(changed), "codes": changed}
    if changed:
        audit.record(session, actor=actor, action="policies:units:contacts", subject=f"{len(changed)} units",
                     **result)
    session.flush()
    return result


def contact(session: Session, code: str, on: dt.date) -> Contact:
    """The unit's name on ``on`` and whatever contact data an operator imported for it."""
    unit = lookup(session, code, on)
    row = session.get(UnitContact, code)
    return Contact(code, unit.full_name, row.address if row else None, row.phone if row else None)
