"""The floor: the same work done with ``cryptography`` alone, in memory, no database, no keystore."""
from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from .bulk import REASONS

_FLAGS = {
    "keyCompromise": x509.ReasonFlags.key_compromise, "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded, "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn, "unspecified": None,
}


def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def self_signed(key: ec.EllipticCurvePrivateKey, cn: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))


def certificate_issuer(template: x509.Certificate, *, generate_key: bool) -> Callable[[int], bytes]:
    """Build + sign + DER a certificate with ``template``'s subject, issuer and extensions (the same
    profile kyso applied), signed by an in-memory P-256 key; optionally generating the subject key."""
    issuer_key = p256()
    subject_key = p256().public_key()
    extensions = list(template.extensions)
    subject, issuer = template.subject, template.issuer
    validity = template.not_valid_after_utc - template.not_valid_before_utc

    def one(_: int) -> bytes:
        public = p256().public_key() if generate_key else subject_key
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
                   .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + validity))
        for ext in extensions:
            value = x509.SubjectKeyIdentifier.from_public_key(public) if isinstance(ext.value, x509.SubjectKeyIdentifier) else ext.value
            builder = builder.add_extension(value, critical=ext.critical)
        return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    return one


def ocsp_signer(*, nonce: bool) -> Callable[[int], bytes]:
    """An OCSP response for one serial: build + sign (P-256 responder key) + DER, as a responder would."""
    responder_key = p256()
    responder = self_signed(responder_key, "raw OCSP responder")
    ca_key = p256()
    ca = self_signed(ca_key, "raw CA")
    name_hash = hashes.Hash(hashes.SHA1())
    name_hash.update(ca.subject.public_bytes())
    key_hash = hashes.Hash(hashes.SHA1())
    key_hash.update(ca.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
    nh, kh = name_hash.finalize(), key_hash.finalize()
    serials = [x509.random_serial_number() for _ in range(1000)]

    def one(i: int) -> bytes:
        now = dt.datetime.now(dt.UTC)
        builder = (ocsp.OCSPResponseBuilder()
                   .add_response_by_hash(issuer_name_hash=nh, issuer_key_hash=kh, serial_number=serials[i % 1000],
                                         algorithm=hashes.SHA1(), cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now,
                                         next_update=now + dt.timedelta(hours=24), revocation_time=None,
                                         revocation_reason=None)
                   .responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
                   .certificates([responder]))
        if nonce:
            builder = builder.add_extension(x509.OCSPNonce(os.urandom(16)), critical=False)
        return builder.sign(responder_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    return one


def crl_entries(n: int, seed: int = 7) -> list[tuple[int, dt.datetime, str]]:
    """``n`` (serial, revocation date, reason) triples with the bulk rows' distribution."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    return [(x509.random_serial_number(), now - dt.timedelta(days=rng.uniform(1, 600)), rng.choice(REASONS))
            for _ in range(n)]


def crl_builder(entries: list[tuple[int, dt.datetime, str]], issuer: x509.Certificate, *,
                incremental: bool = False) -> Callable[[int], bytes]:
    """A full CRL with these entries and kyso's CRL extensions, signed with an in-memory P-256 key.

    The entry objects are built inside the timing, as any caller must. By default the list of entries
    goes to the builder's constructor (linear); ``incremental`` uses the documented
    ``add_revoked_certificate`` loop instead, which copies the list on every call (quadratic)."""
    key = p256()
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value

    def one(_: int) -> bytes:
        now = dt.datetime.now(dt.UTC)
        revoked = []
        for serial, revoked_at, reason in entries:
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
            flag = _FLAGS[reason]
            if flag is not None:
                entry = entry.add_extension(x509.CRLReason(flag), critical=False)
            revoked.append(entry.build())
        extensions = [
            x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(1)),
            x509.Extension(x509.AuthorityKeyIdentifier.oid, False,
                           x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)),
            x509.Extension(x509.FreshestCRL.oid, False, x509.FreshestCRL([x509.DistributionPoint(
                [x509.UniformResourceIdentifier("http://127.0.0.1/crl/x-delta.crl")], None, None, None)])),
        ]
        if incremental:
            builder = x509.CertificateRevocationListBuilder(issuer_name=issuer.subject, last_update=now,
                                                            next_update=now + dt.timedelta(hours=24),
                                                            extensions=extensions)
            for entry in revoked:
                builder = builder.add_revoked_certificate(entry)
        else:
            builder = x509.CertificateRevocationListBuilder(issuer_name=issuer.subject, last_update=now,
                                                            next_update=now + dt.timedelta(hours=24),
                                                            extensions=extensions, revoked_certificates=revoked)
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    return one
