"""Remote signing of hashes a client computed (CSC ``signatures/signHash``): SAD spent, then the keystore signs.

The algorithm a client names (an OID, as CSC sends it) is resolved and checked against the key
*before* the SAD is spent, so a wrong algorithm does not burn an authorization. Raw signature
values come from ``hsm.KeyStore.sign_digest`` exactly as ``KeyStoreSigner`` gets them: ECDSA as
DER, RSA-PSS with a salt as long as the hash (other PSS parameters are refused: the signature
would not match what the client announces in its CMS), or RSA PKCS#1 v1.5.

Only a SAD authorized for signHash (``SADPurpose.HASH``, CSC's default) is spent here; one the
specialist authorized for whole documents is refused and stays unspent. Every raw signature is
recorded before it is handed out, in one transaction with one audit entry for the call
(``activation:signhash:sign``): a ``signhash_signatures`` row (credential, hash and its algorithm,
client, SAD, time, SHA-256 of the value) and the registry's ``signature_records`` row (source
``signhash``), through which the verifier finds a CMS a client built around it.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from asn1crypto import algos
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction
from core.errors import InvalidInput, KysoError
from hsm import KeyType, SignatureScheme
from pki.context import PkiContext
from pki.models import Certificate, CertificateAuthority, CertificateStatus, Credential, CredentialStatus
from pki.store import get_credential
from signing.activation import factors
from signing.activation.models import ActivationState, SADPurpose, SignHashSignature
from signing.create.signer import HASHES
from signing.material import SIGNING_PROFILES, MaterialCache
from signing.registry import records

EC_PUBLIC_KEY = "1.2.840.10045.2.1"  # id-ecPublicKey: CSC v2 clients may name the key algorithm plus hashAlgo
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
RSASSA_PSS = "1.2.840.113549.1.1.10"
_EC_ALGOS = {"sha256": "1.2.840.10045.4.3.2", "sha384": "1.2.840.10045.4.3.3", "sha512": "1.2.840.10045.4.3.4"}
_RSA_ALGOS = {"sha256": "1.2.840.113549.1.1.11", "sha384": "1.2.840.113549.1.1.12", "sha512": "1.2.840.113549.1.1.13"}
CURVES = {"secp256r1": "1.2.840.10045.3.1.7", "secp384r1": "1.3.132.0.34"}


class UnsupportedMechanism(InvalidInput):
    code = "unsupported_mechanism"


@dataclass(frozen=True)
class Mechanism:
    hash_algo: str  # sha256 | sha384 | sha512
    scheme: SignatureScheme


def supported_algorithms(key_type: KeyType) -> list[str]:
    """Signature algorithm OIDs a key of this type signs with (CSC ``key/algo``)."""
    if key_type.is_rsa:
        return [*_RSA_ALGOS.values(), RSASSA_PSS, RSA_ENCRYPTION]
    return [*_EC_ALGOS.values(), EC_PUBLIC_KEY]


def digest_name(oid: str | None) -> str | None:
    if oid is None:
        return None
    try:
        name: str = algos.DigestAlgorithmId(oid).native
    except ValueError:
        raise UnsupportedMechanism(f"hash algorithm {oid!r} is not known") from None
    if name not in HASHES:
        raise UnsupportedMechanism(f"hash algorithm {name} is not accepted (SHA-256, SHA-384 or SHA-512)")
    return name


def resolve(key_type: KeyType, sign_algo: str, hash_algo: str | None, params: bytes | None) -> Mechanism:
    """The hash and scheme named by a CSC ``signAlgo`` (+ ``hashAlgo``, ``signAlgoParams``) for this key."""
    hash_name = digest_name(hash_algo)
    try:
        name = algos.SignedDigestAlgorithmId(sign_algo).native
    except ValueError:
        raise UnsupportedMechanism(f"signature algorithm {sign_algo!r} is not known") from None
    if name == EC_PUBLIC_KEY or name == "ecdsa":
        implied, scheme = None, SignatureScheme.ECDSA
    elif name.endswith("_ecdsa"):
        implied, scheme = name.removesuffix("_ecdsa"), SignatureScheme.ECDSA
    elif name == "rsassa_pkcs1v15":
        implied, scheme = None, SignatureScheme.RSA_PKCS1V15
    elif name.endswith("_rsa"):
        implied, scheme = name.removesuffix("_rsa"), SignatureScheme.RSA_PKCS1V15
    elif name == "rsassa_pss":
        implied, scheme = _pss_hash(params), SignatureScheme.RSA_PSS
    else:
        raise UnsupportedMechanism(f"signature algorithm {name} is not offered; see credentials/info key.algo")
    if ((scheme is SignatureScheme.ECDSA and key_type.is_rsa)
            or (scheme is not SignatureScheme.ECDSA and not key_type.is_rsa)):
        raise UnsupportedMechanism(f"a {key_type.value} key cannot sign with {name}")
    if implied is not None and hash_name is not None and implied != hash_name:
        raise UnsupportedMechanism(f"signAlgo {name} implies {implied}, but hashAlgo says {hash_name}")
    chosen = implied or hash_name
    if chosen is None:
        raise UnsupportedMechanism(f"signAlgo {name} needs hashAlgo (the OID of the hash algorithm)")
    if chosen not in HASHES:
        raise UnsupportedMechanism(f"hash algorithm {chosen} is not accepted (SHA-256, SHA-384 or SHA-512)")
    return Mechanism(chosen, scheme)


def _pss_hash(params: bytes | None) -> str:
    if not params:
        raise UnsupportedMechanism("RSASSA-PSS needs signAlgoParams (DER RSASSA-PSS-params, base64)")
    try:
        parsed = algos.RSASSAPSSParams.load(params)
        hash_name: str = parsed["hash_algorithm"]["algorithm"].native
        mgf = parsed["mask_gen_algorithm"]
        mgf_hash = mgf["parameters"]["algorithm"].native
        salt = parsed["salt_length"].native
        trailer = parsed["trailer_field"].native
    except (ValueError, TypeError, KeyError):
        raise UnsupportedMechanism("signAlgoParams is not a DER RSASSA-PSS-params structure") from None
    if mgf["algorithm"].native != "mgf1" or mgf_hash != hash_name or trailer != "trailer_field_bc":
        raise UnsupportedMechanism("RSASSA-PSS is offered with MGF1 over the same hash only")
    if hash_name not in HASHES or salt != HASHES[hash_name].digest_size:
        size = HASHES[hash_name].digest_size if hash_name in HASHES else "?"
        raise UnsupportedMechanism(f"RSASSA-PSS is offered with a salt as long as the hash ({size} bytes), not {salt}")
    return hash_name


async def sign_hashes(ctx: PkiContext, material: MaterialCache, credential_id: str, sad: str, hashes: list[bytes], *,
                      sign_algo: str, hash_algo: str | None, sign_algo_params: bytes | None,
                      actor: str) -> list[bytes]:
    """Raw signatures over ``hashes`` with the credential's key, once the SAD covering them is spent."""
    try:
        signer = await asyncio.to_thread(material.signer, credential_id)  # revoked, expired, retired: refused
        mechanism = resolve(signer.key_type, sign_algo, hash_algo, sign_algo_params)
        factors.hash_algo_of(hashes, mechanism.hash_algo)
    except KysoError as exc:
        await asyncio.to_thread(_audit_refusal, ctx, credential_id, actor, exc)
        raise
    sad_id = await asyncio.to_thread(lambda: factors.consume(ctx, credential_id, sad, hashes, actor=actor,
                                                             purpose=SADPurpose.HASH, hash_algo=mechanism.hash_algo))
    store = ctx.keystores.for_ref(signer.key_ref)
    hash_cls = HASHES[mechanism.hash_algo]

    def sign_all() -> list[bytes]:
        return [store.sign_digest(signer.key_ref, h, hash_cls(), mechanism.scheme) for h in hashes]

    signatures = sign_all() if store.scheme == "soft" else await asyncio.to_thread(sign_all)
    # recorded before they are handed out, so a CMS a client builds around one is found by the verifier
    made = SignedHashes(credential_id=credential_id, serial=signer.serial, hash_algo=mechanism.hash_algo,
                        hashes=hashes, signatures=signatures, client=actor, sad_id=sad_id)
    await asyncio.to_thread(_record_signatures, ctx, made)
    return signatures


