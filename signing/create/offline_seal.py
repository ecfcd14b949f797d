"""The offline seal in the verification QR code: a document's key facts, signed, readable without a network.

In the spirit of ICAO's Visible Digital Seal and France's 2D-Doc: a printed copy whose text was
altered no longer matches the seal its QR code carries. The QR code holds
``{KYSO_BASE_URL}/v/{document_id}#{token}``; the token sits in the URL fragment, so it never
reaches a server log, and the citizen page checks it in the browser with WebCrypto against the
keys it serves at ``/v/keys.json`` (``public_keys``) and caches for offline use. This format is
shared with that page and must not change (a new format gets a new version tag):

- ``token = b64url(payload) + "." + b64url(signature)`` (base64url, no padding);
- ``signature``: ECDSA P-256 / SHA-256 over the payload bytes, raw IEEE P1363 ``r || s`` (64 bytes,
  WebCrypto's form), made by the ``qr-seal`` certificate's key inside its keystore;
- ``payload``: UTF-8 of items joined by U+001F: ``KS1``, kid, document id, document type, commune
  code, the signing date in Vietnam time as ``YYYYMMDD``, then ``name=value`` for each seal field
  the document type lists (``policies/documents/document-types.yaml``), in the policy's order;
  values NFC-normalized, control characters removed, at most 80 characters each;
- ``kid = b64url(SHA-256(SubjectPublicKeyInfo DER)[:6])``: 8 characters naming the seal certificate.

Since issue 19 kyso prints the compact ``KS2`` form, which a phone reads at once (QR version ≤ 10 at
level M for a typical seal); ``KS1`` seals already on paper keep verifying (``parse`` reads both):

- ``token = "KS2:" + base42(payload || signature)``: RFC 9285's base45 scheme (two bytes → three
  characters, little-endian digits) over the 42 characters of QR alphanumeric mode a URL fragment
  carries unchanged (``0-9 A-Z $ * - . / :``; base45's space and ``%`` are percent-encoded or
  ambiguous in a URL, ``+`` reads as a space in some apps), so the QR code holds the token in
  alphanumeric mode (5.5 bits a character) after the address in byte mode;
- ``payload`` (binary): byte ``0x02``; the kid's 6 bytes; the document id (12 characters of the id
  alphabet, 5 bits each) in 8 bytes; the date as days since 2000-01-01 (2 bytes, big-endian); the
  document type and the commune code as *names*; then, per seal field, its name as a *name* and its
  value as *text*. A *name* is one byte ``0x80 + i`` for the i-th entry of ``CODES`` (append-only:
  a code never changes meaning), or ``0x7F`` and a varint for five digits (a commune code), or a
  length byte < 0x7F and ASCII. A *text* is a varint ``2 × length + packed`` then, packed, one byte
  a character (its index in ``TEXT``: printable ASCII and the 134 Vietnamese letters, so Vietnamese
  costs a byte a letter, not two or three), else UTF-8 bytes. Varints are LEB128;
- ``signature``: as in KS1, over the payload bytes.

A seal made for a later version of a document (another signature printing a new QR code) ends with
the field ``log`` = the transparency-log index of the document's registration, when kyso has verified
its inclusion proof at that moment; a first signature's seal has none (the seal is signed before the
log entry exists). The index is the issuer's signed claim: check it with the proof at
``/log/proof/{document_id}`` (docs/transparency.md).

Seal certificates are renewed, never revoked by renewal: every one kyso ever issued stays in
``public_keys`` so old printed copies stay verifiable.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from core import clock
from core.cache import Cache, EpochWatch
from core.db import transaction
from hsm import SignatureScheme
from pki.context import PkiContext
from pki.store import current_qr_seal, qr_seal_certificates
from policies.documents import DocumentType
from signing.errors import SealFieldsInvalid, SealTokenInvalid
from signing.material import revocation_watch

VERSION = "KS1"
VERSION2 = "KS2"
PREFIX2 = VERSION2 + ":"
FORMAT2 = 0x02
BASE42 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ$*-./:"
_BASE42_INDEX = {ch: i for i, ch in enumerate(BASE42)}
ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # signing/create/service.py's: 12 characters, 5 bits each
_ID_INDEX = {ch: i for i, ch in enumerate(ID_ALPHABET)}
EPOCH = dt.date(2000, 1, 1)
# the one-byte codes of the KS2 payload: APPEND ONLY (seals on paper name their fields by these codes);
# the shipped policy's document types and seal-field names; others are written out
CODES = ("marital-status-certificate", "certified-copy", "construction-permit", "land-procedure-result",
         "dossier-result", "holder", "reg_no", "cert_no", "original", "permit_no", "owner", "site", "doc_no",
         "parcel", "dossier_no", "applicant", "log")
# the field a later version's seal adds: the log index of the document's registration, proven when the seal
# was made (a first signature's seal cannot carry it: its entry is sequenced after the seal is signed)
LOG_FIELD = "log"
_CODE_INDEX = {name: i for i, name in enumerate(CODES)}
TEXT = ("".join(chr(c) for c in range(0x20, 0x7F))
        + "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ"
        + "ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬÈÉẺẼẸÊỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢÙÚỦŨỤƯỪỨỬỮỰỲÝỶỸỴĐ")
_TEXT_INDEX = {ch: i for i, ch in enumerate(TEXT)}
_DIGITS5 = re.compile(r"^\d{5}$")
SEPARATOR = "\x1f"  # U+001F UNIT SEPARATOR: never in a cleaned value
MAX_VALUE_CHARS = 80
MAX_TOKEN_CHARS = 4096
ALGORITHM = "ES256"
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
TTL_SECONDS = 5.0  # like signing/material.py: a renewed seal certificate is picked up within seconds
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_FIELD_NAME = re.compile(r"^[a-z_]{1,16}$")
_HEADER_ITEM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_COORDINATE_BYTES = 32

# SealCheck.reason codes
OK = "ok"
MALFORMED = "malformed"
UNSUPPORTED_VERSION = "unsupported_version"
UNKNOWN_KID = "unknown_kid"
BAD_SIGNATURE = "bad_signature"
WRONG_DOCUMENT = "wrong_document"
KEY_REVOKED = "key_revoked"
OUTSIDE_KEY_VALIDITY = "outside_key_validity"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict: the base64url alphabet, no padding, no whitespace."""
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url without padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def kid_of(spki_der: bytes) -> str:
    """The 8-character key id: base64url of the first 6 bytes of SHA-256(SubjectPublicKeyInfo DER)."""
    return b64url(hashlib.sha256(spki_der).digest()[:6])


