"""Document types and how kyso signs them, from ``policies/documents/document-types.yaml``.

The file is versioned (its ``version`` plus a short content hash), and every registry record names
the version it was signed under, so a later policy change never rewrites what a past signature meant.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import PolicyInvalid, UnknownDocumentType

DOCUMENTS_FILE = Path(__file__).parent / "documents" / "document-types.yaml"
Level = Literal["B-B", "B-T", "B-LT", "B-LTA"]
LEVELS: tuple[Level, ...] = ("B-B", "B-T", "B-LT", "B-LTA")
Appearance = Literal["person", "seal", "copy"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SealField(_Strict):
    """One fact of a document carried, signed, in its verification QR code (``signing/offline_seal.py``).

    ``name`` is short because every character is printed in the QR code; ``mask`` marks personal
    data (e.g. the holder's name) that the public page shows only partly masked.
    """

    name: str = Field(pattern=r"^[a-z_]{1,16}$")
    label_vi: str = Field(min_length=1, max_length=80)
    label_en: str = Field(min_length=1, max_length=80)
    required: bool = False
    mask: bool = False


class DocumentType(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,60}$")
    title_vi: str
    title_en: str
    level: Level = "B-LT"
    qr: bool = True
    appearance: Appearance = "person"
    certify: bool = False
    seal_fields: tuple[SealField, ...] = ()

    @model_validator(mode="after")
    def _coherent_seal(self) -> "DocumentType":
        names = [f.name for f in self.seal_fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"seal_fields named twice: {duplicates}")
        if self.seal_fields and not self.qr:
            raise ValueError("seal_fields are carried in kyso's QR code; a type with qr: false cannot have them")
        return self


class _File(_Strict):
    version: str
    document_types: dict[str, dict]


class DocumentPolicy(_Strict):
    version: str
    types: dict[str, DocumentType]

    def get(self, name: str) -> DocumentType:
        try:
            return self.types[name]
        except KeyError:
            raise UnknownDocumentType(
                f"unknown document type {name!r}; known types: {', '.join(sorted(self.types))}") from None


def load(path: Path = DOCUMENTS_FILE) -> DocumentPolicy:
    """Parse and validate the policy file; a bad file is refused with the reason, never half-loaded."""
    try:
        raw = path.read_bytes()
        data = _File.model_validate(yaml.safe_load(raw))
        types = {name: DocumentType(name=name, **spec) for name, spec in data.document_types.items()}
    except (OSError, yaml.YAMLError, ValidationError, TypeError) as exc:
        raise PolicyInvalid(f"{path.name}: {exc}") from None
    digest = hashlib.sha256(raw).hexdigest()[:8]
    return DocumentPolicy(version=f"{data.version}+{digest}", types=types)


@lru_cache(maxsize=1)
def default_policy() -> DocumentPolicy:
    return load()
