"""kyso's own RFC 3161 time-stamping authority (TSA), with RFC 5816 ESSCertIDv2, and the pyHanko
``TimeStamper`` that PAdES signing uses for B-T and B-LTA.

``TimestampAuthority.respond`` turns a DER ``TimeStampReq`` into a DER ``TimeStampResp``: a
malformed or unacceptable request is answered with a *rejection* response (failInfo badDataFormat,
badAlg, unacceptedPolicy or unacceptedExtension), never an exception. Exceptions are kept for
what the client cannot fix: no valid TSA certificate (``core.errors.Unavailable``, HTTP 503) and a
keystore that cannot sign now (the keystore's own ``Unavailable``).

Tokens are signed by the newest valid TSA certificate (``pki.store.current_tsa``) whose key stays
in the keystore (``PkiContext.signer``). The parsed certificate, its chain and the precomputed
signing-certificate-v2 attribute are kept per TSA certificate; which certificate is current is
re-read from the database at most every ``settings.ocsp_cache_check_seconds`` (the same staleness
kyso accepts for OCSP answers), so a renewal or revocation made by another worker is seen then.

Auditing: the TSA certificate's issuance and renewal are audited (``pki:tsa:issue``,
``pki:tsa:renew``); individual tokens are NOT — they are high-volume, carry no state change, and
each is its own signed evidence (genTime, serialNumber, imprint). Every token is logged at debug
level only.
"""
from __future__ import annotations

import base64
import datetime as dt
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from asn1crypto import algos, cms, core, tsp, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.sign.general import as_signing_certificate_v2, simple_cms_attribute
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper, TimestampRequestError

from core import clock
from core.cache import Cache
from core.db import transaction
from pki.authorities import chain_pem
from pki.builder import signature_hash
from pki.context import PkiContext
from pki.encoding import load_certificates
from pki.store import current_tsa
from signing.create import der
from signing.shared_asn1 import shareable

log = logging.getLogger(__name__)

#: messageImprint hash algorithms accepted, with their digest lengths in bytes. SHA-1 and MD5 are
#: refused (rejection, failInfo badAlg): collisions for both can be made at will, so a token over a
#: SHA-1 imprint would date whichever of two colliding documents the requester later shows
#: (ETSI TS 119 312 lists neither for new time-stamps).
ACCEPTED_HASHES: dict[str, int] = {"sha256": 32, "sha384": 48, "sha512": 64}
_MATERIALS_KEPT = 8


class _Rejection(Exception):
    """A request the TSA answers with status rejection (RFC 3161 2.4.2); internal to this module."""

    def __init__(self, fail_info: str, text: str) -> None:
        super().__init__(text)
        self.fail_info, self.text = fail_info, text


@dataclass(frozen=True)
class _TsaMaterial:
    """Everything about one TSA certificate that does not change from token to token."""

    serial: str
    certificate: x509.Certificate
    not_after: dt.datetime
    cert_der: bytes
    chain_der: tuple[bytes, ...]  # issuers up to, not including, the self-signed root
    key_ref: str
    digest: str  # 'sha256' | 'sha384': signed-attributes digest and signature hash
    signature_algorithm: str  # asn1crypto name: sha256_ecdsa, sha384_ecdsa, sha256_rsa
    sid_der: bytes  # SignerIdentifier (issuerAndSerialNumber)
    ess_attribute_der: bytes  # signing-certificate-v2 attribute (ESSCertIDv2, SHA-256, issuerSerial)
    tsa_name_der: bytes  # the TSA's subject, for TSTInfo.tsa


