"""Bearer tokens for ``/api/v1``: random, shown once, stored only as a SHA-256 hash.

A ``client`` token (civil-registration or dossier software) carries a scope: the communes it acts
for (5-digit commune codes, 2-digit province codes meaning every commune of the province), the
operations it may perform and the document types it may touch. A stored ``NULL`` means "all" in
that dimension, so tokens created before scopes existed keep the full scope of their role.
``ca-operator`` and ``auditor`` tokens are never scoped.

Any token may expire (``expires_at``) and be rotated: a new secret for the same name and scope,
the previous one still accepted until ``previous_valid_until`` (a grace period for deployment).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core import audit, clock
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from policies.documents import default_policy
from policies.units import AdminUnit

from .models import ApiToken
from .roles import (
    Operation as Operation,  # re-exported: callers name them tokens.Role, tokens.Operation
    Role as Role,
)

PREFIX = "kyso_"
ALL = "*"
DEFAULT_GRACE = dt.timedelta(hours=24)


class OutOfScope(PermissionDenied):
    """The token is valid but its scope does not cover this request (HTTP 403)."""

    code = "permission_denied"


@dataclass(frozen=True)
class Scope:
    """What a token may act on; ``None`` in a dimension means every value."""

    units: frozenset[str] | None = None  # 5-digit commune codes and 2-digit province codes
    operations: frozenset[Operation] = field(default_factory=lambda: frozenset(Operation))
    document_types: frozenset[str] | None = None

    @property
    def unrestricted(self) -> bool:
        return self.units is None and self.document_types is None and self.operations == frozenset(Operation)

    @property
    def communes(self) -> frozenset[str]:
        return frozenset(u for u in self.units or () if len(u) == 5)

    @property
    def provinces(self) -> frozenset[str]:
        return frozenset(u for u in self.units or () if len(u) == 2)

    def check_operation(self, operation: Operation) -> None:
        if operation not in self.operations:
            raise OutOfScope(f"this token's operations ({_show(o.value for o in self.operations)}) do not include "
                             f"{operation.value!r}; ask an operator for a token that may {operation.value}",
                             scope="operations", wanted=operation.value)

    def check_document_type(self, document_type: str) -> None:
        if self.document_types is not None and document_type not in self.document_types:
            raise OutOfScope(f"this token's document types ({_show(self.document_types)}) do not include "
                             f"{document_type!r}", scope="document_types", wanted=document_type)

    def check_commune(self, commune_code: str, covered: frozenset[str] | None) -> None:
        """``covered`` is ``covered_communes(session, self)``: the province scopes expanded."""
        if covered is not None and commune_code not in covered:
            raise OutOfScope(f"this token's commune scope ({_show(self.units or ())}) does not cover commune "
                             f"{commune_code}", scope="communes", wanted=commune_code)

    def as_dict(self) -> dict[str, list[str]]:
        return {"communes": sorted(self.units) if self.units is not None else [ALL],
                "operations": sorted(o.value for o in self.operations),
                "document_types": sorted(self.document_types) if self.document_types is not None else [ALL]}


FULL_SCOPE = Scope()


def _show(values: Iterable[str]) -> str:
    return ", ".join(sorted(values)) or "none"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name, role and scope (``actor`` in the audit log)."""

    name: str
    role: Role
    scope: Scope = FULL_SCOPE

    @property
    def actor(self) -> str:
        return f"token:{self.name}"


@dataclass(frozen=True)
class TokenView:
    """A token as operators see it (CLI and ``GET /api/v1/tokens``); never its secret."""

    name: str
    role: str
    scope: dict[str, list[str]]
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    expired: bool
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    rotated_at: dt.datetime | None
    previous_secret_valid_until: dt.datetime | None  # set only while the old secret still works

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expired:
            return "expired"
        if self.previous_secret_valid_until is not None:
            return "rotating"
        return "active"

    def as_dict(self) -> dict[str, object]:
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"name": self.name, "role": self.role, "state": self.state, "scope": self.scope,
                "created_at": iso(self.created_at), "created_by": self.created_by,
                "expires_at": iso(self.expires_at), "expired": self.expired, "last_used_at": iso(self.last_used_at),
                "revoked": self.revoked_at is not None, "revoked_at": iso(self.revoked_at),
                "rotated_at": iso(self.rotated_at),
                "previous_secret_valid_until": iso(self.previous_secret_valid_until)}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def _dump(values: frozenset[str] | None) -> str | None:
    return None if values is None else json.dumps(sorted(values))


def _load(raw: str | None) -> frozenset[str] | None:
    return None if raw is None else frozenset(json.loads(raw))


