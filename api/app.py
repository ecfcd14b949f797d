"""The FastAPI application: routers, error mapping, body limits, scheduled CRL/OCSP refresh."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from core import metrics

from . import errors
from .container import Container, build
from .middleware import BodyLimit, RoleFilter
from .observability import RequestContext
from .routes import (
    activation,
    approvals,
    audit,
    certificates,
    citizen,
    csc,
    log as log_routes,
    ops,
    policies,
    protocol,
    sign_requests,
    signing,
    specialist,
    tokens as token_routes,
    verify,
    witness,
)
from .scheduler import republish_loop, sequence_loop, upgrade_loop
from .verify_gate import VerifyGate

log = logging.getLogger("kyso")

DESCRIPTION = """
kyso issues and revokes the certificates of commune specialists, publishes CRLs, answers OCSP,
and signs PDF documents (PAdES B-B to B-LTA) for the civil-registration and dossier software
of communes, keeping a registry of everything it signed.

Every `/api/v1` route needs `Authorization: Bearer <token>` (create one with
`kyso token create --name NAME --role ca-operator|policy-admin|auditor|read-only|client`; client tokens
can be scoped to communes, operations and document types), or a TLS client certificate kyso issued
for a client token (`kyso token cert`), forwarded by the TLS-terminating proxy. `POST /api/v1/verify`
is open to anyone.

A specialist's key signs only with the specialist's authorization: `POST /api/v1/sign` with a
specialist's credential takes a SAD from `POST /csc/v2/credentials/authorize` (PIN + one-time code
over the SHA-256 of the exact PDF), or the software submits a signing request
(`POST /api/v1/sign/requests`) that the specialist approves on their page `/me`.

Errors always have the shape
`{"error": {"code", "message", "details"}}`.

Revocation reasons follow RFC 5280; the legal grounds map to them: officer moved or retired →
affiliationChanged; unit merged or dissolved → cessationOfOperation; key replaced → superseded;
key lost or exposed → keyCompromise; suspension → certificateHold (lifted with `release`).
"""


DOCS_ASSETS = "/docs-assets"


def _offline_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc (ReDoc) from files installed with kyso, never a CDN: a province's server
    room may have no internet. The JavaScript and CSS are Swagger UI's (Apache-2.0) and ReDoc's (MIT) standalone
    builds, shipped by the fastapi-offline package (MIT); Google Fonts and Swagger's online validator are off."""
    import importlib.resources

    assets = importlib.resources.files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}", title=f"{app.title} - Swagger UI", oauth2_redirect_url=redirect_url,
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None})

    @app.get(redirect_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}{openapi_url}", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png", with_google_fonts=False)


def create_app(container: Container | None = None, *, scheduler: bool = True) -> FastAPI:
    container = (container or build()).warm()
    role = container.settings.serve_role

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        run = scheduler and container.settings.run_scheduler
        tasks = [asyncio.create_task(republish_loop(container))] if run else []
        if run and role != "ocsp":  # LT/LTA upgrades sign: not on the OCSP lane
            tasks.append(asyncio.create_task(upgrade_loop(container)))
            tasks.append(asyncio.create_task(sequence_loop(container)))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        container.witnesses.close()
        metrics.process_exited()

    app = FastAPI(title="kyso", version="0.1.0", description=DESCRIPTION, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None if role == "ocsp" else "/openapi.json")
    if role != "ocsp":
        _offline_docs(app)
    app.state.container = container
    app.state.verify_gate = VerifyGate.from_settings(container.settings)  # bounds public verifications
    errors.install(app)
    app.include_router(ops.router)
    if role != "api":  # an API node leaves the protocol lane (all of protocol.py) to the OCSP nodes
        app.include_router(protocol.router)
    if role == "ocsp":  # the lane and the probes; RoleFilter answers 404 for the rest of ops.router
        return _finish(app, container)
    app.include_router(certificates.router)
    app.include_router(signing.router)
    app.include_router(sign_requests.router)
    app.include_router(specialist.router)
    app.include_router(token_routes.router)
    app.include_router(verify.router)
    app.include_router(policies.router)
    app.include_router(approvals.router)
    app.include_router(citizen.router)
    app.include_router(csc.router)
    app.include_router(activation.router)
    app.include_router(audit.router)
    app.include_router(log_routes.router)
    app.include_router(witness.router)
    return _finish(app, container)


def _finish(app: FastAPI, container: Container) -> FastAPI:
    settings = container.settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, per_path={
        "/api/v1/sign/batch": settings.max_pdf_bytes * 2 + 1_048_576,
        "/api/v1/sign": settings.max_pdf_bytes + 1_048_576,
        "/api/v1/sign/requests": settings.max_pdf_bytes * 2 + 1_048_576,  # a batch waiting for the specialist
        "/api/v1/verify": settings.max_pdf_bytes + 1_048_576,
        # JSON with base64 PDFs: the same total as a multipart batch, in base64
        "/csc/v2/signatures/signDoc": (settings.max_pdf_bytes * 2 + 2) // 3 * 4 + 1_048_576,
        "/v/*": settings.max_pdf_bytes + 1_048_576,  # the citizen page's upload form
    })
    # outermost (added last): refusals by BodyLimit get a request id, a log line and a count too
    if settings.serve_role != "all":
        app.add_middleware(RoleFilter, role=settings.serve_role)
    app.add_middleware(RequestContext, access_log_enabled=settings.access_log)
    return app