class TimestampAuthority:
    """kyso's TSA over a ``PkiContext``: thread-safe, one per process, owned by the signing service
    (``SigningService.tsa``), which the container builds."""

    def __init__(self, ctx: PkiContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._materials: Cache[str, _TsaMaterial] = Cache("tsa_material", max_entries=_MATERIALS_KEPT)
        self._current: _TsaMaterial | None = None
        self._checked_at = float("-inf")

    # --- the TSA certificate ---------------------------------------------------------------

    def certificate(self) -> x509.Certificate:
        """The TSA certificate tokens are signed with now (raises ``Unavailable`` if there is none)."""
        return self._material(clock.now()).certificate

    def chain(self) -> list[x509.Certificate]:
        """The current TSA certificate's issuers, up to and not including the root."""
        return [x509.load_der_x509_certificate(der) for der in self._material(clock.now()).chain_der]

    def certificates_der(self) -> tuple[bytes, ...]:
        """The current TSA certificate and its issuers (not the root), as DER, with no parsing."""
        material = self._material(clock.now())
        return (material.cert_der, *material.chain_der)

    def refresh(self) -> None:
        """Forget which certificate is current; the next token reads it from the database again."""
        with self._lock:
            self._current, self._checked_at = None, float("-inf")

    def _material(self, now: dt.datetime) -> _TsaMaterial:
        current, mono = self._current, time.monotonic()
        if (current is not None and mono - self._checked_at < self._ctx.settings.ocsp_cache_check_seconds
                and now < current.not_after):
            return current
        with transaction(self._ctx.sessions, read_only=True) as session:
            row = current_tsa(session, now=now)
            material = self._materials.get(row.serial)
            if material is None:
                assert row.key_ref is not None  # current_tsa only returns rows with a key here
                chain = load_certificates(chain_pem(self._ctx, session, row.ca).encode())
                material = _build_material(self._ctx, row.serial, row.der, row.key_ref, chain)
        self._materials.put(material.serial, material)
        with self._lock:
            self._current, self._checked_at = material, mono
        return material

    # --- answering requests ----------------------------------------------------------------

    def respond(self, request_der: bytes) -> bytes:
        """A DER TimeStampResp for a DER TimeStampReq: granted with a token, or a rejection."""
        try:
            request = _parse(request_der)
            return self._grant(request)
        except _Rejection as rejection:
            log.debug("timestamp request rejected: %s (%s)", rejection.text, rejection.fail_info)
            response: bytes = _rejection(rejection).dump()
            return response

    def _grant(self, request: tsp.TimeStampReq) -> bytes:
        """A granted TimeStampResp, assembled from DER parts (see ``signing/der.py`` for why)."""
        policy = self._ctx.settings.tsa_policy_oid
        wanted = request["req_policy"].native
        if wanted is not None and wanted != policy:
            raise _Rejection("unaccepted_policy", f"this TSA issues tokens under policy {policy} only, not {wanted}")
        now = clock.now().replace(microsecond=0)
        material = self._material(now)
        serial = secrets.randbits(128) or 1
        tst_der = _tst_info_der(request, material, policy, now, serial)
        token = self._token(material, tst_der, now, with_certs=bool(request["cert_req"].native))
        log.debug("timestamp token serial=%x genTime=%s imprint=%s:%s tsa=%s", serial, now.isoformat(),
                  request["message_imprint"]["hash_algorithm"]["algorithm"].native,
                  request["message_imprint"]["hashed_message"].native.hex(), material.serial)
        return der.tlv(0x30, _GRANTED + token)

    def _token(self, material: _TsaMaterial, tst_der: bytes, now: dt.datetime, *, with_certs: bool) -> bytes:
        """ContentInfo { signedData v3 { tstInfo, certificates?, one SignerInfo } }."""
        hash_algorithm = hashes.SHA384() if material.digest == "sha384" else hashes.SHA256()
        digest = hashes.Hash(hash_algorithm)
        digest.update(tst_der)
        signed_attrs = der.set_of([
            der.attribute(der.CONTENT_TYPE, der.oid(der.TST_INFO)),
            der.attribute(der.MESSAGE_DIGEST, der.tlv(0x04, digest.finalize())),
            der.attribute(der.SIGNING_TIME, der.utc_time(now)),
            material.ess_attribute_der,
        ])
        signature = _sign(self._ctx, material.key_ref, signed_attrs, hash_algorithm)
        digest_alg = _digest_algorithm_der(material.digest)
        signer_info = der.tlv(0x30, der.integer(1) + material.sid_der + digest_alg + b"\xa0" + signed_attrs[1:]
                              + _signature_algorithm_der(material.signature_algorithm) + der.tlv(0x04, signature))
        certificates = (der.tlv(0xA0, b"".join(sorted((material.cert_der, *material.chain_der))))
                        if with_certs else b"")
        encap = der.tlv(0x30, der.oid(der.TST_INFO) + der.tlv(0xA0, der.tlv(0x04, tst_der)))
        signed_data = der.tlv(0x30, der.integer(3) + der.tlv(0x31, digest_alg) + encap + certificates
                              + der.tlv(0x31, signer_info))
        return der.tlv(0x30, der.oid(der.SIGNED_DATA) + der.tlv(0xA0, signed_data))


_GRANTED = der.tlv(0x30, der.integer(0))  # PKIStatusInfo { status granted }


@lru_cache(maxsize=8)  # kept: pure (an algorithm name → its DER), bounded by the accepted algorithms
def _digest_algorithm_der(name: str) -> bytes:
    encoded: bytes = algos.DigestAlgorithm({"algorithm": name}).dump()
    return encoded


@lru_cache(maxsize=8)  # kept: pure (an algorithm name → its DER), bounded by the accepted algorithms
def _signature_algorithm_der(name: str) -> bytes:
    encoded: bytes = algos.SignedDigestAlgorithm({"algorithm": name}).dump()
    return encoded


def _tst_info_der(request: tsp.TimeStampReq, material: _TsaMaterial, policy: str, now: dt.datetime,
                  serial: int) -> bytes:
    """TSTInfo (RFC 3161 2.4.2); ``ordering`` is FALSE, its DEFAULT, so DER leaves it out."""
    nonce = request["nonce"].native
    return der.tlv(0x30, der.integer(1) + der.oid(policy) + request["message_imprint"].dump()
                   + der.integer(serial) + der.generalized_time(now) + _ACCURACY_ONE_SECOND
                   + (der.integer(nonce) if nonce is not None else b"")
                   + der.tlv(0xA0, der.tlv(0xA4, material.tsa_name_der)))


_ACCURACY_ONE_SECOND = der.tlv(0x30, der.integer(1))


def _build_material(ctx: PkiContext, serial: str, cert_der: bytes, key_ref: str,
                    chain: list[x509.Certificate]) -> _TsaMaterial:
    certificate = x509.load_der_x509_certificate(cert_der)
    asn1_cert = shareable(asn1_x509.Certificate.load(cert_der))
    key = ctx.signer(key_ref)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        digest = signature_hash(key).name  # SHA-384 for P-384, SHA-256 for P-256
        signature_algorithm = f"{digest}_ecdsa"
    elif isinstance(key, rsa.RSAPrivateKey):
        digest, signature_algorithm = "sha256", "sha256_rsa"
    else:  # pragma: no cover - keystores only hold EC and RSA keys
        raise TypeError(f"TSA key {key_ref} is neither EC nor RSA")
    sid = cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber(
        {"issuer": asn1_cert.issuer, "serial_number": asn1_cert.serial_number})})
    issuers = [c for c in chain if c.issuer != c.subject]  # the relying party brings the root itself
    return _TsaMaterial(
        serial=serial, certificate=certificate, not_after=certificate.not_valid_after_utc, cert_der=cert_der,
        chain_der=tuple(c.public_bytes(serialization.Encoding.DER) for c in issuers), key_ref=key_ref,
        digest=digest, signature_algorithm=signature_algorithm, sid_der=sid.dump(),
        ess_attribute_der=simple_cms_attribute("signing_certificate_v2",
                                               as_signing_certificate_v2(asn1_cert, "sha256")).dump(),
        tsa_name_der=asn1_cert.subject.dump(),
    )


