"""The base of kyso's error hierarchy.

Domain packages subclass these; only ``api/`` maps them to HTTP, by base class, in one place.
Every error carries a stable machine ``code`` and a message a person can act on.
"""
from __future__ import annotations

from typing import Any


class KysoError(Exception):
    """Base of every error kyso raises on purpose."""

    code: str = "kyso_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInput(KysoError):
    """The caller sent something malformed or not acceptable (HTTP 400/422)."""

    code = "invalid_input"


class NotFound(KysoError):
    """A named thing (CA, certificate, key, unit) does not exist (HTTP 404)."""

    code = "not_found"


class Conflict(KysoError):
    """The request contradicts the current state, e.g. a CA that already exists (HTTP 409)."""

    code = "conflict"


class Unauthenticated(KysoError):
    """No or unusable credentials (HTTP 401)."""

    code = "unauthenticated"


class PermissionDenied(KysoError):
    """Authenticated, but not allowed to do this (HTTP 403)."""

    code = "permission_denied"


class Unavailable(KysoError):
    """A dependency (keystore, database) cannot serve now; retry later (HTTP 503)."""

    code = "unavailable"


class ConfigurationError(KysoError):
    """Settings or declarative files are wrong; kyso refuses to start or to act."""

    code = "configuration_error"


class Internal(KysoError):
    """kyso caught a fault of its own before it could do harm, e.g. an output that fails kyso's own check
    (HTTP 500). Raised on purpose, with a code, so it is audited and counted rather than a bare crash."""

    code = "internal_error"
