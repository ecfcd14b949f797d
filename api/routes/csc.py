"""Cloud Signature Consortium API v2 (remote signing), also accepting the v1.0.4.0 field names pyHanko sends.

A machine client (a kyso ``client`` or ``ca-operator`` bearer token with the ``sign`` operation)
calls these; the *specialist* authorizes each batch of hashes with their PIN and a one-time code
in ``credentials/authorize`` and gets a SAD bound to exactly those hashes, which
``signatures/signHash`` spends once. ``info`` is public, as the specification says. Errors use the
CSC shape ``{"error": "...", "error_description": "..."}`` with the HTTP status kyso gives
the same domain error elsewhere (a malformed request is 400, as CSC asks).
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated, Any, Literal

from cryptography.x509.oid import NameOID
from fastapi import APIRouter, Body, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from core.db import transaction
from core.errors import InvalidInput, KysoError
from hsm import KeyType
from pki.encoding import key_type_of
from signing import activation, remote
from signing.remote import CredentialDescription

from .. import tokens
from ..deps import Access, CanSign, record_denial
from ..errors import status_for

SPECS = "2.0.0.2"
METHODS = ["auth/login", "credentials/list", "credentials/info", "credentials/authorize",
           "credentials/extendTransaction", "signatures/signHash"]
CSC_ERRORS = {"unauthenticated": "invalid_token", "invalid_request": "invalid_request",
              "permission_denied": "access_denied"}


def csc_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


class CscRoute(APIRoute):
    """Every error on a /csc route, dependencies' included, answered in the CSC error format."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except KysoError as exc:
                status = status_for(exc)
                status = 400 if status == 422 else status  # CSC answers a malformed request with 400
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                return csc_error(status, CSC_ERRORS.get(exc.code, exc.code), exc.message, headers)
            except RequestValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
                                     for e in exc.errors()[:5])
                return csc_error(400, "invalid_request", f"the request is not valid: {problems}")

        return route


router = APIRouter(prefix="/csc/v2", tags=["csc"], route_class=CscRoute)


class CscIn(BaseModel):
    """Unknown fields are refused, not ignored; ``clientData`` is accepted everywhere (and unused)."""

    model_config = ConfigDict(extra="forbid")
    clientData: str | None = None


def _b64(values: list[str] | None, field: str) -> list[bytes]:
    out = []
    for value in values or []:
        try:
            out.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{field} holds a value that is not base64", code="invalid_request") from None
    return out


def _one(v1: Any, v2: Any, v1_name: str, v2_name: str) -> Any:
    if v1 is not None and v2 is not None:
        raise InvalidInput(f"give {v2_name} (CSC v2) or {v1_name} (v1), not both", code="invalid_request")
    return v2 if v2 is not None else v1


def _scope_check(access: Access, credential: CredentialDescription) -> None:
    """A scoped client token reaches only the credentials of its communes (403, audited)."""
    scope = access.scope
    if scope.units is None:
        return
    with transaction(access.container.sessions) as session:
        covered = tokens.covered_communes(session, scope)
    try:
        scope.check_commune(credential.commune_code or "", covered)
    except tokens.OutOfScope as exc:
        record_denial(access.container, access.principal, access.route, exc, credential=credential.credential_id)
        raise


async def _credential(access: Access, credential_id: str) -> CredentialDescription:
    described = await run_in_threadpool(remote.describe, access.container.pki, credential_id)
    await run_in_threadpool(_scope_check, access, described)
    return described


# -- info and login --------------------------------------------------------------------------------
class InfoIn(CscIn):
    lang: str | None = None


