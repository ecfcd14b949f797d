"""What a signature needs from the PKI, read once and kept warm: the signer's certificate and chain,
and the revocation data (stored OCSP responses, CRLs) that B-LT embeds.

Everything comes from kyso's own database, never the network: the responses are the pre-produced
ones the OCSP responder serves. The cache (``core.cache``) is dropped when the revocation
epoch moves (any revocation, release or CRL publication, in any worker), checked at most every
``KYSO_OCSP_CACHE_CHECK_SECONDS``, and entries also expire after a few seconds so a renewal shows.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from asn1crypto import crl as asn1_crl, ocsp as asn1_ocsp, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.cache import Cache, EpochWatch
from core.db import transaction
from hsm import KeyType
from pki import crl as pki_crl
from pki.context import PkiContext
from pki.encoding import key_type_of
from pki.models import Certificate, CertificateAuthority, OcspResponse
from pki.ocsp import revocation_epoch
from pki.store import get_credential
from signing.errors import SigningRefused
from signing.shared_asn1 import shareable

SIGNING_PROFILES = {"specialist", "seal"}
DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"  # id-kp-documentSigning, RFC 9336 (asn1crypto has no name for it)
DOCUMENT_SIGNING_EKUS = frozenset({x509.ObjectIdentifier(DOCUMENT_SIGNING),
                                   x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION})
TTL_SECONDS = 5.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class SignerMaterial:
    credential_id: str
    key_ref: str
    key_type: KeyType
    serial: str
    profile: str
    commune_code: str | None
    certificate: asn1_x509.Certificate
    chain: tuple[asn1_x509.Certificate, ...]  # issuing CA first, root last
    common_name: str
    title: str | None
    organization: str | None
    unit: str | None  # organisationalUnitName, which signing policies may name
    not_after: dt.datetime


@dataclass(frozen=True)
class RevocationData:
    """OCSP responses and CRLs for a set of certificates, ready for a DSS."""

    certs: tuple[asn1_x509.Certificate, ...]
    ocsps: tuple[asn1_ocsp.OCSPResponse, ...]
    crls: tuple[asn1_crl.CertificateList, ...]
    complete: bool  # every non-root certificate has a stored OCSP response


def refuse_unless_document_signer(cert: x509.Certificate, credential_id: str, profile: str) -> None:
    """The certificate itself must name documentSigning (RFC 9336) or emailProtection: the profile
    name alone is not enough (a profile file edited to drop its EKU, or a certificate issued under
    an older one). Stricter than verification (``signing.verify.chain.SIGNER_USAGE`` accepts a foreign
    certificate with no EKU at all): kyso's own signing profiles always carry one of the two."""
    try:
        purposes = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        purposes = set()
    if not purposes & DOCUMENT_SIGNING_EKUS:
        # cryptography names an OID only through its private _name (no public accessor)
        named = ", ".join(sorted(p._name if p._name != "Unknown OID" else p.dotted_string  # noqa: SLF001
                                 for p in purposes)) or "none"
        raise SigningRefused(f"credential {credential_id} holds a {profile} certificate whose extended key usage "
                             f"({named}) names neither documentSigning nor emailProtection; it may not sign documents")


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def revocation_watch(ctx: PkiContext) -> EpochWatch:
    """The revocation epoch (any revocation, release or CRL publication, in any worker), read at most
    every ``KYSO_OCSP_CACHE_CHECK_SECONDS``: one per process, built by the container and shared by
    every cache a revocation invalidates (signer material, revocation data, chains, the seal key)."""
    return EpochWatch(revocation_epoch, lambda: ctx.settings.ocsp_cache_check_seconds)


