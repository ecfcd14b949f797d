"""Issuing and renewing end-entity certificates.

A key generated for a certificate is created in the keystore before the database transaction
starts (keystores are not transactional); if the transaction then fails, the key is destroyed
again, and if even that fails an audit entry records the orphan. A certificate row, its
pre-produced OCSP response and its audit entry are committed together or not at all.

With an Idempotency-Key, the record of what the key produced is committed in that same transaction:
a retry after a dropped connection finds it before generating anything and gets the same certificate
back (marked replayed). Two requests racing with one key both generate; the loser's record insert hits
the unique (client, key) constraint, its transaction rolls back, its key is destroyed, and it answers
with the winner's certificate.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction
from core.errors import Conflict
from hsm import KeyType
from policies import units
from policies.profiles import Profile

from . import ocsp
from .builder import Endpoints, build_certificate
from .context import PkiContext
from .encoding import key_type_of, load_csr
from .errors import CANotReady, CARevoked, RevocationConflict, SubjectInvalid, UnknownCA, WeakKey
from .models import (
    CaStatus,
    Certificate,
    CertificateAuthority,
    CertificateStatus,
    Credential,
    CredentialStatus,
    IssuanceIdempotency,
)
from .names import SubjectInfo, build_name, common_name, name_attributes
from .store import credential_for, get_ca, get_certificate, normalize_serial
from .transparency import events as transparency

log = logging.getLogger(__name__)
CA_PROFILES = {"root-ca", "issuing-ca"}


@dataclass(frozen=True)
class IssueRequest:
    profile: str
    subject: SubjectInfo
    commune_code: str | None = None
    csr: bytes | None = None
    key_type: KeyType | None = None
    keystore: str | None = None
    validity_days: int | None = None
    ca: str | None = None

    def fingerprint(self) -> str:
        """What makes two requests the same, for Idempotency-Key reuse checks (canonical JSON, SHA-256)."""
        fields = {
            "profile": self.profile, "subject": self.subject.model_dump(mode="json"),
            "commune_code": self.commune_code,
            "csr": hashlib.sha256(self.csr).hexdigest() if self.csr is not None else None,
            "key_type": self.key_type.value if self.key_type is not None else None,
            "keystore": self.keystore, "validity_days": self.validity_days, "ca": self.ca,
        }
        canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class IssueResult:
    certificate: Certificate
    credential_id: str | None
    key_ref: str | None
    replayed: bool = False


def new_credential_id() -> str:
    return "cred_" + secrets.token_hex(12)


def refuse_if_revoked(ca: CertificateAuthority) -> None:
    """A revoked CA's signatures are worthless to relying parties: never let it issue or renew."""
    if ca.status == CaStatus.REVOKED:
        raise CARevoked(f"CA {ca.name!r} is revoked and can no longer issue or renew certificates; "
                        "issue under another CA (kyso ca list)")


def _refuse_all_revoked(session: Session) -> None:
    """Say that the issuing CAs were revoked, rather than that none exists."""
    revoked = session.execute(select(CertificateAuthority.name).where(
        CertificateAuthority.role == "issuing", CertificateAuthority.status == CaStatus.REVOKED)).scalars().all()
    if revoked:
        raise CARevoked(f"every issuing CA is revoked ({', '.join(revoked)}); create a new one under the root "
                        "with `kyso ca init --issuing-name NEW-NAME`")


def default_issuing_ca(session: Session, name: str | None) -> CertificateAuthority:
    if name:
        ca = get_ca(session, name)
    else:
        candidates = session.execute(
            select(CertificateAuthority).where(
                CertificateAuthority.role == "issuing", CertificateAuthority.status == CaStatus.ACTIVE,
                CertificateAuthority.key_ref.is_not(None),
            )
        ).scalars().all()
        if not candidates:
            _refuse_all_revoked(session)
            raise UnknownCA("no active issuing CA; run `kyso ca init` first")
        if len(candidates) > 1:
            raise UnknownCA(f"several issuing CAs exist ({', '.join(c.name for c in candidates)}); name one with 'ca'")
        ca = candidates[0]
    refuse_if_revoked(ca)
    if ca.status != CaStatus.ACTIVE or ca.key_ref is None or ca.cert_der is None:
        raise CANotReady(f"CA {ca.name!r} cannot issue (status {ca.status}); import its certificate first")
    return ca