def scope_of(row: ApiToken) -> Scope:
    if row.role != Role.client.value:
        return FULL_SCOPE
    operations = _load(row.scope_operations)
    return Scope(units=_load(row.scope_units),
                 operations=frozenset(Operation) if operations is None else frozenset(Operation(o) for o in operations),
                 document_types=_load(row.scope_document_types))


def build_scope(session: Session, *, units: Iterable[str] | None = None,
                operations: Iterable[Operation | str] | None = None,
                document_types: Iterable[str] | None = None) -> Scope:
    """Check a requested scope against the unit catalogue and the document policy; refuse what is unknown.

    An empty or missing dimension means every value; ``*`` says so explicitly and must stand alone.
    """
    return Scope(units=_units(session, units), operations=_operations(operations),
                 document_types=_document_types(document_types))


def _everything(values: Iterable[str] | None, what: str) -> list[str] | None:
    given = sorted({v.strip() for v in values or ()})
    if not given or given == [ALL]:
        return None
    if ALL in given:
        raise InvalidInput(f"'{ALL}' already means every {what}; give it alone, not with {_show(set(given) - {ALL})}")
    return given


def _units(session: Session, values: Iterable[str] | None) -> frozenset[str] | None:
    codes = _everything(values, "commune")
    if codes is None:
        return None
    for code in codes:
        level = {5: "commune", 2: "province"}.get(len(code)) if code.isdigit() else None
        if level is None:
            raise InvalidInput(f"{code!r} is neither a 5-digit commune code, a 2-digit province code nor '{ALL}'")
        known = session.execute(select(AdminUnit.id).where(AdminUnit.code == code, AdminUnit.level == level)
                                .limit(1)).first()
        if known is None:
            raise InvalidInput(f"{level} {code} is not in kyso's unit catalogue; look it up with `kyso units show`")
    return frozenset(codes)


def _operations(values: Iterable[Operation | str] | None) -> frozenset[Operation]:
    names = _everything((v.value if isinstance(v, Operation) else v for v in values or ()), "operation")
    if names is None:
        return frozenset(Operation)
    try:
        return frozenset(Operation(n) for n in names)
    except ValueError:
        raise InvalidInput(f"unknown operation in {_show(names)}; known: {_show(o.value for o in Operation)}") from None


def _document_types(values: Iterable[str] | None) -> frozenset[str] | None:
    names = _everything(values, "document type")
    if names is None:
        return None
    known = default_policy().types
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidInput(f"unknown document type(s) {_show(unknown)}; known: {_show(known)}")
    return frozenset(names)


def covered_communes(session: Session, scope: Scope) -> frozenset[str] | None:
    """Every commune code the scope covers, province scopes expanded through the catalogue (all its
    versions, so codes of merged-away communes still count); ``None`` when it covers every commune."""
    if scope.units is None:
        return None
    provinces = scope.provinces
    if not provinces:
        return scope.communes
    rows = session.execute(select(AdminUnit.code).where(AdminUnit.level == "commune",
                                                        AdminUnit.province_code.in_(sorted(provinces)))).scalars()
    return scope.communes | frozenset(rows)