def _parse(request_der: bytes) -> tsp.TimeStampReq:
    """Parse and check a TimeStampReq completely; anything wrong becomes a ``_Rejection``."""
    try:
        request = tsp.TimeStampReq.load(request_der, strict=True)
        request.native  # noqa: B018 - asn1crypto parses lazily: force every field now
        version = request["version"].native
        algorithm = request["message_imprint"]["hash_algorithm"]["algorithm"].native
        imprint = request["message_imprint"]["hashed_message"].native
        extensions = request["extensions"].native
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise _Rejection("bad_data_format", f"the request is not a DER TimeStampReq: {exc}") from exc
    if version != "v1":
        raise _Rejection("bad_data_format", f"TimeStampReq version {version} is not supported (v1 only)")
    if algorithm not in ACCEPTED_HASHES:
        raise _Rejection("bad_alg", f"hash algorithm {algorithm} is not accepted; use one of "
                                    f"{', '.join(sorted(ACCEPTED_HASHES))}")
    if len(imprint) != ACCEPTED_HASHES[algorithm]:
        raise _Rejection("bad_data_format", f"a {algorithm} imprint is {ACCEPTED_HASHES[algorithm]} bytes, "
                                            f"not {len(imprint)}")
    if extensions:
        raise _Rejection("unaccepted_extensions", "this TSA accepts no request extensions")
    return request


