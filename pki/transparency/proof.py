"""C2SP tlog-proof (``c2sp.org/tlog-proof@v1``): an inclusion proof that travels alone.

    c2sp.org/tlog-proof@v1
    [extra <base64>]
    index <decimal>
    <base64 hash>            zero or more: the RFC 6962 inclusion path, leaf's sibling first
    <blank line>
    <signed checkpoint, verbatim, with any cosignatures>

kyso puts the log entry itself in ``extra`` so a verifier offline can recompute the leaf hash and
read what was logged; ``extra`` is not trusted until the leaf hash it yields is proven included.
Files use the ``.tlog-proof`` extension.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .entry import Entry, EntryType
from .errors import LogFormatError, LogVerificationError
from .merkle import HASH_SIZE, leaf_hash, verify_inclusion
from .note import Checkpoint, NoteVerifier, b64, open_checkpoint, parse_size, unb64

HEADER = "c2sp.org/tlog-proof@v1"
MEDIA_TYPE = "text/plain; charset=utf-8"
FILE_EXTENSION = ".tlog-proof"


@dataclass(frozen=True)
class TlogProof:
    index: int
    path: tuple[bytes, ...]
    checkpoint: str  # the signed note, verbatim
    extra: bytes | None = None

    def encode(self) -> str:
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {b64(self.extra)}")
        lines.append(f"index {self.index}")
        lines += [b64(h) for h in self.path]
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str | bytes) -> TlogProof:
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise LogFormatError("a tlog proof must be UTF-8") from None
        head, sep, checkpoint = text.partition("\n\n")
        if not sep:
            raise LogFormatError("a tlog proof needs a blank line before its checkpoint")
        lines = head.split("\n")
        if lines[0] != HEADER:
            raise LogFormatError(f"a tlog proof starts with {HEADER!r}")
        pos, extra = 1, None
        if pos < len(lines) and lines[pos].startswith("extra "):
            extra = unb64(lines[pos][6:], "the proof's extra data")
            pos += 1
        if pos >= len(lines) or not lines[pos].startswith("index "):
            raise LogFormatError("a tlog proof needs an 'index N' line")
        index = parse_size(lines[pos][6:], "the proof's index")
        path = []
        for line in lines[pos + 1:]:
            h = unb64(line, "an inclusion proof hash")
            if len(h) != HASH_SIZE:
                raise LogFormatError("an inclusion proof hash is not 32 bytes")
            path.append(h)
        return cls(index, tuple(path), checkpoint, extra)

    def verify(self, entry: bytes, verifier: NoteVerifier, origin: str | None = None) -> Checkpoint:
        """Check the checkpoint's signature and that ``entry`` is at ``index`` under its root."""
        cp, _ = open_checkpoint(self.checkpoint, verifier, origin)
        verify_inclusion(self.index, cp.size, leaf_hash(entry), self.path, cp.root_hash)
        return cp

    def verify_extra(self, verifier: NoteVerifier, origin: str | None = None) -> tuple[Checkpoint, bytes]:
        """Verify with the entry carried in ``extra``; return the checkpoint and the proven entry."""
        if self.extra is None:
            raise LogVerificationError("this proof carries no entry; pass the entry to verify()")
        return self.verify(self.extra, verifier, origin), self.extra


def make_proof(index: int, path: Sequence[bytes], checkpoint: str, entry: bytes | None = None) -> TlogProof:
    return TlogProof(index, tuple(path), checkpoint, entry)


DOCUMENT_TYPES = tuple(t for t in EntryType if t.is_document)


def check_document_proof(proof: TlogProof, verifier: NoteVerifier, *, document_id: str | None = None,
                         types: Sequence[EntryType] = (EntryType.DOCUMENT_REGISTERED,), version: int | None = None,
                         signature_sha256: str | None = None, origin: str | None = None) -> tuple[Checkpoint, Entry]:
    """Verify a document's proof offline and that it is about what the reader asked for.

    The checkpoint's signature, the inclusion of the entry carried in ``extra``, then the entry itself:
    one of ``types``, for ``document_id`` and ``version`` when given, naming ``signature_sha256`` when
    given. A valid proof of some other entry (another document, version or signature) is refused."""
    cp, data = proof.verify_extra(verifier, origin)
    try:
        entry = Entry.parse(data)
    except LogFormatError as exc:
        raise LogVerificationError(f"the proven entry is not a kyso log entry: {exc.message}") from None
    if entry.type not in types:
        raise LogVerificationError(f"the proof is of a {entry.type.value} entry, not {types[0].value}")
    if document_id is not None and entry.get("document") != document_id:
        raise LogVerificationError(f"the proof is of document {entry.get('document')}, not {document_id}")
    if version is not None and entry.get("version") != str(version):
        raise LogVerificationError(f"the proof is of version {entry.get('version')}, not {version}")
    if signature_sha256 is not None and signature_sha256 not in entry.values("signature-sha256"):
        raise LogVerificationError("the proven entry does not name this signature")
    return cp, entry