@dataclass(frozen=True)
class SignedHashes:
    """What one signHash call made: ``signatures[i]`` is the signature over ``hashes[i]``."""

    credential_id: str
    serial: str
    hash_algo: str
    hashes: list[bytes]
    signatures: list[bytes]
    client: str
    sad_id: str


def _record_signatures(ctx: PkiContext, made: SignedHashes) -> None:
    now = clock.now()
    values = [records.SignatureValue(value=s, source="signhash", signer_serial=made.serial) for s in made.signatures]
    digests = [records.signature_digest(s) for s in made.signatures]
    with transaction(ctx.sessions) as session:
        records.record(session, values, created_at=now, credential_id=made.credential_id)
        session.add_all(SignHashSignature(
            credential_id=made.credential_id, signer_serial=made.serial, hash_algo=made.hash_algo, hash=h.hex(),
            signature_sha256=digest, client=made.client, sad_id=made.sad_id, signed_at=now)
            for h, digest in zip(made.hashes, digests, strict=True))
        audit.record(session, actor=made.client, action="activation:signhash:sign", subject=made.credential_id,
                     hash_algo=made.hash_algo, hashes=[h.hex() for h in made.hashes], signatures_sha256=digests,
                     signer_serial=made.serial, count=len(made.signatures))


# -- what remote-signing clients see -----------------------------------------------------------------
@dataclass(frozen=True)
class CredentialDescription:
    """What a remote-signing client needs to know about a credential (CSC ``credentials/info``)."""

    credential_id: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuing CA first, root last
    certificate_status: str  # valid | expired | revoked | suspended
    commune_code: str | None
    activation: factors.ActivationStatus


