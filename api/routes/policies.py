"""The signing policy in force: what it is, reload it now, and ask it a question (explain a decision).

Policy roles only (``PolicyReader``: operators, auditors, policy admins, read-only): a client token,
whatever its document-type scope, cannot read the whole policy here, so nothing needs filtering by scope.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from core.errors import InvalidInput
from policies.errors import PolicyInvalid

from ..container import Container
from ..deps import ContainerDep, PolicyAdmin, PolicyReader
from ..schemas import API_ERRORS

router = APIRouter(prefix="/api/v1/policies", tags=["policies"], responses=API_ERRORS)


def _status(container: Container) -> dict[str, Any]:
    status = container.signing.policies.status()
    policy = container.signing.policy
    return {"version": status.version, "file": status.path, "loaded_at": status.loaded_at.isoformat(),
            "last_error": status.last_error,
            "independent_reception_provinces": list(policy.jurisdiction.independent_reception_provinces),
            "document_types": {name: {"signers": [r.model_dump() for r in t.signers],
                                      "approval_chain": list(t.approval_chain), "level": t.level}
                               for name, t in policy.types.items()}}


@router.get("", summary="The signing policy in force (version, file, last reload error, rules)")
def show(container: ContainerDep, _: PolicyReader) -> dict[str, Any]:
    return _status(container)


@router.post("/reload",
             summary="Read the policy file now; a bad file is refused with its line and the old policy stays")
async def reload(container: ContainerDep, principal: PolicyAdmin) -> dict[str, Any]:
    try:
        policy = await run_in_threadpool(container.signing.policies.reload)
    except PolicyInvalid as exc:
        await run_in_threadpool(_audit, container, principal.actor, "policy:reload:refuse", exc.message)
        raise InvalidInput(f"the policy file was refused, the policy in force is unchanged: {exc.message}",
                           code="policy_invalid") from None
    await run_in_threadpool(_audit, container, principal.actor, "policy:reload:load", policy.version)
    return _status(container)


def _audit(container: Container, actor: str, action: str, detail: str) -> None:
    from core import audit
    from core.db import transaction

    with transaction(container.sessions) as session:
        audit.record(session, actor=actor, action=action, subject="signing-policy", detail=detail[:500])


@router.get("/decide", summary="Explain the decision for a credential, document type and commune")
async def explain(container: ContainerDep, _: PolicyReader, credential_id: Annotated[str, Query()],
                  document_type: Annotated[str, Query()], commune_code: Annotated[str, Query()],
                  step: Annotated[int, Query(ge=0, le=20)] = 0) -> dict[str, Any]:
    decision = await run_in_threadpool(container.signing.explain, credential_id, document_type, commune_code, step)
    return {"allowed": decision.allowed, "rule": decision.rule, "reason": decision.reason,
            "signer_rule": decision.signer_rule, "reception": decision.reception,
            "policy_version": container.signing.policy.version}
