"""REST v1: the audit log, read by auditors and CA operators: filtered pages, one entry, and a JSON-lines
export with the chain hashes that ``kyso audit verify --file`` re-checks offline."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from core import audit as audit_log, db
from core.errors import NotFound

from ..deps import Auditor, ContainerDep, SessionDep
from ..schemas import API_ERRORS

router = APIRouter(prefix="/api/v1", tags=["audit"], responses=API_ERRORS)
SEQ_MAX = 2**63 - 1  # the column is a 64-bit integer


class AuditEntryOut(BaseModel):
    seq: int = Field(description="Position in the chain, from 1, without gaps")
    at: str = Field(description="When, ISO 8601 in UTC: exactly the text the hash covers")
    actor: str = Field(description="Who: token:<name> (API or four-eyes CLI), cli:<os user>, or a system actor")
    action: str = Field(description="What, as room:object:verb (pki:cert:revoke)")
    subject: str = Field(description="On what: the object's id (serial, credential, document, CA)")
    details: str = Field(description="The details exactly as hashed (JSON text)")
    details_parsed: Any = Field(description="The same details, parsed")
    prev_hash: str = Field(description="The previous entry's hash (64 zeros for seq 1)")
    hash: str = Field(description="SHA-256 over [seq, at, actor, action, subject, details, prev_hash] as compact JSON")


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_after: int | None = Field(description="Pass as ?after= for the next page; null when this is the last")


def _filter(since: dt.datetime | None, until: dt.datetime | None, actor: str | None, action: str | None,
            subject: str | None, after: int = 0, limit: int | None = None) -> audit_log.AuditFilter:
    def utc(value: dt.datetime | None) -> dt.datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)

    return audit_log.AuditFilter(since=utc(since), until=utc(until), actor=actor, action=action, subject=subject,
                                 after_seq=after, limit=limit)


Since = Annotated[dt.datetime | None, Query(description="From this time (ISO 8601; without a zone, UTC)")]
Until = Annotated[dt.datetime | None, Query(description="Before this time (ISO 8601; without a zone, UTC)")]
ActorQ = Annotated[str | None, Query(max_length=200, description="Who, exactly or a prefix ending in * (token:*)")]
ActionQ = Annotated[str | None, Query(max_length=100, description="What, exactly or a prefix ending in * (pki:*)")]
SubjectQ = Annotated[str | None, Query(max_length=300, description="On what object, exactly or a prefix ending in *")]


@router.get("/audit", response_model=AuditPage,
            summary="List audit entries, oldest first (auditor or ca-operator); filter by time, actor, action, "
                    "subject; page with after")
def list_audit(session: SessionDep, _: Auditor, since: Since = None, until: Until = None, actor: ActorQ = None,
               action: ActionQ = None, subject: SubjectQ = None,
               after: Annotated[int, Query(ge=0, le=SEQ_MAX, description="Entries after this seq")] = 0,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> AuditPage:
    rows = audit_log.entries(session, _filter(since, until, actor, action, subject, after, limit))
    items = [AuditEntryOut.model_validate(audit_log.as_dict(row)) for row in rows]
    return AuditPage(items=items, next_after=items[-1].seq if len(items) == limit else None)


@router.get("/audit/export", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}},
                             "description": "One entry a line (UTF-8), as GET /api/v1/audit/{seq}"}},
            summary="Export audit entries as JSON lines with their chain hashes (auditor or ca-operator), "
                    "to re-verify offline with `kyso audit verify --file`")
def export_audit(container: ContainerDep, _: Auditor, since: Since = None, until: Until = None,
                 actor: ActorQ = None, action: ActionQ = None, subject: SubjectQ = None) -> StreamingResponse:
    where = _filter(since, until, actor, action, subject)

    def lines() -> Iterator[bytes]:
        with db.transaction(container.sessions, read_only=True) as session:  # no write lock while it streams
            for line in audit_log.export_lines(session, where):
                yield line.encode("utf-8")

    return StreamingResponse(lines(), media_type="application/x-ndjson; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="kyso-audit.jsonl"'})


@router.get("/audit/{seq}", response_model=AuditEntryOut, summary="One audit entry (auditor or ca-operator)")
def show_audit(seq: Annotated[int, Path(ge=1, le=SEQ_MAX)], session: SessionDep, _: Auditor) -> AuditEntryOut:
    row = audit_log.entry(session, seq)
    if row is None:
        raise NotFound(f"no audit entry {seq}", code="audit_entry_not_found")
    return AuditEntryOut.model_validate(audit_log.as_dict(row))
