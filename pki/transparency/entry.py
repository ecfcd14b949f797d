"""The log entry: one event, one canonical UTF-8 text, byte-exact.

    kyso-log-entry/v1 <type>\\n
    <field> <value>\\n                 fields in the fixed order of the type's schema

Every value is non-empty, has no control characters and no leading or trailing space; hashes are
64 lowercase hex digits, times ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds), integers decimal
without leading zeros, serials upper-case hex, commune codes 5 digits. Repeated fields
(``signature-sha256``) keep their order; optional ones are left out, never empty. ``Entry.parse``
accepts exactly what ``Entry.encode`` produces — it re-encodes and compares — so one event has
one leaf hash.

What is logged is public: hashes, serials, codes and times, never a person's name or national ID
number. A certificate's holder finds it by the certificate's SHA-256; a document's holder by its
id (printed in the QR code) and the file's SHA-256. The leaf is ``SHA-256(0x00 || entry bytes)``.
"""
from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .errors import LogFormatError

MAGIC = "kyso-log-entry/v1"
MAX_VALUE_CHARS = 1024


class EntryType(str, enum.Enum):
    CERTIFICATE_ISSUED = "certificate-issued"
    CERTIFICATE_REVOKED = "certificate-revoked"
    DOCUMENT_REGISTERED = "document-registered"
    DOCUMENT_WITHDRAWN = "document-withdrawn"
    DOCUMENT_SUPERSEDED = "document-superseded"
    AUDIT_ANCHOR = "audit-anchor"

    @property
    def is_document(self) -> bool:
        return self.value.startswith("document-")

    @property
    def is_certificate(self) -> bool:
        return self.value.startswith("certificate-")


_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_INT = re.compile(r"0|[1-9][0-9]{0,18}")
_SERIAL = re.compile(r"[0-9A-F]{1,64}")
_COMMUNE = re.compile(r"[0-9]{5}")
_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}")


def _text(v: str) -> bool:
    return (0 < len(v) <= MAX_VALUE_CHARS and v == v.strip()
            and not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in v))


def _time(v: str) -> bool:
    if not _TIME.fullmatch(v):
        return False
    try:
        dt.datetime(int(v[0:4]), int(v[5:7]), int(v[8:10]), int(v[11:13]), int(v[14:16]), int(v[17:19]), tzinfo=dt.UTC)
    except ValueError:
        return False
    return True


_CHECKS: dict[str, Callable[[str], bool]] = {
    "hex": lambda v: bool(_HEX64.fullmatch(v)),
    "time": _time,
    "int": lambda v: bool(_INT.fullmatch(v)),
    "serial": lambda v: bool(_SERIAL.fullmatch(v)),
    "commune": lambda v: bool(_COMMUNE.fullmatch(v)),
    "token": lambda v: bool(_TOKEN.fullmatch(v)),
    "text": _text,
}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str  # a key of _CHECKS
    required: bool = True
    repeated: bool = False


def _f(name: str, kind: str, *, optional: bool = False, repeated: bool = False) -> FieldSpec:
    return FieldSpec(name, kind, not optional, repeated)


SCHEMAS: dict[EntryType, tuple[FieldSpec, ...]] = {
    EntryType.CERTIFICATE_ISSUED: (
        _f("time", "time"), _f("serial", "serial"), _f("issuer", "text"), _f("certificate-sha256", "hex"),
        _f("profile", "token"), _f("commune", "commune", optional=True),
        _f("not-before", "time"), _f("not-after", "time")),
    EntryType.CERTIFICATE_REVOKED: (
        _f("time", "time"), _f("serial", "serial"), _f("issuer", "text"), _f("certificate-sha256", "hex"),
        _f("reason", "token"), _f("commune", "commune", optional=True)),
    EntryType.DOCUMENT_REGISTERED: (
        _f("time", "time"), _f("document", "token"), _f("version", "int"), _f("file-sha256", "hex"),
        _f("signature-sha256", "hex", repeated=True), _f("signer-sha256", "hex"), _f("signer-serial", "serial"),
        _f("document-type", "token"), _f("commune", "commune")),
    EntryType.DOCUMENT_WITHDRAWN: (
        _f("time", "time"), _f("document", "token"), _f("version", "int"), _f("commune", "commune")),
    EntryType.DOCUMENT_SUPERSEDED: (
        _f("time", "time"), _f("document", "token"), _f("version", "int"), _f("superseded-by", "token"),
        _f("commune", "commune")),
    EntryType.AUDIT_ANCHOR: (
        _f("time", "time"), _f("audit-sequence", "int"), _f("audit-head", "hex")),
}


