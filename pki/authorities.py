"""The CA hierarchy: own root + issuing CA, or an issuing CA subordinate to an external root.

``init_hierarchy`` is idempotent: run twice with the same names it reports the existing CAs and
changes nothing; a CA that exists with a different definition is refused, never overwritten.
Each CA gets a delegated OCSP responder and a first full and delta CRL in the same transaction.
The issuing CA of an own hierarchy also certifies kyso's RFC 3161 time-stamping authority (TSA)
and the offline seal of verification QR codes (profile ``qr-seal``); running ``init_hierarchy``
again on a complete hierarchy adds either certificate if none is valid.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction
from core.errors import Unavailable
from hsm import KeyType
from hsm.errors import UnsupportedAlgorithm

from . import crl, ocsp
from .builder import build_certificate, signature_hash
from .context import PkiContext
from .encoding import load_certificates
from .errors import CAExists, CANotReady, CertificateMismatch, SubjectInvalid
from .issuance import default_issuing_ca, generated_key, issue_row
from .models import CaStatus, Certificate, CertificateAuthority, CertificateStatus
from .names import build_name, common_name
from .store import current_qr_seal, current_tsa, get_ca, list_cas
from .transparency import events as transparency
from .transparency.service import init_log

log = logging.getLogger("kyso.pki")

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


@dataclass(frozen=True)
class CaSpec:
    name: str
    common_name: str
    organization: str
    country: str = "VN"
    organizational_unit: str | None = None
    locality: str | None = None
    province: str | None = None
    key_type: KeyType | None = None
    validity_days: int | None = None

    def attributes(self) -> dict[str, str]:
        values = {"CN": self.common_name, "O": self.organization, "OU": self.organizational_unit,
                  "L": self.locality, "ST": self.province, "C": self.country}
        return {k: v for k, v in values.items() if v}


@dataclass
class InitResult:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    csr_pem: str | None = None
    tsa_serial: str | None = None  # set when this run issued the TSA certificate
    qr_seal_serial: str | None = None  # set when this run issued the offline-seal (QR) certificate
    log_key: str | None = None  # the transparency log's verifier key, when the log exists
    log_problem: str | None = None  # why the transparency log could not be made here (`kyso log init` later)


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise SubjectInvalid(f"CA name {name!r} must be 2-63 lower-case letters, digits or '-' (it appears in URLs)")


def _subject(ctx: PkiContext, spec: CaSpec, profile_name: str) -> str:
    return build_name(spec.attributes(), ctx.profiles.get(profile_name)).rfc4514_string()


def init_hierarchy(ctx: PkiContext, *, root: CaSpec | None, issuing: CaSpec, actor: str,
                   keystore: str | None = None, subordinate: bool = False) -> InitResult:
    """Create (or confirm) the root and issuing CAs; ``subordinate`` makes only a key and a CSR."""
    if subordinate == (root is not None):
        raise SubjectInvalid("give a root CA spec for an own hierarchy, or none with --subordinate")
    result = InitResult()
    with transaction(ctx.sessions) as session:
        existing = {ca.name: ca for ca in list_cas(session)}
    wanted = [(root, "root-ca"), (issuing, "issuing-ca")] if root else [(issuing, "issuing-ca")]
    for spec, profile_name in wanted:
        assert spec is not None
        _check_name(spec.name)
        ca = existing.get(spec.name)
        if ca is not None:
            if ca.profile != profile_name or ca.subject != _subject(ctx, spec, profile_name):
                raise CAExists(f"CA {spec.name!r} already exists with subject {ca.subject!r}; "
                               "kyso never overwrites a CA: choose another name")
            result.existing.append(spec.name)
    if len(result.existing) == len(wanted):
        with transaction(ctx.sessions) as session:
            pending = get_ca(session, issuing.name)
            if pending.status == CaStatus.PENDING and pending.csr_der:
                csr = x509.load_der_x509_csr(pending.csr_der)
                result.csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
            own_active = not subordinate and pending.status == CaStatus.ACTIVE and pending.mode == "own"
        if own_active:  # deployments made before kyso had a TSA or an offline QR seal get them here
            _ensure_tsa(ctx, actor, issuing.name, keystore, result)
            _ensure_qr_seal(ctx, actor, issuing.name, keystore, result)
            _ensure_log(ctx, actor, keystore, result)
        return result
    if result.existing and not (root and result.existing == [root.name]):
        raise CAExists(f"CA {result.existing[0]!r} exists but the rest of the hierarchy does not; name new CAs")
    with ExitStack() as keys:
        def new_key(spec: CaSpec, profile_name: str, label: str) -> str:
            key_type = spec.key_type or ctx.profiles.get(profile_name).default_key_type
            return keys.enter_context(generated_key(ctx, keystore, key_type, label, actor))

        root_ref = new_key(root, "root-ca", f"ca:{root.name}") if root and root.name not in result.existing else None
        issuing_ref = new_key(issuing, "issuing-ca", f"ca:{issuing.name}")
        with transaction(ctx.sessions) as session:
            now = clock.now()
            if subordinate:
                result.csr_pem = _create_pending(ctx, session, issuing, issuing_ref, actor, now)
                result.created.append(issuing.name)
                return result
            assert root is not None
            if root_ref is not None:
                root_ca = _create_root(ctx, session, root, root_ref, actor, now)
                _add_responder(ctx, session, root_ca, new_key(root, "ocsp-responder", f"ocsp:{root.name}"), actor, now)
                crl.publish_both(ctx, session, root_ca, now)
                result.created.append(root.name)
            else:
                root_ca = get_ca(session, root.name)
            issuing_ca = _create_issuing(ctx, session, issuing, issuing_ref, root_ca, actor, now)
            _add_responder(ctx, session, issuing_ca, new_key(issuing, "ocsp-responder", f"ocsp:{issuing.name}"), actor,
                           now)
            tsa = _add_tsa(ctx, session, issuing_ca, new_key(issuing, "tsa", f"tsa:{issuing.name}"), actor, now)
            result.tsa_serial = tsa.serial
            # the QR seal is EC P-256 whatever the CA's key type (WebCrypto ES256, 64-byte signatures)
            qr_key = keys.enter_context(generated_key(ctx, keystore, ctx.profiles.get("qr-seal").default_key_type,
                                                      f"qr-seal:{issuing.name}", actor))
            result.qr_seal_serial = _add_qr_seal(ctx, session, issuing_ca, qr_key, actor, now).serial
            crl.publish_both(ctx, session, issuing_ca, now)
            result.created.append(issuing.name)
    _ensure_log(ctx, actor, keystore, result)
    return result


def _ensure_log(ctx: PkiContext, actor: str, keystore: str | None, result: InitResult) -> None:
    """The transparency log and its Ed25519 key, once per kyso. A keystore that cannot hold Ed25519 keys
    does not stop the CAs: the result says so, events queue, and `kyso log init --keystore K` finishes it."""
    try:
        result.log_key = init_log(ctx, actor, keystore=keystore).vkey
    except UnsupportedAlgorithm as exc:
        log.warning("transparency log not created: %s", exc.message)
        result.log_problem = exc.message


def _ca_row(ctx: PkiContext, spec: CaSpec, profile: str, role: str, mode: str, status: str, key_ref: str,
            now: dt.datetime, parent: CertificateAuthority | None) -> CertificateAuthority:
    return CertificateAuthority(
        name=spec.name, role=role, mode=mode, status=status, profile=profile, parent_id=parent.id if parent else None,
        subject=_subject(ctx, spec, profile), key_ref=key_ref, next_crl_number=1, created_at=now,
    )


def _create_root(ctx: PkiContext, session: Session, spec: CaSpec, key_ref: str, actor: str,
                 now: dt.datetime) -> CertificateAuthority:
    profile = ctx.profiles.get("root-ca")
    key = ctx.signer(key_ref)
    cert = build_certificate(profile=profile, subject=build_name(spec.attributes(), profile),
                             public_key=key.public_key(), serial=x509.random_serial_number(), now=now, issuer_key=key,
                             issuer_cert=None,
                             endpoints=None, validity_days=spec.validity_days)
    ca = _ca_row(ctx, spec, "root-ca", "root", "own", CaStatus.ACTIVE, key_ref, now, None)
    ca.cert_der = cert.public_bytes(serialization.Encoding.DER)
    session.add(ca)
    session.flush()
    audit.record(session, actor=actor, action="pki:ca:create", subject=ca.name, role="root", key_ref=key_ref,
                 serial=format(cert.serial_number, "X"), dn=ca.subject,
                 sha256=hashlib.sha256(ca.cert_der).hexdigest())
    transparency.record(session, transparency.certificate_issued(
        der=ca.cert_der, serial=format(cert.serial_number, "X"), issuer=ca.subject, profile=profile.name, commune=None,
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, at=now))
    return ca


def _create_issuing(ctx: PkiContext, session: Session, spec: CaSpec, key_ref: str, parent: CertificateAuthority,
                    actor: str, now: dt.datetime) -> CertificateAuthority:
    profile = ctx.profiles.get("issuing-ca")
    row = issue_row(ctx, session, ca=parent, profile=profile, name=build_name(spec.attributes(), profile),
                    public_key=ctx.signer(key_ref).public_key(), key_ref=key_ref, actor=actor, now=now,
                    validity_days=spec.validity_days, action="pki:ca:certify")
    ca = _ca_row(ctx, spec, "issuing-ca", "issuing", "own", CaStatus.ACTIVE, key_ref, now, parent)
    ca.cert_der = row.der
    session.add(ca)
    session.flush()
    audit.record(session, actor=actor, action="pki:ca:create", subject=ca.name, role="issuing", key_ref=key_ref,
                 serial=row.serial, parent=parent.name, dn=ca.subject)
    return ca


def _create_pending(ctx: PkiContext, session: Session, spec: CaSpec, key_ref: str, actor: str, now: dt.datetime) -> str:
    profile = ctx.profiles.get("issuing-ca")
    key = ctx.signer(key_ref)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(build_name(spec.attributes(), profile))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, signature_hash(key), rsa_padding=padding.PKCS1v15() if isinstance(key, rsa.RSAPrivateKey) else None)
    )
    ca = _ca_row(ctx, spec, "issuing-ca", "issuing", "subordinate", CaStatus.PENDING, key_ref, now, None)
    ca.csr_der = csr.public_bytes(serialization.Encoding.DER)
    session.add(ca)
    session.flush()
    audit.record(session, actor=actor, action="pki:ca:request", subject=ca.name, key_ref=key_ref, dn=ca.subject)
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _add_responder(ctx: PkiContext, session: Session, ca: CertificateAuthority, key_ref: str, actor: str,
                   now: dt.datetime) -> Certificate:
    """Issue the CA's delegated OCSP responder and pre-produce responses for what it already issued."""
    profile = ctx.profiles.get("ocsp-responder")
    name = build_name({"CN": f"OCSP {common_name(ctx.certificate(ca.cert_der or b'').subject)}"[:64],
                       "O": _org(ctx, ca), "C": "VN"}, profile)
    row = issue_row(ctx, session, ca=ca, profile=profile, name=name, public_key=ctx.signer(key_ref).public_key(),
                    key_ref=key_ref, actor=actor, now=now, action="pki:ocsp-responder:issue")
    ca.ocsp_responder_serial = row.serial
    session.flush()
    for cert in session.query(Certificate).filter(Certificate.ca_id == ca.id):
        ocsp.preproduce(ctx, session, ca, cert, now)
    return row


