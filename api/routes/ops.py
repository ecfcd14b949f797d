"""Health, readiness, metrics, the audit log check and the administrative-unit catalogue."""
from __future__ import annotations

import datetime as dt
import hashlib
import socket
from typing import Annotated
from urllib.parse import urlsplit

from asn1crypto import tsp
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import text

from core import audit, clock, metrics
from core.db import transaction
from core.errors import KysoError
from policies import units
from signing.create.timestamping import TimeStampResp

from ..container import Container
from ..deps import Auditor, ContainerDep, Reader, SessionDep, bearer, current_principal, require
from ..schemas import API_ERRORS, AuditVerifyOut, UnitOut
from ..tokens import Role

router = APIRouter(responses=API_ERRORS)


@router.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"], summary="Readiness: database, keystores and the time-stamping authority")
def readyz(container: ContainerDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with transaction(container.sessions, read_only=True) as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        checks["database"] = f"unavailable: {type(exc).__name__}"
    for name, state in container.pki.keystores.health().items():
        checks[f"keystore:{name}"] = state
    checks["tsa"] = _tsa_state(container)
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


# a fixed imprint: the probe's token is thrown away, it only proves the TSA can sign now
_PROBE = tsp.TimeStampReq({"version": "v1", "message_imprint": {
    "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": hashlib.sha256(b"kyso readiness").digest()},
    "cert_req": False}).dump()


def _tsa_state(container: Container) -> str:
    """An external TSA (``KYSO_TSA_URL``) must accept a TCP connection within 2 s; kyso's own TSA must
    grant a real token (current certificate in the database, key usable in its keystore)."""
    settings = container.settings
    if settings.tsa_url:
        url = urlsplit(settings.tsa_url)
        try:
            port = url.port or (443 if url.scheme == "https" else 80)
            socket.create_connection((url.hostname or "", port), timeout=min(2.0, settings.tsa_timeout_seconds)).close()
            return "ok"
        except (OSError, ValueError) as exc:
            return f"unreachable: {url.hostname}: {type(exc).__name__}"
    try:
        status = TimeStampResp.load(container.signing.tsa.respond(_PROBE))["status"]
    except KysoError as exc:
        return f"unavailable: {exc.message}"
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        return f"unavailable: {type(exc).__name__}"
    return "ok" if status["status"].native == "granted" else f"refusing: {status['status_string'].native}"


_metrics_role = require(Role.ca_operator, Role.auditor, Role.read_only)


def _metrics_reader(request: Request, container: ContainerDep,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """An operator, auditor or read-only token (or mTLS client certificate), unless KYSO_METRICS_PUBLIC."""
    if not container.settings.metrics_public:
        _metrics_role(request, container, current_principal(request, container, credentials))


@router.get("/metrics", tags=["operations"], response_class=Response,
            summary="Prometheus metrics (ca-operator, auditor or read-only token unless KYSO_METRICS_PUBLIC=true)",
            responses={200: {"content": {"text/plain": {}}}})
def prometheus_metrics(_: Annotated[None, Depends(_metrics_reader)]) -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


@router.get("/api/v1/audit/verify", response_model=AuditVerifyOut, tags=["audit"],
            summary="Check the hash chain of the audit log")
def audit_verify(session: SessionDep, _: Auditor) -> AuditVerifyOut:
    report = audit.verify(session)
    return AuditVerifyOut(ok=report.ok, entries=report.entries, first_broken_seq=report.first_broken_seq,
                          problem=report.problem)


# the administrative-unit catalogue is public data: every reader, scoped or not, sees all of it
@router.get("/api/v1/units", response_model=list[UnitOut], tags=["administrative units"],
            summary="Search administrative units valid on a date")
def list_units(
    session: SessionDep, _: Reader,
    province: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    on: dt.date | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[UnitOut]:
    rows = units.search(session, on or clock.now().date(), province=province, text=q, limit=limit)
    return [UnitOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/api/v1/units/{code}", response_model=UnitOut, tags=["administrative units"],
            summary="One administrative unit as it was on a date")
def show_unit(code: str, session: SessionDep, _: Reader, on: dt.date | None = None) -> UnitOut:
    return UnitOut.model_validate(units.lookup(session, code, on or clock.now().date()), from_attributes=True)
