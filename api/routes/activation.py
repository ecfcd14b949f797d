"""REST v1: a credential's signature activation (PIN + authenticator app), as operators see it.

An operator never types, sees or receives the specialist's PIN or authenticator secret. To enrol a
specialist, re-enrol her (lost phone) or reset a forgotten PIN, the operator asks for a one-time
**enrolment code** and hands it to her in person; she redeems it on her own page (``/me/enrol``),
chooses her PIN and adds the key to her authenticator app there. Until she does, her current PIN
and app keep working. The operator also gives her a short sign-in name (``PUT …/username``; she may
sign in with her CCCD number as well) and lifts a hard lock (``/unlock``).

Every route follows the reader's commune scope: another commune's credential answers 404, like an
unknown id.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from core.db import transaction
from pki.store import get_credential
from signing.activation import accounts, enrolment, factors

from ..container import Container
from ..deps import Access, ContainerDep, OperatorAccess, ReaderAccess
from ..schemas import API_ERRORS

router = APIRouter(prefix="/api/v1/credentials/{credential_id}/activation", tags=["activation"], responses=API_ERRORS)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrolIn(_In):
    """Nothing to send: the operator never chooses, types or receives the specialist's PIN or secret."""


class EnrolmentCodeOut(BaseModel):
    credential_id: str
    code: str = Field(description="One-time enrolment code (4 groups of 4), to hand to the specialist in person; "
                                  "it never contains her PIN or authenticator secret")
    purpose: str = Field(description="enrol (no factors yet) or reenrol (lost phone, forgotten PIN)")
    expires_at: dt.datetime = Field(description="After this the code no longer works; a new one voids it earlier")
    enrol_url: str = Field(description="Where she redeems it: her own page, /me/enrol")
    instructions: str = Field(description="What to tell her")


class UsernameIn(_In):
    username: str = Field(min_length=3, max_length=32, pattern=r"^[A-Za-z][A-Za-z0-9._-]{2,31}$",
                          description="Short sign-in name for /me (stored in lower case, unique)")


class UsernameOut(BaseModel):
    credential_id: str
    username: str


def _scoped(container: Container, access: Access, credential_id: str) -> None:
    """404 for an unknown credential and, alike, for one of a commune outside the reader's scope."""
    with transaction(container.sessions) as session:
        credential = get_credential(session, credential_id)
        commune = credential.certificate.commune_code if credential.certificate else None
    access.check_credential(credential_id, commune)


@router.get("", summary="Activation state: none, active or locked; failed attempts (within the reader's scope)")
def show(credential_id: str, container: ContainerDep, access: ReaderAccess) -> dict[str, Any]:
    _scoped(container, access, credential_id)
    return factors.status(container.pki, credential_id).as_dict()


@router.post("", response_model=EnrolmentCodeOut, status_code=201,
             summary="Issue a one-time enrolment code (enrol, re-enrol or PIN reset); never returns a secret")
async def enroll(credential_id: str, container: ContainerDep, access: OperatorAccess,
                 body: EnrolIn | None = None) -> EnrolmentCodeOut:
    await run_in_threadpool(_scoped, container, access, credential_id)
    issued = await run_in_threadpool(enrolment.issue, container.pki, credential_id, access.principal.actor)
    return EnrolmentCodeOut(credential_id=issued.credential_id, code=issued.code, purpose=issued.purpose,
                            expires_at=issued.expires_at, enrol_url=f"{container.settings.base_url}/me/enrol",
                            instructions=issued.instructions)


@router.put("/username", response_model=UsernameOut, summary="Set the specialist's sign-in name for /me")
async def set_username(credential_id: str, body: UsernameIn, container: ContainerDep,
                       access: OperatorAccess) -> UsernameOut:
    await run_in_threadpool(_scoped, container, access, credential_id)
    name = await run_in_threadpool(accounts.set_username, container.pki, credential_id, body.username,
                                   access.principal.actor)
    return UsernameOut(credential_id=credential_id, username=name)


@router.post("/unlock", summary="Lift the hard lock after many failed attempts (operator)")
async def unlock(credential_id: str, container: ContainerDep, access: OperatorAccess) -> dict[str, Any]:
    await run_in_threadpool(_scoped, container, access, credential_id)
    await run_in_threadpool(factors.unlock, container.pki, credential_id, access.principal.actor)
    return factors.status(container.pki, credential_id).as_dict()
