"""TLS client certificates for machine clients, as an alternative to bearer tokens.

``kyso token cert NAME --csr FILE`` issues an ``api-client`` certificate (clientAuth only, CN = the
token's name, O = kyso) from the client's own CSR, so the key never leaves the client, and binds it to
that client token (``token_certificates``).

TLS ends at a reverse proxy (nginx ``ssl_verify_client``) that forwards the certificate it verified in
a header (``KYSO_CLIENT_CERT_HEADER``, default ``X-Client-Cert``: URL-encoded PEM, nginx's
``$ssl_client_escaped_cert``). kyso believes that header only from ``KYSO_TRUSTED_PROXIES`` and then
checks the certificate itself, in a fixed order: signed by one of kyso's active CAs, known to kyso, profile
``api-client``, within its validity, not revoked or on hold, bound to a token, and that token an active,
unexpired client token. It then gives exactly the ``Principal`` the token's bearer secret gives.

uvicorn serving TLS itself cannot be used for this: it does not put the peer certificate into the
ASGI scope (no ``tls`` extension), so kyso could verify nothing there.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction
from core.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from pki import issuance
from pki.context import PkiContext
from pki.encoding import key_type_of, load_csr
from pki.models import CaStatus, Certificate, CertificateAuthority, CertificateStatus
from pki.names import build_name

from .container import Container
from .models import ApiToken, TokenCertificate
from .tokens import Principal, Role, scope_of

PROFILE = "api-client"
ORGANIZATION = "kyso"
MAX_HEADER_CHARS = 16_384  # a URL-encoded PEM certificate is a few kilobytes
LAST_USED_EVERY = dt.timedelta(minutes=1)


# -- issuance --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClientCertificate:
    """A certificate just issued for a token."""

    token: str
    serial: str
    sha256: str
    ca: str
    not_after: dt.datetime
    der: bytes

    @property
    def pem(self) -> str:
        return x509.load_der_x509_certificate(self.der).public_bytes(serialization.Encoding.PEM).decode()

    def as_dict(self) -> dict[str, object]:
        return {"token": self.token, "serial": self.serial, "sha256": self.sha256, "ca": self.ca,
                "profile": PROFILE, "not_after": self.not_after.isoformat(), "certificate_pem": self.pem}


def _usable_client_token(session: Session, name: str, now: dt.datetime) -> ApiToken:
    token = session.execute(select(ApiToken).where(ApiToken.name == name)).scalar_one_or_none()
    if token is None:
        raise NotFound(f"no token named {name!r}; see `kyso token list`")
    if token.role != Role.client.value:
        raise InvalidInput(f"token {name!r} has role {token.role}; client certificates are for client tokens only "
                           "(civil-registration or dossier software)")
    if token.revoked_at is not None:
        raise Conflict(f"token {name!r} was revoked on {token.revoked_at:%Y-%m-%d}; create a new client token")
    if token.expires_at is not None and token.expires_at <= now:
        raise Conflict(f"token {name!r} expired on {token.expires_at:%Y-%m-%d}; give it a new expiry with "
                       "`kyso token rotate --expires-in-days N` first")
    return token


def issue_certificate(ctx: PkiContext, name: str, csr: bytes, actor: str, *, ca: str | None = None,
                      validity_days: int | None = None) -> ClientCertificate:
    """An ``api-client`` certificate for the client token ``name`` from the client's CSR, bound to the token.

    The CSR's self-signature must verify; only its public key is used (the subject is the token's name).
    Certificate, OCSP response, binding and audit entry are one transaction.
    """
    public_key = load_csr(csr).public_key()  # BadCSR when its signature does not verify
    key_type_of(public_key)
    if len(name) > 64:
        raise InvalidInput(f"token name {name!r} is longer than the 64 characters a certificate's CN may hold")
    profile = ctx.profiles.get(PROFILE)
    with transaction(ctx.sessions) as session:
        now = clock.now()
        token = _usable_client_token(session, name, now)
        issuer = issuance.default_issuing_ca(session, ca)
        row = issuance.issue_row(ctx, session, ca=issuer, profile=profile,
                                 name=build_name({"CN": token.name, "O": ORGANIZATION}, profile),
                                 public_key=public_key, key_ref=None, actor=actor, now=now,
                                 validity_days=validity_days)
        session.add(TokenCertificate(token_id=token.id, certificate_id=row.id, serial=row.serial, sha256=row.sha256,
                                     created_at=now, created_by=actor))
        audit.record(session, actor=actor, action="api:token:certificate", subject=token.name, serial=row.serial,
                     sha256=row.sha256, ca=issuer.name, not_after=row.not_after.isoformat())
        return ClientCertificate(token.name, row.serial, row.sha256, issuer.name, row.not_after, row.der)


# -- authentication ----------------------------------------------------------------------------------
class CertificateRefused(Unauthenticated):
    """The forwarded client certificate failed one check (HTTP 401); ``details["check"]`` names it."""


def _from_trusted_proxy(peer: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


def _parse(value: str) -> x509.Certificate:
    """URL-encoded PEM (nginx ``$ssl_client_escaped_cert``), plain PEM, or base64 DER (HAProxy, Traefik)."""
    text = unquote(value).strip()  # not unquote_plus: '+' is a base64 character
    if len(text) > MAX_HEADER_CHARS:
        raise ValueError("too long for one certificate")
    if text.startswith("-----BEGIN CERTIFICATE-----"):
        return x509.load_pem_x509_certificate(text.encode())
    try:
        der = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None
    return x509.load_der_x509_certificate(der)


def _issuing_ca(session: Session, ctx: PkiContext, cert: x509.Certificate) -> CertificateAuthority | None:
    """The kyso CA whose certificate's key verifies this certificate's signature (names alone prove nothing)."""
    for ca in session.execute(select(CertificateAuthority).where(CertificateAuthority.cert_der.is_not(None))).scalars():
        try:
            cert.verify_directly_issued_by(ctx.certificate(ca.cert_der))  # type: ignore[arg-type]
            return ca
        except (ValueError, TypeError, InvalidSignature):
            continue
    return None


def _check(session: Session, ctx: PkiContext, cert: x509.Certificate, sha256: str) -> ApiToken:
    """Every check, in order; the first that fails raises ``CertificateRefused`` naming it."""
    def refuse(check: str, message: str) -> CertificateRefused:
        return CertificateRefused(f"client certificate refused ({check}): {message}", check=check)

    ca = _issuing_ca(session, ctx, cert)
    if ca is None:
        raise refuse("issuer", f"it is not signed by a kyso CA (its issuer says {cert.issuer.rfc4514_string()!r})")
    row = session.execute(select(Certificate).where(Certificate.sha256 == sha256,
                                                    Certificate.ca_id == ca.id)).scalar_one_or_none()
    if row is None or row.external:
        raise refuse("issuer", f"CA {ca.name} signed it but kyso has no record of issuing it")
    if ca.status != CaStatus.ACTIVE:
        raise refuse("issuer", f"CA {ca.name}, which issued certificate {row.serial}, is {ca.status}")
    if row.profile != PROFILE:
        raise refuse("profile", f"certificate {row.serial} has profile {row.profile!r}, not {PROFILE!r}; get one "
                                "with `kyso token cert`")
    now = clock.now()
    if not row.not_before <= now <= row.not_after:
        raise refuse("validity", f"certificate {row.serial} is valid from {row.not_before:%Y-%m-%d %H:%M} to "
                                 f"{row.not_after:%Y-%m-%d %H:%M} UTC")
    if row.status != CertificateStatus.VALID:
        raise refuse("revocation", f"certificate {row.serial} is {row.status}"
                                   + (f" ({row.revocation_reason})" if row.revocation_reason else ""))
    binding = session.execute(select(TokenCertificate).where(TokenCertificate.sha256 == sha256)).scalar_one_or_none()
    if binding is None or binding.certificate_id != row.id:
        raise refuse("binding", f"certificate {row.serial} is not bound to any token")
    token = session.get(ApiToken, binding.token_id)
    if token is None or token.role != Role.client.value:
        raise refuse("token", f"certificate {row.serial} is not bound to a client token")
    if token.revoked_at is not None:
        raise refuse("token", f"token {token.name!r}, to which certificate {row.serial} is bound, is revoked")
    if token.expires_at is not None and now >= token.expires_at:
        raise refuse("token", f"token {token.name!r}, to which certificate {row.serial} is bound, expired on "
                              f"{token.expires_at:%Y-%m-%d}")
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
        token.last_used_at = now
    return token


def _deny(container: Container, peer: str, route: str, error: CertificateRefused, subject: str,
          **details: object) -> CertificateRefused:
    with transaction(container.sessions) as session:
        audit.record(session, actor=f"mtls:{peer}", action="api:authz:deny", subject=subject, route=route,
                     reason=error.message, answered=error.code, **error.details, **details)
    return error


def authenticate_request(container: Container, request: Request) -> Principal | None:
    """The principal of the client certificate a trusted proxy forwarded; ``None`` when no header came.

    A header from an address outside ``KYSO_TRUSTED_PROXIES`` is not believed: the request is refused
    (anyone can write a header) and the attempt audited, like every other failed check.
    """
    settings = container.settings
    value = request.headers.get(settings.client_cert_header, "").strip()
    if not value or value == "(null)":  # nginx with `ssl_verify_client optional` and no certificate sent
        return None
    peer = request.client.host if request.client else "unknown"
    route = f"{request.method} {request.url.path}"
    if not _from_trusted_proxy(peer, settings.trusted_proxies):
        error = CertificateRefused(
            f"client certificate refused (trusted_proxy): the {settings.client_cert_header} header is believed only "
            f"from KYSO_TRUSTED_PROXIES, and {peer} is not one; it was ignored. Send 'Authorization: Bearer "
            "<token>' or connect through the TLS proxy", check="trusted_proxy")
        raise _deny(container, peer, route, error, "-")
    try:
        cert = _parse(value)
        der = cert.public_bytes(serialization.Encoding.DER)
    except ValueError as exc:
        error = CertificateRefused(f"client certificate refused (format): the {settings.client_cert_header} header "
                                   f"is not a URL-encoded PEM certificate ({exc})", check="format")
        raise _deny(container, peer, route, error, "-") from None
    sha256 = hashlib.sha256(der).hexdigest()
    try:
        with transaction(container.sessions) as session:
            token = _check(session, container.pki, cert, sha256)
            principal = Principal(token.name, Role(token.role), scope_of(token))
    except CertificateRefused as error:
        raise _deny(container, peer, route, error, sha256, serial=format(cert.serial_number, "X"),
                    certificate_subject=cert.subject.rfc4514_string()) from None
    return principal