def format_time(t: dt.datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("log entry times must be timezone-aware")
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Entry:
    """A validated entry: its type and its ``(field, value)`` pairs in schema order."""

    type: EntryType
    fields: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        _validate(self.type, self.fields)

    @classmethod
    def build(cls, type_: EntryType, **values: str | int | dt.datetime | Sequence[str] | None) -> Entry:
        """Build from keyword values (``file_sha256=...``); lists for repeated fields, ``None`` to omit."""
        pairs: list[tuple[str, str]] = []
        known = {spec.name.replace("-", "_") for spec in SCHEMAS[type_]}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"fields not in a {type_.value} entry: {sorted(unknown)}")
        for spec in SCHEMAS[type_]:
            v = values.get(spec.name.replace("-", "_"))
            if v is None:
                continue
            items = list(v) if spec.repeated and isinstance(v, (list, tuple)) else [v]
            for item in items:
                if isinstance(item, dt.datetime):
                    item = format_time(item)
                pairs.append((spec.name, str(item)))
        return cls(type_, tuple(pairs))

    def encode(self) -> bytes:
        lines = [f"{MAGIC} {self.type.value}"] + [f"{k} {v}" for k, v in self.fields]
        return ("\n".join(lines) + "\n").encode("utf-8")

    @classmethod
    def parse(cls, data: bytes) -> Entry:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise LogFormatError("a log entry must be UTF-8") from None
        if not text.endswith("\n"):
            raise LogFormatError("a log entry ends with a newline")
        lines = text[:-1].split("\n")
        magic, _, type_name = lines[0].partition(" ")
        if magic != MAGIC:
            raise LogFormatError(f"not a {MAGIC} entry")
        try:
            type_ = EntryType(type_name)
        except ValueError:
            raise LogFormatError(f"unknown log entry type {type_name[:40]!r}") from None
        pairs = []
        for line in lines[1:]:
            name, sep, value = line.partition(" ")
            if not sep:
                raise LogFormatError(f"a log entry line is '<field> <value>': {line[:60]!r}")
            pairs.append((name, value))
        entry = cls(type_, tuple(pairs))
        if entry.encode() != data:
            raise LogFormatError("the log entry is not in its one canonical encoding")
        return entry

    def get(self, name: str) -> str | None:
        for k, v in self.fields:
            if k == name:
                return v
        return None

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.fields if k == name]

    @property
    def commune(self) -> str | None:
        return self.get("commune")

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"type": self.type.value}
        for spec in SCHEMAS[self.type]:
            if spec.repeated:
                out[spec.name] = self.values(spec.name)
            elif (v := self.get(spec.name)) is not None:
                out[spec.name] = v
        return out


def _validate(type_: EntryType, fields: Iterable[tuple[str, str]]) -> None:
    pending = list(fields)
    pos = 0
    for spec in SCHEMAS[type_]:
        count = 0
        while pos < len(pending) and pending[pos][0] == spec.name:
            value = pending[pos][1]
            if not _text(value) or not _CHECKS[spec.kind](value):
                raise LogFormatError(f"bad value for {spec.name} in a {type_.value} entry: {value[:80]!r}")
            pos, count = pos + 1, count + 1
            if not spec.repeated:
                break
        if spec.required and count == 0:
            raise LogFormatError(f"a {type_.value} entry needs {spec.name}")
    if pos != len(pending):
        raise LogFormatError(f"unexpected or misplaced field {pending[pos][0][:40]!r} in a {type_.value} entry")
