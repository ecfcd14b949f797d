"""Turns a profile, a subject and a public key into a signed X.509 certificate.

Only ``cryptography``'s builder is used; the issuer key is a keystore adapter, so the CA's
private key stays in its keystore.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ObjectIdentifier

from policies.profiles import Profile

from .encoding import key_type_of
from .errors import WeakKey

BACKDATE = dt.timedelta(minutes=5)  # tolerate relying parties whose clocks run a little slow


@dataclass(frozen=True)
class Endpoints:
    """Where relying parties find the issuer's certificate, CRL and OCSP responder."""

    base_url: str
    ca_name: str

    @property
    def ca_issuers(self) -> str:
        return f"{self.base_url}/ca/{self.ca_name}.crt"

    @property
    def crl(self) -> str:
        return f"{self.base_url}/crl/{self.ca_name}.crl"

    @property
    def delta_crl(self) -> str:
        return f"{self.base_url}/crl/{self.ca_name}-delta.crl"

    @property
    def ocsp(self) -> str:
        return f"{self.base_url}/ocsp"


def signature_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | hashes.SHA384:
    """SHA-384 for P-384 issuers, SHA-256 otherwise (matching strength, widest support)."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _key_usage(names: tuple[str, ...]) -> x509.KeyUsage:
    flags = {n: n in names for n in (
        "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
        "keyCertSign", "cRLSign")}
    return x509.KeyUsage(
        digital_signature=flags["digitalSignature"], content_commitment=flags["nonRepudiation"],
        key_encipherment=flags["keyEncipherment"], data_encipherment=flags["dataEncipherment"],
        key_agreement=flags["keyAgreement"], key_cert_sign=flags["keyCertSign"], crl_sign=flags["cRLSign"],
        encipher_only=False, decipher_only=False,
    )


def build_certificate(
    *,
    profile: Profile,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    serial: int,
    now: dt.datetime,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    issuer_cert: x509.Certificate | None,
    endpoints: Endpoints | None,
    validity_days: int | None = None,
) -> x509.Certificate:
    """Build and sign. ``issuer_cert`` is ``None`` for a self-signed root."""
    key_type = key_type_of(public_key)
    if key_type not in profile.key_types:
        raise WeakKey(
            f"profile {profile.name!r} accepts keys {[k.value for k in profile.key_types]}, not {key_type.value}"
        )
    not_before = now - BACKDATE
    not_after = now + dt.timedelta(days=validity_days or profile.validity_days)
    issuer_name = subject if issuer_cert is None else issuer_cert.subject
    if issuer_cert is not None and not_after > issuer_cert.not_valid_after_utc:
        not_after = issuer_cert.not_valid_after_utc  # never outlive the issuer
    if issuer_cert is not None and not_before < issuer_cert.not_valid_before_utc:
        not_before = issuer_cert.not_valid_before_utc
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(ca=profile.is_ca, path_length=profile.path_length if profile.is_ca else None),
            critical=True)
        .add_extension(_key_usage(profile.key_usage), critical=True)
        .add_extension(ski, critical=False)
    )
    if issuer_cert is not None:
        issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False
        )
    else:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                                        critical=False)
    if profile.eku_oids:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ObjectIdentifier(oid) for oid in profile.eku_oids]),
            critical=profile.extended_key_usage_critical,
        )
    if profile.ocsp_no_check:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    if profile.certificate_policies:
        builder = builder.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(ObjectIdentifier(p), None)
                                      for p in profile.certificate_policies]),
            critical=False,
        )
    if endpoints is not None and issuer_cert is not None:
        if profile.authority_info_access:
            builder = builder.add_extension(x509.AuthorityInformationAccess([
                x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                       x509.UniformResourceIdentifier(endpoints.ocsp)),
                x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                       x509.UniformResourceIdentifier(endpoints.ca_issuers)),
            ]), critical=False)
        if profile.crl_distribution_points:
            builder = builder.add_extension(x509.CRLDistributionPoints([
                x509.DistributionPoint([x509.UniformResourceIdentifier(endpoints.crl)], None, None, None)
            ]), critical=False)
    rsa_padding = padding.PKCS1v15() if isinstance(issuer_key, rsa.RSAPrivateKey) else None
    return builder.sign(issuer_key, signature_hash(issuer_key), rsa_padding=rsa_padding)
