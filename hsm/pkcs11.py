"""The PKCS#11 keystore: keys inside an HSM (or SoftHSM2), named by RFC 7512 ``pkcs11:`` URIs.

Keys are generated on the token as sensitive and non-extractable; only digests cross the boundary,
signed with the raw mechanisms (CKM_ECDSA, CKM_RSA_PKCS on a DigestInfo, CKM_RSA_PKCS_PSS) because
tokens such as SoftHSM2 2.6.1 lack the hash-and-sign ones. Ed25519 keys (CKK_EC_EDWARDS) sign whole
small messages with CKM_EDDSA and no parameters (PureEdDSA) and never a digest. PKCS#11 login state belongs to the
application and token, not to a session: one "anchor" session logs in with the PIN and the pooled
sessions, opened without it, share that login. Closing the anchor logs every session out.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote, unquote_to_bytes

import pkcs11
from asn1crypto.core import OctetString
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from pkcs11 import MGF, Attribute, KeyType as P11KeyType, Mechanism, MechanismFlag, ObjectClass, exceptions as p11e
from pydantic import SecretStr

from core import metrics
from core.settings import Settings

from .errors import KeyNotFound, KeystoreError, KeystoreMisconfigured, KeystoreUnavailable, UnsupportedAlgorithm
from .interfaces import KeyInfo, KeyStore, KeyType, SignatureScheme

log = logging.getLogger(__name__)
T = TypeVar("T")

_CURVES = {  # CKA_EC_PARAMS: the DER namedCurve OID
    KeyType.EC_P256: (bytes.fromhex("06082a8648ce3d030107"), ec.SECP256R1()),
    KeyType.EC_P384: (bytes.fromhex("06052b81040022"), ec.SECP384R1()),
}
# Ed25519 CKA_EC_PARAMS: kyso writes the RFC 8410 OID 1.3.101.112; PKCS#11 3.0 also allows the printable
# curve name, which SoftHSM2 2.6.1 puts on the private key whichever form the public template had.
_ED25519_OID = bytes.fromhex("06032b6570")
_ED25519_PARAMS = (_ED25519_OID, b"\x13\x0cedwards25519")
_HASHES = {  # name: (DER OID for DigestInfo, hash mechanism and MGF1 for PSS)
    "sha1": ("06052b0e03021a", Mechanism.SHA_1, MGF.SHA1),
    "sha224": ("0609608648016503040204", Mechanism.SHA224, MGF.SHA224),
    "sha256": ("0609608648016503040201", Mechanism.SHA256, MGF.SHA256),
    "sha384": ("0609608648016503040202", Mechanism.SHA384, MGF.SHA384),
    "sha512": ("0609608648016503040203", Mechanism.SHA512, MGF.SHA512),
}
# A session or the device went away: reopen and retry. ObjectHandleInvalid is handled where keys are found.
_TRANSIENT = (p11e.SessionClosed, p11e.SessionHandleInvalid, p11e.DeviceError, p11e.DeviceRemoved,
              p11e.DeviceMemory, p11e.TokenNotPresent, p11e.TokenNotRecognised, p11e.GeneralError,
              p11e.FunctionFailed, p11e.UserNotLoggedIn, p11e.SlotIDInvalid, p11e.SessionCount)
_UNSUPPORTED = (p11e.MechanismInvalid, p11e.MechanismParamInvalid, p11e.KeySizeRange, p11e.FunctionNotSupported,
                p11e.KeyTypeInconsistent, p11e.DomainParamsInvalid, p11e.DataLenRange)
_BACKOFF = (0.05, 0.2, 0.0)  # pause after each attempt; three attempts in all
_POOL_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Pkcs11Uri:
    """An RFC 7512 object URI; values are percent-encoded, the id byte by byte."""

    token: str | None = None
    object: str | None = None
    id: bytes | None = None
    type: str | None = None

    @classmethod
    def parse(cls, uri: str) -> Pkcs11Uri:
        if not uri.startswith("pkcs11:"):
            raise ValueError("not a pkcs11: URI")
        attrs: dict[str, bytes] = {}
        for part in filter(None, uri[7:].split("?", 1)[0].split(";")):  # the query (pin-source...) is ignored
            name, sep, value = part.partition("=")
            if not sep or name in attrs:
                raise ValueError(f"malformed or repeated attribute {name!r}")
            attrs[name] = unquote_to_bytes(value)
        if "id" not in attrs and "object" not in attrs:
            raise ValueError("names no object (id= or object=)")
        text = {k: attrs[k].decode("utf-8") for k in ("token", "object", "type") if k in attrs}
        return cls(text.get("token"), text.get("object"), attrs.get("id"), text.get("type"))

    def __str__(self) -> str:
        text = [(name, quote(value, safe="")) for name, value in (("token", self.token), ("object", self.object))
                if value is not None]
        text += [("id", "".join(f"%{b:02x}" for b in self.id))] if self.id is not None else []
        text += [("type", self.type)] if self.type is not None else []
        return "pkcs11:" + ";".join(f"{name}={value}" for name, value in text)


class _Session:
    """A pooled session and the key objects found through it (handles are only valid per login)."""

    __slots__ = ("generation", "keys", "raw")

    def __init__(self, raw: Any, generation: int) -> None:
        self.raw, self.generation = raw, generation
        self.keys: dict[str, Any] = {}  # key reference: private key object


class _SessionPool:
    """Up to ``size`` sessions, opened once and reused; ``recover`` replaces them after a failure."""

    def __init__(self, name: str, connect: Callable[[], Any], pin: SecretStr, size: int) -> None:
        self._name, self._connect, self._pin, self._size = name, connect, pin, size
        self._cond, self._open_lock = threading.Condition(), threading.Lock()
        self._idle: list[_Session] = []
        self._live = self._generation = self.opened = 0
        self._anchor: Any = None

    def acquire(self) -> _Session:
        with self._cond:
            if self._idle:  # the common case, kept cheap
                return self._idle.pop()
            if not self._cond.wait_for(lambda: self._idle or self._live < self._size, _POOL_WAIT_SECONDS):
                raise KeystoreUnavailable(f"all {self._size} sessions to {self._name} stayed busy for "
                                          f"{_POOL_WAIT_SECONDS:.0f} s; raise KYSO_PKCS11_POOL_SIZE or check the token")
            if self._idle:
                return self._idle.pop()
            self._live += 1
            generation = self._generation
        try:
            with self._open_lock:
                if self._anchor is None:
                    token = self._connect()
                    try:  # python-pkcs11 leaves the session open if C_Login fails; rare, accepted
                        self._anchor = token.open(rw=True, user_pin=self._pin.get_secret_value())
                    except p11e.UserAlreadyLoggedIn:  # another user of this token in this process did
                        self._anchor = token.open(rw=True)
                    log.info("logged in to %s", self._name)
                raw = self._anchor.token.open(rw=True)
                self.opened += 1
            return _Session(raw, generation)
        except BaseException:
            self.release(None, generation)
            raise

    def release(self, session: _Session | None, generation: int, broken: bool = False) -> None:
        with self._cond:
            current = generation == self._generation
            if session is not None and current and not broken:
                self._idle.append(session)
                session = None
            elif current:
                self._live -= 1
            self._cond.notify()
        if session is not None:
            _close(session.raw)

    def recover(self, generation: int, force: bool = False) -> None:
        """After a failure, if the login died (the anchor is gone, or ``force``), close every session and
        log out, once even when many threads fail together; otherwise only the failed session went."""
        with self._open_lock:  # no new login may start before the old one is logged out
            if not force and self._anchor is not None and _alive(self._anchor):
                return
            with self._cond:
                if generation != self._generation:
                    return
                self._generation += 1
                idle, self._idle, self._live = self._idle, [], 0
                anchor, self._anchor = self._anchor, None
                self._cond.notify_all()
            for session in idle:
                _close(session.raw)
            if anchor is not None:
                _close(anchor)

    def forget(self, ref: str) -> None:
        with self._cond:
            for session in self._idle:
                session.keys.pop(ref, None)


def _alive(anchor: Any) -> bool:
    try:
        anchor.token.slot.get_token()
        list(anchor.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: "kyso-liveness-probe"}))
        return True
    except p11e.PKCS11Error:
        return False


def _close(raw: Any) -> None:
    with contextlib.suppress(p11e.PKCS11Error):  # already gone with its token
        raw.close()


class _InitArgs(ctypes.Structure):
    _fields_ = [("create", ctypes.c_void_p), ("destroy", ctypes.c_void_p), ("lock", ctypes.c_void_p),
                ("unlock", ctypes.c_void_p), ("flags", ctypes.c_ulong), ("reserved", ctypes.c_void_p)]


_MODULES: dict[str, bool] = {}  # module path: initialized with OS locking (else its calls are serialized)
_MODULES_LOCK = threading.Lock()
_RESCANNED: dict[str, float] = {}  # module path: when its slots were last rescanned for a missing token
_RESCAN_SECONDS = 2.0
_SERIAL = threading.RLock()
_WRITES = threading.Lock()  # SoftHSM2 2.6 fails (GeneralError, TemplateInconsistent) creating objects concurrently


def _rescan_due(path: str) -> bool:
    """True at most once every ``_RESCAN_SECONDS`` per module, so a missing token is not a C_Initialize storm."""
    with _MODULES_LOCK:
        now = time.monotonic()
        if now - _RESCANNED.get(path, -_RESCAN_SECONDS) < _RESCAN_SECONDS:
            return False
        _RESCANNED[path] = now
        return True


def load_module(path: str, *, reload: bool = False) -> Any:
    """Load a module initialized for threads; ``reload`` re-runs C_Initialize (which closes its sessions).

    python-pkcs11 calls C_Initialize(NULL), which tells a module that one thread uses it: SoftHSM2
    then disables its locks and crashes under concurrent signing. So initialize again with
    CKF_OS_LOCKING_OK. SoftHSM2 also reads SOFTHSM2_CONF and scans its tokens only at C_Initialize.
    """
    with _MODULES_LOCK:
        lib = pkcs11.lib(path)
        if reload or path not in _MODULES:
            so = ctypes.CDLL(path)
            so.C_Initialize.restype = so.C_Finalize.restype = ctypes.c_ulong
            so.C_Finalize(None)
            rv = so.C_Initialize(ctypes.byref(_InitArgs(flags=2)))  # CKF_OS_LOCKING_OK
            if rv != 0:
                log.warning("PKCS#11 module %s cannot lock for threads (CKR 0x%x): its calls are serialized", path, rv)
                so.C_Initialize(None)
            _MODULES[path] = rv == 0
        return lib


class Pkcs11KeyStore(KeyStore):
    scheme = "pkcs11"

    def __init__(self, module: Path | str, token_label: str, pin: SecretStr, *, pool_size: int = 8) -> None:
        self._module, self._label = str(module), token_label
        self._name = f"PKCS#11 token {token_label!r}"
        self._pool = _SessionPool(self._name, self._connect, pin, pool_size)
        self._public: dict[str, PublicKeyTypes] = {}
        self._types: dict[str, KeyType] = {}
        self._pin_refused = False

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore(module={self._module!r}, token={self._label!r})"

    @classmethod
    def from_settings(cls, settings) -> Pkcs11KeyStore:  # type: ignore[no-untyped-def]
        label = settings.pkcs11_token_label or "kyso"
        return cls(settings.pkcs11_module, label, read_pin(settings, f"PKCS#11 token {label!r}"),
                   pool_size=settings.pkcs11_pool_size)

    # -- sessions and errors ------------------------------------------------------------
    def _connect(self) -> Any:
        """Find the token by label, skipping slots whose token vanished. Not found, the module rescans
        its slots (at most every ``_RESCAN_SECONDS``): SoftHSM2, like some HSM modules, sees a token
        put back or re-initialised only at C_Initialize, and kyso must recover without a restart.
        The rescan ends the module's other sessions in this process too; their pools recover."""
        token = self._find_token(reload=False)
        if token is None and _rescan_due(self._module):
            log.warning("%s not found; rescanning the slots of %s", self._name, self._module)
            token = self._find_token(reload=True)
        if token is not None:
            return token
        raise KeystoreUnavailable(f"{self._name} is not present in {self._module}; insert it or initialise it "
                                  f"(softhsm2-util --init-token --free --label {self._label}), or fix "
                                  "KYSO_PKCS11_TOKEN_LABEL")

    def _find_token(self, *, reload: bool) -> Any:
        try:
            lib = load_module(self._module, reload=reload)
            slots = lib.get_slots(token_present=True)
        except p11e.PKCS11Error as exc:
            raise KeystoreUnavailable(f"{self._name}: the module {self._module} cannot be used ({exc}); install it "
                                      "(Debian: apt-get install softhsm2) or fix KYSO_PKCS11_MODULE") from None
        for slot in slots:
            try:
                token = slot.get_token()
            except p11e.PKCS11Error:
                continue
            if token.label == self._label:
                return token
        return None

    def _translate(self, exc: p11e.PKCS11Error) -> Exception:
        kind = type(exc).__name__
        if isinstance(exc, (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange)):
            self._pin_refused = True  # never try a refused PIN again: the token would lock
            return KeystoreMisconfigured(f"{self._name} refused the PIN; set the right one in KYSO_PKCS11_PIN or "
                                         "KYSO_PKCS11_PIN_FILE and restart (it is not retried, so the token does not "
                                         "lock)")
        if isinstance(exc, (p11e.PinLocked, p11e.PinExpired, p11e.UserPinNotInitialized)):
            return KeystoreUnavailable(f"{self._name}: user PIN unusable ({kind}); reset it with the SO PIN")
        if isinstance(exc, _UNSUPPORTED):
            return UnsupportedAlgorithm(f"{self._name} refuses this key or mechanism ({kind})")
        return KeystoreError(f"{self._name} failed: {kind}")

    @metrics.counts_errors("pkcs11", KeystoreError, KeystoreUnavailable, KeystoreMisconfigured)
    def _run(self, op: Callable[[_Session], T]) -> T:
        """Run ``op`` on a pooled session; a broken session is replaced and the call retried, boundedly."""
        last: Exception | None = None
        for attempt, pause in enumerate(_BACKOFF, 1):
            if self._pin_refused:
                raise self._translate(p11e.PinIncorrect())
            if _MODULES.get(self._module, True):
                result, last = self._attempt(op)
            else:
                with _SERIAL:
                    result, last = self._attempt(op)
            if last is None:
                return cast(T, result)
            log.warning("%s: %s (attempt %d/%d)", self._name, type(last).__name__, attempt, len(_BACKOFF))
            time.sleep(pause)
        if isinstance(last, KeystoreUnavailable):
            raise last
        raise KeystoreUnavailable(f"{self._name} is unavailable ({type(last).__name__}) after {len(_BACKOFF)} "
                                  f"attempts; check that the token is present and {self._module} works, then retry")

    def _attempt(self, op: Callable[[_Session], T]) -> tuple[T | None, Exception | None]:
        """One try: the result, or the transient failure to retry after."""
        try:
            session = self._pool.acquire()
        except (KeystoreUnavailable, *_TRANSIENT) as exc:
            return None, exc
        except p11e.PKCS11Error as exc:
            raise self._translate(exc) from None
        failure: Exception | None = None
        try:
            return op(session), None
        except _TRANSIENT as exc:
            failure = exc
            return None, exc
        except p11e.PKCS11Error as exc:
            raise self._translate(exc) from None
        finally:
            self._pool.release(session, session.generation, broken=failure is not None)
            if failure is not None:
                self._pool.recover(session.generation, force=isinstance(failure, p11e.UserNotLoggedIn))

    def _check_token(self, session: _Session) -> None:
        if session.raw.token.slot.get_token().label != self._label:
            raise p11e.TokenNotPresent()

    # -- finding keys ---------------------------------------------------------------------
    def _template(self, ref: str) -> dict[Attribute, Any]:
        try:
            uri = Pkcs11Uri.parse(ref)
        except ValueError:
            raise KeyNotFound(f"{ref!r} is not a PKCS#11 key URI (pkcs11:token=...;id=...)") from None
        if uri.token is not None and uri.token != self._label:
            raise KeyNotFound(f"no key {ref} here: it is on PKCS#11 token {uri.token!r}, this is {self._name}")
        template: dict[Attribute, Any] = {} if uri.id is None else {Attribute.ID: uri.id}
        return template if uri.object is None else {**template, Attribute.LABEL: uri.object}

    def _find(self, session: _Session, ref: str, object_class: ObjectClass) -> Any:
        found = list(session.raw.get_objects({Attribute.CLASS: object_class, **self._template(ref)}))
        if not found:
            self._check_token(session)  # a removed SoftHSM token finds nothing rather than failing
            raise KeyNotFound(f"no key {ref} on {self._name}")
        if len(found) > 1:
            raise KeyNotFound(f"{ref} names {len(found)} keys on {self._name}; add its id= to the URI")
        return found[0]

    def _private(self, session: _Session, ref: str) -> Any:
        key = session.keys.get(ref)
        if key is None:
            key = session.keys[ref] = self._find(session, ref, ObjectClass.PRIVATE_KEY)
        return key

    def _with_private(self, session: _Session, ref: str, use: Callable[[Any], T]) -> T:
        try:
            return use(self._private(session, ref))
        except (p11e.ObjectHandleInvalid, p11e.KeyHandleInvalid):
            session.keys.pop(ref, None)  # the key was deleted, or the handle died with a login
            return use(self._private(session, ref))

    # -- KeyStore -----------------------------------------------------------------------
    def generate(self, key_type: KeyType, label: str) -> str:
        key_id = secrets.token_bytes(16)
        cka_label = f"{label}-{key_id.hex()[:8]}"
        ref = str(Pkcs11Uri(self._label, cka_label, key_id, "private"))
        common = {Attribute.TOKEN: True, Attribute.ID: key_id, Attribute.LABEL: cka_label}
        public = {**common, Attribute.PRIVATE: False, Attribute.VERIFY: True, Attribute.ENCRYPT: False,
                  Attribute.WRAP: False}
        private = {**common, Attribute.PRIVATE: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                   Attribute.SIGN: True, Attribute.DECRYPT: False, Attribute.UNWRAP: False, Attribute.DERIVE: False}
        if key_type.is_rsa:
            kwargs: dict[str, Any] = {"key_type": P11KeyType.RSA, "key_length": int(key_type.value[4:]),
                                      "mechanism": Mechanism.RSA_PKCS_KEY_PAIR_GEN}
        elif key_type is KeyType.ED25519:
            public[Attribute.EC_PARAMS] = _ED25519_OID
            kwargs = {"key_type": P11KeyType.EC_EDWARDS, "mechanism": Mechanism.EC_EDWARDS_KEY_PAIR_GEN}
        else:
            public[Attribute.EC_PARAMS] = _CURVES[key_type][0]
            kwargs = {"key_type": P11KeyType.EC, "mechanism": Mechanism.EC_KEY_PAIR_GEN}

        def op(session: _Session) -> None:
            if list(session.raw.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id})):
                return  # made by an attempt that failed afterwards: do not make a twin
            _, session.keys[ref] = session.raw.generate_keypair(
                store=True, capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template=public, private_template=private, **kwargs)

        with _WRITES:
            try:
                self._run(op)
            except UnsupportedAlgorithm as exc:
                if key_type is not KeyType.ED25519:
                    raise
                raise UnsupportedAlgorithm(
                    f"{self._name} cannot make Ed25519 keys ({exc.message}): it needs CKM_EC_EDWARDS_KEY_PAIR_GEN "
                    "and CKM_EDDSA (PKCS#11 3.0; SoftHSM2 2.6 built with OpenSSL 1.1.1 or later); keep checkpoint "
                    "keys in the vault keystore instead") from None
        self._types[ref] = key_type
        return ref

    def public_key(self, ref: str) -> PublicKeyTypes:
        key = self._public.get(ref)
        if key is None:
            key = self._public[ref] = self._run(lambda s: _public_of(self._find(s, ref, ObjectClass.PUBLIC_KEY)))
        return key

    def key_type(self, ref: str) -> KeyType:
        key_type = self._types.get(ref)
        if key_type is None:
            key_type = self._run(lambda s: self._with_private(s, ref, _key_type_of))
            if key_type is None:
                raise UnsupportedAlgorithm(f"key {ref} on {self._name} is of a type kyso does not use")
            self._types[ref] = key_type
        return key_type

    def sign_digest(self, ref: str, digest: bytes, hash_algorithm: hashes.HashAlgorithm,
                    scheme: SignatureScheme) -> bytes:
        key_type = self._types.get(ref) or self.key_type(ref)
        mechanism, param, data = _sign_request(key_type, digest, hash_algorithm, scheme)
        signature: bytes = self._run(lambda s: self._with_private(
            s, ref, lambda key: key.sign(data, mechanism=mechanism, mechanism_param=param)))
        if mechanism is not Mechanism.ECDSA:
            return signature
        half = len(signature) // 2  # CKM_ECDSA gives r || s; X.509 and CMS want DER
        return utils.encode_dss_signature(int.from_bytes(signature[:half]), int.from_bytes(signature[half:]))

    def sign_message(self, ref: str, message: bytes) -> bytes:
        key_type = self._types.get(ref) or self.key_type(ref)
        if not key_type.signs_messages:
            raise UnsupportedAlgorithm(f"{ref} is a {key_type.value} key, not Ed25519; sign a digest with it instead")
        signature: bytes = self._run(lambda s: self._with_private(
            s, ref, lambda key: key.sign(message, mechanism=Mechanism.EDDSA)))
        if len(signature) != 64:
            raise KeystoreError(f"{self._name} returned a {len(signature)}-byte Ed25519 signature, not 64")
        return signature

    def delete(self, ref: str) -> None:
        def op(session: _Session) -> None:
            private = self._find(session, ref, ObjectClass.PRIVATE_KEY)
            publics = list(session.raw.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, **self._template(ref)}))
            private.destroy()
            for public in publics:
                public.destroy()

        with _WRITES:
            self._run(op)
        self._public.pop(ref, None)
        self._types.pop(ref, None)
        self._pool.forget(ref)

    def list(self) -> list[KeyInfo]:
        def op(session: _Session) -> list[KeyInfo]:
            infos = []
            for obj in list(session.raw.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})):
                key_type, key_id, label = _key_type_of(obj), bytes(obj[Attribute.ID]), obj[Attribute.LABEL]
                if key_type is not None:
                    ref = str(Pkcs11Uri(self._label, label, key_id, "private"))
                    infos.append(KeyInfo(ref, key_type, label.removesuffix(f"-{key_id.hex()[:8]}")))
            return infos

        with _WRITES:  # a key deleted while being listed would fail the listing
            return self._run(op)

    def health(self) -> str:
        try:
            self._run(self._check_token)
        except KeystoreMisconfigured as exc:
            raise KeystoreUnavailable(exc.message) from None
        return "ok"


