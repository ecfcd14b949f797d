"""The one pyHanko ``Signer`` of kyso: CMS assembly is pyHanko's, the raw signature is the keystore's.

Nothing else in ``signing/`` knows where a key lives. The document digest is computed here and
only the digest travels to ``hsm.KeyStore.sign_digest``, so with PKCS#11 or Vault the private key
never enters the process. Network-backed keystores are called from a worker thread so a slow HSM
does not stall the event loop; the embedded soft keystore is called inline (it takes microseconds).
"""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from asn1crypto import algos, cms, tsp, x509 as asn1_x509
from cryptography.hazmat.primitives import hashes
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, Signer
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import handle_tsp_response
from pyhanko_certvalidator.registry import SimpleCertificateStore

from hsm import KeyStore, KeyType
from hsm.interfaces import SignatureScheme
from signing.create import der

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}


def default_digest(key_type: KeyType) -> str:
    """SHA-384 for P-384 keys (matching strength), SHA-256 otherwise."""
    return "sha384" if key_type is KeyType.EC_P384 else "sha256"


def default_scheme(key_type: KeyType, rsa_padding: str | None = None) -> SignatureScheme:
    """RSASSA-PSS is the default for RSA keys (Circular 15/2025/TT-BKHCN); PKCS#1 v1.5 on request."""
    if not key_type.is_rsa:
        return SignatureScheme.ECDSA
    return SignatureScheme.RSA_PKCS1V15 if rsa_padding == "pkcs1v15" else SignatureScheme.RSA_PSS


@lru_cache(maxsize=4096)  # kept: pure (a certificate's DER → its ESS attribute value), bounded
def _signing_certificate_v2(cert_der: bytes) -> tsp.SigningCertificateV2:
    """The ESS signing-certificate-v2 value is identical for every signature of one certificate."""
    return as_signing_certificate_v2(asn1_x509.Certificate.load(cert_der))


