"""Cloud Signature Consortium API v2 (remote signing), also accepting the v1.0.4.0 field names pyHanko sends.

A machine client (a kyso ``client`` or ``ca-operator`` bearer token with the ``sign`` operation)
calls these; the *specialist* authorizes each batch of hashes with their PIN and a one-time code
in ``credentials/authorize`` and gets a SAD bound to exactly those hashes, which
``signatures/signHash`` spends once, or ``signatures/signDoc`` spends once for whole PDFs that kyso
signs (PAdES) and registers. ``auth/revoke`` revokes the caller's own token, for good. ``info`` is
public, as the specification says. Errors use the CSC shape ``{"error": "...", "error_description":
"..."}`` with the HTTP status kyso gives the same domain error elsewhere (a malformed request is 400,
as CSC asks).
"""
from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from typing import Annotated, Any, Literal

from asn1crypto import algos
from cryptography.x509.oid import NameOID
from fastapi import APIRouter, Body, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from core import clock
from core.db import transaction
from core.errors import InvalidInput, KysoError, PermissionDenied
from hsm import KeyType, SignatureScheme
from pki.encoding import key_type_of
from pki.models import CertificateStatus
from signing.activation import factors, remote
from signing.activation.remote import CredentialDescription
from signing.activation.sole_control import Required, SADActivation, document_hash
from signing.create.service import SignRequest
from signing.create.signer import default_digest
from signing.errors import PdfTooLarge

from .. import tokens
from ..container import Container
from ..deps import Access, CanSign, record_denial
from ..errors import retry_after, status_for
from ..ratelimit import client_address
from ..schemas import CSC_ERROR_RESPONSES
from ..schemas_signing import AppearanceIn, SignMetadata
from ..uploads import checked_pdf

SPECS = "2.0.0.2"
METHODS = ["auth/login", "auth/revoke", "credentials/list", "credentials/info", "credentials/authorize",
           "credentials/extendTransaction", "signatures/signHash", "signatures/signDoc"]
CSC_ERRORS = {"unauthenticated": "invalid_token", "invalid_request": "invalid_request",
              "permission_denied": "access_denied"}


def csc_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