RESPONDER_RENEW_BEFORE = dt.timedelta(days=30)


def renew_responder_if_due(ctx: PkiContext, session: Session, ca: CertificateAuthority, actor: str,
                           now: dt.datetime) -> bool:
    """A responder certificate close to expiry is replaced (new key) and every answer re-signed."""
    if ca.ocsp_responder_serial is None or ca.key_ref is None:
        return False
    current = session.execute(select(Certificate).where(
        Certificate.ca_id == ca.id, Certificate.serial == ca.ocsp_responder_serial)).scalar_one()
    if current.not_after - now > RESPONDER_RENEW_BEFORE:
        return False
    key_type = ctx.profiles.get("ocsp-responder").default_key_type
    store_name = (current.key_ref or ca.key_ref).split(":", 1)[0]
    with generated_key(ctx, store_name, key_type, f"ocsp:{ca.name}", actor) as ref:
        _add_responder(ctx, session, ca, ref, actor, now)
    return True


TSA_RENEW_BEFORE = dt.timedelta(days=30)
QR_SEAL_RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class _Service:
    """A certificate the issuing CA gives one of kyso's own services (TSA, offline QR seal)."""

    profile: str  # the certificate profile, also the keystore label prefix and the audit tag
    cn_prefix: str  # CN = "<prefix> <issuing CA's CN>"
    current: Callable[..., Certificate]  # pki.store lookup of the newest usable certificate


