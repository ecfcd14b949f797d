"""Building the documents the verification tests judge: kyso-signed files, tampered copies, signatures
made with pyHanko directly (for what kyso itself refuses to do), and a throw-away foreign CA.

Everything is real: kyso's PKI from the fixtures, pyHanko writers and signers, certificates built
with pyca/cryptography. Nothing is mocked.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from io import BytesIO
from pathlib import Path

from asn1crypto import crl as asn1_crl, keys as asn1_keys, ocsp as asn1_ocsp, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import DocumentSecurityStore
from pyhanko_certvalidator.registry import SimpleCertificateStore

from api.container import Container
from core import clock
from core.db import transaction
from pki import revocation, store
from pki.reasons import Reason
from signing import loop
from signing.create.signer import KeyStoreSigner, default_digest, default_scheme
from signing.material import SignerMaterial
from signing.verify.verifier import Verifier

UTC = dt.UTC


# -- kyso documents --------------------------------------------------------------------------------
def serial_of(pki: Container, credential: str) -> str:
    with transaction(pki.sessions) as session:
        return store.get_credential(session, credential).certificate.serial


def not_after_of(pki: Container, credential: str) -> dt.datetime:
    with transaction(pki.sessions) as session:
        return clock.aware(store.get_credential(session, credential).certificate.not_after)


def revoke(pki: Container, credential: str, reason: Reason = Reason.affiliationChanged) -> None:
    revocation.revoke(pki.pki, serial_of(pki, credential), reason, "test")


def sign_directly(pki: Container, material: SignerMaterial, pdf: bytes, *, timestamp: bool,
                  field_name: str = "Signature1") -> bytes:
    """A PAdES signature made with kyso's own ``KeyStoreSigner`` through pyHanko, bypassing the
    signing service's checks (it refuses revoked credentials): what a stolen key or a rogue
    client could produce."""
    signer = KeyStoreSigner(keystore=pki.pki.keystores.for_ref(material.key_ref), key_ref=material.key_ref,
                            key_type=material.key_type, certificate=material.certificate,
                            chain=list(material.chain), scheme=default_scheme(material.key_type))
    meta = signers.PdfSignatureMetadata(field_name=field_name, md_algorithm=default_digest(material.key_type),
                                        subfilter=fields.SigSeedSubFilter.PADES)
    pdf_signer = signers.PdfSigner(meta, signer, timestamper=pki.signing.timestamper() if timestamp else None)
    out = BytesIO()
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    loop.run(pdf_signer.async_sign_pdf(writer, bytes_reserved=24_576, output=out))
    return out.getvalue()


# -- tampering -------------------------------------------------------------------------------------
def flip_content_byte(pdf: bytes) -> tuple[bytes, int]:
    """One byte changed inside page 1's content stream (in the first, signed, revision).

    The stream is ASCII85 + Flate, so the byte is swapped for another ASCII85 digit: the file
    still parses, only the drawn content (and every digest over it) changes."""
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    page = reader.root["/Pages"]["/Kids"][0].get_object()
    ref = page.raw_get("/Contents")
    marker = f"\n{ref.idnum} {ref.generation} obj".encode()
    start = pdf.index(b"stream", pdf.index(marker)) + len(b"stream") + 1
    at = start + 10
    original = pdf[at]
    assert 0x21 <= original <= 0x75, "inside ASCII85 data"
    replacement = original + 1 if original < 0x75 else original - 1
    return pdf[:at] + bytes([replacement]) + pdf[at + 1:], at


def append_page(pdf: bytes, text: str = "Trang thêm vào sau khi ký / page added after signing") -> bytes:
    """An incremental update adding a page at the end, as any PDF editor would."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    content = generic.StreamObject(stream_data=f"BT /F1 12 Tf 72 720 Td ({text.encode('ascii', 'replace').decode()}) "
                                                f"Tj ET".encode())
    font = generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Font"),
        generic.pdf_name("/Subtype"): generic.pdf_name("/Type1"),
        generic.pdf_name("/BaseFont"): generic.pdf_name("/Helvetica"),
    })
    resources = generic.DictionaryObject({generic.pdf_name("/Font"): generic.DictionaryObject(
        {generic.pdf_name("/F1"): writer.add_object(font)})})
    writer.insert_page(PageObject(contents=writer.add_object(content), media_box=(0, 0, 612, 792),
                                  resources=resources))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def many_pages(pages: int = 50, page_bytes: int = 30_000) -> bytes:
    """``pages`` A4 pages of uncompressed text (Helvetica), about ``page_bytes`` each (~1.5 MB for 50)."""
    writer = PdfFileWriter()
    font = writer.add_object(generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Font"), generic.pdf_name("/Subtype"): generic.pdf_name("/Type1"),
        generic.pdf_name("/BaseFont"): generic.pdf_name("/Helvetica")}))
    for page in range(pages):
        lines, size, y = [], 0, 800
        while size < page_bytes:
            line = f"BT /F1 7 Tf 40 {y} Td (Trang {page + 1} - Ho so so HS-2026-{page:04d}-{size:06d} "\
                   f"noi dung mau de thu ky so, khong co gia tri phap ly.) Tj ET\n".encode()
            lines.append(line)
            size += len(line)
            y = 800 if y <= 40 else y - 8
        writer.insert_page(generic.DictionaryObject({
            generic.pdf_name("/Type"): generic.pdf_name("/Page"),
            generic.pdf_name("/MediaBox"): generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))),
            generic.pdf_name("/Resources"): generic.DictionaryObject({generic.pdf_name("/Font"): generic.DictionaryObject(
                {generic.pdf_name("/F1"): font})}),
            generic.pdf_name("/Contents"): writer.add_object(generic.StreamObject(stream_data=b"".join(lines))),
        }))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def assemble(objects: list[bytes]) -> bytes:
    """A classic-xref PDF of ``objects`` (numbered from 1; object 1 is the catalogue), written by hand so
    a test can shape its page tree exactly as it likes."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def page_count(pdf: bytes) -> int:
    return int(PdfFileReader(BytesIO(pdf), strict=False).root["/Pages"]["/Count"])


# -- a throw-away foreign CA -----------------------------------------------------------------------
@dataclasses.dataclass
class ForeignCA:
    """A root CA and one document-signing certificate (RSA), both unknown to kyso.

    The signer certificate names a CRL distribution point and an OCSP responder on a closed port, so
    a validator that checks declared revocation sources must find a CRL or an OCSP response in the
    file (DSS) or give up."""

    root_key: rsa.RSAPrivateKey
    root: x509.Certificate
    signer_key: rsa.RSAPrivateKey
    signer: x509.Certificate
    crl_url: str = "http://127.0.0.1:9/foreign-root.crl"
    ocsp_url: str = "http://127.0.0.1:9/foreign-ocsp"

    @classmethod
    def create(cls, now: dt.datetime, name: str = "Sở Thông tin Tỉnh Thử nghiệm") -> ForeignCA:
        root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Root CA"),
                               x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")])
        root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
                .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                             crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
                .sign(root_key, hashes.SHA256()))
        signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        url = cls.crl_url
        signer = (x509.CertificateBuilder()
                  .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Trần Văn Ngoại Tỉnh"),
                                           x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                                           x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]))
                  .issuer_name(root_name).public_key(signer_key.public_key())
                  .serial_number(x509.random_serial_number())
                  .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
                  .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                  .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                               data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                               crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                  .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                  .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                                 critical=False)
                  .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                      x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(cls.ocsp_url))]),
                      critical=False)
                  .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                      full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None,
                      crl_issuer=None)]), critical=False)
                  .sign(root_key, hashes.SHA256()))
        return cls(root_key, root, signer_key, signer)

    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def write_root(self, directory: Path) -> Path:
        path = directory / "foreign-root.pem"
        path.write_bytes(self.root_pem())
        return path

    def crl(self, now: dt.datetime) -> asn1_crl.CertificateList:
        built = (x509.CertificateRevocationListBuilder().issuer_name(self.root.subject)
                 .last_update(now - dt.timedelta(minutes=5)).next_update(now + dt.timedelta(days=7))
                 .add_extension(x509.CRLNumber(1), critical=False)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root_key.public_key()),
                                critical=False)
                 .sign(self.root_key, hashes.SHA256()))
        return asn1_crl.CertificateList.load(built.public_bytes(serialization.Encoding.DER))

    def ocsp_good(self, now: dt.datetime) -> asn1_ocsp.OCSPResponse:
        """A 'good' answer for the signer, signed by the root itself (RFC 6960: the CA may answer)."""
        built = (x509_ocsp.OCSPResponseBuilder()
                 .add_response(cert=self.signer, issuer=self.root, algorithm=hashes.SHA256(),
                               cert_status=x509_ocsp.OCSPCertStatus.GOOD, this_update=now - dt.timedelta(minutes=5),
                               next_update=now + dt.timedelta(days=1), revocation_time=None, revocation_reason=None)
                 .responder_id(x509_ocsp.OCSPResponderEncoding.HASH, self.root)
                 .sign(self.root_key, hashes.SHA256()))
        return asn1_ocsp.OCSPResponse.load(built.public_bytes(serialization.Encoding.DER))

    def signer_for_pyhanko(self, *, pss: bool) -> signers.SimpleSigner:
        key_der = self.signer_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption())
        return signers.SimpleSigner(
            signing_cert=_asn1(self.signer), signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
            cert_registry=SimpleCertificateStore.from_certs([_asn1(self.signer), _asn1(self.root)]), prefer_pss=pss)

    def sign(self, pdf: bytes, *, pss: bool, revinfo: str | None = None) -> bytes:
        """A PAdES B-B signature with plain pyHanko; ``revinfo`` ('crl' or 'ocsp') adds a DSS
        with that revocation answer in the same revision (B-LT without a timestamp)."""
        writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
        if revinfo is not None:
            now = clock.now()
            DocumentSecurityStore.supply_dss_in_writer(
                writer, None, certs=[_asn1(self.signer), _asn1(self.root)],
                ocsps=[self.ocsp_good(now)] if revinfo == "ocsp" else [],
                crls=[self.crl(now)] if revinfo == "crl" else [])
        meta = signers.PdfSignatureMetadata(field_name="ForeignSignature", md_algorithm="sha256",
                                            subfilter=fields.SigSeedSubFilter.PADES)
        out = BytesIO()
        loop.run(signers.PdfSigner(meta, self.signer_for_pyhanko(pss=pss)).async_sign_pdf(writer, output=out))
        return out.getvalue()


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def trusting(pki: Container, anchors: list[Path]) -> Verifier:
    """A verifier whose settings list ``anchors`` in KYSO_TRUST_ANCHORS (Settings.trust_anchors)."""
    settings = pki.settings.model_copy(update={"trust_anchors": anchors, "verify_fetch_revocation": False})
    return Verifier(dataclasses.replace(pki.pki, settings=settings), pki.signing.material)
