"""kyso checks its own signed output before it is registered: nothing kyso could not verify leaves kyso.

Cheap by design (it runs on every signature; on the one-page sample, measured 1.5 ms for B-B, 2.4 ms
for B-T, 3.6 ms for B-LTA on a busy two-core machine, a tenth of the signing itself): no chain
building, no revocation, no difference analysis, and no second pyHanko parse. Two readers that did
not write the file agree on it instead:

- **qpdf** (pikepdf) opens the output, walks its page tree and resolves every object, without a single
  warning (no rebuilt xref, no misplaced object, at least one page: ``qpdf --check``'s structure
  level), and lists the ``/ByteRange`` of every signature field in the AcroForm;
- **the bytes themselves**: the input is a prefix of the output (signed bytes are never rewritten), and
  every ``/ByteRange`` in the appended bytes is ``[0 a b c]`` leaving out exactly a ``<hex>``
  ``/Contents`` string, the last one ending at the end of the file and any earlier one (a B-LTA's
  signature under its archive timestamp) at the end of its revision (``%%EOF``).

Both lists must name the same new signatures. Exactly one is a signature, by the certificate kyso
meant to use: its digest over the byte range matches its signed attributes and the signature verifies
with that certificate's key; a signature timestamp in it covers its signature value and is intact. At
most one more is a document timestamp over the whole file, its token intact.

Any failure is kyso's own bug, never the caller's: ``SelfCheckFailed`` (HTTP 500), audited by the
service, and nothing is registered.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms, x509 as asn1_x509

from signing.errors import SelfCheckFailed
from signing.qpdf import opened, plain
from signing.registry.blobs import PrefixDigest
from signing.registry.records import SignatureValue
from signing.verify.pdf_facts import crypto_check, digest, timestamp_token

_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")
_EOF_END = re.compile(rb"%%EOF[\r\n]*\Z")
_HEX = re.compile(rb"<[0-9A-Fa-f]*>\Z")
MAX_FIELDS = 1000  # a document kyso signs has a handful; bounds the AcroForm walk


@dataclass(frozen=True)
class _Signed:
    """One new signature as read from the bytes: its byte range and its CMS ContentInfo."""

    byte_range: tuple[int, int, int, int]
    content: Any  # cms.ContentInfo

    @property
    def end(self) -> int:
        return self.byte_range[2] + self.byte_range[3]


def check_output(signed: bytes, source: bytes, certificate: asn1_x509.Certificate, *,
                 source_digest: PrefixDigest | None = None) -> list[SignatureValue]:
    """Raise ``SelfCheckFailed`` unless ``signed`` is ``source`` plus one sound signature by ``certificate``
    (and, for B-LTA, a sound document timestamp after it). Returns the signature values kyso added, in
    signing order, for the registry (``signature_records``): read here once, not parsed again.

    ``source_digest``: the SHA-256 state over ``source`` kyso already computed (the registry lookup hashes the
    input). Once the output is proven to start with ``source`` byte for byte, a SHA-256 byte range is hashed
    from that state on: only the bytes kyso appended are hashed again, and every byte is still covered."""
    try:
        return _check(signed, source, certificate, source_digest)
    except SelfCheckFailed:
        raise
    except Exception as exc:  # whatever breaks while reading kyso's own output is kyso's fault
        raise SelfCheckFailed(f"kyso's signed output could not be checked ({type(exc).__name__}: {str(exc)[:160]})",
                              check="exception") from exc


def _check(signed: bytes, source: bytes, certificate: asn1_x509.Certificate,
           source_digest: PrefixDigest | None) -> list[SignatureValue]:
    if not signed.startswith(source):
        raise SelfCheckFailed("kyso's signed output does not start with the bytes it was asked to sign",
                              check="prefix")
    # a state over other bytes than ``source`` (a repaired input's original) is not used
    known = source_digest if source_digest is not None and source_digest.data == source else None
    fields = _qpdf_view(signed)
    new = sorted((_read(signed, m, len(source)) for m in _BYTE_RANGE.finditer(signed, len(source))),
                 key=lambda s: s.end)
    in_form = {br for br in fields if br[2] + br[3] > len(source)}
    if {s.byte_range for s in new} != in_form:
        raise SelfCheckFailed("the signatures in kyso's output bytes and in its AcroForm differ "
                              f"({len(new)} against {len(in_form)})", check="fields")
    kinds = [s.content["content"]["encap_content_info"]["content_type"].native for s in new]
    if kinds.count("data") != 1 or len(kinds) > 2:
        raise SelfCheckFailed(f"kyso's signed output holds {kinds.count('data')} new signatures and "
                              f"{len(kinds) - kinds.count('data')} new timestamps; expected one signature (and at "
                              "most one archive timestamp)", check="count")
    values = []
    for position, (sig, kind) in enumerate(zip(new, kinds, strict=True)):
        _coverage(signed, sig, whole_file=position == len(new) - 1)
        if kind == "data":
            _signature(signed, sig, certificate, known)
        else:
            _document_timestamp(signed, sig, known)
        signed_data = sig.content["content"]
        signer = certificate if kind == "data" else _signer_of(signed_data)
        values.append(SignatureValue(value=signed_data["signer_infos"][0]["signature"].native,
                                     source="sign" if kind == "data" else "timestamp",
                                     signer_serial=format(signer.serial_number, "X") if signer is not None else None))
    return values


def _qpdf_view(signed: bytes) -> list[tuple[int, int, int, int]]:
    """qpdf's reading: no warning while opening, walking the pages and resolving every object, at least one
    page; the byte ranges of the AcroForm's signature values."""
    import pikepdf

    with opened(signed) as document:
        pages = len(document.pages)
        len(document.objects)  # resolves every object: a misplaced one makes qpdf warn and rebuild the xref
        warnings = document.get_warnings()
        if warnings or pages == 0:
            raise SelfCheckFailed(f"qpdf finds kyso's signed output unsound ({pages} pages; "
                                  f"{plain(warnings[0]) if warnings else 'no warning'})", check="structure")
        ranges: list[tuple[int, int, int, int]] = []
        form = document.Root.get("/AcroForm")
        stack = list(form.get("/Fields", [])) if form is not None else []
        seen = 0
        while stack and seen < MAX_FIELDS:
            field = stack.pop()
            seen += 1
            if not isinstance(field, pikepdf.Dictionary):
                continue
            stack.extend(field.get("/Kids", []))
            value = field.get("/V")
            if isinstance(value, pikepdf.Dictionary) and "/ByteRange" in value:
                ranges.append(tuple(int(x) for x in value.ByteRange))  # type: ignore[arg-type]
        return ranges