def enrolled_credentials(ctx: PkiContext, *, communes: frozenset[str] | None, after: str | None = None,
                         limit: int = 100) -> list[str]:
    """Credentials a remote-signing client can use: active, valid certificate, confirmed and unlocked
    activation, in ``communes`` (``None``: every commune); ordered by id, paged after ``after``."""
    now = clock.now()
    query = (select(Credential.id).join(factors.ActivationData, factors.ActivationData.credential_id == Credential.id)
             .join(Certificate, Certificate.id == Credential.certificate_id)
             .where(Credential.status == CredentialStatus.ACTIVE,
                    factors.ActivationData.state == ActivationState.ACTIVE, factors.ActivationData.locked_at.is_(None),
                    Certificate.status == CertificateStatus.VALID, Certificate.not_after > now,
                    Certificate.profile.in_(sorted(SIGNING_PROFILES))))
    if communes is not None:
        query = query.where(Certificate.commune_code.in_(sorted(communes)))
    if after:
        query = query.where(Credential.id > after)
    with transaction(ctx.sessions) as session:
        return list(session.execute(query.order_by(Credential.id).limit(limit)).scalars())


def describe(ctx: PkiContext, credential_id: str) -> CredentialDescription:
    now = clock.now()
    with transaction(ctx.sessions) as session:
        credential = get_credential(session, credential_id)
        row = credential.certificate
        if row is None:
            raise factors.ActivationRefused(f"credential {credential_id} has no certificate yet")
        cert_status = ("expired" if row.not_after <= now else
                       {"valid": "valid", "revoked": "revoked", "on_hold": "suspended"}.get(row.status, row.status))
        return CredentialDescription(
            credential_id=credential_id, certificate=ctx.certificate(row.der),
            chain=tuple(_chain(ctx, session, row.ca)),
            certificate_status=cert_status, commune_code=row.commune_code,
            activation=factors.status_in(session, credential_id))


def _chain(ctx: PkiContext, session: Session, ca: CertificateAuthority | None) -> list[x509.Certificate]:
    chain: list[x509.Certificate] = []
    seen: set[int] = set()
    while ca is not None and ca.id not in seen:
        seen.add(ca.id)
        if ca.cert_der:
            chain.append(ctx.certificate(ca.cert_der))
        if ca.chain_pem:
            chain.extend(x509.load_pem_x509_certificates(ca.chain_pem.encode()))
        ca = session.get(CertificateAuthority, ca.parent_id) if ca.parent_id else None
    return chain


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)



def _audit_refusal(ctx: PkiContext, credential_id: str, actor: str, error: KysoError) -> None:
    with transaction(ctx.sessions) as session:
        audit.record(session, actor=actor, action="activation:signhash:deny", subject=credential_id,
                     reason=error.message, answered=error.code)


def key_description(public_key: object) -> tuple[int, str | None]:
    """(key length in bits, curve OID or None) for CSC ``key/len`` and ``key/curve``."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.key_size, CURVES.get(public_key.curve.name)
    return public_key.key_size, None  # type: ignore[attr-defined]