def _sign_request(key_type: KeyType, digest: bytes, hash_algorithm: hashes.HashAlgorithm,
                  scheme: SignatureScheme) -> tuple[Mechanism, Any, bytes]:
    """The raw mechanism, its parameter and the bytes to hand the token, or why not."""
    if key_type.signs_messages:
        raise UnsupportedAlgorithm("an Ed25519 key signs whole messages (sign_message), not digests")
    if len(digest) != hash_algorithm.digest_size:
        raise UnsupportedAlgorithm(f"digest is {len(digest)} bytes, "
                                   f"{hash_algorithm.name} needs {hash_algorithm.digest_size}")
    if not key_type.is_rsa:
        if scheme is not SignatureScheme.ECDSA:
            raise UnsupportedAlgorithm(f"an EC key cannot sign with {scheme.value}")
        return Mechanism.ECDSA, None, digest
    if hash_algorithm.name not in _HASHES:
        raise UnsupportedAlgorithm(f"the PKCS#11 keystore does not sign {hash_algorithm.name} digests with RSA")
    oid, hash_mechanism, mgf = _HASHES[hash_algorithm.name]
    if scheme is SignatureScheme.RSA_PSS:
        return Mechanism.RSA_PKCS_PSS, (hash_mechanism, mgf, len(digest)), digest
    if scheme is SignatureScheme.RSA_PKCS1V15:
        return Mechanism.RSA_PKCS, None, digest_info(bytes.fromhex(oid), digest)
    raise UnsupportedAlgorithm("an RSA key cannot sign with ECDSA")


