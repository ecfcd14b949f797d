"""FastAPI dependencies: the container, a database session, the authenticated principal, and what it may do.

Authorization happens here, in one place: the role (``require``), then for client tokens the scope
(``authorize`` → ``Access``). Every refusal is written to the audit log as ``api:authz:deny`` in a
transaction of its own (the request's own work is rolled back); allowed requests write nothing.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, NoReturn

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from core import audit
from core.db import transaction
from core.errors import KysoError, PermissionDenied, Unauthenticated
from pki.errors import UnknownCertificate, UnknownCredential
from signing.errors import UnknownDocument

from . import mtls, tokens
from .container import Container
from .tokens import Operation, Principal, Role

bearer = HTTPBearer(auto_error=False, description="A token from `kyso token create --name N --role ROLE`")


async def get_container(request: Request) -> Container:  # async: no threadpool hop on hot paths
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def get_session(container: ContainerDep) -> Iterator[Session]:
    """The request's reading session. Read-only: it stays open for the whole request while the domain
    functions the route calls write in units of their own (and refusals are audited in theirs); on SQLite
    a writing session here would hold the database's write lock and make those wait for it."""
    with transaction(container.sessions, read_only=True) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def current_principal(
    request: Request,
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        # no bearer token: a client certificate forwarded by a trusted TLS proxy, if any (a bearer always wins)
        if (principal := mtls.authenticate_request(container, request)) is not None:
            request.state.actor = principal.actor  # the access log names who called
            return principal
        raise Unauthenticated("this endpoint needs 'Authorization: Bearer <token>'; "
                              "create one with `kyso token create`")
    # read-only: on SQLite a writing unit would take the database's write lock on every request
    with transaction(container.sessions, read_only=True) as session:
        principal, used_at = tokens.identify(session, credentials.credentials)
    if used_at is not None:  # at most once a minute per token
        with transaction(container.sessions) as session:
            tokens.record_use(session, principal.name, used_at)
    request.state.actor = principal.actor  # the access log names who called
    return principal


def _route(request: Request) -> str:
    return f"{request.method} {request.url.path}"


def record_denial(container: Container, principal: Principal, route: str, error: KysoError, *,
                  reason: str | None = None, **details: object) -> None:
    """Audit one refusal (``reason``: the true one when the caller is told something vaguer), committed
    on its own so it survives the failed request."""
    with transaction(container.sessions) as session:
        audit.record(session, actor=principal.actor, action="api:authz:deny", subject=principal.name, route=route,
                     role=principal.role.value, reason=reason or error.message, answered=error.code,
                     **error.details, **details)


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency that admits only the given roles (checked on every request)."""

    def check(request: Request, container: ContainerDep,
              principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            error = PermissionDenied(f"role {principal.role.value!r} may not do this; it needs one of: {allowed}")
            record_denial(container, principal, _route(request), error)
            raise error
        return principal

    return check


def _hidden(document_id: str) -> UnknownDocument:
    # word for word what signing.registry.lifecycle says of an id that does not exist: a scoped client must not
    # learn that another commune's document id is real (tests/api/test_token_scopes.py compares them)
    return UnknownDocument(f"no signed document with id {document_id!r}; check the id printed under the QR code")


def _hidden_certificate(serial: str) -> UnknownCertificate:
    # word for word what pki.store.get_certificate says of a serial that does not exist
    return UnknownCertificate(f"no certificate with serial {serial}")


@dataclass(frozen=True)
class Access:
    """An authorized request: the principal (role and operation already checked) and the scope checks
    that need the request's data. Each check raises, audited, or returns quietly."""

    principal: Principal
    container: Container
    route: str

    @property
    def scope(self) -> tokens.Scope:
        return self.principal.scope

    def _refuse(self, error: KysoError, *, reason: str | None = None, **details: object) -> NoReturn:
        record_denial(self.container, self.principal, self.route, error, reason=reason, **details)
        raise error

    def check_sign(self, commune_code: str, document_type: str, **details: object) -> None:
        """Signing ``document_type`` for ``commune_code`` is within scope, or 403 naming the scope that refused."""
        if self.scope.unrestricted:
            return
        try:
            self.scope.check_document_type(document_type)
            if self.scope.units is not None:
                with transaction(self.container.sessions) as session:
                    covered = tokens.covered_communes(session, self.scope)
                self.scope.check_commune(commune_code, covered)
        except tokens.OutOfScope as exc:
            self._refuse(exc, reason=None, **details)

    def visible(self, session: Session) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        """The communes and document types whose documents this principal sees (``None``: all)."""
        return tokens.covered_communes(session, self.scope), self.scope.document_types

    def check_document(self, session: Session, document_id: str, commune_code: str, document_type: str) -> None:
        """A document outside the scope is answered exactly like one that does not exist (404)."""
        if self.scope.unrestricted:
            return
        communes, types = self.visible(session)
        if (communes is None or commune_code in communes) and (types is None or document_type in types):
            return
        self._refuse(_hidden(document_id), document=document_id,
                     reason=f"document {document_id} (commune {commune_code}, type {document_type}) is outside "
                            f"the token's scope {self.scope.as_dict()}")

    def visible_communes(self, session: Session) -> frozenset[str] | None:
        """The communes whose certificates this principal sees (``None``: all); certificates of no
        commune (the CAs' OCSP responder, TSA and QR-seal certificates) are public trust material."""
        return tokens.covered_communes(session, self.scope)

    def check_certificate(self, session: Session, serial: str, commune_code: str | None) -> None:
        """Another commune's certificate is answered exactly like an unknown serial (404): a scoped client
        must not learn which officials other communes have."""
        if commune_code is None:
            return
        communes = self.visible_communes(session)
        if communes is None or commune_code in communes:
            return
        self._refuse(_hidden_certificate(serial), certificate=serial,
                     reason=f"certificate {serial} (commune {commune_code}) is outside the token's scope "
                            f"{self.scope.as_dict()}")


    def check_credential(self, credential_id: str, commune_code: str | None) -> None:
        """Another commune's credential (its activation state, its details) is answered exactly like an
        unknown credential id (404), as ``check_certificate`` does for certificates. Call it outside any
        transaction: the refusal writes the audit log in one of its own."""
        if commune_code is None:
            return
        with transaction(self.container.sessions) as session:
            communes = self.visible_communes(session)
        if communes is None or commune_code in communes:
            return
        self._refuse(UnknownCredential(f"no signing credential {credential_id!r}"), credential=credential_id,
                     reason=f"credential {credential_id} (commune {commune_code}) is outside the token's scope "
                            f"{self.scope.as_dict()}")


def authorize(operation: Operation, *roles: Role) -> Callable[..., Access]:
    """A dependency: one of ``roles``, and for scoped tokens ``operation`` in the scope (403 otherwise)."""
    role_check = require(*roles)

    # a default, not Annotated: with postponed annotations a closure's local cannot be resolved by name
    def check(request: Request, container: ContainerDep, principal: Principal = Depends(role_check)) -> Access:  # noqa: B008
        access = Access(principal, container, _route(request))
        try:
            principal.scope.check_operation(operation)
        except tokens.OutOfScope as exc:
            access._refuse(exc)  # noqa: SLF001 - this module's own Access, refusing for its own check
        return access

    return check


READERS = (Role.ca_operator, Role.auditor, Role.read_only, Role.policy_admin, Role.client)
Reader = Annotated[Principal, Depends(require(*READERS))]
Operator = Annotated[Principal, Depends(require(Role.ca_operator))]
Auditor = Annotated[Principal, Depends(require(Role.ca_operator, Role.auditor))]
PolicyAdmin = Annotated[Principal, Depends(require(Role.policy_admin))]
PolicyReader = Annotated[Principal, Depends(require(Role.ca_operator, Role.auditor, Role.policy_admin, Role.read_only))]
SIGNERS = (Role.client, Role.ca_operator)
CanSign = Annotated[Access, Depends(authorize(Operation.sign, *SIGNERS))]
CanRead = Annotated[Access, Depends(authorize(Operation.read, *READERS))]
CanWithdraw = Annotated[Access, Depends(authorize(Operation.withdraw, *SIGNERS))]
CanSupersede = Annotated[Access, Depends(authorize(Operation.supersede, *SIGNERS))]


def access_for(*roles: Role) -> Callable[..., Access]:
    """A dependency: one of ``roles`` (no operation check), as an ``Access`` for the scope checks on data
    that is not a document (certificates, document types), which every reader of its scope may see."""
    role_check = require(*roles)

    # a default, not Annotated, as in authorize: a closure's local cannot be resolved by name
    def build(request: Request, container: ContainerDep, principal: Principal = Depends(role_check)) -> Access:  # noqa: B008
        return Access(principal, container, _route(request))

    return build


ReaderAccess = Annotated[Access, Depends(access_for(*READERS))]
OperatorAccess = Annotated[Access, Depends(access_for(Role.ca_operator))]