_TSA = _Service("tsa", "TSA", current_tsa)
_QR_SEAL = _Service("qr-seal", "QR seal", current_qr_seal)


def _add_service(ctx: PkiContext, session: Session, service: _Service, ca: CertificateAuthority, key_ref: str,
                 actor: str, now: dt.datetime, *, replaces: str | None = None) -> Certificate:
    profile = ctx.profiles.get(service.profile)
    name = build_name({"CN": f"{service.cn_prefix} {common_name(ctx.certificate(ca.cert_der or b'').subject)}"[:64],
                       "O": _org(ctx, ca), "C": "VN"}, profile)
    return issue_row(ctx, session, ca=ca, profile=profile, name=name, public_key=ctx.signer(key_ref).public_key(),
                     key_ref=key_ref, actor=actor, now=now, replaces=replaces,
                     action=f"pki:{service.profile}:{'renew' if replaces else 'issue'}")


def _add_tsa(ctx: PkiContext, session: Session, ca: CertificateAuthority, key_ref: str, actor: str,
             now: dt.datetime, *, replaces: str | None = None) -> Certificate:
    """Issue a time-stamping certificate (profile ``tsa``, critical EKU timeStamping) from ``ca``."""
    return _add_service(ctx, session, _TSA, ca, key_ref, actor, now, replaces=replaces)