class KeyStoreSigner(Signer):
    """Signs CMS signed attributes with a key that stays in its keystore.

    ``chain`` holds the issuing CA and root certificates; they go into the CMS so validators that
    see only the file (pdfsig, Acrobat, pyHanko offline) can build the path.
    """

    def __init__(self, *, keystore: KeyStore, key_ref: str, key_type: KeyType, certificate: asn1_x509.Certificate,
                 chain: list[asn1_x509.Certificate], scheme: SignatureScheme) -> None:
        super().__init__(
            prefer_pss=scheme is SignatureScheme.RSA_PSS,
            embed_roots=True,
            signing_cert=certificate,
            cert_registry=SimpleCertificateStore.from_certs([certificate, *chain]),
        )
        self._keystore = keystore
        self._key_ref = key_ref
        self._scheme = scheme
        self.key_type = key_type
        self._inline = keystore.scheme == "soft"
        self._max_signature = 8 + (key_type_size(key_type))
        self._templates: dict[str, _Template] = {}

    def get_signature_mechanism_for_digest(self, digest_algorithm: str | None) -> algos.SignedDigestAlgorithm:
        """RSASSA-PSS with a salt as long as the hash, which is what every kyso keystore produces
        (pyHanko would announce the maximum salt length, and the signature would not verify)."""
        if self._scheme is not SignatureScheme.RSA_PSS or digest_algorithm is None:
            return super().get_signature_mechanism_for_digest(digest_algorithm)
        digest_algorithm = digest_algorithm.lower()
        return algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": algos.RSASSAPSSParams({
            "hash_algorithm": algos.DigestAlgorithm({"algorithm": digest_algorithm}),
            "mask_gen_algorithm": algos.MaskGenAlgorithm({
                "algorithm": "mgf1", "parameters": algos.DigestAlgorithm({"algorithm": digest_algorithm})}),
            "salt_length": HASHES[digest_algorithm].digest_size,
        })})

    async def async_sign(self, data_digest: bytes, digest_algorithm: str, dry_run: bool = False,
                         use_pades: bool = False, timestamper: TimeStamper | None = None,
                         signed_attr_settings: PdfCMSSignedAttributes | None = None,
                         is_pdf_sig: bool = True, encap_content_info: Any = None) -> cms.ContentInfo:
        """PAdES signatures are assembled from DER parts prepared once per certificate.

        pyHanko builds the whole CMS structure as asn1crypto objects for every signature, which
        re-serialises the certificates each time and was measured at ~90% of a signature's cost.
        For the PAdES baseline case (content-type, message-digest, ESS signing-certificate-v2;
        no signing-time, per EN 319 142-1) the bytes are identical to what pyHanko would produce
        up to SET ordering, so anything else falls back to pyHanko's own assembly."""
        settings = signed_attr_settings
        # PAdES carries the claimed signing time in the signature dictionary (/M), never in the CMS
        plain = settings is None or (settings.cades_signed_attrs is None
                                     and getattr(settings, "adobe_revinfo_attr", None) is None)
        if dry_run or not (use_pades and is_pdf_sig and encap_content_info is None and plain):
            return await super().async_sign(data_digest, digest_algorithm, dry_run=dry_run, use_pades=use_pades,
                                            timestamper=timestamper, signed_attr_settings=signed_attr_settings,
                                            is_pdf_sig=is_pdf_sig, encap_content_info=encap_content_info)
        template = self._template(digest_algorithm.lower())
        signed_attrs = der.set_of([
            template.content_type_attr,
            der.attribute(der.MESSAGE_DIGEST, der.tlv(0x04, data_digest)),
            template.ess_attr,
        ])
        signature = await self.async_sign_raw(signed_attrs, digest_algorithm.lower())
        unsigned = b""
        if timestamper is not None:
            unsigned = der.tlv(0xA1, der.attribute(der.SIGNATURE_TIME_STAMP_TOKEN, await _timestamp_token(
                timestamper, hashlib.new(digest_algorithm, signature).digest(), digest_algorithm)))
        signer_info = der.tlv(0x30, der.integer(1) + template.sid + template.digest_alg + b"\xa0" + signed_attrs[1:]
                              + template.signature_alg + der.tlv(0x04, signature) + unsigned)
        signed_data = der.tlv(0x30, der.integer(1) + der.tlv(0x31, template.digest_alg)
                              + der.tlv(0x30, der.oid(der.DATA)) + template.certificates + der.tlv(0x31, signer_info))
        return cms.ContentInfo.load(der.tlv(0x30, der.oid(der.SIGNED_DATA) + der.tlv(0xA0, signed_data)))

    def _template(self, digest_algorithm: str) -> _Template:
        template = self._templates.get(digest_algorithm)
        if template is None:
            cert: asn1_x509.Certificate = self.signing_cert  # always given to __init__
            certs = {c.dump() for c in self.cert_registry} | {cert.dump()}
            template = _Template(
                content_type_attr=der.attribute(der.CONTENT_TYPE, der.oid(der.DATA)),
                ess_attr=der.attribute(der.SIGNING_CERTIFICATE_V2, _signing_certificate_v2(cert.dump()).dump()),
                sid=cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
                    "issuer": cert.issuer, "serial_number": cert.serial_number})}).dump(),
                digest_alg=algos.DigestAlgorithm({"algorithm": digest_algorithm}).dump(),
                signature_alg=self.get_signature_mechanism_for_digest(digest_algorithm).dump(),
                certificates=der.tlv(0xA0, b"".join(sorted(certs))),
            )
            self._templates[digest_algorithm] = template
        return template

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run:
            return bytes(self._max_signature)
        hash_cls = HASHES.get(digest_algorithm)
        if hash_cls is None:
            raise ValueError(f"digest {digest_algorithm} is not allowed (SHA-256 or stronger)")
        digest = hashlib.new(digest_algorithm, data).digest()
        if self._inline:
            return self._keystore.sign_digest(self._key_ref, digest, hash_cls(), self._scheme)
        return await asyncio.to_thread(self._keystore.sign_digest, self._key_ref, digest, hash_cls(), self._scheme)


@dataclass(frozen=True)
class _Template:
    """The DER pieces of a SignerInfo/SignedData that are the same for every signature of a signer."""

    content_type_attr: bytes
    ess_attr: bytes
    sid: bytes
    digest_alg: bytes
    signature_alg: bytes
    certificates: bytes


async def _timestamp_token(timestamper: TimeStamper, digest: bytes, digest_algorithm: str) -> bytes:
    """The token's DER exactly as the TSA sent it, cut out of the response.

    asn1crypto's ``dump()`` of a token it parsed was measured at 0.2–1 s for some tokens (it
    re-serialises the whole structure); slicing the received bytes costs nothing. pyHanko's status
    and nonce checks run on the parsed response as usual."""
    nonce, request = timestamper.request_cms(digest, digest_algorithm)
    response = await timestamper.async_request_tsa_response(request)
    if response["status"]["status"].native not in ("granted", "granted_with_mods"):
        handle_tsp_response(response, nonce)  # raises TimestampRequestError with the TSA's reasons
    handle_tsp_response(response, nonce)
    _status, token_der = der.elements(response.contents)[:2]
    return token_der


def key_type_size(key_type: KeyType) -> int:
    """An upper bound of the DER signature size, for dry runs."""
    return {KeyType.EC_P256: 72, KeyType.EC_P384: 104, KeyType.RSA_2048: 256, KeyType.RSA_3072: 384}[key_type]


__all__ = ["HASHES", "KeyStoreSigner", "default_digest", "default_scheme"]
