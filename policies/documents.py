"""Document types and how kyso signs them, from ``policies/documents/document-types.yaml``.

The file is versioned (its ``version`` plus a short content hash), and every registry record names
the version it was signed under, so a later policy change never rewrites what a past signature meant.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import safe_yaml
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


class SignerRule(_Strict):
    """Who may sign a document type: a certificate profile, optionally narrowed to titles (the
    certificate's title attribute, e.g. "Chủ tịch") and organisational units (OU). ``name`` is what
    the approval chain and the decision refer to."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")
    profile: Literal["specialist", "seal"]
    titles: tuple[str, ...] = ()
    units: tuple[str, ...] = ()


DEFAULT_SIGNERS = (SignerRule(name="specialist", profile="specialist"), SignerRule(name="seal", profile="seal"))


class DocumentType(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,60}$")
    title_vi: str
    title_en: str
    level: Level = "B-LT"
    qr: bool = True
    appearance: Appearance = "person"
    certify: bool = False
    seal_fields: tuple[SealField, ...] = ()
    signers: tuple[SignerRule, ...] = DEFAULT_SIGNERS
    approval_chain: tuple[str, ...] = ()  # signer rule names, in signing order; empty: any order

    @model_validator(mode="after")
    def _coherent_signers(self) -> DocumentType:
        names = [rule.name for rule in self.signers]
        if len(set(names)) != len(names):
            raise ValueError(f"signer rules named twice: {sorted({n for n in names if names.count(n) > 1})}")
        unknown = [step for step in self.approval_chain if step not in names]
        if unknown:
            raise ValueError(f"approval_chain names {unknown}, which are not signer rules of this type ({names})")
        return self

    @model_validator(mode="after")
    def _coherent_seal(self) -> DocumentType:
        names = [f.name for f in self.seal_fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"seal_fields named twice: {duplicates}")
        if self.seal_fields and not self.qr:
            raise ValueError("seal_fields are carried in kyso's QR code; a type with qr: false cannot have them")
        return self


class Jurisdiction(_Strict):
    """By default a commune's signers sign only for their commune. A province listed in
    ``independent_reception_provinces`` has turned on reception independent of administrative
    boundaries: any commune of that province may receive and sign its dossiers (recorded as such)."""

    independent_reception_provinces: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _codes(self) -> Jurisdiction:
        bad = [code for code in self.independent_reception_provinces if not (len(code) == 2 and code.isdigit())]
        if bad:
            raise ValueError(f"province codes are 2 digits, not {bad}")
        return self


class _File(_Strict):
    version: str
    jurisdiction: Jurisdiction = Jurisdiction()
    document_types: dict[str, dict[Any, Any]]


class DocumentPolicy(_Strict):
    version: str
    types: dict[str, DocumentType]
    jurisdiction: Jurisdiction = Jurisdiction()
    source: str = ""  # the file's text, kept so a past version can be re-read (policy history)

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
    except OSError as exc:
        raise PolicyInvalid(f"{path.name}: cannot be read ({exc.strerror})") from None
    return parse(raw, path.name)


def parse(raw: bytes, name: str = "policy") -> DocumentPolicy:
    """A policy from the file's bytes; errors name the line and the reason."""
    try:
        text = raw.decode("utf-8")
        data = _File.model_validate(safe_yaml.safe_load(text))
        types = {}
        for type_name, spec in data.document_types.items():
            try:
                types[type_name] = DocumentType(name=type_name, **(spec or {}))
            except ValidationError as exc:
                raise _Located(exc, ("document_types", type_name)) from None
            except TypeError as exc:
                raise PolicyInvalid(f"{name}, line {_line(text, ('document_types', type_name))}: {exc}") from None
    except UnicodeDecodeError:
        raise PolicyInvalid(f"{name}: not UTF-8 text") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a control character, ...)
        line = text.count("\n", 0, exc.position) + 1
        character = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise PolicyInvalid(f"{name}, line {line}: not valid YAML (character {character} is not allowed in "
                            f"YAML text)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise PolicyInvalid(f"{name}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    except _Located as located:
        raise PolicyInvalid(_describe(located.error, text, name, located.prefix)) from None
    except ValidationError as exc:
        raise PolicyInvalid(_describe(exc, text, name, ())) from None
    digest = hashlib.sha256(raw).hexdigest()[:8]
    return DocumentPolicy(version=f"{data.version}+{digest}", types=types, jurisdiction=data.jurisdiction,
                          source=text)


class _Located(Exception):
    def __init__(self, error: ValidationError, prefix: tuple[str, ...]) -> None:
        self.error, self.prefix = error, prefix


def _describe(exc: ValidationError, text: str, name: str, prefix: tuple[str | int, ...]) -> str:
    problems = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        loc = (*prefix, *err["loc"])
        problems.append(f"line {_line(text, loc)}: {'.'.join(map(str, loc)) or 'file'}: {err['msg']}")
    return f"{name}: " + "; ".join(problems)


def _line(text: str, loc: tuple[str | int, ...]) -> int:
    """The 1-based line of the deepest YAML node along ``loc`` (validation errors name paths, not lines)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return 1
    line = node.start_mark.line + 1 if node is not None else 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(key)), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return line


@lru_cache(maxsize=1)  # kept: the packaged default policy file (not the reloadable one), parsed once
def default_policy() -> DocumentPolicy:
    return load()
