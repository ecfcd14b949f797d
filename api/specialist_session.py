"""The specialist page's sign-in cookie: short-lived, HMAC-signed, bound to one credential.

Signing in takes the PIN and a current one-time code (``activation.sign_in``); the cookie then lets
the specialist read their page for ``LIFETIME``. It grants no signature: approving a request asks
for the PIN and a fresh code again. Forms carry a CSRF token derived from the cookie, and the cookie
is ``SameSite=Strict`` and ``HttpOnly`` (``Secure`` when kyso is served over https).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.settings import Settings
from hsm.soft import master_passphrase

COOKIE = "kyso_me"
LIFETIME = 15 * 60  # seconds: long enough to review a morning's requests, short on a shared counter PC


def _key(settings: Settings) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"kyso-specialist-page",
                info=b"kyso/specialist-session/v1").derive(master_passphrase(settings))


def _mac(key: bytes, value: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, value.encode(), hashlib.sha256).digest()).decode().rstrip("=")


def issue(settings: Settings, credential_id: str, now: float | None = None) -> str:
    payload = f"{credential_id}.{int((now or time.time()) + LIFETIME)}.{secrets.token_urlsafe(8)}"
    return f"{payload}.{_mac(_key(settings), payload)}"


def read(settings: Settings, cookie: str | None, now: float | None = None) -> str | None:
    """The signed-in credential id, or None (no cookie, forged, or expired)."""
    if not cookie or cookie.count(".") != 3:
        return None
    credential_id, expires, nonce, mac = cookie.split(".")
    if not hmac.compare_digest(mac, _mac(_key(settings), f"{credential_id}.{expires}.{nonce}")):
        return None
    if not expires.isdigit() or int(expires) <= (now or time.time()):
        return None
    return credential_id


def csrf_token(settings: Settings, cookie: str) -> str:
    return _mac(_key(settings), "csrf:" + cookie)


def csrf_ok(settings: Settings, cookie: str | None, token: str | None) -> bool:
    return bool(cookie and token) and hmac.compare_digest(csrf_token(settings, cookie or ""), token or "")
