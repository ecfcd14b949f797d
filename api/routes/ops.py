"""Health, readiness, the audit log check and the administrative-unit catalogue."""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import text

from core import audit, clock
from core.db import transaction
from policies import units

from ..deps import Auditor, ContainerDep, Reader, SessionDep
from ..schemas import AuditVerifyOut, UnitOut

router = APIRouter()


@router.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"], summary="Readiness: database and keystores")
def readyz(container: ContainerDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with transaction(container.sessions) as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        checks["database"] = f"unavailable: {type(exc).__name__}"
    for name, state in container.pki.keystores.health().items():
        checks[f"keystore:{name}"] = state
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503)


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