def clean_value(value: str) -> str:
    """NFC, control characters (Unicode category Cc: tabs, newlines, U+001F…) removed, ends trimmed."""
    normal = unicodedata.normalize("NFC", value)
    return "".join(ch for ch in normal if unicodedata.category(ch) != "Cc").strip()


@dataclass(frozen=True)
class SealFacts:
    """What a seal asserts about one document (the kid is added when it is signed)."""

    document_id: str
    document_type: str
    commune_code: str
    date: dt.date  # the signing date in Vietnam time
    fields: tuple[tuple[str, str], ...] = ()  # (name, value) in the policy's order

    @classmethod
    def of(cls, document_id: str, document_type: str, commune_code: str, signed_at: dt.datetime,
           fields: Iterable[tuple[str, str]] = ()) -> SealFacts:
        return cls(document_id, document_type, commune_code, signed_at.astimezone(VIETNAM).date(), tuple(fields))

    def field(self, name: str) -> str | None:
        return next((value for key, value in self.fields if key == name), None)


@dataclass(frozen=True)
class ParsedSeal:
    kid: str
    facts: SealFacts
    payload: bytes
    signature: bytes  # raw r || s, 64 bytes


@dataclass(frozen=True)
class SealCheck:
    """The verdict on one token: ``ok`` only when every check passed; ``reason`` names the first failure."""

    ok: bool
    reason: str  # ok | malformed | unsupported_version | unknown_kid | bad_signature | wrong_document
    #              | key_revoked | outside_key_validity
    facts: SealFacts | None = None
    kid: str | None = None


