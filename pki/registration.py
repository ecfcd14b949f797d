"""Registration-authority mode: the key lives in kyso, the certificate comes from an external CA.

1. ``request`` generates the specialist's key in the keystore and a PKCS#10 request for the
   external CA (the government's specialized CA, or a licensed public CA); the credential waits.
2. ``import_certificate`` binds the certificate that CA issued to the waiting key, after checking
   that it carries that key and is signed by the issuer given with it.
3. ``check_status`` asks the issuer's OCSP responder (AIA), or failing that its CRL (CDP), and
   records a revocation the external CA has made.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509 import ocsp as x_ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction
from core.errors import Unavailable
from hsm import KeyType

from .builder import signature_hash
from .context import PkiContext
from .encoding import load_certificates
from .errors import CertificateMismatch, RevocationConflict, SubjectInvalid
from .issuance import generated_key, new_credential_id, subject_attributes
from .models import CaStatus, Certificate, CertificateAuthority, CertificateStatus, Credential, CredentialStatus
from .names import SubjectInfo, build_name, common_name
from .reasons import Reason
from .store import get_certificate, get_credential


@dataclass(frozen=True)
class PendingRequest:
    credential_id: str
    key_ref: str
    csr_pem: str


def request(ctx: PkiContext, subject: SubjectInfo, actor: str, *, profile: str = "specialist",
            commune_code: str | None = None, key_type: KeyType | None = None,
            keystore: str | None = None) -> PendingRequest:
    prof = ctx.profiles.get(profile)
    key_type = key_type or prof.default_key_type
    with (generated_key(ctx, keystore, key_type, f"ra:{subject.common_name}", actor) as ref,
          transaction(ctx.sessions) as session):
        now = clock.now()
        attrs, commune, _ = subject_attributes(session, prof, subject, commune_code, now.date())
        key = ctx.signer(ref)
        rsa_padding = padding.PKCS1v15() if isinstance(key, rsa.RSAPrivateKey) else None
        csr = (x509.CertificateSigningRequestBuilder().subject_name(build_name(attrs, prof))
               .sign(key, signature_hash(key), rsa_padding=rsa_padding))
        csr_der = csr.public_bytes(serialization.Encoding.DER)
        cred = Credential(id=new_credential_id(), key_ref=ref, certificate_id=None, status=CredentialStatus.PENDING,
                          csr_der=csr_der, created_at=now)
        session.add(cred)
        audit.record(session, actor=actor, action="pki:credential:request", subject=cred.id, key_ref=ref,
                     dn=csr.subject.rfc4514_string(), commune=commune, profile=profile)
    return PendingRequest(cred.id, ref, csr.public_bytes(serialization.Encoding.PEM).decode())


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _external_ca(session: Session, issuer: x509.Certificate, chain: list[x509.Certificate],
                 now: dt.datetime) -> CertificateAuthority:
    der = issuer.public_bytes(serialization.Encoding.DER)
    name = "ext-" + hashlib.sha256(der).hexdigest()[:16]
    ca = session.execute(select(CertificateAuthority).where(CertificateAuthority.name == name)).scalar_one_or_none()
    if ca is None:
        ca = CertificateAuthority(
            name=name, role="issuing", mode="external", status=CaStatus.ACTIVE, profile="external", parent_id=None,
            subject=issuer.subject.rfc4514_string(), key_ref=None, cert_der=der, next_crl_number=1, created_at=now,
            chain_pem="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain) or None,
        )
        session.add(ca)
        session.flush()
    return ca


def import_certificate(ctx: PkiContext, credential_id: str, data: bytes, actor: str) -> Certificate:
    certs = load_certificates(data)
    with transaction(ctx.sessions) as session:
        cred = get_credential(session, credential_id)
        if cred.status != CredentialStatus.PENDING:
            raise RevocationConflict(
                f"credential {credential_id} is {cred.status}; only a pending request takes a certificate")
        ours = _spki(ctx.keystores.for_ref(cred.key_ref).public_key(cred.key_ref))
        leaf = next((c for c in certs if _spki(c.public_key()) == ours), None)
        if leaf is None:
            raise CertificateMismatch(f"no certificate in the input carries the key of credential {credential_id}")
        issuer = next((c for c in certs if c.subject == leaf.issuer and c is not leaf), None)
        if issuer is None:
            raise CertificateMismatch("give the issuing CA's certificate together with the certificate (PEM chain)")
        try:
            leaf.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CertificateMismatch("the certificate is not signed by the issuer given with it") from exc
        now = clock.now()
        ca = _external_ca(session, issuer, [c for c in certs if c is not leaf and c is not issuer], now)
        der = leaf.public_bytes(serialization.Encoding.DER)
        serial = format(leaf.serial_number, "X")
        if session.execute(select(Certificate).where(Certificate.ca_id == ca.id, Certificate.serial == serial)).first():
            raise RevocationConflict(f"certificate {serial} is already imported")
        row = Certificate(
            serial=serial, ca_id=ca.id, profile="external", subject=leaf.subject.rfc4514_string(),
            common_name=common_name(leaf.subject), commune_code=None, province_code=None,
            not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc, status=CertificateStatus.VALID,
            status_changed_at=now, der=der, sha256=hashlib.sha256(der).hexdigest(), key_ref=cred.key_ref,
            replaces_serial=None, issued_by=f"external:{issuer.subject.rfc4514_string()}"[:200], issued_at=now,
            external=True,
        )
        session.add(row)
        session.flush()
        cred.certificate_id, cred.status, cred.csr_der = row.id, CredentialStatus.ACTIVE, None
        audit.record(session, actor=actor, action="pki:certificate:import", subject=serial, credential=credential_id,
                     issuer=issuer.subject.rfc4514_string(), dn=row.subject)
    return row


@dataclass(frozen=True)
class StatusCheck:
    serial: str
    status: str
    source: str
    reason: str | None


def _ocsp_status(leaf: x509.Certificate, issuer: x509.Certificate, url: str,
                 client: httpx.Client) -> tuple[str, dt.datetime | None, str | None]:
    req = x_ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    resp = client.post(url, content=req.public_bytes(serialization.Encoding.DER),
                       headers={"Content-Type": "application/ocsp-request"})
    resp.raise_for_status()
    answer = x_ocsp.load_der_ocsp_response(resp.content)
    if answer.response_status is not x_ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise Unavailable(f"the external OCSP responder answered {answer.response_status.name}")
    signer = issuer
    if answer.certificates:
        delegated = answer.certificates[0]
        eku = delegated.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            raise Unavailable("the external OCSP responder's certificate is not authorized for OCSP signing")
        delegated.verify_directly_issued_by(issuer)
        signer = delegated
    key, algorithm = signer.public_key(), answer.signature_hash_algorithm
    if isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
        key.verify(answer.signature, answer.tbs_response_bytes, ec.ECDSA(algorithm))
    elif isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
        key.verify(answer.signature, answer.tbs_response_bytes, padding.PKCS1v15(), algorithm)
    else:  # EC and RSA responders always name a hash; other keys are not supported (a TypeError, as before)
        raise TypeError(f"unsupported OCSP responder key {type(key).__name__}")
    if answer.serial_number != leaf.serial_number:
        raise Unavailable("the external OCSP responder answered for another certificate")
    if answer.certificate_status is x_ocsp.OCSPCertStatus.REVOKED:
        reason = answer.revocation_reason
        return "revoked", answer.revocation_time_utc, _reason_name(reason)
    return ("good" if answer.certificate_status is x_ocsp.OCSPCertStatus.GOOD else "unknown"), None, None


def _reason_name(flag: x509.ReasonFlags | None) -> str:
    if flag is None:
        return Reason.unspecified.value
    return next((r.value for r in Reason if r.flag is flag), Reason.unspecified.value)


def check_status(ctx: PkiContext, serial: str, actor: str, *, timeout: float = 10.0) -> StatusCheck:
    """Ask the external CA (OCSP from AIA) and record a revocation it reports."""
    with transaction(ctx.sessions) as session:
        row = get_certificate(session, serial)
        if not row.external:
            raise SubjectInvalid(f"certificate {row.serial} is issued by kyso; its status is kyso's own")
        leaf = x509.load_der_x509_certificate(row.der)
        issuer = x509.load_der_x509_certificate(row.ca.cert_der or b"")
    try:
        aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        urls = [d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP]
    except x509.ExtensionNotFound:
        urls = []
    if not urls:
        raise Unavailable("the certificate names no OCSP responder (AIA); kyso cannot check it")
    try:
        with httpx.Client(timeout=timeout) as client:
            status, revoked_at, reason = _ocsp_status(leaf, issuer, urls[0], client)
    except (httpx.HTTPError, InvalidSignature, ValueError, x509.ExtensionNotFound) as exc:
        raise Unavailable(f"the external CA's OCSP responder at {urls[0]} could not be used: {exc}") from exc
    with transaction(ctx.sessions) as session:
        row = get_certificate(session, serial, for_update=True)
        if status == "revoked" and row.status != CertificateStatus.REVOKED:  # status: the external OCSP answer
            now = clock.now()
            row.status, row.revoked_at = CertificateStatus.REVOKED, revoked_at or now
            row.revocation_reason, row.status_changed_at = reason, now
            cred = session.execute(select(Credential).where(Credential.certificate_id == row.id)).scalar_one_or_none()
            if cred is not None:
                cred.status = CredentialStatus.RETIRED
            audit.record(session, actor=actor, action="pki:certificate:external-revocation", subject=row.serial,
                         reason=reason, source=urls[0])
    return StatusCheck(row.serial, status, urls[0], reason)
