"""FastAPI dependencies: the container, a database session, and the authenticated principal."""
from __future__ import annotations

from typing import Annotated, Callable, Iterator

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from core.db import transaction
from core.errors import PermissionDenied, Unauthenticated

from . import tokens
from .container import Container
from .tokens import Principal, Role

_bearer = HTTPBearer(auto_error=False, description="A token from `kyso token create --name N --role ROLE`")


async def get_container(request: Request) -> Container:  # async: no threadpool hop on hot paths
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(get_container)]


def get_session(container: ContainerDep) -> Iterator[Session]:
    with transaction(container.sessions) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def current_principal(
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("this endpoint needs 'Authorization: Bearer <token>'; create one with `kyso token create`")
    with transaction(container.sessions) as session:
        return tokens.authenticate(session, credentials.credentials)


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency that admits only the given roles (checked on every request)."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise PermissionDenied(f"role {principal.role.value!r} may not do this; it needs one of: {allowed}")
        return principal

    return check


READERS = (Role.ca_operator, Role.auditor, Role.client)
Reader = Annotated[Principal, Depends(require(*READERS))]
Operator = Annotated[Principal, Depends(require(Role.ca_operator))]
Auditor = Annotated[Principal, Depends(require(Role.ca_operator, Role.auditor))]