def _add_qr_seal(ctx: PkiContext, session: Session, ca: CertificateAuthority, key_ref: str, actor: str,
                 now: dt.datetime, *, replaces: str | None = None) -> Certificate:
    """Issue an offline-seal certificate (profile ``qr-seal``, EC P-256) for verification QR codes."""
    return _add_service(ctx, session, _QR_SEAL, ca, key_ref, actor, now, replaces=replaces)


class _ServicePresent(Exception):
    """Another process certified the service while our key was being generated: drop our key, keep theirs."""

    def __init__(self, row: Certificate) -> None:
        super().__init__(row.serial)
        self.row = row


def ensure_tsa(ctx: PkiContext, actor: str, *, ca_name: str | None = None, keystore: str | None = None) -> Certificate:
    """The issuing CA's valid TSA certificate, issued now (key generated in the keystore) if it lacks one.

    Idempotent: a valid, unexpired TSA certificate of that CA is returned unchanged. The key goes
    to ``keystore``, by default the keystore holding the CA's own key.
    """
    return _ensure_tsa(ctx, actor, ca_name, keystore, None)


def ensure_qr_seal(ctx: PkiContext, actor: str, *, ca_name: str | None = None,
                   keystore: str | None = None) -> Certificate:
    """The issuing CA's valid offline-seal certificate, issued now (EC P-256 key generated in the
    keystore) if it lacks one. Idempotent, like ``ensure_tsa``."""
    return _ensure_qr_seal(ctx, actor, ca_name, keystore, None)


