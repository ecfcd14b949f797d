"""C2SP tlog-cosignature, Ed25519 version (``cosignature/v1``): a witness's signature on a checkpoint.

A cosignature is one more signature line on the checkpoint note, ``— <witness name> base64(key ID ||
timestamp || signature)``:

- key ID: ``SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]`` (signature type 0x04, so a
  cosigner key can never pass for a log's 0x01 note key, nor the reverse);
- timestamp: 8 bytes, big-endian POSIX seconds, below 2**63 and never zero when kyso writes it;
- signature: Ed25519 over ``"cosignature/v1\\n" "time <T>\\n"`` followed by the whole checkpoint body
  (origin, size, root hash and any extension lines, each ending in a newline; no signature lines).

The verifier key people pin is ``<name>+<hex key ID>+base64(0x04 || public key)``. A v1 cosignature says:
at time T, the largest consistent tree this witness has seen for this origin has this root.

Clients check a policy of at least K of N trusted witnesses (``verify_cosignatures``); lines from
unknown keys are ignored, and a known key's bad cosignature rejects the note (signed-note's rule).
"""
from __future__ import annotations

import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .errors import LogFormatError, LogVerificationError
from .note import NoteSignature, check_key_name, parse_note, typed_key_id, typed_verifier_key, unb64

COSIGNATURE_TYPE = 0x04
HEADER = "cosignature/v1\n"
MAX_TIMESTAMP = 2**63 - 1


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 cosigner key (type 0x04)."""
    return typed_key_id(name, COSIGNATURE_TYPE, public_key)


def cosigner_vkey(name: str, public_key: bytes) -> str:
    """The ``name+hash+base64`` verifier key of a witness (type byte 0x04)."""
    return typed_verifier_key(name, COSIGNATURE_TYPE, public_key)


def cosigned_message(body: str, timestamp: int) -> bytes:
    """What a ``cosignature/v1`` signs: the header line, the time line, then the checkpoint body."""
    if not 0 < timestamp <= MAX_TIMESTAMP:
        raise ValueError("a cosignature timestamp is a POSIX time in seconds, above zero and below 2**63")
    if not body.endswith("\n") or "\n\n" in body:
        raise ValueError("a checkpoint body ends in a newline and has no blank line")
    return (HEADER + f"time {timestamp}\n" + body).encode()


@dataclass(frozen=True)
class CosignerVerifier:
    """A witness as a client pins it: name and Ed25519 public key (read from its 0x04 verifier key)."""

    name: str
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> CosignerVerifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise LogFormatError("a witness verifier key is <name>+<hex key id>+<base64 key>")
        name, hex_id, key_b64 = parts
        check_key_name(name)
        raw = unb64(key_b64, "the witness verifier key")
        if len(raw) != 33 or raw[0] != COSIGNATURE_TYPE:
            raise LogFormatError("a witness verifier key is type 0x04 (Ed25519 cosignature/v1) with a 32-byte key")
        if not re.fullmatch(r"[0-9a-f]{8}", hex_id) or bytes.fromhex(hex_id) != cosigner_key_id(name, raw[1:]):
            raise LogFormatError("the witness verifier key's ID does not match its name and key")
        return cls(name, raw[1:])

    @property
    def key_id(self) -> bytes:
        return cosigner_key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        return cosigner_vkey(self.name, self.public_key)

    def matches(self, sig: NoteSignature) -> bool:
        return sig.name == self.name and sig.key_id == self.key_id

    def verify(self, body: str, sig: NoteSignature) -> int:
        """The cosignature's timestamp if ``sig`` is this witness's valid cosignature on ``body``; else raise."""
        if not self.matches(sig):
            raise LogVerificationError(f"the signature line is not by witness {self.name}")
        if len(sig.signature) != 8 + 64:
            raise LogVerificationError(f"the cosignature by {self.name} is not 8 + 64 bytes")
        (timestamp,) = struct.unpack(">Q", sig.signature[:8])
        if not 0 < timestamp <= MAX_TIMESTAMP:
            raise LogVerificationError(f"the cosignature by {self.name} has no valid timestamp")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                sig.signature[8:], cosigned_message(body, timestamp))
        except (InvalidSignature, ValueError):
            raise LogVerificationError(
                f"the cosignature by witness {self.name} does not verify: the checkpoint was altered or forged"
            ) from None
        return int(timestamp)


@dataclass(frozen=True)
class Cosigner:
    """A witness key whose private half lives in the keystore: ``sign(message) -> 64-byte signature``."""

    name: str
    public_key: bytes
    sign: Callable[[bytes], bytes] = field(repr=False, compare=False)

    @property
    def verifier(self) -> CosignerVerifier:
        return CosignerVerifier(self.name, self.public_key)

    def cosign(self, body: str, timestamp: int) -> NoteSignature:
        """This witness's ``cosignature/v1`` on a checkpoint body, at ``timestamp``."""
        signature = self.sign(cosigned_message(body, timestamp))
        if len(signature) != 64:
            raise ValueError(f"the witness key returned {len(signature)} bytes, not an Ed25519 signature")
        return NoteSignature(self.name, self.verifier.key_id, struct.pack(">Q", timestamp) + signature)


@dataclass(frozen=True)
class Cosigned:
    """One verified cosignature: which witness, when it said so."""

    witness: str
    timestamp: int


def verify_cosignatures(checkpoint_note: str | bytes, witnesses: Sequence[CosignerVerifier | str],
                        k: int) -> list[Cosigned]:
    """Check that at least ``k`` of the trusted ``witnesses`` (verifier keys or parsed) cosigned the note.

    The log's own signature is not checked here (``note.open_checkpoint`` does that). Lines from unknown
    keys are ignored; a trusted witness's line that does not verify rejects the note; a witness counts once
    however many lines it has. Returns the verified cosignatures, one per witness, in the order given."""
    if k < 0:
        raise ValueError("k is a number of witnesses, at least 0")
    trusted = [w if isinstance(w, CosignerVerifier) else CosignerVerifier.parse(w) for w in witnesses]
    if k > len(trusted):
        raise ValueError(f"a policy of {k} witnesses cannot be met by {len(trusted)} trusted witnesses")
    note = parse_note(checkpoint_note)
    found: dict[str, int] = {}
    for sig in note.signatures:
        for w in trusted:
            if w.matches(sig):
                found[w.name] = max(found.get(w.name, 0), w.verify(note.text, sig))
    if len(found) < k:
        raise LogVerificationError(
            f"the checkpoint carries cosignatures by {len(found)} of the trusted witnesses; the policy asks for {k}")
    return [Cosigned(w.name, found[w.name]) for w in trusted if w.name in found]
