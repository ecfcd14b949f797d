"""The specialist page's cookies: the session cookie and the CSRF tokens of every /me form.

The session itself is a server-side row (``signing.activation.sessions``): the cookie carries only
its random token, so logout, a lock, a PIN change or a re-enrolment end it at once. Every form
posts a CSRF token: inside a session an HMAC of the session token; before one (sign-in,
enrolment) an HMAC of a random pre-session cookie set with the form (double submit, bound by the
server's key). Cookies are ``HttpOnly``, ``SameSite=Strict``, path ``/me``, and ``Secure`` whenever
the page is served over https: ``KYSO_BASE_URL`` is https, or the request came over https (directly,
or through a trusted proxy saying ``X-Forwarded-Proto: https``).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import Request, Response

from core.settings import Settings
from hsm.soft import master_passphrase
from signing.activation.sessions import LIFETIME

from .ratelimit import trusted_address

COOKIE = "kyso_me"
PRE_COOKIE = "kyso_me_form"
PRE_LIFETIME = 60 * 60  # seconds a sign-in or enrolment form stays postable


def _key(settings: Settings) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"kyso-specialist-page",
                info=b"kyso/specialist-session/v2").derive(master_passphrase(settings))


def _mac(key: bytes, value: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, value.encode(), hashlib.sha256).digest()).decode().rstrip("=")


def csrf_token(settings: Settings, cookie: str) -> str:
    """The CSRF token of the forms of the session whose cookie is ``cookie``."""
    return _mac(_key(settings), "csrf:" + cookie)


def csrf_ok(settings: Settings, cookie: str | None, token: str | None) -> bool:
    return bool(cookie and token) and hmac.compare_digest(csrf_token(settings, cookie or ""), token or "")


def pre_value(request: Request) -> str:
    """The pre-session cookie's value: the browser's, or a new one (set it with ``set_pre``)."""
    value = request.cookies.get(PRE_COOKIE) or ""
    return value if 20 <= len(value) <= 64 else secrets.token_urlsafe(24)


def pre_token(settings: Settings, value: str) -> str:
    return _mac(_key(settings), "pre-csrf:" + value)


def pre_ok(settings: Settings, request: Request, token: str | None) -> bool:
    """The sign-in or enrolment form carries the token that matches this browser's pre-session cookie."""
    value = request.cookies.get(PRE_COOKIE)
    return bool(value and token) and hmac.compare_digest(pre_token(settings, value or ""), token or "")


def secure(request: Request, settings: Settings) -> bool:
    """Whether the page is served over https (then every cookie is ``Secure``)."""
    if settings.base_url.startswith("https://") or request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    proxies = tuple(settings.trusted_proxies)
    return bool(proxies) and trusted_address(peer, proxies) and \
        request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https"


def _set(response: Response, request: Request, settings: Settings, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", path="/me",
                        secure=secure(request, settings))


def set_session(response: Response, request: Request, settings: Settings, token: str) -> None:
    _set(response, request, settings, COOKIE, token, int(LIFETIME.total_seconds()))


def set_pre(response: Response, request: Request, settings: Settings, value: str) -> None:
    _set(response, request, settings, PRE_COOKIE, value, PRE_LIFETIME)


def clear_session(response: Response, request: Request, settings: Settings) -> None:
    response.delete_cookie(COOKIE, path="/me", httponly=True, samesite="strict", secure=secure(request, settings))
