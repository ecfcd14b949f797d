"""Parsing of certificates and CSRs in PEM or DER, with errors a person can act on."""
from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from hsm.interfaces import KeyType

from .errors import BadCSR, MalformedInput, WeakKey

ALLOWED_CURVES = {"secp256r1": KeyType.EC_P256, "secp384r1": KeyType.EC_P384}


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """One or more certificates, PEM (a chain) or one DER."""
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise MalformedInput(f"not a PEM or DER X.509 certificate: {exc}") from exc
    if not certs:
        raise MalformedInput("no certificate found in the input")
    return certs


def load_csr(data: bytes | str) -> x509.CertificateSigningRequest:
    """Parse a PKCS#10 request (PEM or DER) and check its self-signature."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        csr = x509.load_pem_x509_csr(raw) if b"-----BEGIN" in raw else x509.load_der_x509_csr(raw)
    except ValueError as exc:
        raise BadCSR(f"not a PEM or DER PKCS#10 certificate request: {exc}") from exc
    try:
        valid = csr.is_signature_valid
    except Exception as exc:  # unsupported algorithms surface here
        raise BadCSR(f"the request's signature cannot be checked: {exc}") from exc
    if not valid:
        raise BadCSR("the request's self-signature is invalid: it was altered or signed with another key")
    return csr


def key_type_of(public_key: CertificatePublicKeyTypes) -> KeyType:
    """Accept only the key types kyso issues for: RSA >= 2048 bits, EC P-256 or P-384."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise WeakKey(f"RSA keys must be at least 2048 bits; this one has {public_key.key_size}")
        if public_key.key_size > 4096:
            raise WeakKey("RSA keys above 4096 bits are not supported")
        return KeyType.RSA_2048 if public_key.key_size < 3072 else KeyType.RSA_3072
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in ALLOWED_CURVES:
            raise WeakKey(f"EC curve {public_key.curve.name} is not accepted; use P-256 or P-384")
        return ALLOWED_CURVES[public_key.curve.name]
    raise WeakKey(f"key type {type(public_key).__name__} is not accepted; use RSA (>= 2048) or EC P-256/P-384")
