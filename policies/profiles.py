"""Certificate profiles: YAML files under ``policies/profiles/``, validated when loaded.

A profile is data, not code: which key types a certificate may carry, its validity, key usage,
extended key usage, which subject attributes are required or allowed, and which pointers
(AIA, CRL distribution points) it carries. Unknown keys are refused rather than ignored.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hsm.interfaces import KeyType

from . import safe_yaml
from .errors import ProfileInvalid, UnknownProfile

PROFILES_DIR = Path(__file__).parent / "profiles"

KeyUsageName = Literal[
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
    "keyAgreement", "keyCertSign", "cRLSign",
]
SubjectAttr = Literal["CN", "title", "O", "OU", "L", "ST", "C", "serialNumber", "emailAddress"]
EKU_NAMES = {
    "documentSigning": "1.3.6.1.5.5.7.3.36",  # RFC 9336
    "timeStamping": "1.3.6.1.5.5.7.3.8",
    "OCSPSigning": "1.3.6.1.5.5.7.3.9",
    "emailProtection": "1.3.6.1.5.5.7.3.4",
    "clientAuth": "1.3.6.1.5.5.7.3.2",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubjectRules(_Strict):
    required: tuple[SubjectAttr, ...]
    allowed: tuple[SubjectAttr, ...]

    @model_validator(mode="after")
    def _required_are_allowed(self) -> SubjectRules:
        missing = set(self.required) - set(self.allowed)
        if missing:
            raise ValueError(f"required attributes not in allowed: {sorted(missing)}")
        return self


class Profile(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")
    description: str
    is_ca: bool = False
    path_length: int | None = None
    validity_days: int = Field(ge=1, le=365 * 30)
    key_types: tuple[KeyType, ...]
    default_key_type: KeyType
    key_usage: tuple[KeyUsageName, ...]
    extended_key_usage: tuple[str, ...] = ()
    extended_key_usage_critical: bool = False
    subject: SubjectRules
    ocsp_no_check: bool = False
    authority_info_access: bool = True
    crl_distribution_points: bool = True
    requires_commune: bool = False
    certificate_policies: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _coherent(self) -> Profile:
        if self.default_key_type not in self.key_types:
            raise ValueError("default_key_type must be one of key_types")
        if self.is_ca and "keyCertSign" not in self.key_usage:
            raise ValueError("a CA profile needs keyCertSign")
        if not self.is_ca and ({"keyCertSign", "cRLSign"} & set(self.key_usage)):
            raise ValueError("an end-entity profile cannot have keyCertSign or cRLSign")
        for eku in self.extended_key_usage:
            if eku not in EKU_NAMES and not all(part.isdigit() for part in eku.split(".")):
                raise ValueError(f"unknown extended key usage {eku!r} (a name in {sorted(EKU_NAMES)} or a dotted OID)")
        return self

    @property
    def eku_oids(self) -> list[str]:
        return [EKU_NAMES.get(eku, eku) for eku in self.extended_key_usage]


class ProfileSet:
    """All profiles, loaded once; lookups by name fail with a clear ``UnknownProfile``."""

    def __init__(self, profiles: dict[str, Profile]) -> None:
        self._profiles = profiles

    @classmethod
    def load(cls, directory: Path = PROFILES_DIR) -> ProfileSet:
        profiles: dict[str, Profile] = {}
        for path in sorted(directory.glob("*.yaml")):
            profile = load_profile_file(path)
            if profile.name in profiles:
                raise ProfileInvalid(f"{path.name}: profile {profile.name!r} is defined twice")
            profiles[profile.name] = profile
        if not profiles:
            raise ProfileInvalid(f"no certificate profiles found in {directory}")
        return cls(profiles)

    def get(self, name: str) -> Profile:
        try:
            return self._profiles[name]
        except KeyError:
            raise UnknownProfile(
                f"unknown certificate profile {name!r}; known: {', '.join(sorted(self._profiles))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._profiles)


def load_profile_file(path: Path) -> Profile:
    try:
        data = safe_yaml.safe_load(path.read_text("utf-8"))
    except UnicodeDecodeError:
        raise ProfileInvalid(f"{path.name}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise ProfileInvalid(f"{path.name}: not valid YAML: {exc}") from exc
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise ProfileInvalid(f"{path.name}: {problems}") from exc
