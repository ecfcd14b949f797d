"""The agency seal follows a person's signature (Decree 30/2020 Art. 32), and only a signature kyso registered
for an entitled person counts: a document timestamp from the public /tsa or a self-signed signature does not
let a client seal what no specialist signed."""
from __future__ import annotations

import datetime as dt
from io import BytesIO

import pytest
from asn1crypto import keys as asn1_keys, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from api.container import Container
from signing import loop
from signing.create import pades
from signing.errors import SigningRefused
from signing.registry import lifecycle
from tests.helpers.signing import CONSENTED, documents, request


def timestamped_only(pki: Container, pdf: bytes) -> bytes:
    """The PDF with one document timestamp by kyso's own TSA (what anyone gets from the public /tsa)."""
    return loop.run(pades.add_document_timestamp(pdf, pki.signing.timestamper(), "sha256", pki.signing.ts_reserve()))


def self_signed(pdf: bytes) -> bytes:
    """The PDF signed by a throw-away self-signed certificate, as anyone can make one."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Nguyễn Văn Giả")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())),
        cert_registry=SimpleCertificateStore())
    out = BytesIO()
    pdf_signer = signers.PdfSigner(signers.PdfSignatureMetadata(field_name="Forged"), signer)
    loop.run(pdf_signer.async_sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf), strict=False), output=out))
    return out.getvalue()


def test_seal_after_a_document_timestamp_only_is_refused(pki: Container, seal: str, sample_pdf: bytes) -> None:
    stamped = timestamped_only(pki, sample_pdf)
    assert len(PdfFileReader(BytesIO(stamped)).embedded_timestamp_signatures) == 1
    with pytest.raises(SigningRefused, match="Art. 32") as caught:
        pki.signing.sign(request(stamped, seal), actor="test", activation=CONSENTED)
    assert caught.value.details["rule"] == "seal_after_person"
    assert documents(pki) == 0


def test_seal_after_a_self_signed_signature_is_refused(pki: Container, seal: str, sample_pdf: bytes) -> None:
    forged = self_signed(sample_pdf)
    assert len(PdfFileReader(BytesIO(forged)).embedded_regular_signatures) == 1
    with pytest.raises(SigningRefused, match="Điều 32"):
        pki.signing.sign(request(forged, seal), actor="test", activation=CONSENTED)
    assert documents(pki) == 0


def test_seal_after_a_kyso_specialist_signature_is_allowed(pki: Container, specialist: str, seal: str,
                                                           sample_pdf: bytes) -> None:
    person = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    sealed = pki.signing.sign(request(person.pdf, seal, "B-T"), actor="test", activation=CONSENTED)
    assert (sealed.document_id, sealed.version) == (person.document_id, 2)
    assert len(PdfFileReader(BytesIO(sealed.pdf)).embedded_regular_signatures) == 2


def test_seal_after_a_specialist_signature_and_a_foreign_increment_is_refused(pki: Container, specialist: str,
                                                                              seal: str, sample_pdf: bytes) -> None:
    """A registered document with anything appended (here a document timestamp) is no longer the version kyso
    registered: the seal needs the current version itself."""
    person = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    with pytest.raises(SigningRefused, match="Art. 32"):
        pki.signing.sign(request(timestamped_only(pki, person.pdf), seal), actor="test", activation=CONSENTED)
    assert documents(pki) == 1


def test_seal_on_a_withdrawn_document_is_refused(pki: Container, specialist: str, seal: str, sample_pdf: bytes) -> None:
    person = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    lifecycle.withdraw(pki.pki, person.document_id, "issued in error", "token:x")
    with pytest.raises(SigningRefused, match="withdrawn"):
        pki.signing.sign(request(person.pdf, seal), actor="test", activation=CONSENTED)
    with pytest.raises(SigningRefused, match="withdrawn"):
        pki.signing.sign(request(person.pdf, specialist), actor="test", activation=CONSENTED)
