"""REST v1: a credential's signature activation (PIN + authenticator app), as operators and specialists use it.

An operator enrols a credential at the desk (the specialist types the PIN and scans the QR code,
then confirms with a first code), and unlocks it after five failed attempts. Changing the PIN
takes the old PIN and happens at the same desk (the specialist types both; the operator's token
only carries the request).
"""
from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from signing.activation import factors

from ..deps import ContainerDep, Operator, Reader
from ..schemas import API_ERRORS

router = APIRouter(prefix="/api/v1/credentials/{credential_id}/activation", tags=["activation"], responses=API_ERRORS)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrollIn(_In):
    pin: str = Field(min_length=6, max_length=12, description="6-12 digits, chosen by the specialist")
    replace: bool = Field(default=False, description="Replace a confirmed enrolment (lost phone, forgotten PIN)")


class EnrollOut(BaseModel):
    otpauth_uri: str = Field(description="Shown once: scan it with any authenticator app (RFC 6238 TOTP)")
    qr_png_base64: str = Field(description="The same URI as a QR code, PNG in base64")


class ConfirmIn(_In):
    code: str = Field(min_length=6, max_length=6, description="The code the authenticator app shows now")


class PinIn(_In):
    old_pin: str = Field(min_length=1, max_length=12)
    new_pin: str = Field(min_length=6, max_length=12)


@router.get("", summary="Activation state: none, pending (not confirmed), active or locked; failed attempts")
def show(credential_id: str, container: ContainerDep, _: Reader) -> dict[str, Any]:
    return factors.status(container.pki, credential_id).as_dict()


@router.post("", response_model=EnrollOut, summary="Enrol a PIN and a TOTP secret (returned once, as URI and QR)")
async def enroll(credential_id: str, body: EnrollIn, container: ContainerDep, principal: Operator) -> EnrollOut:
    start = await run_in_threadpool(factors.enroll, container.pki, credential_id, body.pin, principal.actor,
                                    replace=body.replace)
    return EnrollOut(otpauth_uri=start.uri, qr_png_base64=base64.b64encode(start.png).decode())


@router.post("/confirm", summary="Confirm the enrolment with the first code from the authenticator app")
async def confirm(credential_id: str, body: ConfirmIn, container: ContainerDep, principal: Operator) -> dict[str, Any]:
    await run_in_threadpool(factors.confirm, container.pki, credential_id, body.code, actor=principal.actor)
    return factors.status(container.pki, credential_id).as_dict()


@router.post("/pin", summary="Change the PIN (the old one is required; a wrong one counts toward the lockout)")
async def change_pin(credential_id: str, body: PinIn, container: ContainerDep, principal: Operator) -> dict[str, Any]:
    await run_in_threadpool(factors.change_pin, container.pki, credential_id, body.old_pin, body.new_pin,
                            actor=principal.actor)
    return factors.status(container.pki, credential_id).as_dict()


@router.post("/unlock", summary="Lift the lockout after five failed attempts (operator)")
async def unlock(credential_id: str, container: ContainerDep, principal: Operator) -> dict[str, Any]:
    await run_in_threadpool(factors.unlock, container.pki, credential_id, principal.actor)
    return factors.status(container.pki, credential_id).as_dict()
