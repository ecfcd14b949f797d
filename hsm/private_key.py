"""Adapters that let ``cryptography``'s builders sign with a key that stays in a ``KeyStore``.

``cryptography`` signs certificates, CRLs and OCSP responses by calling ``private_key.sign``
on whatever object implements its private-key ABC. These adapters hash the data in Python and
hand only the digest to the keystore, so the private key itself never enters this process.
"""
from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.utils import Buffer

from .errors import UnsupportedAlgorithm
from .interfaces import KeyStore, SignatureScheme


def _digest(data: Buffer, algorithm: Any) -> tuple[bytes, hashes.HashAlgorithm]:
    if isinstance(algorithm, utils.Prehashed):
        return bytes(data), algorithm._algorithm  # noqa: SLF001 - cryptography exposes no public getter
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize(), algorithm


class _Unexportable:
    """Everything that would reveal the private key refuses, by design."""

    def private_numbers(self) -> Any:
        raise UnsupportedAlgorithm("keystore keys cannot be exported")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise UnsupportedAlgorithm("keystore keys cannot be exported")

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self


class KeyStoreECKey(_Unexportable, ec.EllipticCurvePrivateKey):
    def __init__(self, store: KeyStore, ref: str, public: ec.EllipticCurvePublicKey) -> None:
        self._store, self._ref, self._public = store, ref, public

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise UnsupportedAlgorithm("EC keystore keys sign with ECDSA only")
        digest, algorithm = _digest(data, signature_algorithm.algorithm)
        return self._store.sign_digest(self._ref, digest, algorithm, SignatureScheme.ECDSA)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def exchange(self, *args: Any) -> bytes:
        raise UnsupportedAlgorithm("keystore signing keys are not used for key agreement")


class KeyStoreRSAKey(_Unexportable, rsa.RSAPrivateKey):
    def __init__(self, store: KeyStore, ref: str, public: rsa.RSAPublicKey) -> None:
        self._store, self._ref, self._public = store, ref, public

    def sign(self, data: bytes, padding_: padding.AsymmetricPadding, algorithm: Any) -> bytes:
        digest, hash_alg = _digest(data, algorithm)
        if isinstance(padding_, padding.PSS):
            scheme = SignatureScheme.RSA_PSS
        elif isinstance(padding_, padding.PKCS1v15):
            scheme = SignatureScheme.RSA_PKCS1V15
        else:
            raise UnsupportedAlgorithm(f"unsupported RSA padding {padding_.name}")
        return self._store.sign_digest(self._ref, digest, hash_alg, scheme)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def decrypt(self, *args: Any) -> bytes:
        raise UnsupportedAlgorithm("keystore signing keys do not decrypt")


def keystore_private_key(store: KeyStore, ref: str) -> KeyStoreECKey | KeyStoreRSAKey:
    """A ``cryptography`` private-key object whose ``sign`` is served by ``store``."""
    public = store.public_key(ref)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return KeyStoreECKey(store, ref, public)
    if isinstance(public, rsa.RSAPublicKey):
        return KeyStoreRSAKey(store, ref, public)
    raise UnsupportedAlgorithm(f"key {ref} has an unsupported type")
