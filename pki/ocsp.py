"""OCSP (RFC 6960) with the RFC 5019 lightweight profile.

Each CA has a delegated responder certificate (id-pkix-ocsp-nocheck). For every certificate a
signed "good" or "revoked" response is pre-produced when the status changes and refreshed on a
schedule; a request without a nonce is answered from that store without any signing. A request
with a nonce (echoed, RFC 8954: 1-32 octets, anything else is malformedRequest) or with non-SHA-1
CertID hashes is signed on demand.
"""
from __future__ import annotations

import base64
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import core, keys, ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import clock

from .answer_cache import OcspAnswer as OcspAnswer  # re-exported: the routes name it ocsp.OcspAnswer
from .builder import signature_hash
from .context import PkiContext
from .models import Certificate, CertificateAuthority, CertificateStatus, OcspResponse
from .reasons import Reason


def revocation_epoch(session: Session) -> int:
    """Changes whenever any certificate's status changes (each change publishes CRLs)."""
    return int(session.execute(select(func.coalesce(func.sum(CertificateAuthority.next_crl_number), 0))).scalar_one())


@dataclass(frozen=True)
class _Responder:
    cert: x509.Certificate
    key_ref: str


def issuer_hashes(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of a CA certificate, as OCSP CertIDs carry them (RFC 6960 4.1.1)."""
    name_hash = hashes.Hash(algorithm)
    name_hash.update(cert.subject.public_bytes())
    spki = keys.PublicKeyInfo.load(
        cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    key_hash = hashes.Hash(algorithm)
    key_hash.update(spki["public_key"].contents[1:])  # the BIT STRING's value, without the unused-bits byte
    return name_hash.finalize(), key_hash.finalize()


def _responder(ctx: PkiContext, session: Session, ca: CertificateAuthority) -> _Responder | None:
    if ca.ocsp_responder_serial is None:
        return None
    row = session.execute(
        select(Certificate).where(Certificate.ca_id == ca.id, Certificate.serial == ca.ocsp_responder_serial)
    ).scalar_one()
    return _Responder(ctx.certificate(row.der), row.key_ref or "")


def _status_of(row: Certificate | None) -> tuple[ocsp.OCSPCertStatus, dt.datetime | None, x509.ReasonFlags | None, str]:
    if row is None:
        return ocsp.OCSPCertStatus.UNKNOWN, None, None, "unknown"
    if row.status in (CertificateStatus.REVOKED, CertificateStatus.ON_HOLD):
        reason = Reason(row.revocation_reason or "unspecified")
        flag = None if reason is Reason.unspecified else reason.flag
        return ocsp.OCSPCertStatus.REVOKED, row.revoked_at, flag, "revoked"
    return ocsp.OCSPCertStatus.GOOD, None, None, "good"


def sign_response(
    ctx: PkiContext, ca: CertificateAuthority, responder: _Responder, serial: int, row: Certificate | None,
    now: dt.datetime, *, algorithm: hashes.HashAlgorithm | None = None, nonce: bytes | None = None,
) -> tuple[bytes, dt.datetime, dt.datetime, str]:
    algorithm = algorithm or hashes.SHA1()
    ca_cert = ctx.certificate(ca.cert_der or b"")
    name_hash, key_hash = issuer_hashes(ca_cert, algorithm)
    status, revoked_at, reason, label = _status_of(row)
    next_update = now + dt.timedelta(hours=ctx.settings.ocsp_validity_hours)
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=name_hash, issuer_key_hash=key_hash, serial_number=serial, algorithm=algorithm,
            cert_status=status, this_update=now, next_update=next_update,
            revocation_time=revoked_at, revocation_reason=reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.cert)
        .certificates([responder.cert])
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    key = ctx.signer(responder.key_ref)
    response = builder.sign(key, signature_hash(key))
    der = response.public_bytes(serialization.Encoding.DER)
    if row is not None and row.status == CertificateStatus.REVOKED and row.invalidity_date is not None:
        der = _with_invalidity_date(der, key, clock.aware(row.invalidity_date))
    return der, now, next_update, label


def _with_invalidity_date(der: bytes, key: CertificateIssuerPrivateKeyTypes, when: dt.datetime) -> bytes:
    """The response with an invalidityDate singleExtension (RFC 6960 4.4: the CRL entry extensions of
    RFC 5280 5.3 may be used as singleExtensions; 5.3.2 invalidityDate), signed again by the same key
    with the same algorithm. pyca/cryptography's builder cannot add single extensions, so the
    tbsResponseData it produced is amended with asn1crypto and re-signed here."""
    response = asn1_ocsp.OCSPResponse.load(der)
    basic = response["response_bytes"]["response"].parsed
    tbs = basic["tbs_response_data"]
    single = tbs["responses"][0]
    single["single_extensions"] = asn1_ocsp.SingleResponseExtensions([{
        "extn_id": "invalidity_date", "critical": False, "extn_value": core.GeneralizedTime(when)}])
    tbs["responses"] = asn1_ocsp.Responses([single])
    tbs_der = tbs.dump(force=True)
    hash_algorithm = signature_hash(key)
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs_der, padding.PKCS1v15(), hash_algorithm)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(tbs_der, ec.ECDSA(hash_algorithm))
    else:  # pragma: no cover - responder keys are RSA or EC (policies/profiles/ocsp-responder.yaml)
        raise TypeError(f"unsupported OCSP responder key {type(key).__name__}")
    amended = asn1_ocsp.BasicOCSPResponse({
        "tbs_response_data": asn1_ocsp.ResponseData.load(tbs_der), "signature_algorithm": basic["signature_algorithm"],
        "signature": signature, "certs": basic["certs"]})
    amended_der: bytes = asn1_ocsp.OCSPResponse({"response_status": "successful", "response_bytes": {
        "response_type": "basic_ocsp_response", "response": amended}}).dump()
    return amended_der


def preproduce(ctx: PkiContext, session: Session, ca: CertificateAuthority, row: Certificate,
               now: dt.datetime | None = None, *, new: bool = False) -> None:
    """(Re)write the stored response for one certificate, in the caller's transaction.

    ``new`` says the certificate was just issued, so there is no stored response to look up."""
    responder = _responder(ctx, session, ca)
    if responder is None:
        return
    now = now or clock.now()
    der, this_update, next_update, label = sign_response(ctx, ca, responder, int(row.serial, 16), row, now)
    stored = None if new else session.execute(
        select(OcspResponse).where(OcspResponse.ca_id == ca.id, OcspResponse.serial == row.serial)
    ).scalar_one_or_none()
    if stored is None:
        session.add(OcspResponse(ca_id=ca.id, serial=row.serial, der=der, this_update=this_update,
                                 next_update=next_update, cert_status=label))
    else:
        stored.der, stored.this_update, stored.next_update, stored.cert_status = der, this_update, next_update, label


def refresh_due(ctx: PkiContext, session: Session, limit: int = 5000) -> int:
    """Re-sign stored responses that will expire within the refresh window (scheduled job)."""
    now = clock.now()
    horizon = now + dt.timedelta(hours=ctx.settings.ocsp_refresh_before_hours)
    due = session.execute(
        select(OcspResponse).where(OcspResponse.next_update <= horizon).limit(limit)
    ).scalars().all()
    count = 0
    for stored in due:
        ca = session.get(CertificateAuthority, stored.ca_id)
        row = session.execute(
            select(Certificate).where(Certificate.ca_id == stored.ca_id, Certificate.serial == stored.serial)
        ).scalar_one_or_none()
        if ca is None or row is None:
            continue
        preproduce(ctx, session, ca, row, now)
        count += 1
    return count


def get_request_path(issuer: x509.Certificate, serial: int) -> str:
    """The path element of the RFC 5019 GET request for ``serial``: the standard Base64 of the minimal DER
    OCSPRequest (one CertID with SHA-1 hashes, no extensions, unsigned), as OpenSSL and browsers build it."""
    name_hash, key_hash = issuer_hashes(issuer, hashes.SHA1())
    request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(name_hash, key_hash, serial, hashes.SHA1()).build()
    return base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode("ascii")


def export(ctx: PkiContext, session: Session, directory: Path, now: dt.datetime | None = None) -> int:
    """Write every pre-produced response still valid as a static file (RFC 5019 section 6: a CDN or any web
    server answers GET requests): ``directory/<GET path element>``, so ``GET /ocsp/<that>`` is the file under
    ``directory`` (a ``/`` of Base64 makes a sub-folder, as a web server maps it). Each file is written beside
    and renamed into place, so a server reading the folder meanwhile never sends half a response. Returns how
    many were written; run it after each republication (the responses are refreshed before they expire)."""
    now = now or clock.now()
    issuers: dict[int, x509.Certificate] = {}
    count = 0
    for stored in session.execute(select(OcspResponse).where(OcspResponse.next_update > now)
                                  .order_by(OcspResponse.id)).scalars():
        if stored.ca_id not in issuers:
            ca = session.get(CertificateAuthority, stored.ca_id)
            if ca is None or ca.cert_der is None:
                continue
            issuers[stored.ca_id] = ctx.certificate(ca.cert_der)
        target = directory.joinpath(*get_request_path(issuers[stored.ca_id], int(stored.serial, 16)).split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(stored.der)
        os.replace(partial, target)
        count += 1
    return count


def _find_ca(ctx: PkiContext, session: Session, request: ocsp.OCSPRequest) -> CertificateAuthority | None:
    """The CA a CertID names. Hashes are indexed per algorithm; a miss rebuilds the index once
    (a CA created by another worker), so unknown issuers cost one query, not one per CA."""
    key = (request.hash_algorithm.name, request.issuer_name_hash, request.issuer_key_hash)
    ca_id = ctx.ocsp_index.get(key)
    if ca_id is None:
        for ca in session.execute(
            select(CertificateAuthority).where(CertificateAuthority.cert_der.is_not(None),
                                               CertificateAuthority.key_ref.is_not(None))
        ).scalars():
            name_hash, key_hash = issuer_hashes(ctx.certificate(ca.cert_der or b""), request.hash_algorithm)
            ctx.ocsp_index[(request.hash_algorithm.name, name_hash, key_hash)] = ca.id
        ca_id = ctx.ocsp_index.get(key)
    return session.get(CertificateAuthority, ca_id) if ca_id is not None else None


NONCE_OCTETS = range(1, 33)


def nonce_acceptable(nonce: bytes) -> bool:
    """RFC 8954 section 2.1 (replacing RFC 6960 4.4.1): ``Nonce ::= OCTET STRING(SIZE(1..32))``, and "a
    server MUST reject any OCSP request that has a nonce in the Nonce extension with a length of
    either 0 octets or more than 32 octets with the malformedRequest OCSPResponseStatus". So such a
    nonce is neither echoed nor signed: the whole request is answered malformedRequest (unsigned),
    which also stops a caller from having kyso's responder sign kilobytes of data of its choosing.
    Nonces of 1-15 octets, which RFC 8954 lets a responder ignore, are still echoed (older clients)."""
    return len(nonce) in NONCE_OCTETS


def answer(ctx: PkiContext, session: Session, request_der: bytes) -> OcspAnswer:
    """Answer one DER OCSPRequest. Never raises for bad input: OCSP has its own error statuses."""
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        serial = request.serial_number
        algorithm = request.hash_algorithm
    except Exception:  # noqa: BLE001 - any parse failure is "malformedRequest" by protocol
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, "malformed")
    try:
        nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        nonce = None
    except Exception:  # noqa: BLE001
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, "malformed")
    if nonce is not None and not nonce_acceptable(nonce):
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, "malformed")
    ca = _find_ca(ctx, session, request)
    if ca is None:
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED, "unauthorized")
    serial_hex = format(serial, "X")
    now = clock.now()
    if nonce is None and isinstance(algorithm, hashes.SHA1):
        stored = session.execute(
            select(OcspResponse).where(OcspResponse.ca_id == ca.id, OcspResponse.serial == serial_hex)
        ).scalar_one_or_none()
        if stored is not None and stored.next_update > now:
            return OcspAnswer(stored.der, stored.this_update, stored.next_update, stored.cert_status, True)
    responder = _responder(ctx, session, ca)
    if responder is None:
        return _unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER, "unauthorized")
    row = session.execute(
        select(Certificate).where(Certificate.ca_id == ca.id, Certificate.serial == serial_hex)
    ).scalar_one_or_none()
    der, this_update, next_update, label = sign_response(
        ctx, ca, responder, serial, row, now, algorithm=algorithm, nonce=nonce
    )
    return OcspAnswer(der, this_update, next_update, label, False)


def try_later() -> OcspAnswer:
    """RFC 6960 tryLater: what a responder answers while its database cannot be reached."""
    return _unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER, "try_later")


def _unsuccessful(status: ocsp.OCSPResponseStatus, label: str) -> OcspAnswer:
    der = ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)
    return OcspAnswer(der, None, None, label, False)