def _sign(ctx: PkiContext, key_ref: str, data: bytes, hash_algorithm: hashes.HashAlgorithm) -> bytes:
    key = ctx.signer(key_ref)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hash_algorithm)
    return key.sign(data, ec.ECDSA(hash_algorithm))


class TimeStampResp(core.Sequence):  # type: ignore[misc]  # asn1crypto ships no types: its classes are Any
    """RFC 3161 2.4.2 TimeStampResp, whose timeStampToken is OPTIONAL (asn1crypto's ``tsp.TimeStampResp``
    makes it mandatory, so it can neither write nor read a rejection)."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("status", tsp.PKIStatusInfo), ("time_stamp_token", cms.ContentInfo, {"optional": True})]


def _rejection(rejection: _Rejection) -> TimeStampResp:
    return TimeStampResp({"status": tsp.PKIStatusInfo({
        "status": "rejection",
        "status_string": [rejection.text],
        "fail_info": tsp.PKIFailureInfo({rejection.fail_info}),
    })})


# --- pyHanko ----------------------------------------------------------------------------------

class LocalTimeStamper(TimeStamper):
    """A pyHanko ``TimeStamper`` that gets tokens from kyso's own TSA, in-process (no HTTP).

    The token is made in the calling thread: signing already runs in a worker thread with its own
    event loop, and handing asn1crypto objects across an extra thread hop was measured to make
    some signatures take seconds instead of milliseconds. Without a TSA certificate,
    ``async_timestamp`` raises ``core.errors.Unavailable``; a rejected request raises pyHanko's
    ``TimestampRequestError``, as an external TSA's rejection would.
    """

    def __init__(self, authority: TimestampAuthority, include_nonce: bool = True) -> None:
        super().__init__(include_nonce=include_nonce)  # type: ignore[no-untyped-call]  # pyHanko's, unannotated
        self.authority = authority

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        der = self.authority.respond(req.dump())  # signing already runs in a worker thread
        status = TimeStampResp.load(der)["status"]
        if status["status"].native != "granted":
            text = "; ".join(status["status_string"].native or [])
            fail_info = ", ".join(status["fail_info"].native or [])
            raise TimestampRequestError(f"kyso's TSA refused the request: {text} (failInfo {fail_info})")
        return tsp.TimeStampResp.load(der)


def timestamper_for(ctx: PkiContext, authority: TimestampAuthority | None = None) -> TimeStamper:
    """The external TSA when ``settings.tsa_url`` is set (basic auth, timeout), else kyso's own
    ``authority`` (the signing service's: ``SigningService.timestamper``)."""
    settings = ctx.settings
    if settings.tsa_url:
        headers = {}
        if settings.tsa_username:  # basic auth as a header: aiohttp deprecates its BasicAuth object
            password = settings.tsa_password.get_secret_value() if settings.tsa_password else ""
            token = base64.b64encode(f"{settings.tsa_username}:{password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        return HTTPTimeStamper(settings.tsa_url, timeout=settings.tsa_timeout_seconds, headers=headers)
    if authority is None:
        raise ValueError("kyso's own TSA signs the timestamps: pass the signing service's authority")
    return LocalTimeStamper(authority)


__all__ = ["ACCEPTED_HASHES", "LocalTimeStamper", "TimeStampResp", "TimestampAuthority", "timestamper_for"]
