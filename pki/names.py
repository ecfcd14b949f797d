"""Subject names. Vietnamese text goes in UTF8String and round-trips exactly; C and
serialNumber are PrintableString as RFC 5280 and X.520 require."""
from __future__ import annotations

import re
import unicodedata

from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, ConfigDict, Field, field_validator

from policies.profiles import Profile

from .errors import SubjectInvalid

ATTRS = {
    "CN": NameOID.COMMON_NAME, "title": NameOID.TITLE, "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "L": NameOID.LOCALITY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME, "serialNumber": NameOID.SERIAL_NUMBER, "emailAddress": NameOID.EMAIL_ADDRESS,
}
ORDER = ["C", "ST", "L", "O", "OU", "title", "CN", "serialNumber", "emailAddress"]
_ID_NUMBER = re.compile(r"^(\d{9}|\d{12})$")  # 9-digit CMND or 12-digit CCCD / personal ID number


class SubjectInfo(BaseModel):
    """What a caller says about the subject; the commune fields are filled from the catalogue."""

    model_config = ConfigDict(extra="forbid")

    common_name: str = Field(min_length=1, max_length=64, description="Full name, e.g. Nguyễn Thị Hoa")
    title: str | None = Field(default=None, max_length=64, description="Position, e.g. Công chức Tư pháp - Hộ tịch")
    organization: str | None = Field(default=None, max_length=64,
                                     description="Defaults to the commune People's Committee")
    organizational_unit: str | None = Field(default=None, max_length=64)
    locality: str | None = Field(default=None, max_length=128)
    province: str | None = Field(default=None, max_length=128)
    country: str = Field(default="VN", pattern=r"^[A-Z]{2}$")
    id_number: str | None = Field(default=None, description="9- or 12-digit national ID number")
    email: str | None = Field(default=None, max_length=128)

    @field_validator("common_name", "title", "organization", "organizational_unit", "locality", "province")
    @classmethod
    def _nfc(cls, value: str | None) -> str | None:
        """Vietnamese can be typed composed or decomposed; store the composed (NFC) form."""
        if value is None:
            return None
        value = unicodedata.normalize("NFC", value.strip())
        if not value or any(unicodedata.category(ch) == "Cc" for ch in value):
            raise ValueError("must be non-empty text without control characters")
        return value

    @field_validator("id_number")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value is not None and not _ID_NUMBER.match(value):
            raise ValueError("ID number must be 9 (CMND) or 12 (CCCD) digits")
        return value

    def attributes(self) -> dict[str, str]:
        values = {
            "CN": self.common_name, "title": self.title, "O": self.organization, "OU": self.organizational_unit,
            "L": self.locality, "ST": self.province, "C": self.country,
            "serialNumber": f"IDCVN-{self.id_number}" if self.id_number else None, "emailAddress": self.email,
        }
        return {k: v for k, v in values.items() if v is not None}


def build_name(attributes: dict[str, str], profile: Profile) -> x509.Name:
    """An X.509 name checked against the profile's required and allowed attributes."""
    missing = [a for a in profile.subject.required if a not in attributes]
    if missing:
        raise SubjectInvalid(f"profile {profile.name!r} requires subject attributes {missing}", missing=missing)
    extra = [a for a in attributes if a not in profile.subject.allowed]
    if extra:
        raise SubjectInvalid(f"profile {profile.name!r} does not allow subject attributes {extra}", extra=extra)
    rdns = []
    for key in ORDER:
        if key not in attributes:
            continue
        value = attributes[key]
        if key in ("C", "serialNumber"):
            rdns.append(x509.NameAttribute(ATTRS[key], value, _ASN1Type.PrintableString))
        elif key == "emailAddress":
            rdns.append(x509.NameAttribute(ATTRS[key], value, _ASN1Type.IA5String))
        else:
            rdns.append(x509.NameAttribute(ATTRS[key], value, _ASN1Type.UTF8String))
    try:
        return x509.Name([x509.RelativeDistinguishedName([attr]) for attr in rdns])
    except ValueError as exc:
        raise SubjectInvalid(f"subject name is not valid: {exc}") from exc


def name_attributes(name: x509.Name) -> dict[str, str]:
    """The reverse of ``build_name``, for renewals and mergers that keep most of a subject."""
    by_oid = {oid: key for key, oid in ATTRS.items()}
    return {by_oid[a.oid]: str(a.value) for a in name if a.oid in by_oid}


def common_name(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else name.rfc4514_string()