def _ensure_tsa(ctx: PkiContext, actor: str, ca_name: str | None, keystore: str | None,
                result: InitResult | None) -> Certificate:
    row, issued = _ensure_service(ctx, _TSA, actor, ca_name, keystore)
    if result is not None and issued:
        result.tsa_serial = row.serial
    return row


def _ensure_qr_seal(ctx: PkiContext, actor: str, ca_name: str | None, keystore: str | None,
                    result: InitResult | None) -> Certificate:
    row, issued = _ensure_service(ctx, _QR_SEAL, actor, ca_name, keystore)
    if result is not None and issued:
        result.qr_seal_serial = row.serial
    return row


def _ensure_service(ctx: PkiContext, service: _Service, actor: str, ca_name: str | None,
                    keystore: str | None) -> tuple[Certificate, bool]:
    """(the CA's usable certificate for ``service``, whether this call issued it)."""
    with transaction(ctx.sessions) as session:
        ca = default_issuing_ca(session, ca_name)
        try:
            return service.current(session, ca=ca), False
        except Unavailable:
            pass
        assert ca.key_ref is not None  # default_issuing_ca refuses a CA without a key
        store_name = keystore or ca.key_ref.split(":", 1)[0]
        ca_name = ca.name
    key_type = ctx.profiles.get(service.profile).default_key_type
    try:
        with (generated_key(ctx, store_name, key_type, f"{service.profile}:{ca_name}", actor) as ref,
              transaction(ctx.sessions) as session):
            ca = default_issuing_ca(session, ca_name)
            try:
                raise _ServicePresent(service.current(session, ca=ca))
            except Unavailable:
                pass
            row = _add_service(ctx, session, service, ca, ref, actor, clock.now())
    except _ServicePresent as present:
        return present.row, False
    return row, True


def renew_tsa_if_due(ctx: PkiContext, session: Session, ca: CertificateAuthority, actor: str,
                     now: dt.datetime) -> bool:
    """The CA's newest TSA certificate, once within 30 days of expiry, is followed by a new one (new key).

    The old certificate is not revoked: tokens it signed stay verifiable, and ``current_tsa``
    picks the newest. A CA without a TSA certificate is left alone (``ensure_tsa`` adds one);
    nothing is renewed when the CA's own certificate ends first (the new one could not outlive it).
    """
    return _renew_service_if_due(ctx, session, _TSA, ca, actor, now, TSA_RENEW_BEFORE)


def renew_qr_seal_if_due(ctx: PkiContext, session: Session, ca: CertificateAuthority, actor: str,
                         now: dt.datetime) -> bool:
    """The CA's newest offline-seal certificate, once within 30 days of expiry, is followed by a new one.

    The old certificate is never revoked by renewal: QR codes printed with its seal stay verifiable
    (``offline_seal.public_keys`` keeps publishing it), and ``current_qr_seal`` picks the newest.
    """
    return _renew_service_if_due(ctx, session, _QR_SEAL, ca, actor, now, QR_SEAL_RENEW_BEFORE)


def _renew_service_if_due(ctx: PkiContext, session: Session, service: _Service, ca: CertificateAuthority,
                          actor: str, now: dt.datetime, before: dt.timedelta) -> bool:
    if ca.key_ref is None or ca.cert_der is None:
        return False
    current = session.execute(
        select(Certificate).where(Certificate.ca_id == ca.id, Certificate.profile == service.profile,
                                  Certificate.status == CertificateStatus.VALID, Certificate.key_ref.is_not(None))
        .order_by(Certificate.not_after.desc(), Certificate.id.desc()).limit(1)).scalar()
    if current is None or current.not_after - now > before:
        return False
    if current.not_after >= ctx.certificate(ca.cert_der).not_valid_after_utc:
        return False
    assert current.key_ref is not None
    key_type = ctx.keystores.for_ref(current.key_ref).key_type(current.key_ref)
    with generated_key(ctx, current.key_ref.split(":", 1)[0], key_type, f"{service.profile}:{ca.name}", actor) as ref:
        _add_service(ctx, session, service, ca, ref, actor, now, replaces=current.serial)
    return True


