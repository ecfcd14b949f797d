"""Four eyes on destructive operations: ask (one operator), then approve or reject (another one)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from starlette.concurrency import run_in_threadpool

from pki import approvals

from ..deps import Auditor, ContainerDep, Operator, SessionDep
from ..schemas import API_ERRORS

router = APIRouter(prefix="/api/v1", tags=["approvals"], responses=API_ERRORS)
Reason = Annotated[str, Body(embed=True, min_length=1, max_length=1000, description="Why (shown to the approver)")]


@router.post("/credentials/{credential_id}/destroy-key", status_code=202,
             summary="Ask to destroy a credential's private key (needs a second operator's approval)")
async def destroy_key(credential_id: str, reason: Reason, container: ContainerDep,
                      principal: Operator) -> dict[str, Any]:
    row = await run_in_threadpool(approvals.request, container.pki, "destroy-key", credential_id, reason,
                                  principal.actor)
    return approvals.as_dict(row)


@router.get("/approvals", summary="Approval requests (pending unless ?all=true)")
def list_approvals(session: SessionDep, _: Auditor, all: bool = False) -> list[dict[str, Any]]:  # noqa: A002
    return [approvals.as_dict(row) for row in approvals.listing(session, pending_only=not all)]


@router.post("/approvals/{approval_id}/approve", summary="Approve and run (not by the operator who asked)")
async def approve(approval_id: str, container: ContainerDep, principal: Operator) -> dict[str, Any]:
    return await run_in_threadpool(approvals.approve, container.pki, approval_id, principal.actor)


@router.post("/approvals/{approval_id}/reject", summary="Reject a pending request")
async def reject(approval_id: str, reason: Reason, container: ContainerDep, principal: Operator) -> dict[str, Any]:
    await run_in_threadpool(approvals.reject, container.pki, approval_id, principal.actor, reason)
    return {"approval_id": approval_id, "status": "rejected"}