# -- the seal fields of a request ---------------------------------------------------------------
def checked_fields(doc_type: DocumentType, values: Mapping[str, object], *,
                   complete: bool = True) -> tuple[tuple[str, str], ...]:
    """The request's seal fields, cleaned, in the policy's order; raises ``SealFieldsInvalid`` naming
    unknown fields, missing required ones (unless ``complete`` is false: a signature that prints no
    QR code, e.g. the agency seal after the person, needs none) and values that are too long."""
    known = [f.name for f in doc_type.seal_fields]
    problems: list[str] = []
    unknown = sorted(set(values) - set(known))
    if unknown:
        allowed = ", ".join(known) if known else "none"
        problems.append(f"unknown seal field(s) {', '.join(map(repr, unknown))} for document type "
                        f"{doc_type.name!r} (allowed: {allowed})")
    items: list[tuple[str, str]] = []
    for spec in doc_type.seal_fields:
        raw = values.get(spec.name)
        if raw is None:
            raw = ""
        if not isinstance(raw, str):  # the request's JSON may hold anything
            problems.append(f"seal field {spec.name!r} must be text")
            continue
        value = clean_value(raw)
        if not value:
            if spec.required and complete:
                problems.append(f"seal field {spec.name!r} ({spec.label_en}) is required for {doc_type.name!r}")
            continue
        if len(value) > MAX_VALUE_CHARS:
            problems.append(f"seal field {spec.name!r} has {len(value)} characters; the QR code carries at most "
                            f"{MAX_VALUE_CHARS} per field")
            continue
        items.append((spec.name, value))
    if problems:
        raise SealFieldsInvalid("; ".join(problems), fields=known, problems=problems)
    return tuple(items)


def _field_value(name: str, raw: str) -> str:
    """A seal field's value as both formats carry it; its name and length checked."""
    if not _FIELD_NAME.match(name):
        raise ValueError(f"seal field name {name!r} must be 1-16 characters a-z or _")
    value = clean_value(raw)
    if len(value) > MAX_VALUE_CHARS:
        raise SealFieldsInvalid(f"seal field {name!r} has {len(value)} characters; at most {MAX_VALUE_CHARS}")
    return value


# -- format --------------------------------------------------------------------------------------
def encode(facts: SealFacts, kid: str) -> bytes:
    """The payload bytes a seal signs (see the module docstring)."""
    header = [VERSION, kid, facts.document_id, facts.document_type, facts.commune_code]
    for item in header:
        if not _HEADER_ITEM.match(item):
            raise ValueError(f"seal item {item!r} is not a short identifier")
    items = [*header, facts.date.strftime("%Y%m%d")]
    for name, raw in facts.fields:
        value = _field_value(name, raw)
        items.append(f"{name}={value}")
    return SEPARATOR.join(items).encode("utf-8")


