"""REST v1: the API tokens, as operators and auditors see them (never their secrets)."""
from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from pydantic import BaseModel, Field

from .. import tokens
from ..deps import Auditor, SessionDep
from ..schemas import API_ERRORS

router = APIRouter(prefix="/api/v1", tags=["tokens"], responses=API_ERRORS)


class ScopeOut(BaseModel):
    communes: list[str] = Field(description="5-digit commune and 2-digit province codes; ['*'] = every commune")
    operations: list[str] = Field(description="sign, read, withdraw, supersede")
    document_types: list[str] = Field(description="Document type names; ['*'] = every type")


class TokenOut(BaseModel):
    name: str
    role: str
    state: str = Field(description="active, rotating (the previous secret still works), expired or revoked")
    scope: ScopeOut
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    expired: bool
    last_used_at: dt.datetime | None = Field(description="Coarse: updated at most once a minute")
    revoked: bool
    revoked_at: dt.datetime | None
    rotated_at: dt.datetime | None
    previous_secret_valid_until: dt.datetime | None


@router.get("/tokens", response_model=list[TokenOut],
            summary="List API tokens: role, scope, expiry, last use, rotation")
def list_tokens(session: SessionDep, _: Auditor) -> list[TokenOut]:
    return [TokenOut.model_validate(view.as_dict()) for view in tokens.views(session)]
