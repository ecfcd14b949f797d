"""Sole control on the document-signing paths: a specialist's key signs only what they authorized.

Remote callers (the REST ``/sign`` routes, CSC ``signDoc``, requests approved on the specialist's
page) hand ``SigningService.sign`` an ``Activation`` (``signing.create.consent``). ``SADActivation``
carries Signature Activation Data that the specialist's PIN and one-time code bound to the SHA-256 of
the exact PDF bytes to be signed; ``Required`` is what a remote caller without SAD gets, so the
specialist profile is refused with a message that says how to authorize. A seal credential needs no
SAD: it is the organisation's, used by a client whose scope and the signing policy allow it.

One SAD may cover a batch (ten dossiers at once): the group of documents signed under it shares one
``SADActivation`` and the SAD is consumed, once, for every hash of the group when the first of them
is signed. A failure to consume is remembered so the other documents of the group fail alike.

Every caller passes an activation, in process too: there is no "no activation" that lets anything
sign. The operator's CLI signs seals under ``Required`` and a specialist's credential only with a SAD
her PIN and current code authorized for the files' exact bytes (``kyso sign`` prompts for them).
A SAD is spent here only if it was authorized for documents (``SADPurpose.DOCUMENTS``); one
authorized for CSC signHash is refused (``SADWrongPurpose``), and the reverse at signHash.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import NoReturn

from core import audit
from core.db import transaction
from core.errors import KysoError, PermissionDenied
from pki.context import PkiContext
from signing.activation import factors
from signing.material import SignerMaterial

ACTIVATION_PROFILES = frozenset({"specialist"})
HASH_ALGO = "sha256"
HOW_TO_AUTHORIZE = (
    "ask the specialist to authorize it: CSC POST /csc/v2/credentials/authorize with their PIN and one-time "
    "code, hashes = the base64 SHA-256 of the exact PDF bytes (one authorization may cover a batch) and "
    '"kyso": {"purpose": "documents"} (without it a SAD is for CSC signHash only), then send the SAD in the '
    "metadata's `sad` field (CSC signDoc: its `SAD`); or submit it as a signing request (POST "
    "/api/v1/sign/requests) for the specialist to approve on their page (/me)")


class ActivationRequired(PermissionDenied):
    """A specialist's credential was asked to sign without the specialist's authorization (SAD)."""

    code = "activation_required"


def document_hash(pdf: bytes) -> bytes:
    """What a specialist authorizes for a whole-document signature: SHA-256 of the PDF as sent."""
    return hashlib.sha256(pdf).digest()


def needs_activation(material: SignerMaterial) -> bool:
    return material.profile in ACTIVATION_PROFILES


@dataclass
class Required:
    """No SAD came with the request: fine for a seal, refused (and audited) for a specialist."""

    ctx: PkiContext
    actor: str

    def spend(self, material: SignerMaterial, pdf: bytes) -> None:
        if not needs_activation(material):
            return
        refuse(self.ctx, self.actor, material.credential_id, "no SAD with a specialist credential",
               f"credential {material.credential_id} is a specialist's: signing with it needs the specialist's "
               f"own authorization for this document; {HOW_TO_AUTHORIZE}")


def refuse(ctx: PkiContext, actor: str, credential_id: str, reason: str, message: str) -> NoReturn:
    """Refuse to sign with a specialist's credential without her consent: audited once, then raised."""
    error = ActivationRequired(message, credential_id=credential_id)
    with transaction(ctx.sessions) as session:
        audit.record(session, actor=actor, action="activation:sad:deny", subject=credential_id, reason=reason,
                     answered=error.code)
    raise error


@dataclass
class SADActivation:
    """One SAD for a group of documents of one credential; consumed once, for all of them."""

    ctx: PkiContext
    credential_id: str
    sad: str
    hashes: list[bytes]  # the group's document hashes still to sign (idempotent replays left out)
    actor: str
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _spent: bool = False
    _error: KysoError | None = None

    def spend(self, material: SignerMaterial, pdf: bytes) -> None:
        if not needs_activation(material):
            return  # a SAD sent with a seal credential is not needed; nothing to spend
        digest = document_hash(pdf)
        if material.credential_id != self.credential_id or digest not in self.hashes:
            raise factors.InvalidSAD("this document's SHA-256 is not one the SAD was authorized for; authorize "
                                        "the exact bytes you send (base64 of SHA-256 of the PDF)")
        with self._lock:
            if self._error is not None:
                raise self._error
            if self._spent:
                return
            try:
                factors.consume(self.ctx, self.credential_id, self.sad, self.hashes, actor=self.actor,
                                purpose=factors.SADPurpose.DOCUMENTS, hash_algo=HASH_ALGO)
            except KysoError as exc:
                self._error = exc
                raise
            self._spent = True


__all__ = ["ACTIVATION_PROFILES", "ActivationRequired", "Required", "SADActivation",
           "document_hash", "needs_activation", "refuse"]
