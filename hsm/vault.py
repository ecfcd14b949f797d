"""Keys in HashiCorp Vault or OpenBao, Transit secrets engine, through ``hvac``.

References are ``vault:<mount>/<key>#<version>``. Transit keys have versions (rotation adds
one) and a certificate is bound to one public key, so ``generate`` and ``rotate`` always return
a versioned reference and signing passes ``key_version``. A reference without ``#<version>``
(written by hand, for a key created outside kyso) means version 1, the version current when the
key was created: a reference never silently follows a rotation.

Keys are created non-exportable with no plaintext backup, named ``kyso-<16 hex>[-<label slug>]``
(the label is kept readable in the name because Transit keys carry no metadata; ``list`` shows
only such keys). Only digests are sent (``prehashed``): EC signatures come back DER (``asn1``),
RSA-PSS with a salt as long as the hash (``salt_length=hash``), like every other backend. Ed25519
keys (transit ``ed25519``) sign whole small messages, sent as they are, and are refused a digest
here: OpenBao 2.7 ignores ``prehashed`` for them and would sign the digest bytes as a message.

One ``hvac.Client`` over one keep-alive ``requests.Session`` serves all threads. Connection
errors, 5xx and 429 are retried a bounded number of times with exponential backoff; sealed,
unreachable, and refused-token conditions become ``KeystoreUnavailable`` saying what to do. The
token and AppRole secret are never put in messages or logs.
"""
from __future__ import annotations

import base64
import logging
import random
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import hvac
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from hvac import exceptions as hv
from hvac.adapters import JSONAdapter
from hvac.api.auth_methods import AppRole
from requests.adapters import HTTPAdapter

from core import metrics

from .errors import KeyNotFound, KeystoreError, KeystoreMisconfigured, KeystoreUnavailable, UnsupportedAlgorithm
from .interfaces import KeyInfo, KeyStore, KeyType, SignatureScheme

log = logging.getLogger(__name__)
T = TypeVar("T")

_VAULT_TYPES = {KeyType.EC_P256: "ecdsa-p256", KeyType.EC_P384: "ecdsa-p384",
                KeyType.RSA_2048: "rsa-2048", KeyType.RSA_3072: "rsa-3072", KeyType.ED25519: "ed25519"}
