"""C2SP signed notes (Ed25519) and tlog checkpoints.

A signed note is its text (UTF-8, ends in a newline, no control characters but newline), a blank
line, then one line per signature: ``— <key name> base64(key ID || signature)``. An Ed25519 key ID
is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``, and the verifier key that people pin is
``<name>+<hex key ID>+base64(0x01 || public key)``.

A checkpoint is a note whose text is ``origin``, ``tree size`` (decimal, no leading zero) and
``base64(root hash)``, one per line, then optional extension lines (kyso writes none).

Signing goes through a callable (``message -> 64-byte signature``), so the key stays in the
keystore (``KeyStore.sign_message``). Verifying follows the spec: signatures by unknown keys are
ignored, a known key's bad signature rejects the note, and no verified known signature rejects it.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import LogFormatError, LogVerificationError
from .merkle import HASH_SIZE

ED25519_TYPE = 0x01
EM_DASH = "\u2014"
MAX_SIGNATURES = 64
MAX_TREE_SIZE = 2**63 - 1  # Go's sumdb/tlog and note read sizes and indices as int64; more is not a checkpoint

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    if not _B64.fullmatch(text):
        raise LogFormatError(f"{what} is not standard base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise LogFormatError(f"{what} is not standard base64") from None
    if b64(raw) != text:
        raise LogFormatError(f"{what} is not canonical base64")
    return raw


def parse_size(text: str, what: str) -> int:
    """A tree size or index: decimal, no leading zero, at most ``MAX_TREE_SIZE`` (never a 4,300-digit number
    that Python's ``int()`` refuses with a ValueError, nor one no database column holds)."""
    if not _DECIMAL.fullmatch(text) or int(text) > MAX_TREE_SIZE:
        raise LogFormatError(f"{what} is not a decimal from 0 to 2**63-1 without leading zeros: {text[:30]!r}")
    return int(text)


def check_key_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name) or any(ord(c) < 0x20 for c in name):
        raise LogFormatError(f"a note key name must be non-empty, without spaces or '+': {name!r}")
    return name


