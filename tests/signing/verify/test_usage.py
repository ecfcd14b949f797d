"""Extended key usage is enforced on document signers (issue 15, item 5).

kyso's api-client (clientAuth), OCSP responder (OCSPSigning) and TSA (timeStamping) certificates
hold keys kyso controls; a PDF signed with one of them through pyHanko directly (bypassing the
signing service, as a rogue client or a stolen key would) must never come out TOTAL-PASSED. A
specialist's signature still does, and so does a foreign certificate with no EKU extension whose
keyUsage allows nonRepudiation (the Vietnamese CA end-entity profiles).
"""
from __future__ import annotations

import dataclasses
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore
from sqlalchemy import select

from api import mtls, tokens
from api.container import Container
from core.db import transaction
from pki.encoding import key_type_of
from pki.models import Certificate
from signing import loop
from signing.material import MaterialCache, SignerMaterial
from tests.helpers.clock import FrozenClock
from tests.helpers.pdfs import ForeignCA, sign_directly, trusting
from tests.helpers.signing import CORPUS


def material_of(pki: Container, row_filter) -> SignerMaterial:  # type: ignore[no-untyped-def]
    """Signer material for any kyso certificate, whatever its profile (the signing service refuses
    non-signing profiles, so this goes around it); ``key_ref`` is empty when kyso never held the key."""
    with transaction(pki.sessions) as session:
        row = session.execute(select(Certificate).where(row_filter, Certificate.status == "valid")
                              .order_by(Certificate.id.desc()).limit(1)).scalar_one()
        cert = pki.pki.certificate(row.der)
        return SignerMaterial(
            credential_id="-", key_ref=row.key_ref or "", key_type=key_type_of(cert.public_key()), serial=row.serial,
            profile=row.profile, commune_code=None, certificate=asn1_x509.Certificate.load(row.der),
            chain=tuple(MaterialCache._chain(session, row.ca)), common_name=row.common_name, title=None,
            organization=None, unit=None, not_after=row.not_after)


def signed_by_api_client(pki: Container, pdf: bytes) -> tuple[bytes, str]:
    """A PDF signed, with a kyso timestamp, by a client holding the key of its `kyso token cert`
    certificate (clientAuth only; the key never was kyso's)."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")])).sign(key, hashes.SHA256()))
    with transaction(pki.sessions) as session:
        tokens.create(session, "hotich-phuong-ba-dinh", tokens.Role.client, "test")
    issued = mtls.issue_certificate(pki.pki, "hotich-phuong-ba-dinh", csr.public_bytes(serialization.Encoding.PEM),
                                    "test")
    material = material_of(pki, Certificate.serial == issued.serial)
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    signer = signers.SimpleSigner(signing_cert=material.certificate,
                                  signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
                                  cert_registry=SimpleCertificateStore.from_certs([material.certificate,
                                                                                   *material.chain]))
    meta = signers.PdfSignatureMetadata(field_name="Signature1", md_algorithm="sha256",
                                        subfilter=fields.SigSeedSubFilter.PADES)
    out = BytesIO()
    loop.run(signers.PdfSigner(meta, signer, timestamper=pki.signing.timestamper()).async_sign_pdf(
        IncrementalPdfFileWriter(BytesIO(pdf), strict=False), output=out))
    return out.getvalue(), material.profile


@pytest.mark.parametrize("profile", ["api-client", "ocsp-responder", "tsa"])
def test_non_document_certificates_never_pass(pki: Container, sample_pdf: bytes, profile: str) -> None:
    if profile == "api-client":
        pdf, signed_with = signed_by_api_client(pki, sample_pdf)
    else:
        material = material_of(pki, Certificate.profile == profile)
        pdf, signed_with = sign_directly(pki, material, sample_pdf, timestamp=True), material.profile
    assert signed_with == profile

    report = pki.verifier.verify(pdf)

    [s] = report.signatures
    assert s.intact  # the bytes are untouched: only the certificate's purpose is wrong
    assert (s.indication, s.sub_indication) == ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE"), s.summary.en
    assert report.indication != "TOTAL-PASSED" and not report.genuine


def test_specialist_still_passes(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    pdf = sign_directly(pki, pki.signing.material.signer(specialist), sample_pdf, timestamp=True)

    [s] = pki.verifier.verify(pdf).signatures
    assert (s.indication, s.sub_indication) == ("TOTAL-PASSED", None), s.summary.en


def _reissued(foreign: ForeignCA, eku: list[x509.ObjectIdentifier] | None) -> ForeignCA:
    """The same foreign signer key, its certificate re-issued with ``eku`` (None: no EKU extension)."""
    old = foreign.signer
    builder = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(old.issuer)
               .public_key(old.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(old.not_valid_before_utc).not_valid_after(old.not_valid_after_utc))
    for ext in old.extensions:
        if ext.oid != x509.oid.ExtensionOID.EXTENDED_KEY_USAGE:
            builder = builder.add_extension(ext.value, critical=ext.critical)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return dataclasses.replace(foreign, signer=builder.sign(foreign.root_key, hashes.SHA256()))


@pytest.mark.parametrize("eku, passes", [
    (None, True),  # VGCA/VNPT-style: keyUsage nonRepudiation+digitalSignature, no EKU extension
    ([x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")], True),  # documentSigning, RFC 9336
    ([ExtendedKeyUsageOID.CLIENT_AUTH], False),
    ([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE], False),
], ids=["no-eku", "document-signing", "client-auth", "any-eku"])
def test_foreign_signers_by_eku(pki: Container, frozen: FrozenClock, tmp_path: Path, eku, passes: bool) -> None:  # type: ignore[no-untyped-def]
    foreign = _reissued(ForeignCA.create(frozen.moment), eku)
    pdf = foreign.sign((CORPUS / "pdfa-multipage.pdf").read_bytes(), pss=False, revinfo="crl")

    [s] = trusting(pki, [foreign.write_root(tmp_path)]).verify(pdf).signatures

    if passes:
        assert (s.indication, s.sub_indication) == ("TOTAL-PASSED", None), s.summary.en
    else:
        assert (s.indication, s.sub_indication) == ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE"), s.summary.en