def _find(session: Session, name: str) -> ApiToken:
    row = session.execute(select(ApiToken).where(ApiToken.name == name)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no token named {name!r}; see `kyso token list`")
    return row


def create(session: Session, name: str, role: Role, actor: str, *, scope: Scope = FULL_SCOPE,
           expires_at: dt.datetime | None = None) -> str:
    """A new token; the clear value is returned once and never stored. Build ``scope`` with ``build_scope``."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a token name must be 1-100 characters")
    if role is not Role.client and not scope.unrestricted:
        raise InvalidInput(f"scopes apply to client tokens only; a {role.value} token is never scoped")
    now = clock.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("the expiry must be in the future")
    if session.execute(select(ApiToken).where(ApiToken.name == name)).scalar_one_or_none() is not None:
        raise Conflict(f"a token named {name!r} already exists; revoke it or choose another name")
    token = _new_secret()
    operations = None if scope.operations == frozenset(Operation) else frozenset(o.value for o in scope.operations)
    session.add(ApiToken(name=name, role=role.value, token_hash=_hash(token), created_at=now, created_by=actor,
                         scope_units=_dump(scope.units), scope_operations=_dump(operations),
                         scope_document_types=_dump(scope.document_types), expires_at=expires_at))
    audit.record(session, actor=actor, action="api:token:create", subject=name, role=role.value,
                 scope=scope.as_dict(), expires_at=expires_at.isoformat() if expires_at else None)
    return token


def rotate(session: Session, name: str, actor: str, *, grace: dt.timedelta = DEFAULT_GRACE,
           expires_at: dt.datetime | None = None) -> str:
    """A new secret for the same name and scope; the current one keeps working for ``grace`` (zero: stops at once).

    Only one previous secret is kept: rotating again ends the grace of the one before. ``expires_at``
    replaces the expiry; without it the expiry stays as it was.
    """
    if grace < dt.timedelta(0):
        raise InvalidInput("the grace period cannot be negative")
    row = _find(session, name)
    now = clock.now()
    if row.revoked_at is not None:
        raise Conflict(f"token {name!r} is revoked; create a new one instead of rotating it")
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("the expiry must be in the future")
    new_expiry = expires_at or row.expires_at
    if new_expiry is not None and new_expiry <= now:
        raise Conflict(f"token {name!r} expired on {new_expiry:%Y-%m-%d}; give a new expiry to rotate it")
    token = _new_secret()
    if grace > dt.timedelta(0):
        row.previous_hash, row.previous_valid_until = row.token_hash, now + grace
    else:
        row.previous_hash, row.previous_valid_until = None, None
    row.token_hash, row.rotated_at, row.expires_at = _hash(token), now, new_expiry
    audit.record(session, actor=actor, action="api:token:rotate", subject=name,
                 grace_seconds=int(grace.total_seconds()), expires_at=new_expiry.isoformat() if new_expiry else None)
    return token


def revoke(session: Session, name: str, actor: str) -> None:
    row = _find(session, name)
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        row.previous_hash, row.previous_valid_until = None, None
        audit.record(session, actor=actor, action="api:token:revoke", subject=name)


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.execute(select(ApiToken).order_by(ApiToken.id)).scalars())


def views(session: Session) -> list[TokenView]:
    now = clock.now()
    return [TokenView(
        name=t.name, role=t.role, scope=scope_of(t).as_dict(), created_at=t.created_at, created_by=t.created_by,
        expires_at=t.expires_at, expired=t.expires_at is not None and t.expires_at <= now,
        last_used_at=t.last_used_at, revoked_at=t.revoked_at, rotated_at=t.rotated_at,
        previous_secret_valid_until=(t.previous_valid_until if t.previous_hash and t.previous_valid_until
                                     and t.previous_valid_until > now else None),
    ) for t in list_tokens(session)]


def secret_ends(session: Session, name: str, token: str) -> dt.datetime | None:
    """When the secret ``token`` of token ``name`` stops working: the token's expiry, or for a
    rotated-out secret the earlier end of its grace period; ``None`` when it never expires."""
    row = session.execute(select(ApiToken).where(ApiToken.name == name)).scalar_one_or_none()
    if row is None:
        return None
    ends = [row.expires_at]
    if token and not hmac.compare_digest(_hash(token), row.token_hash):
        ends.append(row.previous_valid_until)  # the previous secret, still in its grace period
    known = [end for end in ends if end is not None]
    return min(known) if known else None


def authenticate(session: Session, token: str) -> Principal:
    """The principal of a live token; every failure (unknown, revoked, expired, old secret past its
    grace) looks the same to the caller. Records its use (coarsely) in ``session``."""
    principal, used_at = identify(session, token)
    if used_at is not None:
        record_use(session, principal.name, used_at)
    return principal


def record_use(session: Session, name: str, now: dt.datetime) -> None:
    """Note that token ``name`` was used at ``now`` (the one write of authentication, once a minute)."""
    session.execute(update(ApiToken).where(ApiToken.name == name).values(last_used_at=now))


def identify(session: Session, token: str) -> tuple[Principal, dt.datetime | None]:
    """``authenticate`` without writing, for a read-only unit: the principal, and the time to record as
    its last use when the recorded one is more than a minute old (else ``None``: nothing to write)."""
    failure = Unauthenticated("missing, unknown, expired or revoked bearer token; create one with `kyso token create`")
    if not token.startswith(PREFIX) or len(token) > 200:
        raise failure
    digest = _hash(token)
    row = session.execute(select(ApiToken).where(
        or_(ApiToken.token_hash == digest, ApiToken.previous_hash == digest))).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        raise failure
    now = clock.now()
    if hmac.compare_digest(row.token_hash, digest):
        pass
    elif not (row.previous_hash and hmac.compare_digest(row.previous_hash, digest)
              and row.previous_valid_until is not None and now < row.previous_valid_until):
        raise failure
    if row.expires_at is not None and now >= row.expires_at:
        raise failure
    stale = row.last_used_at is None or now - row.last_used_at > dt.timedelta(minutes=1)
    return Principal(row.name, Role(row.role), scope_of(row)), now if stale else None  # coarse: reads seldom write
