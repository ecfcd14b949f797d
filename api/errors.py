"""The one place where kyso's domain errors become HTTP responses.

Every error body has the same shape: ``{"error": {"code", "message", "details"}}``, where
``message`` says what is wrong and what to do, in words a person can act on.
"""
from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.db import is_unreachable, unavailable
from core.errors import (
    ConfigurationError,
    Conflict,
    Internal,
    InvalidInput,
    KysoError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger("kyso.api")

STATUS_BY_ERROR: list[tuple[type[KysoError], int]] = [
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (Unavailable, 503),
    (ConfigurationError, 503),
    (Internal, 500),
]


class RequestTooLarge(InvalidInput):
    code = "request_too_large"


class UnsupportedMediaType(InvalidInput):
    code = "unsupported_media_type"


def status_for(exc: KysoError) -> int:
    if exc.code == "rate_limited":
        return 429
    if isinstance(exc, RequestTooLarge) or exc.code == "pdf_too_large":
        return 413
    if isinstance(exc, UnsupportedMediaType):
        return 415
    if exc.code == "witness_request_malformed":  # C2SP tlog-witness: 400, where kyso's own API says 422
        return 400
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 400


def retry_after(exc: KysoError) -> str:
    """Retry-After for a 429 or 503: the error's own estimate when it has one (rate limit, busy verifier),
    else 5 seconds (a database or keystore coming back)."""
    return str(max(1, math.ceil(getattr(exc, "retry_after", 5))))


def witness_error(exc: KysoError) -> Response:
    """A witness protocol error (C2SP tlog-witness) in the protocol's shape: plain text, and for 409 only the
    witness's latest cosigned size as ``text/x.tlog.size`` so a log can retry from it."""
    status = status_for(exc)
    if status == 409 and isinstance(exc.details.get("size"), int):
        return Response(f"{exc.details['size']}\n", status_code=409, headers={"Content-Type": "text/x.tlog.size"})
    headers = {"Retry-After": retry_after(exc)} if status in (429, 503) else None
    return Response(f"{exc.code}: {exc.message}\n", status_code=status, headers=headers,
                    media_type="text/plain; charset=utf-8")


def error_body(code: str, message: str, details: object = None) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install(app: FastAPI) -> None:
    @app.exception_handler(KysoError)
    async def _kyso(_: Request, exc: KysoError) -> JSONResponse:
        status = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status in (429, 503):
            headers = {"Retry-After": retry_after(exc)}
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "problem": err["msg"]}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{p['field'] or 'body'}: {p['problem']}" for p in problems[:5])
        return JSONResponse(error_body("invalid_request", f"the request is not valid: {summary}",
                                       {"problems": problems}), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "no such endpoint; see /docs", 405: "this method is not allowed here; see /docs"}
        return JSONResponse(error_body(f"http_{exc.status_code}", messages.get(exc.status_code, str(exc.detail))),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        """A database error that escaped ``core.db.transaction`` (a raw session, a streaming body): an
        unreachable database is a 503 to retry, never a 500; any other database error stays a 500."""
        if not is_unreachable(exc):
            return await _unexpected(request, exc)
        log.warning("database unreachable on %s %s: %s", request.method, request.url.path,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return await _kyso(request, unavailable())

    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(PoolTimeout, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error",
                                       "kyso hit an unexpected error; it was logged, nothing was changed"),
                            status_code=500)