class MaterialCache:
    """Per-process cache; safe to lose (the database is the truth). Entries expire after
    ``TTL_SECONDS`` and go at once when ``watch`` sees the revocation epoch move."""

    def __init__(self, ctx: PkiContext, watch: EpochWatch | None = None) -> None:
        self._ctx = ctx
        self.watch = watch or revocation_watch(ctx)
        self._signers: Cache[str, SignerMaterial] = Cache("signer_material", max_entries=MAX_ENTRIES,
                                                         ttl=TTL_SECONDS, watch=self.watch)
        self._revinfo: Cache[tuple[str, ...], RevocationData] = Cache("revocation_data", max_entries=MAX_ENTRIES,
                                                                      ttl=TTL_SECONDS, watch=self.watch)

    def clear(self) -> None:
        self._signers.clear()
        self._revinfo.clear()
        self.watch.reset()

    # -- signer ----------------------------------------------------------------------------------
    def signer(self, credential_id: str) -> SignerMaterial:
        with transaction(self._ctx.sessions) as session:
            self.watch.moved(session)
            material = self._signers.get(credential_id)
            if material is None:
                material = self._load_signer(session, credential_id)
                self._signers.put(credential_id, material)
        if material.not_after <= clock.now():
            raise SigningRefused(f"the certificate of credential {credential_id} expired on "
                                 f"{material.not_after:%Y-%m-%d}; renew it before signing")
        return material

    def _load_signer(self, session: Session, credential_id: str) -> SignerMaterial:
        credential = get_credential(session, credential_id)
        row = credential.certificate
        if credential.status == "retired":
            reason = (f" ({row.status.replace('_', ' ')}: {row.revocation_reason})"
                      if row and row.revocation_reason else "")
            raise SigningRefused(f"credential {credential_id} is retired: its certificate was revoked or replaced"
                                 f"{reason}; it can no longer sign")
        if credential.status != "active" or row is None:
            raise SigningRefused(f"credential {credential_id} is {credential.status}: it has no usable certificate yet")
        if row.profile not in SIGNING_PROFILES:
            raise SigningRefused(f"credential {credential_id} holds a {row.profile} certificate, "
                                 "which may not sign documents (specialist or seal certificates only)")
        if row.ca.status == "revoked":
            raise SigningRefused(f"the CA that issued the certificate of credential {credential_id} ({row.ca.name}) "
                                 "is revoked, so nothing it certified can sign; issue a new certificate under the "
                                 "CA that replaces it")
        if row.status != "valid":
            raise SigningRefused(f"the certificate of credential {credential_id} is {row.status.replace('_', ' ')}"
                                 f"{' (' + row.revocation_reason + ')' if row.revocation_reason else ''}; "
                                 "it can no longer sign")
        cert = self._ctx.certificate(row.der)
        refuse_unless_document_signer(cert, credential_id, row.profile)
        return SignerMaterial(
            credential_id=credential.id, key_ref=credential.key_ref, key_type=key_type_of(cert.public_key()),
            serial=row.serial, profile=row.profile, commune_code=row.commune_code,
            certificate=shareable(asn1_x509.Certificate.load(row.der)), chain=tuple(self._chain(session, row.ca)),
            common_name=_attr(cert.subject, NameOID.COMMON_NAME) or row.common_name,
            title=_attr(cert.subject, NameOID.TITLE), organization=_attr(cert.subject, NameOID.ORGANIZATION_NAME),
            unit=_attr(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
            not_after=row.not_after,
        )

    @staticmethod
    def _chain(session: Session, ca: CertificateAuthority | None) -> list[asn1_x509.Certificate]:
        chain: list[asn1_x509.Certificate] = []
        seen: set[int] = set()
        while ca is not None and ca.id not in seen:
            seen.add(ca.id)
            if ca.cert_der:
                chain.append(shareable(asn1_x509.Certificate.load(ca.cert_der)))
            if ca.chain_pem:
                for extra in x509.load_pem_x509_certificates(ca.chain_pem.encode()):
                    chain.append(shareable(asn1_x509.Certificate.load(extra.public_bytes(serialization.Encoding.DER))))
            ca = session.get(CertificateAuthority, ca.parent_id) if ca.parent_id else None
        return chain

    # -- revocation data -------------------------------------------------------------------------
    def revocation_data(self, certs: list[asn1_x509.Certificate]) -> RevocationData:
        """Stored OCSP responses for every kyso-issued certificate in ``certs``, plus the root CRLs."""
        key = tuple(sorted({c.sha256.hex() for c in certs}))
        looked = self.watch.fresh()
        if looked:  # epoch checked moments ago: no database round trip
            hit = self._revinfo.get(key)
            if hit is not None:
                return hit
        with transaction(self._ctx.sessions, read_only=True) as session:
            self.watch.moved(session)
            if not looked:  # one lookup counted per call
                hit = self._revinfo.get(key)
                if hit is not None:
                    return hit
            data = self._load_revinfo(session, certs)
        self._revinfo.put(key, data)
        return data

    def _load_revinfo(self, session: Session, certs: list[asn1_x509.Certificate]) -> RevocationData:
        unique = {c.sha256: c for c in certs}
        ocsps: list[asn1_ocsp.OCSPResponse] = []
        crls: list[asn1_crl.CertificateList] = []
        extra_certs: dict[bytes, asn1_x509.Certificate] = {}
        complete = True
        crl_cas: set[int] = set()
        for cert in unique.values():
            if cert.self_signed != "no":
                continue
            serial = format(cert.serial_number, "X")
            row = session.execute(select(Certificate).where(Certificate.serial == serial,
                                                            Certificate.sha256 == cert.sha256.hex())
                                  ).scalar_one_or_none()
            if row is None:
                complete = False
                continue
            stored = session.execute(select(OcspResponse).where(
                OcspResponse.ca_id == row.ca_id, OcspResponse.serial == serial)).scalar_one_or_none()
            if stored is None:
                complete = False
            else:
                response = shareable(asn1_ocsp.OCSPResponse.load(stored.der))
                ocsps.append(response)
                for responder in response.basic_ocsp_response["certs"]:
                    extra_certs[responder.sha256] = responder
            if row.ca.role == "root":
                crl_cas.add(row.ca_id)
        for ca_id in sorted(crl_cas):
            latest = pki_crl.latest(session, session.get_one(CertificateAuthority, ca_id), delta=False)
            if latest is not None:
                crls.append(shareable(asn1_crl.CertificateList.load(latest.der)))
        all_certs = {sha: shareable(c) for sha, c in {**unique, **extra_certs}.items()}  # cached: shared
        return RevocationData(certs=tuple(all_certs.values()), ocsps=tuple(ocsps), crls=tuple(crls), complete=complete)
