"""Request ids, JSON logs and per-request metrics: what an operator needs to follow one request.

``RequestContext`` (outermost ASGI middleware) gives every request an id (the caller's sane
``X-Request-ID`` or a new one), keeps it in a context variable that every log record of the request
picks up, echoes it in the response, counts and times the request by route *template*, and writes
one access-log line. Logs never carry bodies, query strings or credentials: paths are logged without
their query, and ``ContextFilter`` masks bearer tokens and any extra field named like a secret
(authorization, token, PIN, OTP, SAD, password) before a formatter sees the record.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import time
from contextvars import ContextVar
from typing import Any

from core import metrics

REQUEST_ID: ContextVar[str | None] = ContextVar("kyso_request_id", default=None)
HEADER = b"x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
access_log = logging.getLogger("kyso.access")


def current_request_id() -> str | None:
    return REQUEST_ID.get()


def _route_of(scope: dict[str, Any]) -> str:
    """The matched route's template (``/api/v1/certificates/{serial}``): bounded, unlike raw paths."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else "other"


class RequestContext:
    """Request id, metrics and the access log for every HTTP request (see the module docstring)."""

    def __init__(self, app: Any, *, access_log_enabled: bool = True) -> None:
        self.app, self.access_log_enabled = app, access_log_enabled

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(HEADER, b"").decode("latin-1")
        rid = incoming if _SANE_ID.match(incoming) else secrets.token_hex(16)
        token = REQUEST_ID.set(rid)
        scope.setdefault("state", {})["request_id"] = rid  # request.state.request_id for handlers
        status = 500  # what the client gets if the app raises before answering
        start = time.perf_counter()

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (HEADER, rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = _route_of(scope)
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_DURATION.labels(method, route).observe(elapsed)
            if self.access_log_enabled:
                client, actor = scope.get("client"), scope["state"].get("actor")
                access_log.info("%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed * 1000, extra={
                    "method": scope["method"], "path": scope["path"], "route": route, "status": status,
                    "duration_ms": round(elapsed * 1000, 2), "client": client[0] if client else None,
                    **({"actor": actor} if actor else {}),  # set by authentication as request.state.actor
                })
            REQUEST_ID.reset(token)


# -- logging ---------------------------------------------------------------------------------------
# record attributes that are not extras (uvicorn's color_message repeats the message with ANSI codes)
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "color_message", "taskName"}
_SECRET_NAME = re.compile(r"(?i)(authori[sz]ation|token|secret|password|passphrase|cookie|api_?key|"
                          r"(^|_)(pin|otp|sad|totp)(_|$))")
_SECRET_TEXT = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"\bkyso_[A-Za-z0-9_-]{16,}"), "kyso_[redacted]"),
    (re.compile(r"(?i)\b(pin|otp|sad|password|secret|token)(\"?\s*[:=]\s*\"?)[^\s\"',;&]+"), r"\1\2[redacted]"),
]
REDACTED = "[redacted]"


def redact_text(text: str) -> str:
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    """Adds ``request_id`` to every record and masks secrets in its message and extra fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = str(record.msg)
        redacted = redact_text(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        for key in [k for k in vars(record) if k not in _STANDARD]:
            if _SECRET_NAME.search(key):
                setattr(record, key, REDACTED)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, pid, then the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
            "pid": record.process,  # which worker, with --workers N
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def log_config(fmt: str, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.dictConfig`` for ``kyso serve`` (uvicorn applies it in every worker): everything,
    uvicorn's own loggers included, through one handler with the context filter; uvicorn's access log
    is off because ``RequestContext`` writes a better one."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "api.observability.ContextFilter"}},
        "formatters": {"json": {"()": "api.observability.JsonFormatter"}, "text": {"format": TEXT_FORMAT}},
        "handlers": {"default": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                 "formatter": fmt, "filters": ["context"]}},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {name: {"handlers": [], "propagate": True, "level": level}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