def subject_attributes(session: Session, profile: Profile, subject: SubjectInfo, commune_code: str | None,
                       on: dt.date) -> tuple[dict[str, str], str | None, str | None]:
    """Subject attributes with L, ST and the default O taken from the unit valid on ``on``."""
    attrs = subject.attributes()
    if commune_code is None:
        if profile.requires_commune:
            raise SubjectInvalid(f"profile {profile.name!r} needs commune_code (5 digits, Decision 19/2025/QĐ-TTg)")
        return attrs, None, None
    unit = units.view(session, commune_code, on)
    if unit.level != "commune":
        raise SubjectInvalid(f"{commune_code} is a province; give the commune or ward code")
    attrs["L"] = unit.full_name
    attrs["ST"] = unit.province_name or attrs.get("ST", "")
    attrs.setdefault("O", f"Ủy ban nhân dân {unit.full_name}")
    return attrs, unit.code, unit.province_code


def issue_row(
    ctx: PkiContext, session: Session, *, ca: CertificateAuthority, profile: Profile, name: x509.Name,
    public_key: CertificatePublicKeyTypes, key_ref: str | None, actor: str, now: dt.datetime,
    commune_code: str | None = None, province_code: str | None = None, replaces: str | None = None,
    validity_days: int | None = None, action: str = "pki:certificate:issue",
) -> Certificate:
    """Sign, store, pre-produce OCSP and audit one certificate inside ``session``."""
    refuse_if_revoked(ca)
    if ca.cert_der is None or ca.key_ref is None:
        raise CANotReady(f"CA {ca.name!r} has no certificate or key here")
    cert = build_certificate(
        profile=profile, subject=name, public_key=public_key, serial=x509.random_serial_number(), now=now,
        issuer_key=ctx.signer(ca.key_ref), issuer_cert=ctx.certificate(ca.cert_der),
        endpoints=Endpoints(ctx.settings.base_url, ca.name), validity_days=validity_days,
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    row = Certificate(
        serial=format(cert.serial_number, "X"), ca_id=ca.id, profile=profile.name,
        subject=cert.subject.rfc4514_string(), common_name=common_name(cert.subject), commune_code=commune_code,
        province_code=province_code,
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, status=CertificateStatus.VALID,
        status_changed_at=now, der=der, sha256=hashlib.sha256(der).hexdigest(), key_ref=key_ref,
        replaces_serial=replaces, issued_by=actor, issued_at=now, external=False,
    )
    session.add(row)
    session.flush()
    ocsp.preproduce(ctx, session, ca, row, now, new=True)
    audit.record(session, actor=actor, action=action, subject=row.serial, ca=ca.name, profile=profile.name,
                 dn=row.subject, commune=commune_code, key_ref=key_ref, replaces=replaces,
                 not_after=row.not_after.isoformat())
    transparency.record(session, transparency.certificate_issued(
        der=der, serial=row.serial, issuer=ca.subject, profile=profile.name, commune=commune_code,
        not_before=row.not_before, not_after=row.not_after, at=now))
    return row


@contextmanager
def generated_key(ctx: PkiContext, keystore: str | None, key_type: KeyType, label: str, actor: str) -> Iterator[str]:
    """A fresh keystore key that is destroyed again if the surrounding work fails."""
    if key_type.signs_messages:  # Ed25519 is for log checkpoints; X.509 and PAdES here need EC or RSA
        raise WeakKey(f"key type {key_type.value} cannot hold a certificate; use ec-p256, ec-p384 or rsa-*")
    store = ctx.keystores.get(keystore)
    ref = store.generate(key_type, label)
    try:
        yield ref
    except BaseException:
        try:
            store.delete(ref)
            ctx.forget_key(ref)
        except Exception as exc:  # noqa: BLE001 - record the orphan instead of hiding it
            log.error("could not delete orphaned key %s: %s", ref, exc)
            with transaction(ctx.sessions) as session:
                audit.record(session, actor=actor, action="hsm:key:orphaned", subject=ref, error=str(exc))
        raise


def issue(ctx: PkiContext, request: IssueRequest, actor: str, *,
          idempotency_key: str | None = None) -> IssueResult:
    """Issue from a CSR, or with a key generated inside the keystore (a new credential).

    With ``idempotency_key``, a request ``actor`` already sent with that key returns the certificate it
    produced (``replayed=True``) without generating a key or issuing; the same key with a different
    request is refused with ``idempotency_key_reused``.
    """
    if idempotency_key is None:
        return _issue(ctx, request, actor, None, None)
    fingerprint = request.fingerprint()
    earlier = replay(ctx, actor, idempotency_key, fingerprint)
    if earlier is not None:
        return earlier
    try:
        return _issue(ctx, request, actor, idempotency_key, fingerprint)
    except IntegrityError:
        # a concurrent request with this key committed first: ours rolled back (and its key was destroyed)
        earlier = replay(ctx, actor, idempotency_key, fingerprint)
        if earlier is not None:
            return earlier
        raise


def replay(ctx: PkiContext, client: str, key: str, fingerprint: str) -> IssueResult | None:
    """The certificate an earlier request with this Idempotency-Key produced, or None.

    A replay is audited as ``pki:certificate:issue:replay`` (no new issuance entry): the chain then says
    who was handed the certificate, and its credential, a second time.
    """
    with transaction(ctx.sessions) as session:
        record = session.execute(select(IssuanceIdempotency).where(
            IssuanceIdempotency.client == client, IssuanceIdempotency.key == key)).scalar_one_or_none()
        if record is None:
            return None
        if record.request_sha256 != fingerprint:
            raise Conflict("this Idempotency-Key was used for a different request; use a new key for a new "
                           "certificate", code="idempotency_key_reused")
        row = get_certificate(session, record.serial)
        audit.record(session, actor=client, action="pki:certificate:issue:replay", subject=row.serial,
                     idempotency_key=key, credential_id=record.credential_id)
        return IssueResult(row, record.credential_id, row.key_ref, replayed=True)


def _remember(session: Session, actor: str, idempotency_key: str | None, fingerprint: str | None,
              row: Certificate, credential_id: str | None) -> None:
    """The Idempotency-Key record, in the certificate's transaction; a concurrent winner makes this raise."""
    if idempotency_key is None:
        return
    session.add(IssuanceIdempotency(client=actor, key=idempotency_key, request_sha256=fingerprint or "",
                                    serial=row.serial, credential_id=credential_id, created_at=row.issued_at))
    session.flush()


def _issue(ctx: PkiContext, request: IssueRequest, actor: str, idempotency_key: str | None,
           fingerprint: str | None) -> IssueResult:
    profile = ctx.profiles.get(request.profile)
    if profile.name in CA_PROFILES or profile.is_ca:
        raise SubjectInvalid(f"profile {profile.name!r} is for CAs; use `kyso ca init`")
    if request.csr is not None:
        if request.key_type is not None or request.keystore is not None:
            raise SubjectInvalid("give either a CSR or key_type/keystore for server-side key generation, not both")
        csr = load_csr(request.csr)
        public_key = csr.public_key()
        key_type_of(public_key)
        with transaction(ctx.sessions) as session:
            row = _issue_new(ctx, session, request, profile, public_key, None, actor)
            _remember(session, actor, idempotency_key, fingerprint, row, None)
        return IssueResult(row, None, None)
    key_type = request.key_type or profile.default_key_type
    if key_type not in profile.key_types:
        raise WeakKey(f"profile {profile.name!r} accepts keys {[k.value for k in profile.key_types]}, "
                      f"not {key_type.value}")
    with generated_key(ctx, request.keystore, key_type, f"{profile.name}:{request.subject.common_name}", actor) as ref:
        public_key = _keystore_public_key(ctx, ref)
        with transaction(ctx.sessions) as session:
            row = _issue_new(ctx, session, request, profile, public_key, ref, actor)
            credential = Credential(id=new_credential_id(), key_ref=ref, certificate_id=row.id,
                                    status=CredentialStatus.ACTIVE, created_at=row.issued_at)
            session.add(credential)
            _remember(session, actor, idempotency_key, fingerprint, row, credential.id)
            audit.record(session, actor=actor, action="pki:credential:create", subject=credential.id,
                         key_ref=ref, serial=row.serial)
    return IssueResult(row, credential.id, ref)


def _issue_new(ctx: PkiContext, session: Session, request: IssueRequest, profile: Profile,
               public_key: CertificatePublicKeyTypes, key_ref: str | None, actor: str) -> Certificate:
    now = clock.now()
    ca = default_issuing_ca(session, request.ca)
    attrs, commune, province = subject_attributes(session, profile, request.subject, request.commune_code, now.date())
    return issue_row(ctx, session, ca=ca, profile=profile, name=build_name(attrs, profile), public_key=public_key,
                     key_ref=key_ref, actor=actor, now=now, commune_code=commune, province_code=province,
                     validity_days=request.validity_days)


def renew(ctx: PkiContext, serial: str, actor: str, *, new_key: bool = False, csr: bytes | None = None,
          key_type: KeyType | None = None, idempotency_key: str | None = None) -> IssueResult:
    """A new certificate for the same subject: same key, or a new one (the old is then superseded).

    ``idempotency_key`` works as for :func:`issue`; a retry of a renewal that superseded the old
    certificate returns the renewal instead of refusing to renew a revoked certificate.
    """
    if idempotency_key is None:
        return _renew(ctx, serial, actor, new_key=new_key, csr=csr, key_type=key_type)
    fingerprint = renewal_fingerprint(serial, new_key=new_key, csr=csr, key_type=key_type)
    earlier = replay(ctx, actor, idempotency_key, fingerprint)
    if earlier is not None:
        return earlier
    try:
        return _renew(ctx, serial, actor, new_key=new_key, csr=csr, key_type=key_type,
                      idempotency_key=idempotency_key, fingerprint=fingerprint)
    except (IntegrityError, RevocationConflict):
        # a concurrent renewal with this key won: our record insert failed, or the old certificate is
        # already superseded by the winner's
        earlier = replay(ctx, actor, idempotency_key, fingerprint)
        if earlier is not None:
            return earlier
        raise


def renewal_fingerprint(serial: str, *, new_key: bool, csr: bytes | None, key_type: KeyType | None) -> str:
    fields = {"renew": normalize_serial(serial), "new_key": new_key,
              "csr": hashlib.sha256(csr).hexdigest() if csr is not None else None,
              "key_type": key_type.value if key_type is not None else None}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _renew(ctx: PkiContext, serial: str, actor: str, *, new_key: bool, csr: bytes | None,
           key_type: KeyType | None, idempotency_key: str | None = None,
           fingerprint: str | None = None) -> IssueResult:
    remember = (idempotency_key, fingerprint)
    with transaction(ctx.sessions) as session:
        old = get_certificate(session, serial)
        if old.status != CertificateStatus.VALID:
            raise RevocationConflict(
                f"certificate {old.serial} is {old.status}; only a valid certificate can be renewed")
        if old.external:
            raise RevocationConflict(f"certificate {old.serial} comes from an external CA; request a new one there")
        refuse_if_revoked(old.ca)  # before a new key is generated for nothing
        profile = ctx.profiles.get(old.profile)
        old_cert = x509.load_der_x509_certificate(old.der)
        old_key_ref = old.key_ref
    if not new_key:
        if csr is not None:
            raise SubjectInvalid("a CSR means a new key; set new_key=true")
        return _renew_with(ctx, serial, actor, old_cert.public_key(), old_key_ref, keep_credential=True,
                           remember=remember)
    if csr is not None:
        public_key = load_csr(csr).public_key()
        key_type_of(public_key)
        return _renew_with(ctx, serial, actor, public_key, None, keep_credential=False, remember=remember)
    if old_key_ref is None:
        raise SubjectInvalid("this certificate's key is not in kyso's keystore; send a CSR for the new key")
    key_type = key_type or ctx.keystores.for_ref(old_key_ref).key_type(old_key_ref)
    keystore = old_key_ref.split(":", 1)[0]
    with generated_key(ctx, keystore, key_type, f"{profile.name}:{old.common_name}", actor) as ref:
        return _renew_with(ctx, serial, actor, _keystore_public_key(ctx, ref), ref, keep_credential=False,
                           remember=remember)


def _keystore_public_key(ctx: PkiContext, ref: str) -> CertificatePublicKeyTypes:
    """A keystore key's public half as a certificate's subject key (keystores hold EC and RSA keys only)."""
    return cast(CertificatePublicKeyTypes, ctx.keystores.for_ref(ref).public_key(ref))


def _renew_with(ctx: PkiContext, serial: str, actor: str, public_key: CertificatePublicKeyTypes,
                key_ref: str | None, *, keep_credential: bool,
                remember: tuple[str | None, str | None] = (None, None)) -> IssueResult:
    from .revocation import revoke_row  # renewal with a new key supersedes the old certificate

    with transaction(ctx.sessions) as session:
        old = get_certificate(session, serial, for_update=True)
        if old.status != CertificateStatus.VALID:
            raise RevocationConflict(
                f"certificate {old.serial} is {old.status}; only a valid certificate can be renewed")
        now = clock.now()
        profile = ctx.profiles.get(old.profile)
        attrs = name_attributes(x509.load_der_x509_certificate(old.der).subject)
        if old.commune_code:
            units.lookup(session, old.commune_code, now.date())  # a merged commune needs the merger operation
        row = issue_row(ctx, session, ca=old.ca, profile=profile, name=build_name(attrs, profile),
                        public_key=public_key, key_ref=key_ref or (old.key_ref if keep_credential else None),
                        actor=actor, now=now, commune_code=old.commune_code, province_code=old.province_code,
                        replaces=old.serial, action="pki:certificate:renew")
        credential = credential_for(session, old)
        credential_id = None
        if keep_credential and credential is not None:
            credential.certificate_id = row.id
            credential_id = credential.id
        elif not keep_credential:
            if credential is not None:
                credential.status = CredentialStatus.RETIRED
            if key_ref is not None:
                new_cred = Credential(id=new_credential_id(), key_ref=key_ref, certificate_id=row.id,
                                      status=CredentialStatus.ACTIVE, created_at=now)
                session.add(new_cred)
                credential_id = new_cred.id
            revoke_row(ctx, session, old, "superseded", actor, now)
        _remember(session, actor, remember[0], remember[1], row, credential_id)
    ctx.ocsp_cache.clear()
    return IssueResult(row, credential_id, row.key_ref)