_KYSO_TYPES = {v: k for k, v in _VAULT_TYPES.items()}
_HASHES = {"sha256": "sha2-256", "sha384": "sha2-384", "sha512": "sha2-512"}
_REF = re.compile(r"^vault:(?P<mount>[\w.-]+(?:/[\w.-]+)*)/(?P<name>[\w.@-]+)(?:#(?P<version>[1-9]\d{0,8}))?$")
_NAME = re.compile(r"^kyso-[0-9a-f]{16}(?:-(?P<label>[a-z0-9-]+))?$")
_TRANSIENT = (hv.InternalServerError, hv.BadGateway, hv.RateLimitExceeded, hv.VaultDown, hv.UnexpectedError,
              requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


@dataclass(frozen=True)
class VaultRef:
    mount: str
    name: str
    version: int

    def __str__(self) -> str:
        return f"vault:{self.mount}/{self.name}#{self.version}"


@dataclass(frozen=True)
class _KeyMeta:
    key_type: KeyType
    public_keys: dict[int, str]  # version: PEM, or for ed25519 the 32 raw bytes in base64


def parse_ref(ref: str) -> VaultRef:
    """``vault:<mount>/<key>[#<version>]``; no version means version 1 (see the module doc)."""
    m = _REF.match(ref)
    if not m:
        raise KeyNotFound(f"{ref!r} is not a vault reference (vault:<mount>/<key>#<version>)")
    return VaultRef(m["mount"], m["name"], int(m["version"] or 1))


def _slug(label: str) -> str:
    text = unicodedata.normalize("NFKD", label.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:40].strip("-")


def _errors(exc: hv.VaultError) -> str:
    errs = exc.errors if isinstance(exc.errors, list) else [exc.errors or ""]
    return "; ".join(" ".join(str(e).split()) for e in errs if e) or type(exc).__name__


class VaultKeyStore(KeyStore):
    scheme = "vault"
    attempts = 3
    backoff_seconds = 0.05

    def __init__(self, addr: str, *, mount: str = "transit", token: str | None = None,
                 token_file: Path | None = None, role_id: str | None = None, secret_id: str | None = None,
                 approle_mount: str = "approle", namespace: str | None = None, ca_cert: Path | None = None,
                 tls_verify: bool = True, timeout: float = 5.0, pool_size: int = 32) -> None:
        if role_id is not None and not secret_id:
            raise KeystoreMisconfigured("KYSO_VAULT_ROLE_ID is set without KYSO_VAULT_SECRET_ID")
        if role_id is None and not token and token_file is None:
            raise KeystoreMisconfigured("vault keystore: set KYSO_VAULT_TOKEN(_FILE) or KYSO_VAULT_ROLE_ID "
                                        "and KYSO_VAULT_SECRET_ID")
        if not tls_verify:
            log.warning("vault keystore: TLS verification is off for %s", addr)
        self.addr, self.mount, self._timeout = addr.rstrip("/"), mount.strip("/"), timeout
        self._where = f"Vault Transit at {self.addr}"
        self._token, self._token_file, self._role_id, self._secret_id = token, token_file, role_id, secret_id
        self._approle_mount = approle_mount
        verify: bool | str = str(ca_cert) if ca_cert is not None else tls_verify
        session = requests.Session()
        pool = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
        session.mount("http://", pool)
        session.mount("https://", pool)
        session.verify = verify
        # token="" keeps hvac from picking up VAULT_TOKEN or ~/.vault-token behind our back.
        self._client = hvac.Client(url=self.addr, token="", verify=verify, timeout=timeout,
                                   namespace=namespace, session=session)
        # Logins go through a token-less adapter on the same session, so an expired token is not sent.
        self._approle = AppRole(JSONAdapter(self.addr, token=None, verify=verify, timeout=timeout,
                                            namespace=namespace, session=session))
        self._auth_lock, self._cache_lock = threading.Lock(), threading.Lock()
        self._auth_generation, self._token_expiry = 0, 0.0
        self._meta_cache: dict[tuple[str, str], _KeyMeta] = {}
        self._public_cache: dict[VaultRef, PublicKeyTypes] = {}

    @classmethod
    def from_settings(cls, settings) -> VaultKeyStore:  # type: ignore[no-untyped-def]
        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None else None

        return cls(settings.vault_addr, mount=settings.vault_mount, token=secret(settings.vault_token),
                   token_file=settings.vault_token_file, role_id=settings.vault_role_id,
                   secret_id=secret(settings.vault_secret_id), namespace=settings.vault_namespace,
                   ca_cert=settings.vault_ca_cert, tls_verify=settings.vault_tls_verify,
                   timeout=settings.vault_timeout_seconds)

    # -- authentication -------------------------------------------------------------------
    def _ensure_auth(self) -> None:
        if self._client.token and time.monotonic() < self._token_expiry:
            return
        with self._auth_lock:
            if not (self._client.token and time.monotonic() < self._token_expiry):
                self._authenticate()

    def _authenticate(self) -> None:
        """Get a token (caller holds the auth lock). AppRole tokens are renewed at 80% of their TTL."""
        if self._role_id is not None:
            try:
                auth = self._approle.login(self._role_id, self._secret_id, use_token=False,
                                            mount_point=self._approle_mount)["auth"]
            except (hv.InvalidRequest, hv.Forbidden, hv.Unauthorized, hv.InvalidPath):
                raise KeystoreUnavailable(
                    f"{self._where} refused the AppRole login (role_id or secret_id invalid or expired): "
                    "issue a new secret_id and set KYSO_VAULT_SECRET_ID") from None
            token, ttl = auth["client_token"], float(auth.get("lease_duration") or 0)
            self._token_expiry = time.monotonic() + ttl * 0.8 if ttl else float("inf")
        elif self._token_file is not None:
            try:
                token = self._token_file.read_text("utf-8").strip()
            except OSError as exc:
                raise KeystoreUnavailable(
                    f"vault token file {self._token_file} cannot be read: {exc.strerror}") from None
            self._token_expiry = float("inf")
        else:
            token, self._token_expiry = self._token or "", float("inf")
        self._client.token = token
        self._auth_generation += 1

    def _reauthenticate(self, generation: int) -> bool:
        """After a refused token: log in again (AppRole) or re-read the token file; False if no new token."""
        with self._auth_lock:
            if generation == self._auth_generation:  # nobody renewed it meanwhile
                before = self._client.token
                self._authenticate()
                return self._role_id is not None or self._client.token != before
        return True

    # -- one call, with retries and error mapping ------------------------------------------
    @metrics.counts_errors("vault", KeystoreError, KeystoreUnavailable, KeystoreMisconfigured)
    def _call(self, fn: Callable[[], T], *, missing: str, action: str) -> T:
        deadline = time.monotonic() + self._timeout
        reauthenticated = renew = False
        attempt, generation = 0, -1
        while True:
            attempt += 1
            try:
                if renew:  # inside the try, so a failing re-login is mapped like any call
                    renew = False
                    if not self._reauthenticate(generation):
                        raise hv.Forbidden()
                self._ensure_auth()
                generation = self._auth_generation
                return fn()
            except (hv.Forbidden, hv.Unauthorized):
                if not reauthenticated and (self._role_id is not None or self._token_file is not None):
                    reauthenticated = renew = True
                    continue
                raise KeystoreUnavailable(
                    f"{self._where} refused kyso's token to {action} (expired, revoked, or its policy does not "
                    f"allow it): renew KYSO_VAULT_TOKEN(_FILE) or check the AppRole and the policy on the mount"
                ) from None
            except hv.InvalidPath as exc:
                if "no handler for route" in _errors(exc):
                    raise KeyNotFound(f"{missing}: no Transit engine is mounted there on {self.addr}") from None
                raise KeyNotFound(missing) from None
            except hv.InvalidRequest as exc:
                if "not found" in _errors(exc):
                    raise KeyNotFound(missing) from None
                raise KeystoreError(f"{self._where} refused to {action}: {_errors(exc)}") from None
            except hv.VaultNotInitialized:
                raise KeystoreUnavailable(f"{self._where} is not initialized: run `bao operator init`") from None
            except requests.exceptions.SSLError:
                raise KeystoreUnavailable(
                    f"{self._where}: TLS verification failed; set KYSO_VAULT_CA_CERT to the CA of the server "
                    "certificate") from None
            except _TRANSIENT as exc:
                if isinstance(exc, hv.VaultDown) and "sealed" in _errors(exc):
                    raise KeystoreUnavailable(
                        f"{self._where} is sealed: unseal it (`bao operator unseal`, or wait for auto-unseal), "
                        "then retry") from None
                reason = _errors(exc) if isinstance(exc, hv.VaultError) else type(exc).__name__
                delay = self.backoff_seconds * 2 ** (attempt - 1) * (1 + random.random())
                if attempt >= self.attempts or time.monotonic() + delay > deadline:
                    raise KeystoreUnavailable(
                        f"{self._where} is unreachable or failing ({reason}, {attempt} attempts): check that "
                        "the server runs and KYSO_VAULT_ADDR, the network and the firewall") from None
                log.warning("%s: %s; retry %d/%d in %.2fs", self._where, reason, attempt, self.attempts - 1, delay)
                time.sleep(delay)

    # -- key metadata ---------------------------------------------------------------------
    def _meta(self, ref: VaultRef, *, refresh: bool = False, version: bool = True) -> _KeyMeta:
        """The key's type and public keys, cached; re-read when the ref's version is not known yet."""
        meta = None if refresh else self._meta_cache.get((ref.mount, ref.name))
        if meta is None or ref.version not in meta.public_keys:
            data = self._call(lambda: self._client.secrets.transit.read_key(ref.name, mount_point=ref.mount),
                              missing=f"no key {ref} in {self._where}", action="read a key")["data"]
            meta = self._store_meta(ref, data)
        if version and ref.version not in meta.public_keys:
            raise KeyNotFound(f"no key {ref} in {self._where}: version {ref.version} does not exist "
                              f"(versions: {', '.join(map(str, sorted(meta.public_keys))) or 'none'})")
        return meta

    def _store_meta(self, ref: VaultRef, data: dict[str, Any]) -> _KeyMeta:
        if data.get("type") not in _KYSO_TYPES:
            raise UnsupportedAlgorithm(f"{ref} is a {data.get('type')} key, not a signing key type kyso uses")
        if data.get("derived"):  # each signature would need a context; kyso makes none
            raise UnsupportedAlgorithm(f"{ref} is a derived (per-context) key; kyso signs with plain keys only")
        publics = {int(v): k["public_key"] for v, k in data["keys"].items() if k.get("public_key")}
        meta = _KeyMeta(_KYSO_TYPES[data["type"]], publics)
        with self._cache_lock:
            self._meta_cache[(ref.mount, ref.name)] = meta
        return meta

    def _forget(self, ref: VaultRef) -> None:
        with self._cache_lock:
            self._meta_cache.pop((ref.mount, ref.name), None)
            for cached in [r for r in self._public_cache if (r.mount, r.name) == (ref.mount, ref.name)]:
                del self._public_cache[cached]

    # -- KeyStore -------------------------------------------------------------------------
    def generate(self, key_type: KeyType, label: str) -> str:
        name = f"kyso-{secrets.token_hex(8)}" + (f"-{_slug(label)}" if _slug(label) else "")
        ref = VaultRef(self.mount, name, 1)
        try:
            resp = self._call(lambda: self._client.secrets.transit.create_key(
                name, key_type=_VAULT_TYPES[key_type], exportable=False, allow_plaintext_backup=False,
                mount_point=self.mount), missing=f"cannot create {ref}", action="create a key")
        except KeyNotFound as exc:
            raise KeystoreMisconfigured(f"{exc}; enable it: `bao secrets enable -path={self.mount} transit`") from None
        if isinstance(resp, dict) and resp.get("data", {}).get("keys"):  # OpenBao answers with the key
            self._store_meta(ref, resp["data"])
            return str(VaultRef(self.mount, name, int(resp["data"]["latest_version"])))
        return str(ref)

    def rotate(self, ref: str) -> str:
        """Add a key version and return the reference bound to it; older references keep theirs.

        Not idempotent: a retried rotation whose first answer was lost adds two versions (harmless).
        """
        r = parse_ref(ref)
        resp = self._call(lambda: self._client.secrets.transit.rotate_key(r.name, mount_point=r.mount),
                          missing=f"no key {r} in {self._where}", action="rotate a key")
        data = resp["data"] if isinstance(resp, dict) and resp.get("data") else None
        meta = self._store_meta(r, data) if data else self._meta(r, refresh=True, version=False)
        return str(VaultRef(r.mount, r.name, max(meta.public_keys)))

    def public_key(self, ref: str) -> PublicKeyTypes:
        r = parse_ref(ref)
        public = self._public_cache.get(r)
        if public is None:
            meta = self._meta(r)
            text = meta.public_keys[r.version]
            public = (ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(text))
                      if meta.key_type is KeyType.ED25519 else serialization.load_pem_public_key(text.encode()))
            with self._cache_lock:
                self._public_cache[r] = public
        return public

    def key_type(self, ref: str) -> KeyType:
        return self._meta(parse_ref(ref)).key_type

    def sign_digest(self, ref: str, digest: bytes, hash_algorithm: hashes.HashAlgorithm,
                    scheme: SignatureScheme) -> bytes:
        r = parse_ref(ref)
        vault_hash = _HASHES.get(hash_algorithm.name)
        if vault_hash is None:
            raise UnsupportedAlgorithm(f"Vault Transit signs sha256/384/512 digests, not {hash_algorithm.name}")
        if len(digest) != hash_algorithm.digest_size:
            raise UnsupportedAlgorithm(f"digest is {len(digest)} bytes, "
                                       f"{hash_algorithm.name} needs {hash_algorithm.digest_size}")
        key_type = self._meta(r).key_type
        if key_type.signs_messages:
            raise UnsupportedAlgorithm("an Ed25519 key signs whole messages (sign_message), not digests")
        params: dict[str, Any] = {"hash_algorithm": vault_hash, "prehashed": True, "key_version": r.version}
        if not key_type.is_rsa:
            if scheme is not SignatureScheme.ECDSA:
                raise UnsupportedAlgorithm(f"an EC key cannot sign with {scheme.value}")
            params["marshaling_algorithm"] = "asn1"
        elif scheme is SignatureScheme.RSA_PSS:
            params.update(signature_algorithm="pss", salt_length="hash")
        elif scheme is SignatureScheme.RSA_PKCS1V15:
            params["signature_algorithm"] = "pkcs1v15"
        else:
            raise UnsupportedAlgorithm("an RSA key cannot sign with ECDSA")
        b64 = base64.b64encode(digest).decode()
        resp = self._call(lambda: self._client.secrets.transit.sign_data(r.name, hash_input=b64, mount_point=r.mount,
                                                                         **params),
                          missing=f"no key {r} in {self._where}", action="sign")
        return self._signature(resp)

    def sign_message(self, ref: str, message: bytes) -> bytes:
        r = parse_ref(ref)
        key_type = self._meta(r).key_type
        if not key_type.signs_messages:
            raise UnsupportedAlgorithm(f"{r} is a {key_type.value} key, not Ed25519; sign a digest with it instead")
        b64 = base64.b64encode(message).decode()
        resp = self._call(lambda: self._client.secrets.transit.sign_data(
            r.name, hash_input=b64, key_version=r.version, prehashed=False, mount_point=r.mount),
            missing=f"no key {r} in {self._where}", action="sign")
        signature = self._signature(resp)
        if len(signature) != 64:
            raise KeystoreError(f"{self._where} returned a {len(signature)}-byte Ed25519 signature, not 64")
        return signature

    def _signature(self, resp: Any) -> bytes:
        """The bytes of a ``vault:v<n>:<base64>`` signature."""
        prefix, _, sig = resp["data"]["signature"].rpartition(":")
        if not prefix.startswith("vault:v"):
            raise KeystoreError(f"{self._where} answered an unexpected signature format")
        try:
            return base64.b64decode(sig, validate=True)
        except ValueError:
            raise KeystoreError(f"{self._where} answered a signature that is not base64") from None

    def delete(self, ref: str) -> None:
        """Destroy the Transit key. Refused when it has other versions: Transit deletes them all at once."""
        r = parse_ref(ref)
        meta = self._meta(r, refresh=True, version=False)
        if set(meta.public_keys) - {r.version}:
            raise KeystoreError(f"{r} has versions {sorted(meta.public_keys)} that deleting would destroy too; "
                                f"delete the whole key in Vault itself if that is intended")
        transit = self._client.secrets.transit
        self._call(lambda: transit.update_key_configuration(r.name, deletion_allowed=True, mount_point=r.mount),
                   missing=f"no key {r} in {self._where}", action="delete a key")
        self._call(lambda: transit.delete_key(r.name, mount_point=r.mount),
                   missing=f"no key {r} in {self._where}", action="delete a key")
        self._forget(r)

    def list(self) -> list[KeyInfo]:
        """One entry per version of every ``kyso-`` key on the configured mount (one read per key)."""
        def names() -> list[str]:
            try:
                keys: list[str] = self._client.secrets.transit.list_keys(mount_point=self.mount)["data"]["keys"]
                return keys
            except hv.InvalidPath as exc:
                if exc.errors:  # no such mount; an empty mount answers 404 without errors
                    raise
                return []

        try:
            found = self._call(names, missing=f"cannot list keys on {self.mount}", action="list keys")
        except KeyNotFound as exc:
            raise KeystoreMisconfigured(str(exc)) from None
        infos = []
        for name in sorted(n for n in found if _NAME.match(n)):
            try:
                meta = self._meta(VaultRef(self.mount, name, 1), refresh=True, version=False)
            except (KeyNotFound, UnsupportedAlgorithm):
                continue  # deleted meanwhile, or not a signing key
            label = _NAME.match(name)["label"] or ""  # type: ignore[index]
            infos += [KeyInfo(str(VaultRef(self.mount, name, v)), meta.key_type, label)
                      for v in sorted(meta.public_keys)]
        return infos

    def health(self) -> str:
        """Reachable, unsealed, and our token accepted (token lookup-self, allowed by Vault's default policy)."""
        self._call(lambda: self._client.auth.token.lookup_self(), missing=f"{self._where} has no token endpoint",
                   action="look up its own token")
        return "ok"