def _info(request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {"specs": SPECS, "name": "kyso", "region": "VN", "lang": "vi-VN", "serviceURL": base,
            "description": "kyso remote signing for commune specialists: PIN and one-time code authorize each batch "
                           "of hashes (SCAL 2)",
            "authType": ["external"], "methods": METHODS, "signAlgorithms": {"algos": sorted({
                *remote.supported_algorithms(KeyType.EC_P256), *remote.supported_algorithms(KeyType.RSA_2048)})}}


@router.get("/info", summary="CSC info: the service and the methods it offers (public)")
def info_get(request: Request) -> dict[str, Any]:
    return _info(request)


@router.post("/info", summary="CSC info: the service and the methods it offers (public)")
def info(request: Request, body: Annotated[InfoIn | None, Body()] = None) -> dict[str, Any]:
    return _info(request)


class LoginIn(CscIn):
    rememberMe: bool | None = None


@router.post("/auth/login", summary="CSC auth/login: kyso bearer tokens are the access tokens; echoes the one sent")
def login(request: Request, access: CanSign, body: Annotated[LoginIn | None, Body()] = None) -> dict[str, Any]:
    token = request.headers.get("authorization", "").split(" ", 1)[-1].strip()
    return {"access_token": token, "token_type": "Bearer"}


# -- credentials -----------------------------------------------------------------------------------
class ListIn(CscIn):
    userID: str | None = Field(default=None, description="Not used by kyso (no CSC users); must be absent")
    maxResults: int | None = Field(default=None, ge=1, le=1000)
    pageToken: str | None = None
    credentialInfo: bool | None = None
    certificates: Literal["none", "single", "chain"] | None = None
    certInfo: bool | None = None
    authInfo: bool | None = None
    onlyValid: bool | None = None


@router.post("/credentials/list", summary="CSC credentials/list: the enrolled, usable credentials this token may use")
async def credentials_list(access: CanSign, body: Annotated[ListIn | None, Body()] = None) -> dict[str, Any]:
    body = body or ListIn()
    if body.userID is not None:
        raise InvalidInput("kyso has no CSC user accounts; omit userID (the token's scope decides what is listed)",
                           code="invalid_request")
    limit = body.maxResults or 100

    def ids() -> list[str]:
        with transaction(access.container.sessions) as session:
            communes = tokens.covered_communes(session, access.scope)
        return remote.enrolled_credentials(access.container.pki, communes=communes, after=body.pageToken,
                                               limit=limit + 1)

    found = await run_in_threadpool(ids)
    page = found[:limit]
    out: dict[str, Any] = {"credentialIDs": page}
    if len(found) > limit:
        out["nextPageToken"] = page[-1]
    if body.credentialInfo:
        out["credentialInfos"] = [
            {"credentialID": cid, **_describe(await _credential(access, cid), body.certificates or "single",
                                              bool(body.certInfo), body.authInfo is not False)}
            for cid in page]
    return out


class InfoCredIn(CscIn):
    credentialID: str = Field(min_length=1, max_length=40)
    certificates: Literal["none", "single", "chain"] | None = None
    certInfo: bool | None = None
    authInfo: bool | None = None
    lang: str | None = None


def _gtime(value: Any) -> str:
    return value.strftime("%Y%m%d%H%M%SZ")


def _describe(cred: CredentialDescription, certificates: str, cert_info: bool, auth_info: bool) -> dict[str, Any]:
    public = cred.certificate.public_key()
    key_type = key_type_of(public)
    length, curve = remote.key_description(public)
    usable = cred.activation.usable and cred.certificate_status == "valid"
    certs = {"none": [], "single": [cred.certificate], "chain": [cred.certificate, *cred.chain]}[certificates]
    cert: dict[str, Any] = {"status": cred.certificate_status,
                            "certificates": [base64.b64encode(remote.der(c)).decode() for c in certs]}
    if cert_info:
        c = cred.certificate
        cert.update(issuerDN=c.issuer.rfc4514_string(), subjectDN=c.subject.rfc4514_string(),
                    serialNumber=format(c.serial_number, "X"), validFrom=_gtime(c.not_valid_before_utc),
                    validTo=_gtime(c.not_valid_after_utc))
    key: dict[str, Any] = {"status": "enabled" if usable else "disabled", "algo": remote.supported_algorithms(key_type),
                           "len": length}
    if curve:
        key["curve"] = curve
    names = cred.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    out: dict[str, Any] = {"description": f"{names[0].value if names else cred.credential_id}", "key": key,
                           "cert": cert, "authMode": "explicit", "SCAL": "2", "multisign": activation.MAX_HASHES_PER_SAD,
                           "lang": "vi-VN"}
    if auth_info:
        pin_text = "The specialist's PIN (6-12 digits)"
        otp_text = "The 6-digit code of the specialist's authenticator app (TOTP, 30 s)"
        out.update(
            PIN={"presence": "true", "format": "N", "label": "PIN", "description": pin_text},
            OTP={"presence": "true", "type": "offline", "format": "N", "label": "OTP", "description": otp_text,
                 "ID": "totp", "provider": "kyso"},
            auth={"mode": "explicit", "expression": "PIN AND OTP", "objects": [
                {"type": "Password", "id": "PIN", "format": "N", "label": "PIN", "description": pin_text},
                {"type": "Password", "id": "OTP", "format": "N", "generator": "totp", "label": "OTP",
                 "description": otp_text}]})
    return out


@router.post("/credentials/info", summary="CSC credentials/info: key, certificate chain, how to authorize (PIN + OTP)")
async def credentials_info(body: InfoCredIn, access: CanSign) -> dict[str, Any]:
    cred = await _credential(access, body.credentialID)
    return _describe(cred, body.certificates or "single", bool(body.certInfo), body.authInfo is not False)


class AuthDataItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    value: str


class AuthorizeIn(CscIn):
    credentialID: str = Field(min_length=1, max_length=40)
    numSignatures: int = Field(ge=1, le=activation.MAX_HASHES_PER_SAD)
    hash: list[str] | None = Field(default=None, max_length=activation.MAX_HASHES_PER_SAD, description="v1 name")
    hashes: list[str] | None = Field(default=None, max_length=activation.MAX_HASHES_PER_SAD)
    hashAlgorithmOID: str | None = None
    hashAlgo: str | None = Field(default=None, description="v1-style name of hashAlgorithmOID")
    PIN: str | None = Field(default=None, max_length=64, description="v1")
    OTP: str | None = Field(default=None, max_length=64, description="v1")
    authData: list[AuthDataItem] | None = Field(default=None, max_length=4, description="v2: ids PIN and OTP")
    description: str | None = Field(default=None, max_length=500)


def _factor(body: AuthorizeIn, name: str) -> str:
    v2 = next((item.value for item in body.authData or [] if item.id.upper() == name), None)
    value = _one(getattr(body, name), v2, name, f"authData[{name}]")
    if value is None:
        raise InvalidInput(f"{name} is required (the specialist's {'PIN' if name == 'PIN' else 'one-time code'})",
                           code="invalid_request")
    return value


@router.post("/credentials/authorize", summary="CSC credentials/authorize: PIN + OTP → SAD bound to these hashes")
async def credentials_authorize(body: AuthorizeIn, access: CanSign) -> dict[str, Any]:
    await _credential(access, body.credentialID)
    hashes = _b64(_one(body.hash, body.hashes, "hash", "hashes"), "hashes")
    if not hashes:
        raise InvalidInput("kyso binds every SAD to its hashes (SCAL 2): send hashes", code="invalid_request")
    hash_algo = remote.digest_name(_one(body.hashAlgo, body.hashAlgorithmOID, "hashAlgo", "hashAlgorithmOID"))
    sad = await run_in_threadpool(activation.authorize, access.container.pki, body.credentialID, _factor(body, "PIN"),
                                  _factor(body, "OTP"), hashes, hash_algo, body.numSignatures, access.principal.actor)
    return {"SAD": sad.token, "expiresIn": sad.expires_in()}


class ExtendIn(CscIn):
    credentialID: str = Field(min_length=1, max_length=40)
    SAD: str = Field(min_length=1, max_length=200)
    hash: list[str] | None = Field(default=None, max_length=activation.MAX_HASHES_PER_SAD)
    hashes: list[str] | None = Field(default=None, max_length=activation.MAX_HASHES_PER_SAD)
    hashAlgorithmOID: str | None = None


@router.post("/credentials/extendTransaction", summary="CSC credentials/extendTransaction: a fresh SAD, old one spent")
async def credentials_extend(body: ExtendIn, access: CanSign) -> dict[str, Any]:
    await _credential(access, body.credentialID)
    hashes = _b64(_one(body.hash, body.hashes, "hash", "hashes"), "hashes") or None
    sad = await run_in_threadpool(activation.extend, access.container.pki, body.credentialID, body.SAD, hashes,
                                  actor=access.principal.actor)
    return {"SAD": sad.token, "expiresIn": sad.expires_in()}


# -- signatures ------------------------------------------------------------------------------------
class SignHashIn(CscIn):
    credentialID: str = Field(min_length=1, max_length=40)
    SAD: str = Field(min_length=1, max_length=200)
    hash: list[str] | None = Field(default=None, max_length=activation.MAX_HASHES_PER_SAD, description="v1 name")
    hashes: list[str] | None = Field(default=None, max_length=activation.MAX_HASHES_PER_SAD)
    hashAlgo: str | None = Field(default=None, description="v1 name")
    hashAlgorithmOID: str | None = None
    signAlgo: str = Field(min_length=1, max_length=100)
    signAlgoParams: str | None = Field(default=None, max_length=1000)
    operationMode: Literal["S"] | None = Field(default=None, description="Only synchronous signing (S)")


@router.post("/signatures/signHash", summary="CSC signatures/signHash: raw signatures over hashes a SAD covers")
async def sign_hash(body: SignHashIn, access: CanSign) -> dict[str, Any]:
    await _credential(access, body.credentialID)
    hashes = _b64(_one(body.hash, body.hashes, "hash", "hashes"), "hashes")
    if not hashes:
        raise InvalidInput("send the hashes to sign", code="invalid_request")
    params = _b64([body.signAlgoParams], "signAlgoParams")[0] if body.signAlgoParams else None
    container = access.container
    signatures = await remote.sign_hashes(
        container.pki, container.signing.material, body.credentialID, body.SAD, hashes, sign_algo=body.signAlgo,
        hash_algo=_one(body.hashAlgo, body.hashAlgorithmOID, "hashAlgo", "hashAlgorithmOID"),
        sign_algo_params=params, actor=access.principal.actor)
    return {"signatures": [base64.b64encode(s).decode() for s in signatures]}
