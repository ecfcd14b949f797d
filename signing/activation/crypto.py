"""The cryptography under signature activation: PIN hashing, TOTP (RFC 6238) and sealing the TOTP secret.

- **PIN**: ``scrypt(HMAC-SHA256(pepper, pin), salt)`` with a random 16-byte salt per credential
  (n=2^14, r=8, p=1). A PIN has at most 10^12 values, so a stolen database alone would fall to an
  offline search; the pepper, derived from the soft keystore master key and never stored in the
  database, makes that search impossible without the master key as well.
- **TOTP**: RFC 6238 with the authenticator-app defaults (HMAC-SHA-1, 6 digits, 30 s), a 160-bit
  secret; a code is accepted one step either side of now, and never twice (the caller stores the
  last step used).
- **The TOTP secret at rest** must be recoverable (the server computes codes), so it is encrypted:
  AES-256-GCM under a key derived (HKDF-SHA256) from the soft keystore master key, with the
  credential id as associated data so a sealed secret cannot be moved to another credential.

Both derived keys come from ``KYSO_SOFT_MASTER_KEY`` (or its key file): rotating that key makes
every enrolment unusable (re-enrol), exactly like the soft keystore's own keys.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
import urllib.parse
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import ConfigurationError
from core.settings import Settings
from hsm.soft import master_passphrase

PIN_KDF = "scrypt-n16384-r8-p1-hmac"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
TOTP_DIGITS = 6
TOTP_PERIOD = 30
TOTP_WINDOW = 1  # steps accepted either side of now (clock drift of the phone)
_SEAL_VERSION = b"\x01"


@dataclass(frozen=True)
class ActivationKeys:
    """Keys derived from the master key; built per use, never stored."""

    pin_pepper: bytes
    totp_key: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> ActivationKeys:
        master = master_passphrase(settings)
        return cls(pin_pepper=_derive(master, b"kyso/activation/pin-pepper/v1"),
                   totp_key=_derive(master, b"kyso/activation/totp-seal/v1"))


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"kyso-activation", info=info).derive(master)


# -- PIN ---------------------------------------------------------------------------------------------
def new_salt() -> bytes:
    return os.urandom(16)


def hash_pin(pin: str, salt: bytes, keys: ActivationKeys) -> bytes:
    peppered = hmac.new(keys.pin_pepper, pin.encode("ascii"), hashlib.sha256).digest()
    return hashlib.scrypt(peppered, salt=salt, **_SCRYPT)


def pin_matches(pin: str, salt: bytes, stored: bytes, keys: ActivationKeys) -> bool:
    if not pin.isascii():
        pin = "x"  # still spend the same work: the timing must not say which check failed
    return hmac.compare_digest(hash_pin(pin, salt, keys), stored)


# -- TOTP --------------------------------------------------------------------------------------------
def new_totp_secret() -> bytes:
    return secrets.token_bytes(20)


def totp(secret: bytes, step: int, digits: int = TOTP_DIGITS) -> str:
    """RFC 4226 HOTP at counter ``step`` (RFC 6238: step = unix time // 30), HMAC-SHA-1."""
    mac = hmac.new(secret, step.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = (int.from_bytes(mac[offset:offset + 4], "big") & 0x7FFFFFFF) % 10 ** digits
    return f"{value:0{digits}d}"


def step_at(when: dt.datetime) -> int:
    return int(when.timestamp()) // TOTP_PERIOD


def matching_step(secret: bytes, code: str, when: dt.datetime) -> int | None:
    """The time step whose code is ``code`` (within the drift window), or ``None``. Every candidate
    is compared, in constant time, so timing does not say how close a guess was."""
    if len(code) != TOTP_DIGITS or not code.isdigit():
        return None
    now = step_at(when)
    found = None
    for step in range(now - TOTP_WINDOW, now + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp(secret, step), code):
            found = step
    return found


def otpauth_uri(secret: bytes, account: str, issuer: str = "kyso") -> str:
    """The Key URI Format every authenticator app reads (Google Authenticator, FreeOTP, Aegis…)."""
    label = urllib.parse.quote(f"{issuer}:{account}", safe=":@")
    query = urllib.parse.urlencode({"secret": base64.b32encode(secret).decode().rstrip("="), "issuer": issuer,
                                    "algorithm": "SHA1", "digits": TOTP_DIGITS, "period": TOTP_PERIOD})
    return f"otpauth://totp/{label}?{query}"


def secret_from_uri(uri: str) -> bytes:
    """The secret an authenticator app would read from ``uri`` (tests, and the CLI's self-check)."""
    value = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]
    return base64.b32decode(value + "=" * (-len(value) % 8))


# -- sealing the TOTP secret -------------------------------------------------------------------------
def seal(secret: bytes, credential_id: str, keys: ActivationKeys) -> bytes:
    nonce = os.urandom(12)
    return _SEAL_VERSION + nonce + AESGCM(keys.totp_key).encrypt(nonce, secret, _aad(credential_id))


def unseal(sealed: bytes, credential_id: str, keys: ActivationKeys) -> bytes:
    if sealed[:1] != _SEAL_VERSION:
        raise ConfigurationError(f"the TOTP secret of credential {credential_id} is in an unknown format; re-enrol it")
    try:
        return AESGCM(keys.totp_key).decrypt(sealed[1:13], sealed[13:], _aad(credential_id))
    except InvalidTag:
        raise ConfigurationError(f"the TOTP secret of credential {credential_id} cannot be decrypted: the soft "
                                 "keystore master key changed since it was enrolled; re-enrol the credential",
                                 code="activation_key_mismatch") from None


def _aad(credential_id: str) -> bytes:
    return b"kyso-totp:" + credential_id.encode()


def png_qr(data: str) -> bytes:
    """``data`` as a QR code PNG (error correction M, 8 px modules)."""
    import io

    import qrcode

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    qr.add_data(data)
    qr.make(fit=True)
    buffer = io.BytesIO()
    qr.make_image().save(buffer, format="PNG")
    return buffer.getvalue()
