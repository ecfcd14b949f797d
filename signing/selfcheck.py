"""kyso checks its own signed output before it is registered: nothing kyso could not verify leaves kyso.

Cheap by design (it runs on every signature): no chain building, no revocation, no difference
analysis. What it proves about the bytes about to be registered and handed out:

- the signed input is a prefix of the output (signed bytes are never rewritten);
- exactly one new signature by kyso's signer, whose certificate is the one kyso meant to use, whose
  digest over its ``/ByteRange`` matches the signed attributes and whose signature verifies with that
  certificate's public key; a signature timestamp in it matches the signature value and is intact;
- every new signature's ``/ByteRange`` is ``[0 a b c]`` with only its ``/Contents`` left out, the
  last one covering the whole file and earlier ones (a B-LTA's signature under its archive
  timestamp) their whole revision; a new document timestamp's imprint matches too;
- the output's structure passes the same intake check as an input (xref offsets, a page tree with
  pages, nothing qpdf would repair).

Any failure is kyso's own bug, never the caller's: ``SelfCheckFailed`` (HTTP 500), audited by the
service, and nothing is registered.
"""
from __future__ import annotations

from typing import Any

from asn1crypto import x509 as asn1_x509
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import SignatureCoverageLevel

from core.errors import InvalidInput

from . import intake
from .errors import SelfCheckFailed
from .pdf_facts import covered_end, crypto_check, digest, timestamp_token


def check_output(signed: bytes, source: bytes, certificate: asn1_x509.Certificate) -> None:
    """Raise ``SelfCheckFailed`` unless ``signed`` is ``source`` plus one sound signature by ``certificate``
    (and, for B-LTA, a sound document timestamp after it)."""
    try:
        _check(signed, source, certificate)
    except SelfCheckFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever breaks while reading kyso's own output is kyso's fault
        raise SelfCheckFailed(f"kyso's signed output could not be checked ({type(exc).__name__}: {str(exc)[:160]})",
                              check="exception") from exc


def _check(signed: bytes, source: bytes, certificate: asn1_x509.Certificate) -> None:
    if not signed.startswith(source):
        raise SelfCheckFailed("kyso's signed output does not start with the bytes it was asked to sign",
                              check="prefix")
    try:
        reader = intake.check(signed)
    except (intake.NeedsRepair, InvalidInput) as exc:
        raise SelfCheckFailed(f"kyso's signed output is not a sound PDF: {exc}", check="structure") from None
    try:
        new = sorted((s for s in reader.embedded_signatures if covered_end(s) > len(source)), key=covered_end)
    except Exception as exc:  # noqa: BLE001 - unreadable signature fields in kyso's own output
        raise SelfCheckFailed(f"kyso's signed output has unreadable signatures ({type(exc).__name__}: "
                              f"{str(exc)[:120]})", check="signatures") from None
    regular = [s for s in new if _content_type(s) == "data"]
    if len(regular) != 1 or len(new) - len(regular) > 1:
        raise SelfCheckFailed(f"kyso's signed output holds {len(regular)} new signatures and "
                              f"{len(new) - len(regular)} new timestamps; expected one signature (and at most one "
                              "archive timestamp)", check="count")
    for position, sig in enumerate(new):
        last = position == len(new) - 1
        _coverage(sig, whole_file=last)
        if _content_type(sig) == "data":
            _signature(sig, certificate)
        else:
            _document_timestamp(sig)


def _content_type(sig: EmbeddedPdfSignature) -> str:
    return str(sig.signed_data["encap_content_info"]["content_type"].native)


def _coverage(sig: EmbeddedPdfSignature, *, whole_file: bool) -> None:
    try:
        coverage = sig.evaluate_signature_coverage()
    except Exception as exc:  # noqa: BLE001
        raise SelfCheckFailed(f"the coverage of kyso's signature {sig.field_name} cannot be read "
                              f"({type(exc).__name__})", check="coverage") from None
    wanted = {SignatureCoverageLevel.ENTIRE_FILE} if whole_file else {SignatureCoverageLevel.ENTIRE_FILE,
                                                                      SignatureCoverageLevel.ENTIRE_REVISION}
    if coverage not in wanted:
        raise SelfCheckFailed(f"kyso's signature {sig.field_name} covers {coverage.name}, not "
                              f"{'the whole file' if whole_file else 'its whole revision'} except its /Contents",
                              check="coverage")


def _names(signer_info: Any, cert: asn1_x509.Certificate) -> bool:
    """Whether a SignerInfo's ``sid`` names ``cert`` (issuer and serial, or subject key identifier)."""
    sid = signer_info["sid"]
    if sid.name == "issuer_and_serial_number":
        return (sid.chosen["serial_number"].native == cert.serial_number
                and sid.chosen["issuer"].dump() == cert.issuer.dump())
    return sid.chosen.native == cert.key_identifier


def _signer_of(signed_data: Any) -> asn1_x509.Certificate | None:
    """The certificate a SignedData's one SignerInfo names, among those it carries (no ESS hashing: the
    integrity check that follows verifies the signed attributes, ESS included, with this certificate)."""
    signer_info = signed_data["signer_infos"][0]
    for choice in signed_data["certificates"] or ():
        if choice.name == "certificate" and _names(signer_info, choice.chosen):
            return choice.chosen
    return None


def _signature(sig: EmbeddedPdfSignature, certificate: asn1_x509.Certificate) -> None:
    if not _names(sig.signer_info, certificate) or _signer_of(sig.signed_data) is None:
        raise SelfCheckFailed(f"kyso's signature {sig.field_name} names a signer certificate other than the "
                              "credential's", check="signer")
    intact, valid = crypto_check(sig.signer_info, certificate, "data", sig.compute_digest())
    if not (intact and valid):
        raise SelfCheckFailed(f"kyso's signature {sig.field_name} does not verify (digest matches: {intact}, "
                              f"signature verifies: {valid})", check="integrity")
    token = timestamp_token(sig.signer_info)
    if token is not None:
        imprint = token["content"]["encap_content_info"]["content"].parsed["message_imprint"]
        expected = digest(imprint["hash_algorithm"]["algorithm"].native, sig.signer_info["signature"].native)
        _token(token["content"], expected == imprint["hashed_message"].native, f"{sig.field_name}'s timestamp")


def _document_timestamp(sig: EmbeddedPdfSignature) -> None:
    tst_info = sig.signed_data["encap_content_info"]["content"].parsed
    _token(sig.signed_data, sig.compute_digest() == tst_info["message_imprint"]["hashed_message"].native,
           f"document timestamp {sig.field_name}")


def _token(signed_data: Any, imprint_ok: bool, what: str) -> None:
    """A timestamp token over the right bytes, intact and signed by the TSA certificate it carries."""
    signer_info = signed_data["signer_infos"][0]
    content = bytes(signed_data["encap_content_info"]["content"])
    intact, valid = crypto_check(signer_info, _signer_of(signed_data), "tst_info",
                                 digest(signer_info["digest_algorithm"]["algorithm"].native, content))
    if not (imprint_ok and intact and valid):
        raise SelfCheckFailed(f"{what} does not verify (imprint matches: {imprint_ok}, token intact: "
                              f"{intact and valid})", check="timestamp")