def raw_ed25519(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def typed_key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID of a signed-note key: ``SHA-256(name || 0x0A || type || public key)[:4]``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()[:4]


def typed_verifier_key(name: str, key_type: int, public_key: bytes) -> str:
    """The ``name+hash+base64(type || key)`` verifier key line of a 32-byte Ed25519 key of ``key_type``."""
    check_key_name(name)
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return f"{name}+{typed_key_id(name, key_type, public_key).hex()}+{b64(bytes([key_type]) + public_key)}"


def ed25519_key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 note key."""
    return typed_key_id(name, ED25519_TYPE, public_key)


def verifier_key(name: str, public_key: bytes) -> str:
    """The ``name+hash+base64`` verifier key line people pin (Go's ``note.NewVerifier`` reads it)."""
    return typed_verifier_key(name, ED25519_TYPE, public_key)


@dataclass(frozen=True)
class NoteVerifier:
    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        parts = vkey.strip().split("+", 2)  # the base64 key may itself hold "+"
        if len(parts) != 3:
            raise LogFormatError("a verifier key is <name>+<hex key id>+<base64 key>")
        name, hex_id, key_b64 = parts
        check_key_name(name)
        raw = unb64(key_b64, "the verifier key")
        if len(raw) != 33 or raw[0] != ED25519_TYPE:
            raise LogFormatError("only Ed25519 verifier keys (type 0x01, 32 bytes) are supported")
        key = raw[1:]
        if not re.fullmatch(r"[0-9a-f]{8}", hex_id) or bytes.fromhex(hex_id) != ed25519_key_id(name, key):
            raise LogFormatError("the verifier key's ID does not match its name and key")
        return cls(name, bytes.fromhex(hex_id), key)

    @property
    def vkey(self) -> str:
        return verifier_key(self.name, self.public_key)

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 note signer whose private half lives elsewhere: ``sign(message) -> signature``."""

    name: str
    public_key: bytes
    sign: Callable[[bytes], bytes] = field(repr=False, compare=False)

    @property
    def key_id(self) -> bytes:
        return ed25519_key_id(self.name, self.public_key)

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.key_id, self.public_key)


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    @property
    def line(self) -> str:
        return f"{EM_DASH} {self.name} {b64(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> str:
        return self.text + "\n" + "".join(s.line for s in self.signatures)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise LogFormatError("a note's text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise LogFormatError("a note may not contain control characters other than newline")


def sign_note(text: str, signers: Iterable[NoteSigner]) -> str:
    """The signed note: ``text``, a blank line, one signature line per signer."""
    _check_text(text)
    sigs = []
    for s in signers:
        check_key_name(s.name)
        signature = s.sign(text.encode())
        if len(signature) != 64:
            raise ValueError(f"the signer for {s.name} returned {len(signature)} bytes, not an Ed25519 signature")
        sigs.append(NoteSignature(s.name, s.key_id, signature))
    if not sigs:
        raise ValueError("a note needs at least one signature")
    return Note(text, tuple(sigs)).encode()


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into text and signatures, checking the syntax only."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise LogFormatError("a note must be UTF-8") from None
    _check_text(note)
    cut = note.rfind("\n\n")
    if cut < 0:
        raise LogFormatError("a note needs a blank line between its text and its signatures")
    text, sig_block = note[:cut + 1], note[cut + 2:]
    lines = sig_block.split("\n")
    if lines[-1] != "" or len(lines) < 2:
        raise LogFormatError("a note needs at least one signature line, each ending in a newline")
    if len(lines) - 1 > MAX_SIGNATURES:
        raise LogFormatError(f"a note may carry at most {MAX_SIGNATURES} signatures")
    sigs = []
    for line in lines[:-1]:
        m = re.fullmatch(EM_DASH + r" (\S+) (\S+)", line)
        if m is None:
            raise LogFormatError(f"malformed note signature line: {line[:80]!r}")
        raw = unb64(m.group(2), "a note signature")
        if len(raw) < 5:
            raise LogFormatError("a note signature is too short")
        sigs.append(NoteSignature(check_key_name(m.group(1)), raw[:4], raw[4:]))
    return Note(text, tuple(sigs))


def open_note(note: str | bytes, verifiers: Sequence[NoteVerifier]) -> tuple[Note, list[NoteSignature]]:
    """Parse and verify: the note and its signatures by known keys, all verified; else raise."""
    parsed = parse_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified = []
    for sig in parsed.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue  # unknown key: ignored, as the spec requires (witness cosignatures, rotation)
        if not v.verify(parsed.text.encode(), sig.signature):
            raise LogVerificationError(f"the signature by {sig.name} does not verify: the note was altered or forged")
        verified.append(sig)
    if not verified:
        raise LogVerificationError("the note carries no signature by a trusted key")
    return parsed, verified


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise ValueError("a checkpoint origin is one non-empty line")
        if not 0 <= self.size <= MAX_TREE_SIZE or len(self.root_hash) != HASH_SIZE:
            raise ValueError("a checkpoint needs a size from 0 to 2**63-1 and a 32-byte root hash")
        if any(not e or "\n" in e for e in self.extensions):
            raise ValueError("checkpoint extension lines are non-empty single lines")

    @property
    def text(self) -> str:
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), b64(self.root_hash), *self.extensions))

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise LogFormatError("a checkpoint body is origin, size and root hash, one per line")
        origin, size, root = lines[0], lines[1], lines[2]
        if not origin:
            raise LogFormatError("the checkpoint origin is empty")
        tree_size = parse_size(size, "the checkpoint size")
        root_hash = unb64(root, "the checkpoint root hash")
        if len(root_hash) != HASH_SIZE:
            raise LogFormatError("the checkpoint root hash is not 32 bytes")
        extensions = tuple(lines[3:-1])
        if any(not e for e in extensions):
            raise LogFormatError("checkpoint extension lines must be non-empty")
        return cls(origin, tree_size, root_hash, extensions)

    def sign(self, signers: Iterable[NoteSigner]) -> str:
        return sign_note(self.text, signers)


def open_checkpoint(note: str | bytes, verifier: NoteVerifier, origin: str | None = None) -> tuple[Checkpoint, str]:
    """Verify a signed checkpoint with the log's key; return it and the note text as given.

    ``origin`` defaults to the key name (kyso names its key after the origin, as the spec advises).
    """
    parsed, _ = open_note(note, [verifier])
    cp = Checkpoint.parse(parsed.text)
    if cp.origin != (origin or verifier.name):
        raise LogVerificationError(f"the checkpoint is for log {cp.origin!r}, not {origin or verifier.name!r}")
    return cp, parsed.encode()