def _org(ctx: PkiContext, ca: CertificateAuthority) -> str:
    attrs = ctx.certificate(ca.cert_der or b"").subject.get_attributes_for_oid(x509.oid.NameOID.ORGANIZATION_NAME)
    return str(attrs[0].value) if attrs else "kyso"


def import_certificate(ctx: PkiContext, name: str, data: bytes, actor: str) -> CertificateAuthority:
    """Install the certificate an external root issued for a pending subordinate CA.

    The certificate must carry this CA's public key and be a CA certificate; the chain given with
    it must link it, signature by signature, up to a self-signed root.
    """
    certs = load_certificates(data)
    with transaction(ctx.sessions) as session:
        ca = get_ca(session, name)
        if ca.status != CaStatus.PENDING or ca.key_ref is None:
            raise CANotReady(f"CA {name!r} is {ca.status}; only a pending subordinate CA takes an imported certificate")
        ours = ctx.signer(ca.key_ref).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        leaf = next((c for c in certs if c.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == ours), None)
        if leaf is None:
            raise CertificateMismatch(f"no certificate in the input carries CA {name!r}'s public key")
        try:
            bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            raise CertificateMismatch("the certificate is not a CA certificate (basicConstraints cA=TRUE missing)")
        chain = [c for c in certs if c is not leaf]
        _check_chain(leaf, chain)
        now = clock.now()
        if not (leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc):
            raise CertificateMismatch("the certificate is not valid now")
        ca.cert_der = leaf.public_bytes(serialization.Encoding.DER)
        ca.chain_pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain) or None
        ca.subject = leaf.subject.rfc4514_string()
        ca.status = CaStatus.ACTIVE
        session.flush()
        audit.record(session, actor=actor, action="pki:ca:import", subject=ca.name,
                     serial=format(leaf.serial_number, "X"), issuer=leaf.issuer.rfc4514_string(),
                     sha256=hashlib.sha256(ca.cert_der).hexdigest())
        responder_type = ctx.profiles.get("ocsp-responder").default_key_type
        with generated_key(ctx, ca.key_ref.split(":", 1)[0], responder_type, f"ocsp:{ca.name}", actor) as ref:
            _add_responder(ctx, session, ca, ref, actor, now)
            crl.publish_both(ctx, session, ca, now)
    return ca


def _check_chain(leaf: x509.Certificate, chain: list[x509.Certificate]) -> None:
    current = leaf
    remaining = list(chain)
    while current.issuer != current.subject:
        parent = next((c for c in remaining if c.subject == current.issuer), None)
        if parent is None:
            raise CertificateMismatch(f"the chain lacks the issuer {current.issuer.rfc4514_string()!r}; "
                                      "import the certificate together with its full chain (PEM)")
        try:
            current.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CertificateMismatch(
                f"{current.subject.rfc4514_string()!r} is not signed by its issuer in the chain") from exc
        remaining.remove(parent)
        current = parent


def chain_pem(ctx: PkiContext, session: Session, ca: CertificateAuthority) -> str:
    """The CA's certificate followed by its issuers, up to the root (PEM)."""
    parts = []
    node: CertificateAuthority | None = ca
    while node is not None and node.cert_der is not None:
        parts.append(ctx.certificate(node.cert_der).public_bytes(serialization.Encoding.PEM).decode())
        if node.chain_pem:
            parts.append(node.chain_pem)
        node = session.get(CertificateAuthority, node.parent_id) if node.parent_id else None
    return "".join(parts)


__all__ = ["CaSpec", "InitResult", "chain_pem", "ensure_qr_seal", "ensure_tsa", "import_certificate", "init_hierarchy",
           "renew_qr_seal_if_due", "renew_responder_if_due", "renew_tsa_if_due"]
