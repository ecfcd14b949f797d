"""The files the attacks start from, all made by a live kyso of the test's own: approval and certified
documents signed by the specialist, the shadow-attack bait files signed the same way, and the
signatures an attacker can make on their own (a document timestamp from kyso's public TSA, a kyso
``api-client`` certificate used to sign a PDF, 40 throw-away self-signed signatures)."""
from __future__ import annotations

import dataclasses
import datetime as dt
from io import BytesIO
from typing import Literal

from asn1crypto import keys as asn1_keys, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from api import mtls, tokens
from api.container import Container
from core import clock
from core.db import transaction
from pki import store
from signing import loop
from signing.create import pades
from signing.create.service import AppearanceOptions, SignRequest
from tests.helpers.api import new_token
from tests.helpers.signing import COMMUNE, CONSENTED

from . import forge

Kind = Literal["approval", "certified"]
Bait = Literal["plain", "hidden", "form"]


@dataclasses.dataclass(frozen=True)
class Signed:
    """A kyso-signed file and its registry id."""

    pdf: bytes
    document_id: str


def request(pdf: bytes, credential: str, level: str = "B-T", *, certify: bool = False,
            visible: bool = False) -> SignRequest:
    """A signing request for a dossier result of the test commune (invisible signature unless ``visible``:
    the attacks do not need kyso's stamp, and it costs rendering time)."""
    return SignRequest(pdf=pdf, document_type="dossier-result", commune_code=COMMUNE, credential_id=credential,
                       level=level, dossier_number="HS-2026-0015", certify=certify,  # type: ignore[arg-type]
                       appearance=AppearanceOptions(visible=visible))


def sign(pki: Container, credential: str, pdf: bytes, kind: Kind, level: str = "B-T") -> Signed:
    """The specialist's signature through kyso's signing service: approval (no DocMDP) or certifying (P=2)."""
    result = pki.signing.sign(request(pdf, credential, level, certify=kind == "certified"), actor="test", activation=CONSENTED)
    return Signed(result.pdf, result.document_id)


def bait(pdf: bytes, kind: Bait) -> bytes:
    """What the specialist is given to sign: the plain file, or one carrying a shadow attack's hidden part."""
    return {"plain": lambda: pdf, "hidden": lambda: forge.with_hidden_widget(pdf),
            "form": lambda: forge.with_form_field(pdf)}[kind]()


def timestamp(pki: Container, pdf: bytes) -> bytes:
    """A document timestamp from kyso's own TSA appended (what ``POST /tsa`` gives anyone)."""
    return loop.run(pades.add_document_timestamp(pdf, pki.signing.timestamper(), "sha256", pki.signing.ts_reserve()))


# -- signatures an attacker makes ---------------------------------------------------------------------
def _asn1(cert: x509.Certificate | bytes) -> asn1_x509.Certificate:
    der = cert if isinstance(cert, bytes) else cert.public_bytes(serialization.Encoding.DER)
    return asn1_x509.Certificate.load(der)


def _key_info(key: ec.EllipticCurvePrivateKey) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(key.private_bytes(serialization.Encoding.DER,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))


def _sign_with(signer: signers.Signer, pdf: bytes, field_name: str, *, timestamper=None,  # type: ignore[no-untyped-def]
               reserve: int = 16_384) -> bytes:
    meta = signers.PdfSignatureMetadata(field_name=field_name, md_algorithm="sha256",
                                        subfilter=fields.SigSeedSubFilter.PADES)
    out = BytesIO()
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    loop.run(signers.PdfSigner(meta, signer, timestamper=timestamper).async_sign_pdf(
        writer, bytes_reserved=reserve, output=out))
    return out.getvalue()


def client_auth_signed(pki: Container, pdf: bytes) -> bytes:
    """A PAdES signature (with a timestamp from kyso's TSA) by a kyso-issued ``api-client`` certificate:
    key usage digitalSignature, EKU clientAuth only, chained to kyso's root. The attacker holds a client
    token, makes a key, and has kyso issue the mTLS certificate for it (``kyso token cert``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hotich-attacker")]))
           .sign(key, hashes.SHA256()))
    new_token(pki, tokens.Role.client, "hotich-attacker")
    issued = mtls.issue_certificate(pki.pki, "hotich-attacker", csr.public_bytes(serialization.Encoding.PEM), "test")
    with transaction(pki.sessions) as session:
        cas = [_asn1(ca.cert_der) for ca in store.list_cas(session)]
    certificate = _asn1(issued.der)
    signer = signers.SimpleSigner(signing_cert=certificate, signing_key=_key_info(key),
                                  cert_registry=SimpleCertificateStore.from_certs([certificate, *cas]))
    return _sign_with(signer, pdf, "Signature1", timestamper=pki.signing.timestamper())


def self_signed_signer(name: str = "Nobody in particular") -> signers.SimpleSigner:
    """A throw-away EC P-256 key and a self-signed certificate for it, trusted by nobody."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = clock.now()
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return signers.SimpleSigner(signing_cert=_asn1(cert), signing_key=_key_info(key),
                                cert_registry=SimpleCertificateStore.from_certs([_asn1(cert)]))


def many_self_signed(pdf: bytes, count: int = 40) -> bytes:
    """``count`` signatures by a self-signed certificate, one incremental update each: the issue's
    159 KB file that kept a verifier busy for ~45 s of CPU (cost grows with revisions × signatures)."""
    signer = self_signed_signer()
    for number in range(1, count + 1):
        pdf = _sign_with(signer, pdf, f"Sig{number}", reserve=2_400)
    return pdf