def base42(data: bytes) -> str:
    """RFC 9285's scheme over ``BASE42``: each two bytes → three characters, a last byte → two."""
    out = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        out += [BASE42[n % 42], BASE42[n // 42 % 42], BASE42[n // 1764]]
    if len(data) % 2:
        out += [BASE42[data[-1] % 42], BASE42[data[-1] // 42]]
    return "".join(out)


def base42_decode(text: str) -> bytes:
    if len(text) % 3 == 1:
        raise ValueError("a base42 text is never 1 more than a multiple of 3 long")
    try:
        digits = [_BASE42_INDEX[ch] for ch in text]
    except KeyError:
        raise ValueError("not base42") from None
    out = bytearray()
    for i in range(0, len(digits), 3):
        chunk = digits[i:i + 3]
        n = sum(d * 42 ** k for k, d in enumerate(chunk))
        if n >= (65536 if len(chunk) == 3 else 256):
            raise ValueError("base42 group out of range")
        out += n.to_bytes(len(chunk) - 1, "big")
    return bytes(out)


def _name(out: bytearray, name: str) -> None:
    code = _CODE_INDEX.get(name)
    if code is not None:
        out.append(0x80 + code)
        return
    if _DIGITS5.match(name):
        out.append(0x7F)
        _varint(out, int(name))
        return
    raw = name.encode("ascii")
    out.append(len(raw))
    out += raw


def _varint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)


def encode2(facts: SealFacts, kid: str) -> bytes:
    """The KS2 payload bytes a seal signs (see the module docstring)."""
    for item in (facts.document_type, facts.commune_code):
        if not _HEADER_ITEM.match(item):
            raise ValueError(f"seal item {item!r} is not a short identifier")
    kid_bytes = b64url_decode(kid)
    if len(kid_bytes) != 6 or b64url(kid_bytes) != kid:
        raise ValueError(f"kid {kid!r} is not 6 bytes in base64url")
    if len(facts.document_id) != 12 or any(ch not in _ID_INDEX for ch in facts.document_id):
        raise ValueError(f"document id {facts.document_id!r} is not 12 characters of the id alphabet")
    number = 0
    for ch in facts.document_id:
        number = number * 32 + _ID_INDEX[ch]
    days = (facts.date - EPOCH).days
    if not 0 <= days < 65536:
        raise ValueError(f"the seal's date {facts.date} is outside 2000-2179")
    out = bytearray([FORMAT2])
    out += kid_bytes + number.to_bytes(8, "big") + days.to_bytes(2, "big")
    _name(out, facts.document_type)
    _name(out, facts.commune_code)
    for name, raw in facts.fields:
        value = _field_value(name, raw)
        _name(out, name)
        if all(ch in _TEXT_INDEX for ch in value):
            _varint(out, 2 * len(value) + 1)
            out += bytes(_TEXT_INDEX[ch] for ch in value)
        else:
            data = value.encode("utf-8")
            _varint(out, 2 * len(data))
            out += data
    return bytes(out)


def token2(payload: bytes, signature: bytes) -> str:
    return PREFIX2 + base42(payload + signature)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise ValueError("the seal's payload ends early")
        part = self.data[self.at:self.at + n]
        self.at += n
        return part

    def name(self) -> str:
        first = self.take(1)[0]
        if first >= 0x80:
            if first - 0x80 >= len(CODES):
                raise ValueError(f"unknown code {first:#x}")
            return CODES[first - 0x80]
        if first == 0x7F:
            number = self.varint()
            if number > 99999:
                raise ValueError("a five-digit code out of range")
            return f"{number:05d}"
        return self.take(first).decode("ascii")

    def text(self) -> str:
        size = self.varint()
        data = self.take(size // 2)
        if size % 2:
            if any(byte >= len(TEXT) for byte in data):
                raise ValueError("a packed character out of range")
            return "".join(TEXT[byte] for byte in data)
        return data.decode("utf-8")

    def varint(self) -> int:
        n, shift = 0, 0
        while True:
            byte = self.take(1)[0]
            n |= (byte & 0x7F) << shift
            if byte < 0x80:
                return n
            shift += 7
            if shift > 14:
                raise ValueError("varint too long")


def _parse2(token: str) -> ParsedSeal:
    try:
        raw = base42_decode(token[len(PREFIX2):])
    except ValueError:
        raise _invalid("the seal is not base42") from None
    if len(raw) < 1 + 6 + 8 + 2 + 2 + 2 * _COORDINATE_BYTES:
        raise _invalid("the seal is too short")
    payload, signature = raw[:-2 * _COORDINATE_BYTES], raw[-2 * _COORDINATE_BYTES:]
    if payload[0] != FORMAT2:
        raise _invalid(f"unsupported seal format {payload[0]:#x} after {PREFIX2}", UNSUPPORTED_VERSION)
    reader = _Reader(payload)
    try:
        reader.take(1)
        kid = b64url(reader.take(6))
        number = int.from_bytes(reader.take(8), "big")
        if number >> 60:
            raise ValueError("document id out of range")
        document_id = "".join(ID_ALPHABET[(number >> (5 * (11 - i))) & 31] for i in range(12))
        date = EPOCH + dt.timedelta(days=int.from_bytes(reader.take(2), "big"))
        document_type, commune_code = reader.name(), reader.name()
        fields: list[tuple[str, str]] = []
        while reader.at < len(payload):
            name = reader.name()
            fields.append((name, reader.text()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid(f"the seal's payload is not well formed ({exc})") from None
    if not all(_HEADER_ITEM.match(v) for v in (document_type, commune_code)):
        raise _invalid("the seal's identifiers are not well formed")
    if not all(_FIELD_NAME.match(name) for name, _ in fields):
        raise _invalid("the seal's field names are not well formed")
    facts = SealFacts(document_id, document_type, commune_code, date, tuple(fields))
    return ParsedSeal(kid=kid, facts=facts, payload=payload, signature=signature)


def _invalid(message: str, reason: str = MALFORMED) -> SealTokenInvalid:
    return SealTokenInvalid(message, reason=reason)


def parse(token: str) -> ParsedSeal:
    """Split and decode a token, KS2 or KS1 (or the whole QR text ``…/v/ID#token``); checks form, not signature."""
    token = token.strip()
    if "#" in token:
        token = token.rsplit("#", 1)[1]
    if len(token) > MAX_TOKEN_CHARS:
        raise _invalid(f"the seal is longer than {MAX_TOKEN_CHARS} characters")
    if token.startswith(PREFIX2):
        return _parse2(token)
    parts = token.split(".")
    if len(parts) != 2:
        raise _invalid("a seal is two base64url parts joined by '.'")
    try:
        payload, signature = b64url_decode(parts[0]), b64url_decode(parts[1])
    except (ValueError, binascii.Error):
        raise _invalid("the seal is not base64url (no padding)") from None
    if len(signature) != 2 * _COORDINATE_BYTES:
        raise _invalid(f"the seal's signature is {len(signature)} bytes; ES256 in P1363 form has 64")
    try:
        items = payload.decode("utf-8").split(SEPARATOR)
    except UnicodeDecodeError:
        raise _invalid("the seal's payload is not UTF-8") from None
    if items[0] != VERSION:
        raise _invalid(f"unsupported seal version {items[0][:8]!r} (this kyso reads {VERSION2} and {VERSION})",
                       UNSUPPORTED_VERSION)
    if len(items) < 6:
        raise _invalid("the seal's payload has fewer than six items")
    _, kid, document_id, document_type, commune_code, date_text = items[:6]
    if not all(_HEADER_ITEM.match(v) for v in (kid, document_id, document_type, commune_code)):
        raise _invalid("the seal's identifiers are not well formed")
    try:
        if not re.fullmatch(r"\d{8}", date_text):
            raise ValueError(date_text)
        date = dt.datetime.strptime(date_text, "%Y%m%d").replace(tzinfo=dt.UTC).date()
    except ValueError:
        raise _invalid(f"the seal's date {date_text[:12]!r} is not YYYYMMDD") from None
    fields: list[tuple[str, str]] = []
    for item in items[6:]:
        name, sep, value = item.partition("=")
        if not sep or not _FIELD_NAME.match(name):
            raise _invalid(f"the seal's field {item[:20]!r} is not name=value")
        fields.append((name, value))
    facts = SealFacts(document_id, document_type, commune_code, date, tuple(fields))
    return ParsedSeal(kid=kid, facts=facts, payload=payload, signature=signature)


# -- verification (cryptography; the browser does the same with WebCrypto) ------------------------
def _jwk_key(jwk: Mapping[str, Any]) -> ec.EllipticCurvePublicKey:
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("not an EC P-256 JWK")
    x, y = b64url_decode(str(jwk["x"])), b64url_decode(str(jwk["y"]))
    if len(x) != _COORDINATE_BYTES or len(y) != _COORDINATE_BYTES:
        raise ValueError("P-256 coordinates are 32 bytes")
    return ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                         ec.SECP256R1()).public_key()


def _vietnam_date(iso: str) -> dt.date:
    moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(VIETNAM).date()


def verify(token: str, document_id: str, keys: Iterable[Mapping[str, Any]]) -> SealCheck:
    """Check a token against the published keys (``public_keys``) and the document id the URL names.

    Checks, in order: form and version, a known kid, the ES256 signature over the payload, the
    document id, the key's status (a revoked seal key vouches for nothing) and that the seal's date
    falls within the key certificate's validity. An expired key still verifies old seals.
    """
    try:
        parsed = parse(token)
    except SealTokenInvalid as exc:
        return SealCheck(ok=False, reason=str(exc.details.get("reason", MALFORMED)))
    facts, kid = parsed.facts, parsed.kid
    key = next((k for k in keys if k.get("kid") == kid), None)
    if key is None:
        return SealCheck(ok=False, reason=UNKNOWN_KID, facts=facts, kid=kid)
    try:
        public_key = _jwk_key(key["jwk"])
        half = _COORDINATE_BYTES
        der = encode_dss_signature(int.from_bytes(parsed.signature[:half], "big"),
                                   int.from_bytes(parsed.signature[half:], "big"))
        public_key.verify(der, parsed.payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return SealCheck(ok=False, reason=BAD_SIGNATURE, facts=facts, kid=kid)
    if facts.document_id != document_id:
        return SealCheck(ok=False, reason=WRONG_DOCUMENT, facts=facts, kid=kid)
    if key.get("status") in ("revoked", "on_hold"):
        return SealCheck(ok=False, reason=KEY_REVOKED, facts=facts, kid=kid)
    try:
        within = _vietnam_date(key["not_before"]) <= facts.date <= _vietnam_date(key["not_after"])
    except (KeyError, ValueError, TypeError):
        within = False
    if not within:
        return SealCheck(ok=False, reason=OUTSIDE_KEY_VALIDITY, facts=facts, kid=kid)
    return SealCheck(ok=True, reason=OK, facts=facts, kid=kid)


# -- the published keys ------------------------------------------------------------------------
def _spki(ctx: PkiContext, der: bytes) -> tuple[bytes, ec.EllipticCurvePublicKey]:
    public_key = ctx.certificate(der).public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != "secp256r1":
        raise ValueError("an offline-seal certificate must carry an EC P-256 key")
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return spki, public_key


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def public_keys(ctx: PkiContext) -> list[dict[str, Any]]:
    """Every offline-seal key kyso ever certified (current and previous), oldest first, as the
    citizen page serves them at ``/v/keys.json``: kid, alg, JWK, subject, validity and status
    (valid | expired | revoked | on_hold)."""
    now = clock.now()
    keys: list[dict[str, Any]] = []
    with transaction(ctx.sessions) as session:
        for row in qr_seal_certificates(session):
            try:
                spki, public_key = _spki(ctx, row.der)
            except ValueError:
                continue  # not a P-256 key: it could not have signed a seal
            numbers = public_key.public_numbers()
            status = row.status if row.status != "valid" else ("expired" if row.not_after <= now else "valid")
            keys.append({
                "kid": kid_of(spki), "alg": ALGORITHM,
                "jwk": {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(_COORDINATE_BYTES, "big")),
                        "y": b64url(numbers.y.to_bytes(_COORDINATE_BYTES, "big"))},
                "subject": row.subject, "not_before": _iso(row.not_before), "not_after": _iso(row.not_after),
                "status": status,
            })
    return keys


# -- signing -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SealMaterial:
    kid: str
    key_ref: str
    serial: str
    not_after: dt.datetime


class SealMaterialCache:
    """The current seal certificate's kid and key reference, per process, owned by the signing
    service; dropped when the revocation epoch moves (``watch``, checked at most every
    ``KYSO_OCSP_CACHE_CHECK_SECONDS``) and after a few seconds anyway, so a renewal or a revocation
    shows (as ``signing/material.py`` does)."""

    def __init__(self, ctx: PkiContext, watch: EpochWatch | None = None) -> None:
        self._ctx = ctx
        self._watch = watch or revocation_watch(ctx)
        self._entry: Cache[str, SealMaterial] = Cache("seal_material", max_entries=1, ttl=TTL_SECONDS,
                                                      watch=self._watch)

    def clear(self) -> None:
        self._entry.clear()
        self._watch.reset()

    def get(self) -> SealMaterial:
        with transaction(self._ctx.sessions) as session:
            self._watch.moved(session)
            material = self._entry.get("current")
            if material is not None and material.not_after > clock.now():
                return material
            row = current_qr_seal(session)
            assert row.key_ref is not None  # current_qr_seal only returns rows with a key here
            spki, _ = _spki(self._ctx, row.der)
            material = SealMaterial(kid=kid_of(spki), key_ref=row.key_ref, serial=row.serial, not_after=row.not_after)
        self._entry.put("current", material)
        return material


def sign_seal(ctx: PkiContext, facts: SealFacts, materials: SealMaterialCache) -> str:
    """The token for ``facts``, signed by the current ``qr-seal`` key inside its keystore
    (``materials``: the signing service's ``SealMaterialCache``).

    Raises ``Unavailable`` (503, ``qr_seal_not_ready``) when kyso has no valid seal certificate.
    """
    material = materials.get()
    payload = encode2(facts, material.kid)
    digest = hashlib.sha256(payload).digest()
    der = ctx.keystores.for_ref(material.key_ref).sign_digest(material.key_ref, digest, hashes.SHA256(),
                                                                 SignatureScheme.ECDSA)
    r, s = decode_dss_signature(der)
    return token2(payload, r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big"))


__all__ = [
    "LOG_FIELD",
    "MAX_VALUE_CHARS",
    "ParsedSeal",
    "SealCheck",
    "SealFacts",
    "checked_fields",
    "clean_value",
    "encode",
    "encode2",
    "kid_of",
    "parse",
    "public_keys",
    "sign_seal",
    "token2",
    "verify",
]
