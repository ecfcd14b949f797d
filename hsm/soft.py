"""The embedded software keystore: encrypted PKCS#8 files in ``KYSO_HOME/keystore``.

Each key is one PEM file of PKCS#8 encrypted under a master passphrase (PBES2: PBKDF2 + AES-256-CBC),
written atomically with mode 0600, plus a JSON sidecar with its type, label and public key (so
reading a public key does not decrypt anything). Decrypted keys are cached in memory because
parsing an RSA key costs ~28 ms. This backend is a development and small-office default: it warns
when used in production, where an HSM or Vault should hold the keys.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from core import metrics, production
from core.settings import Settings

from .errors import KeyNotFound, KeystoreMisconfigured, KeystoreUnavailable, UnsupportedAlgorithm
from .interfaces import KeyInfo, KeyStore, KeyType, SignatureScheme

log = logging.getLogger(__name__)
_ID = re.compile(r"^[0-9a-f]{32}$")
_counted = metrics.counts_errors("soft", KeystoreUnavailable, KeystoreMisconfigured)  # disk, master key


def generate_private_key(key_type: KeyType) -> PrivateKeyTypes:
    if key_type is KeyType.EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if key_type is KeyType.EC_P384:
        return ec.generate_private_key(ec.SECP384R1())
    if key_type is KeyType.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(65537, 2048 if key_type is KeyType.RSA_2048 else 3072)


_PARAMS: dict[tuple[str, SignatureScheme], tuple[Any, ...]] = {}


def _params(hash_algorithm: hashes.HashAlgorithm, scheme: SignatureScheme) -> tuple[Any, ...]:
    """The algorithm/padding objects for a hash and scheme, built once (they cost ~20% of an ECDSA)."""
    key = (hash_algorithm.name, scheme)
    params = _PARAMS.get(key)
    if params is None:
        prehashed = utils.Prehashed(hash_algorithm)
        if scheme is SignatureScheme.ECDSA:
            params = (ec.ECDSA(prehashed),)
        elif scheme is SignatureScheme.RSA_PSS:
            params = (padding.PSS(padding.MGF1(hash_algorithm), hash_algorithm.digest_size), prehashed)
        else:
            params = (padding.PKCS1v15(), prehashed)
        _PARAMS[key] = params
    return params


def sign_digest_with(key: PrivateKeyTypes, digest: bytes, hash_algorithm: hashes.HashAlgorithm,
                     scheme: SignatureScheme) -> bytes:
    """Sign a pre-computed digest with an in-memory key (shared by soft keystore and tests)."""
    if len(digest) != hash_algorithm.digest_size:
        raise UnsupportedAlgorithm(f"digest is {len(digest)} bytes, "
                                   f"{hash_algorithm.name} needs {hash_algorithm.digest_size}")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if scheme is not SignatureScheme.ECDSA:
            raise UnsupportedAlgorithm(f"an EC key cannot sign with {scheme.value}")
        return key.sign(digest, *_params(hash_algorithm, scheme))
    if isinstance(key, rsa.RSAPrivateKey):
        if scheme is SignatureScheme.ECDSA:
            raise UnsupportedAlgorithm("an RSA key cannot sign with ECDSA")
        return key.sign(digest, *_params(hash_algorithm, scheme))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raise UnsupportedAlgorithm("an Ed25519 key signs whole messages (sign_message), not digests")
    raise UnsupportedAlgorithm("unsupported key type")


class SoftKeyStore(KeyStore):
    scheme = "soft"

    def __init__(self, directory: Path, passphrase: bytes, *, production: bool = False) -> None:
        if len(passphrase) < 16:
            raise KeystoreMisconfigured("the soft keystore master key must be at least 16 characters")
        if production:
            log.warning("soft keystore in production: keys are files on this disk; prefer pkcs11 or vault")
        self._dir = directory
        self._passphrase = passphrase
        self._cache: dict[str, PrivateKeyTypes] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SoftKeyStore:
        return cls(settings.keystore_dir, master_passphrase(settings),
                   production=settings.environment == "production")

    # -- paths ---------------------------------------------------------------------------
    def _id(self, ref: str) -> str:
        key_id = ref.removeprefix("soft:")
        if not ref.startswith("soft:") or not _ID.match(key_id):
            raise KeyNotFound(f"{ref!r} is not a soft keystore reference (soft:<32 hex>)")
        return key_id

    def _paths(self, key_id: str) -> tuple[Path, Path]:
        return self._dir / f"{key_id}.p8", self._dir / f"{key_id}.json"

    @_counted
    def _meta(self, ref: str) -> dict[str, str]:
        _, meta_path = self._paths(self._id(ref))
        try:
            meta: dict[str, str] = json.loads(meta_path.read_text("utf-8"))
            return meta
        except FileNotFoundError:
            raise KeyNotFound(f"no key {ref} in the soft keystore") from None
        except OSError as exc:
            raise KeystoreUnavailable(f"soft keystore at {self._dir} cannot be read: {exc.strerror}") from exc

    # -- KeyStore -----------------------------------------------------------------------
    @_counted
    def generate(self, key_type: KeyType, label: str) -> str:
        key = generate_private_key(key_type)
        key_id = secrets.token_hex(16)
        # PBES2 (PBKDF2-HMAC-SHA256 + AES-256-CBC), OpenSSL's best PKCS#8 encryption.
        encryption = serialization.BestAvailableEncryption(self._passphrase)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        meta = {"key_type": key_type.value, "label": label, "public_key": public_pem}
        key_path, meta_path = self._paths(key_id)
        try:
            self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_private(key_path, pem)
            _write_private(meta_path, json.dumps(meta, ensure_ascii=False).encode())
        except OSError as exc:
            key_path.unlink(missing_ok=True)
            raise KeystoreUnavailable(f"soft keystore at {self._dir} is not writable: {exc.strerror}") from exc
        with self._lock:
            self._cache[key_id] = key
        return f"soft:{key_id}"

    def public_key(self, ref: str) -> PublicKeyTypes:
        return serialization.load_pem_public_key(self._meta(ref)["public_key"].encode())

    def key_type(self, ref: str) -> KeyType:
        return KeyType(self._meta(ref)["key_type"])

    @_counted
    def _private(self, ref: str) -> PrivateKeyTypes:
        key = self._cache.get(ref[5:]) if ref.startswith("soft:") else None  # hot path: no regex
        if key is not None:
            return key
        key_id = self._id(ref)
        key_path, _ = self._paths(key_id)
        try:
            pem = key_path.read_bytes()
        except FileNotFoundError:
            raise KeyNotFound(f"no key {ref} in the soft keystore") from None
        try:
            key = serialization.load_pem_private_key(pem, self._passphrase)
        except ValueError as exc:
            raise KeystoreMisconfigured(
                "the soft keystore master key does not decrypt this key; check KYSO_SOFT_MASTER_KEY(_FILE)"
            ) from exc
        with self._lock:
            self._cache[key_id] = key
        return key

    def sign_digest(self, ref: str, digest: bytes, hash_algorithm: hashes.HashAlgorithm,
                    scheme: SignatureScheme) -> bytes:
        return sign_digest_with(self._private(ref), digest, hash_algorithm, scheme)

    def sign_message(self, ref: str, message: bytes) -> bytes:
        key = self._private(ref)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise UnsupportedAlgorithm(f"{ref} is not an Ed25519 key; sign a digest with it instead")
        return key.sign(message)

    def delete(self, ref: str) -> None:
        key_id = self._id(ref)
        key_path, meta_path = self._paths(key_id)
        if not meta_path.exists():
            raise KeyNotFound(f"no key {ref} in the soft keystore")
        key_path.unlink(missing_ok=True)
        meta_path.unlink(missing_ok=True)
        with self._lock:
            self._cache.pop(key_id, None)

    def list(self) -> list[KeyInfo]:
        if not self._dir.exists():
            return []
        infos = []
        for meta_path in sorted(self._dir.glob("*.json")):
            meta = json.loads(meta_path.read_text("utf-8"))
            infos.append(KeyInfo(f"soft:{meta_path.stem}", KeyType(meta["key_type"]), meta["label"]))
        return infos

    @_counted
    def health(self) -> str:
        if self._dir.exists() and not os.access(self._dir, os.R_OK | os.W_OK):
            raise KeystoreUnavailable(f"soft keystore at {self._dir} is not readable and writable")
        return "ok"


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with owner-only permissions, so a crash never leaves half a key."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def master_passphrase(settings: Settings) -> bytes:
    """The passphrase from settings, else from a key file (created on first use in development)."""
    if settings.soft_master_key is not None:
        return settings.soft_master_key.get_secret_value().encode()
    path: Path = settings.soft_master_key_file or settings.keystore_dir / "master.key"
    if path.exists():
        passphrase = path.read_bytes().strip()
        if settings.environment == "production":  # the same rule as for KYSO_SOFT_MASTER_KEY (core/production.py)
            production.check_secret(passphrase.decode("utf-8", "replace"), f"the soft keystore master key in {path}")
        return passphrase
    if settings.environment == "production":
        raise KeystoreMisconfigured(
            f"no soft keystore master key: set KYSO_SOFT_MASTER_KEY or create {path} (0600)"
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_private(path, secrets.token_urlsafe(32).encode())
    log.warning("created a new soft keystore master key at %s; back it up with the keystore", path)
    return path.read_bytes().strip()