def _read(signed: bytes, match: re.Match[bytes], appended_from: int) -> _Signed:
    a, b, c, d = (int(x) for x in match.groups())
    hole = signed[b:c]
    if a != 0 or not b < c <= c + d <= len(signed) or not _HEX.match(hole) or b <= match.start() < c:
        raise SelfCheckFailed(f"a /ByteRange [{a} {b} {c} {d}] in kyso's output does not leave out exactly one "
                              "/Contents string", check="coverage")
    if b < appended_from:
        raise SelfCheckFailed("a new signature's /Contents lies in the bytes kyso was asked to sign", check="coverage")
    return _Signed((a, b, c, d), cms.ContentInfo.load(bytes.fromhex(hole[1:-1].decode("ascii"))))  # padding ignored


def _coverage(signed: bytes, sig: _Signed, *, whole_file: bool) -> None:
    if whole_file and sig.end != len(signed):
        raise SelfCheckFailed(f"kyso's last signature covers {sig.end:,} of {len(signed):,} bytes, not the whole "
                              "file", check="coverage")
    if not whole_file and not _EOF_END.search(signed, 0, sig.end):
        raise SelfCheckFailed("kyso's signature does not end at the end of a revision (%%EOF)", check="coverage")


def _range_digest(signed: bytes, sig: _Signed, algorithm: str, known: PrefixDigest | None) -> bytes:
    """The digest of the byte range; ``known``: a SHA-256 state over the first bytes of ``signed`` (``_check``
    proved ``signed`` starts with them), continued instead of hashing them again."""
    a, b, c, d = sig.byte_range
    view = memoryview(signed)
    if known is not None and algorithm == "sha256" and a == 0 and b >= len(known.data):
        h = known.running()
        h.update(view[len(known.data):b])
    else:
        h = hashlib.new(algorithm)
        h.update(view[a:a + b])
    h.update(view[c:c + d])
    return h.digest()