def digest_info(oid: bytes, digest: bytes) -> bytes:
    """DER DigestInfo ::= SEQUENCE { SEQUENCE { oid, NULL }, OCTET STRING digest } (RFC 8017 9.2)."""
    algorithm = b"\x30" + bytes([len(oid) + 2]) + oid + b"\x05\x00"
    return b"\x30" + bytes([len(algorithm) + 2 + len(digest)]) + algorithm + b"\x04" + bytes([len(digest)]) + digest


def _key_type_of(obj: Any) -> KeyType | None:
    key_type = obj[Attribute.KEY_TYPE]
    if key_type == P11KeyType.EC:
        params = bytes(obj[Attribute.EC_PARAMS])
        return next((kt for kt, (der, _) in _CURVES.items() if der == params), None)
    if key_type == P11KeyType.RSA:
        bits = int.from_bytes(obj[Attribute.MODULUS]).bit_length()
        return {2048: KeyType.RSA_2048, 3072: KeyType.RSA_3072}.get(bits)
    if key_type == P11KeyType.EC_EDWARDS:
        return KeyType.ED25519 if bytes(obj[Attribute.EC_PARAMS]) in _ED25519_PARAMS else None  # not Ed448
    return None


def _public_of(obj: Any) -> PublicKeyTypes:
    """A cryptography public key from the token's public object."""
    key_type = _key_type_of(obj)
    if key_type is None:
        raise UnsupportedAlgorithm("this PKCS#11 public key is of a type kyso does not use")
    if key_type.is_rsa:
        exponent = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT])
        return rsa.RSAPublicNumbers(exponent, int.from_bytes(obj[Attribute.MODULUS])).public_key()
    if key_type is KeyType.ED25519:
        raw = bytes(obj[Attribute.EC_POINT])
        if len(raw) != 32:  # SoftHSM2 and PKCS#11 3.0 wrap the 32 bytes in an OCTET STRING
            raw = OctetString.load(raw).native
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    curve = _CURVES[key_type][1]
    point = bytes(obj[Attribute.EC_POINT])
    if len(point) != 2 * ((curve.key_size + 7) // 8) + 1:  # the standard form wraps it in an OCTET STRING
        point = OctetString.load(point).native
    return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)


def read_pin(settings: Settings, name: str) -> SecretStr:
    """The user PIN from KYSO_PKCS11_PIN or KYSO_PKCS11_PIN_FILE; never from the command line."""
    if settings.pkcs11_pin is not None:
        return settings.pkcs11_pin
    path = settings.pkcs11_pin_file
    if path is None:
        raise KeystoreMisconfigured(f"{name} has no PIN: set KYSO_PKCS11_PIN or KYSO_PKCS11_PIN_FILE")
    try:
        return SecretStr(Path(path).read_text("utf-8").rstrip("\r\n"))
    except OSError as exc:
        raise KeystoreMisconfigured(f"{name}: the PIN file {path} cannot be read ({exc.strerror})") from None
