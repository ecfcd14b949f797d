"""The ``KeyStore`` contract every backend (soft, pkcs11, vault) implements."""
from __future__ import annotations

import abc
import enum
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes


class KeyType(str, enum.Enum):
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    # signs messages, not digests (PureEdDSA): for signed notes (transparency-log checkpoints),
    # whose verifiers (Go's sumdb/note, C2SP witnesses) accept Ed25519 only
    ED25519 = "ed25519"

    @property
    def is_rsa(self) -> bool:
        return self.value.startswith("rsa")

    @property
    def signs_messages(self) -> bool:
        """True for Ed25519: ``sign_message`` only; ``sign_digest`` is refused."""
        return self is KeyType.ED25519


class SignatureScheme(str, enum.Enum):
    """How the digest is turned into a signature. EC keys take ``ECDSA`` only."""

    ECDSA = "ecdsa"
    RSA_PKCS1V15 = "rsa-pkcs1v15"
    RSA_PSS = "rsa-pss"


@dataclass(frozen=True)
class KeyInfo:
    ref: str
    key_type: KeyType
    label: str


class KeyStore(abc.ABC):
    """A place where private keys are generated and used, never exported.

    ``sign_digest`` takes a pre-computed digest, so document bytes never travel to the backend
    and every backend (HSMs without hash-and-sign mechanisms included) behaves the same. EC
    signatures are returned DER-encoded (X.509/CMS form); RSA-PSS uses a salt as long as the hash.
    """

    scheme: str

    @abc.abstractmethod
    def generate(self, key_type: KeyType, label: str) -> str:
        """Create a key pair inside the store; return its reference."""

    @abc.abstractmethod
    def public_key(self, ref: str) -> PublicKeyTypes:
        """The public half, for certificates and CSRs."""

    @abc.abstractmethod
    def key_type(self, ref: str) -> KeyType:
        """The type of an existing key."""

    @abc.abstractmethod
    def sign_digest(self, ref: str, digest: bytes, hash_algorithm: hashes.HashAlgorithm,
                    scheme: SignatureScheme) -> bytes:
        """Sign a digest computed with ``hash_algorithm``."""

    def sign_message(self, ref: str, message: bytes) -> bytes:
        """Sign a short message whole with an Ed25519 key (64-byte signature).

        Only for keys whose type ``signs_messages``; the message travels to the backend, so it is
        for small, public texts (a checkpoint), never a document.
        """
        from .errors import UnsupportedAlgorithm
        raise UnsupportedAlgorithm(f"the {self.scheme} keystore does not sign messages with Ed25519 keys")

    @abc.abstractmethod
    def delete(self, ref: str) -> None:
        """Destroy the key. Irreversible."""

    @abc.abstractmethod
    def list(self) -> list[KeyInfo]:
        """All keys this store holds."""

    def health(self) -> str:
        """``"ok"`` or raise ``KeystoreUnavailable`` saying what is wrong."""
        return "ok"