def _signature(signed: bytes, sig: _Signed, certificate: asn1_x509.Certificate, known: PrefixDigest | None) -> None:
    signed_data = sig.content["content"]
    signer_info = signed_data["signer_infos"][0]
    if not _names(signer_info, certificate):
        raise SelfCheckFailed("kyso's signature names a signer certificate other than the credential's",
                              check="signer")
    algorithm = signer_info["digest_algorithm"]["algorithm"].native
    intact, valid = crypto_check(signer_info, certificate, "data",
                                 _range_digest(signed, sig, _hashlib_name(algorithm), known))
    if not (intact and valid):
        raise SelfCheckFailed(f"kyso's signature does not verify (digest matches: {intact}, signature verifies: "
                              f"{valid})", check="integrity")
    token = timestamp_token(signer_info)
    if token is not None:
        imprint = token["content"]["encap_content_info"]["content"].parsed["message_imprint"]
        expected = digest(imprint["hash_algorithm"]["algorithm"].native, signer_info["signature"].native)
        _token(token["content"], expected == imprint["hashed_message"].native, "kyso's signature timestamp")


def _document_timestamp(signed: bytes, sig: _Signed, known: PrefixDigest | None) -> None:
    signed_data = sig.content["content"]
    imprint = signed_data["encap_content_info"]["content"].parsed["message_imprint"]
    algorithm = _hashlib_name(imprint["hash_algorithm"]["algorithm"].native)
    _token(signed_data, _range_digest(signed, sig, algorithm, known) == imprint["hashed_message"].native,
           "kyso's document timestamp")


def _token(signed_data: Any, imprint_ok: bool, what: str) -> None:
    """A timestamp token over the right bytes, intact and signed by the TSA certificate it carries."""
    signer_info = signed_data["signer_infos"][0]
    content = bytes(signed_data["encap_content_info"]["content"])
    intact, valid = crypto_check(signer_info, _signer_of(signed_data), "tst_info",
                                 digest(signer_info["digest_algorithm"]["algorithm"].native, content))
    if not (imprint_ok and intact and valid):
        raise SelfCheckFailed(f"{what} does not verify (imprint matches: {imprint_ok}, token intact: "
                              f"{intact and valid})", check="timestamp")


def _names(signer_info: Any, cert: asn1_x509.Certificate) -> bool:
    """Whether a SignerInfo's ``sid`` names ``cert`` (issuer and serial, or subject key identifier)."""
    sid = signer_info["sid"]
    if sid.name == "issuer_and_serial_number":
        return bool(sid.chosen["serial_number"].native == cert.serial_number
                    and sid.chosen["issuer"].dump() == cert.issuer.dump())
    return bool(sid.chosen.native == cert.key_identifier)


def _signer_of(signed_data: Any) -> asn1_x509.Certificate | None:
    """The certificate a SignedData's one SignerInfo names, among those it carries (the integrity check that
    follows verifies the signed attributes, ESS signing-certificate included, with it)."""
    signer_info = signed_data["signer_infos"][0]
    for choice in signed_data["certificates"] or ():
        if choice.name == "certificate" and _names(signer_info, choice.chosen):
            return choice.chosen
    return None


def _hashlib_name(algorithm: str) -> str:
    return algorithm.replace("_", "-") if algorithm.startswith("sha3") else algorithm