def csc_error_of(exc: KysoError, description: str | None = None, **extra: Any) -> JSONResponse:
    """A kyso domain error in the CSC shape, with the status kyso gives it elsewhere (422 becomes 400, as CSC asks);
    ``extra`` adds kyso's own members (signDoc's ``kyso``) beside ``error`` and ``error_description``."""
    status = status_for(exc)
    status = 400 if status == 422 else status
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status in (429, 503):
        headers = {"Retry-After": retry_after(exc)}
    body = {"error": CSC_ERRORS.get(exc.code, exc.code), "error_description": description or exc.message, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


class CscRoute(APIRoute):
    """Every error on a /csc route, dependencies' included, answered in the CSC error format."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except KysoError as exc:
                return csc_error_of(exc)
            except RequestValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
                                     for e in exc.errors()[:5])
                return csc_error(400, "invalid_request", f"the request is not valid: {problems}")
            except StarletteHTTPException as exc:  # FastAPI's own refusals, e.g. a body it cannot decode
                error = "invalid_request" if exc.status_code in (400, 413, 415, 422) else f"http_{exc.status_code}"
                return csc_error(exc.status_code, error, str(exc.detail), headers=getattr(exc, "headers", None))

        return route


router = APIRouter(prefix="/csc/v2", tags=["csc"], route_class=CscRoute, responses=CSC_ERROR_RESPONSES)


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
                *remote.supported_algorithms(KeyType.EC_P256), *remote.supported_algorithms(KeyType.RSA_2048)})},
            "signature_formats": {"formats": ["P"], "envelope_properties": [["Certification", "Revision"]]},
            "conformance_levels": ["Ades-B-B", "Ades-B-T", "Ades-B-LT", "Ades-B-LTA"]}


@router.get("/info", summary="CSC info: the service and the methods it offers (public)")
def info_get(request: Request) -> dict[str, Any]:
    return _info(request)


@router.post("/info", summary="CSC info: the service and the methods it offers (public)")
def info(request: Request, body: Annotated[InfoIn | None, Body()] = None) -> dict[str, Any]:
    return _info(request)


class LoginIn(CscIn):
    rememberMe: bool | None = None


def _bearer(request: Request) -> str:
    """The bearer token this request authenticated with ('' when it came in by client certificate)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _expires_in(container: Container, name: str, bearer: str) -> int | None:
    """Seconds until this secret stops working (``None``: never)."""
    with transaction(container.sessions, read_only=True) as session:
        ends = tokens.secret_ends(session, name, bearer)
    return None if ends is None else max(0, int((ends - clock.now()).total_seconds()))


@router.post("/auth/login", summary="CSC auth/login: kyso bearer tokens are the access tokens; echoes the one sent",
             description="Answers the bearer token itself (`access_token`) and `expires_in`, the seconds until it "
                         "stops working (its expiry, or for a rotated-out secret the end of its grace period). "
                         "`expires_in` is absent for a token that never expires: a CSC client then assumes 3600 s "
                         "and logs in again, getting the same token.")
async def login(request: Request, access: CanSign, body: Annotated[LoginIn | None, Body()] = None) -> dict[str, Any]:
    token = _bearer(request)
    out: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
    expires_in = await run_in_threadpool(_expires_in, access.container, access.principal.name, token)
    if expires_in is not None:
        out["expires_in"] = expires_in
    return out


class RevokeIn(CscIn):
    token: str = Field(min_length=1, max_length=200, description="The bearer token this request authenticates with")
    token_type_hint: Literal["access_token"] | None = Field(
        default=None, description="kyso issues no refresh tokens: only access_token (or nothing)")


@router.post("/auth/revoke", status_code=204, response_class=Response,
             summary="CSC auth/revoke: revoke the token this request is made with (for good), and only that one",
             description="kyso tokens are long-lived credentials an operator issues (`kyso token create`), not session "
                         "tokens: this revokes the caller's own token permanently, audited as `api:token:revoke` by "
                         "that token, and a new one must be asked of an operator. `token` must be the very bearer "
                         "token of the request; any other token is refused (403, audited) without being looked up. "
                         "Operators revoke other tokens with `kyso token revoke NAME`.")
async def revoke(request: Request, body: RevokeIn, access: CanSign) -> Response:
    bearer = _bearer(request)
    if not bearer or not hmac.compare_digest(body.token.encode(), bearer.encode()):
        error = PermissionDenied("a client may revoke only the bearer token it calls with; an operator revokes "
                                 "other tokens (`kyso token revoke NAME`)")
        await run_in_threadpool(record_denial, access.container, access.principal, access.route, error)
        raise error

    def revoke_own() -> None:
        with transaction(access.container.sessions) as session:
            tokens.revoke(session, access.principal.name, access.principal.actor)

    await run_in_threadpool(revoke_own)
    return Response(status_code=204)


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
    text: str = value.strftime("%Y%m%d%H%M%SZ")
    return text


def _describe(cred: CredentialDescription, certificates: str, cert_info: bool, auth_info: bool) -> dict[str, Any]:
    public = cred.certificate.public_key()
    key_type = key_type_of(public)
    length, curve = remote.key_description(public)
    usable = cred.activation.usable and cred.certificate_status == CertificateStatus.VALID
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
    out: dict[str, Any] = {"description": str(names[0].value) if names else cred.credential_id, "key": key,
                           "cert": cert, "authMode": "explicit", "SCAL": "2", "multisign": factors.MAX_HASHES_PER_SAD,
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


class AuthorizeKysoIn(BaseModel):
    """kyso's own fields for credentials/authorize, which CSC has no place for."""

    model_config = ConfigDict(extra="forbid")
    purpose: factors.SADPurpose = Field(
        default=factors.SADPurpose.HASH,
        description="What the SAD is for, and the only door that will spend it. `hash` (the default, CSC's own "
                    "meaning): signatures/signHash over these hashes. `documents`: whole PDFs kyso signs and "
                    "registers (POST /api/v1/sign with the SAD in the metadata's `sad`, /api/v1/sign/batch, "
                    "signatures/signDoc); the hashes are then the SHA-256 of each PDF's exact bytes.")


class AuthorizeIn(CscIn):
    credentialID: str = Field(min_length=1, max_length=40)
    numSignatures: int = Field(ge=1, le=factors.MAX_HASHES_PER_SAD)
    hash: list[str] | None = Field(default=None, max_length=factors.MAX_HASHES_PER_SAD, description="v1 name")
    hashes: list[str] | None = Field(default=None, max_length=factors.MAX_HASHES_PER_SAD)
    hashAlgorithmOID: str | None = None
    hashAlgo: str | None = Field(default=None, description="v1-style name of hashAlgorithmOID")
    PIN: str | None = Field(default=None, max_length=64, description="v1")
    OTP: str | None = Field(default=None, max_length=64, description="v1")
    authData: list[AuthDataItem] | None = Field(default=None, max_length=4, description="v2: ids PIN and OTP")
    description: str | None = Field(default=None, max_length=500)
    kyso: AuthorizeKysoIn | None = Field(default=None, description='kyso extension: {"purpose": "hash" (default) '
                                         '| "documents"}')


def _factor(body: AuthorizeIn, name: str) -> str:
    v2 = next((item.value for item in body.authData or [] if item.id.upper() == name), None)
    value: str | None = _one(getattr(body, name), v2, name, f"authData[{name}]")
    if value is None:
        raise InvalidInput(f"{name} is required (the specialist's {'PIN' if name == 'PIN' else 'one-time code'})",
                           code="invalid_request")
    return value


@router.post("/credentials/authorize", summary="CSC credentials/authorize: PIN + OTP → SAD bound to these hashes",
             description="The SAD is bound to the credential, the calling client, exactly these hashes and one "
                         "purpose. By default (CSC's meaning) it is for signatures/signHash only; to sign whole PDFs "
                         "through POST /api/v1/sign, /api/v1/sign/batch or signatures/signDoc send "
                         '`"kyso": {"purpose": "documents"}` with the SHA-256 of each PDF\'s exact bytes. A SAD '
                         "presented at the other door is refused (`sad_wrong_purpose`) and stays unspent.")
async def credentials_authorize(body: AuthorizeIn, access: CanSign, request: Request) -> dict[str, Any]:
    await _credential(access, body.credentialID)
    hashes = _b64(_one(body.hash, body.hashes, "hash", "hashes"), "hashes")
    if not hashes:
        raise InvalidInput("kyso binds every SAD to its hashes (SCAL 2): send hashes", code="invalid_request")
    hash_algo = remote.digest_name(_one(body.hashAlgo, body.hashAlgorithmOID, "hashAlgo", "hashAlgorithmOID"))
    purpose = body.kyso.purpose if body.kyso else factors.SADPurpose.HASH
    address = client_address(request, tuple(access.container.settings.trusted_proxies))
    sad = await run_in_threadpool(lambda: factors.authorize(
        access.container.pki, body.credentialID, _factor(body, "PIN"), _factor(body, "OTP"), hashes, hash_algo,
        body.numSignatures, access.principal.actor, purpose=purpose, address=address))
    return {"SAD": sad.token, "expiresIn": sad.expires_in()}


class ExtendIn(CscIn):
    credentialID: str = Field(min_length=1, max_length=40)
    SAD: str = Field(min_length=1, max_length=200)
    hash: list[str] | None = Field(default=None, max_length=factors.MAX_HASHES_PER_SAD)
    hashes: list[str] | None = Field(default=None, max_length=factors.MAX_HASHES_PER_SAD)
    hashAlgorithmOID: str | None = None


@router.post("/credentials/extendTransaction", summary="CSC credentials/extendTransaction: a fresh SAD, old one spent")
async def credentials_extend(body: ExtendIn, access: CanSign) -> dict[str, Any]:
    await _credential(access, body.credentialID)
    hashes = _b64(_one(body.hash, body.hashes, "hash", "hashes"), "hashes") or None
    sad = await run_in_threadpool(factors.extend, access.container.pki, body.credentialID, body.SAD, hashes,
                                  actor=access.principal.actor)
    return {"SAD": sad.token, "expiresIn": sad.expires_in()}


# -- signatures ------------------------------------------------------------------------------------
class SignHashIn(CscIn):
    credentialID: str = Field(min_length=1, max_length=40)
    SAD: str = Field(min_length=1, max_length=200)
    hash: list[str] | None = Field(default=None, max_length=factors.MAX_HASHES_PER_SAD, description="v1 name")
    hashes: list[str] | None = Field(default=None, max_length=factors.MAX_HASHES_PER_SAD)
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


# -- signDoc: whole PDFs, signed by kyso (PAdES) ---------------------------------------------------
CONFORMANCE_LEVELS = {"ades-b-b": "B-B", "ades-b-t": "B-T", "ades-b-lt": "B-LT", "ades-b-lta": "B-LTA"}
ENVELOPES = {"certification": True, "revision": False, "approval": False}


class KysoIn(BaseModel):
    """kyso's own fields for a document, which CSC has no place for (see signDoc's description)."""

    model_config = ConfigDict(extra="forbid")
    document_type: str | None = Field(default=None, description="A type from GET /api/v1/document-types (required)")
    commune_code: str | None = Field(default=None, description="The 5-digit commune the document is for (required)")
    dossier_number: str | None = None
    reason: str | None = None
    location: str | None = None
    appearance: AppearanceIn | None = Field(default=None, description="As in POST /api/v1/sign; default: visible")
    seal_fields: dict[str, str] | None = Field(default=None, description="As in POST /api/v1/sign")


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: str = Field(min_length=1, description="The PDF, base64")
    signature_format: str = Field(description="P (PAdES): the only format kyso signs")
    conformance_level: str | None = Field(
        default=None, description="Ades-B-B, Ades-B-T, Ades-B-LT or Ades-B-LTA (any case); default: the document "
                                  "type's level in kyso's policy (not CSC's Ades-B-B)")
    signAlgo: str | None = Field(default=None, max_length=100,
                                 description="Optional: one of the key's algorithms (credentials/info key.algo) with "
                                             "the hash kyso signs PDFs with for that key "
                                             "(SHA-384 for P-384, else SHA-256)")
    signAlgoParams: str | None = Field(default=None, max_length=1000)
    signed_props: list[Any] | None = Field(default=None, description="Not supported: must be absent or empty")
    signed_envelope_property: str | None = Field(
        default=None, description="Certification (DocMDP, first signature only) or Revision/Approval; default: policy")
    kyso: KysoIn | None = Field(default=None, description="This document's kyso fields, over the top-level ones")


class SignDocIn(CscIn):
    credentialID: str = Field(min_length=1, max_length=40)
    SAD: str | None = Field(default=None, min_length=1, max_length=200,
                            description="From credentials/authorize with kyso.purpose `documents`, over the SHA-256 "
                                        "of every document's exact bytes; required for a specialist's credential, "
                                        "not for an organisation seal")
    documents: list[DocumentIn] | None = Field(default=None, max_length=factors.MAX_HASHES_PER_SAD)
    documentDigests: list[Any] | None = Field(default=None, description="Not here: hashes go to signatures/signHash")
    operationMode: Literal["S"] | None = Field(default=None, description="Only synchronous signing (S)")
    returnValidationInfo: bool | None = Field(default=None, description="Not offered: B-LT/B-LTA embed it in the PDF")
    kyso: KysoIn | None = Field(default=None, description="kyso fields for every document (a document's own win)")


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_request")


def _choice(table: dict[str, Any], value: str | None, problem: str) -> Any:
    """``table``'s entry for ``value`` (any case), ``None`` when absent; an unknown value is refused with
    ``problem`` (which names it through ``{!r}``)."""
    if value is None:
        return None
    if value.lower() not in table:
        raise _invalid(problem.format(value))
    return table[value.lower()]


def _rsa_padding(key_type: KeyType, sign_algo: str | None, params: str | None, where: str) -> str | None:
    """The RSA padding a CSC ``signAlgo`` asks for (``None``: kyso's default); refused when it names another
    key type or a hash other than the one kyso signs this key's PDFs with."""
    if sign_algo is None:
        return None
    digest = default_digest(key_type)
    if sign_algo == remote.RSASSA_PSS and params is None and key_type.is_rsa:
        return "pss"  # kyso's PSS: MGF1 over the same hash, salt as long as the hash
    raw = _b64([params], f"{where}.signAlgoParams")[0] if params else None
    try:
        mechanism = remote.resolve(key_type, sign_algo, algos.DigestAlgorithmId.unmap(digest), raw)
    except remote.UnsupportedMechanism as exc:
        raise remote.UnsupportedMechanism(f"{where}.signAlgo: {exc.message}; kyso signs PDFs for this "
                                          f"{key_type.value} key with {digest} (or omit signAlgo)") from None
    return {SignatureScheme.RSA_PSS: "pss", SignatureScheme.RSA_PKCS1V15: "pkcs1v15"}.get(mechanism.scheme)


def _prepared(access: Access, body: SignDocIn, key_type: KeyType) -> list[SignRequest]:
    """Every document decoded, checked and in scope before the first is signed, so a malformed or
    out-of-scope document never leaves the others half done."""
    settings = access.container.settings
    documents = body.documents or []
    if len(documents) > settings.max_batch_items:
        raise _invalid(f"at most {settings.max_batch_items} documents per call; this one has {len(documents)}")
    policy = access.container.signing.policy
    requests = []
    for index, doc in enumerate(documents):
        where = f"documents[{index}]"
        if doc.signature_format.upper() != "P":
            raise _invalid(f"{where}.signature_format is {doc.signature_format!r}: kyso signs PDFs in PAdES only "
                           "(\"P\"); CAdES (C), XAdES (X) and JAdES (J) are not offered")
        level = _choice(CONFORMANCE_LEVELS, doc.conformance_level, f"{where}.conformance_level {{!r}} is not "
                        "offered; kyso signs baseline levels: Ades-B-B, Ades-B-T, Ades-B-LT or Ades-B-LTA")
        certify = _choice(ENVELOPES, doc.signed_envelope_property, f"{where}.signed_envelope_property {{!r}} does "
                          "not apply to PAdES; use Certification or Revision (Approval)")
        if doc.signed_props:
            raise _invalid(f"{where}.signed_props: kyso adds no signed attributes chosen by the client")
        if len(doc.document) > (settings.max_pdf_bytes + 2) // 3 * 4:
            raise PdfTooLarge(f"{where} is larger than the {settings.max_pdf_bytes:,}-byte limit")
        pdf = checked_pdf(_b64([doc.document], f"{where}.document")[0], settings.max_pdf_bytes, where)
        fields = {**(body.kyso.model_dump(exclude_none=True) if body.kyso else {}),
                  **(doc.kyso.model_dump(exclude_none=True) if doc.kyso else {})}
        try:
            meta = SignMetadata.model_validate({**fields, "credential_id": body.credentialID, "level": level,
                                                "certify": certify, "sad": body.SAD,
                                                "rsa_padding": _rsa_padding(key_type, doc.signAlgo,
                                                                            doc.signAlgoParams, where)})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            raise _invalid(f"{where}.kyso (with the top-level kyso) is not valid: {problems}") from None
        policy.get(meta.document_type)  # an unknown type is refused before anything is signed
        access.check_sign(meta.commune_code, meta.document_type, item=index)
        requests.append(meta.to_request(pdf))
    return requests


@router.post(
    "/signatures/signDoc", summary="CSC signatures/signDoc: kyso signs whole PDFs (PAdES) under one SAD",
    description="CSC v2 `documents` only (`signature_format` P); `documentDigests` belongs to signatures/signHash. "
                "kyso's policy needs facts CSC has no fields for, so each document takes a `kyso` object "
                "(`document_type` and `commune_code` required, `dossier_number`, `reason`, `location`, `appearance`, "
                "`seal_fields` as in POST /api/v1/sign); a top-level `kyso` object gives defaults for every document, "
                "a document's own fields win. For a specialist's credential `SAD` must come from "
                "credentials/authorize with `\"kyso\": {\"purpose\": \"documents\"}` over the base64 SHA-256 of "
                "every document's exact bytes: one SAD for the whole call, spent once (a SAD authorized for "
                "signHash is refused here). Every document is decoded, checked and scope-checked first; then they are "
                "signed in order. Should one still fail (the signing policy, a damaged PDF), the answer is that "
                "document's CSC error, and its `kyso.signed` lists the documents signed before it (registered, SAD "
                "spent): sign the rest under a new SAD. The answer's `kyso` lists each document's registry id, "
                "verification URL and level.")
async def sign_doc(body: SignDocIn, access: CanSign) -> Any:
    if body.documentDigests is not None:
        raise _invalid("documentDigests: kyso signs hashes through signatures/signHash; signDoc takes whole PDFs "
                       "(documents)")
    if not body.documents:
        raise _invalid("send the PDFs to sign in documents (base64, signature_format P)")
    if body.returnValidationInfo:
        raise _invalid("returnValidationInfo is not offered: at Ades-B-LT and Ades-B-LTA the validation data is in "
                       "the signed PDF itself")
    credential = await _credential(access, body.credentialID)
    requests = await run_in_threadpool(_prepared, access, body, key_type_of(credential.certificate.public_key()))
    container, actor = access.container, access.principal.actor
    hashes = [document_hash(r.pdf) for r in requests]
    spend = (SADActivation(container.pki, body.credentialID, body.SAD, hashes, actor) if body.SAD
             else Required(container.pki, actor))
    base = container.settings.base_url
    signed: list[dict[str, Any]] = []
    pdfs: list[str] = []
    for index, request in enumerate(requests):
        try:
            result = await run_in_threadpool(container.signing.sign, request, actor=actor, activation=spend)
        except KysoError as exc:
            return csc_error_of(exc, f"documents[{index}]: {exc.message}",
                                kyso={"failed_document": index, "signed": signed})
        signed.append({"document_id": result.document_id, "verify_url": f"{base}/v/{result.document_id}",
                       "level": result.level, "requested_level": result.requested_level,
                       "upgrade_pending": result.pending_upgrade})
        pdfs.append(base64.b64encode(result.pdf).decode())
    return {"DocumentWithSignature": pdfs, "SignatureObject": [], "kyso": signed}
