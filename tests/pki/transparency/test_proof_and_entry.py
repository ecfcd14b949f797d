"""C2SP tlog-proof and the kyso log entry."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pki.transparency import note
from pki.transparency.entry import Entry, EntryType
from pki.transparency.errors import LogFormatError, LogVerificationError
from pki.transparency.merkle import MemoryTree, inclusion_proof
from pki.transparency.note import Checkpoint, NoteSigner, b64
from pki.transparency.proof import TlogProof

T = dt.datetime(2026, 12, 6, 4, 0, 7, 123456, tzinfo=dt.UTC)
H = "ab" * 32


def registered(**over: object) -> Entry:
    values: dict[str, object] = dict(time=T, document="K7Q2M9XW", version=2, file_sha256=H,
                                     signature_sha256=["01" * 32, "02" * 32], signer_sha256="cd" * 32,
                                     signer_serial="1A2B", document_type="khai-sinh", commune="00001")
    values.update(over)
    return Entry.build(EntryType.DOCUMENT_REGISTERED, **values)  # type: ignore[arg-type]  # test data


def test_entry_encoding_is_fixed() -> None:
    e = registered()
    assert e.encode() == (
        b"kyso-log-entry/v1 document-registered\ntime 2026-12-06T04:00:07Z\ndocument K7Q2M9XW\nversion 2\n"
        b"file-sha256 " + H.encode() + b"\nsignature-sha256 " + b"01" * 32 + b"\nsignature-sha256 " + b"02" * 32
        + b"\nsigner-sha256 " + b"cd" * 32 + b"\nsigner-serial 1A2B\ndocument-type khai-sinh\ncommune 00001\n")
    assert Entry.parse(e.encode()) == e
    assert e.values("signature-sha256") == ["01" * 32, "02" * 32] and e.commune == "00001"
    assert e.as_dict()["document"] == "K7Q2M9XW"


@pytest.mark.parametrize("mutate", [
    lambda b: b.replace(b"version 2", b"version 02"),
    lambda b: b.replace(b"commune 00001\n", b"commune 00001"),
    lambda b: b.replace(b"commune 00001\n", b"commune 00001\n\n"),
    lambda b: b.replace(b"commune 00001", b"commune  00001"),
    lambda b: b.replace(b"document K7Q2M9XW\n", b""),
    lambda b: b.replace(b"signer-serial 1A2B", b"signer-serial 1a2b"),
    lambda b: b.replace(b"2026-12-06T04:00:07Z", b"2026-12-06T04:00:07+00:00"),
    lambda b: b.replace(b"2026-12-06T04:00:07Z", b"2026-02-30T04:00:07Z"),
    lambda b: b.replace(b"file-sha256 ab", b"file-sha256 AB"),
    lambda b: b.replace(b"v1 document-registered", b"v2 document-registered"),
    lambda b: b.replace(b"document-registered", b"document-forgotten"),
    lambda b: b.replace(b"time ", b"time\t"),
    lambda b: b + b"extra field\n",
    lambda b: b.replace(b"commune 00001\n", b"commune 00001\ncommune 00002\n"),
    lambda b: b"\xff" + b,
])
def test_every_other_encoding_is_refused(mutate) -> None:  # type: ignore[no-untyped-def]  # lambdas
    with pytest.raises(LogFormatError):
        Entry.parse(mutate(registered().encode()))


def test_entries_refuse_bad_values_and_unknown_fields() -> None:
    with pytest.raises(LogFormatError):
        registered(commune="1")
    with pytest.raises(LogFormatError):
        registered(signature_sha256=[])
    with pytest.raises(ValueError):
        registered(cccd="001234567890")
    with pytest.raises(LogFormatError):
        Entry.build(EntryType.CERTIFICATE_ISSUED, time=T, serial="AB", issuer="CN=x\nCN=y",
                    certificate_sha256=H, profile="p", not_before=T, not_after=T)


def test_a_certificate_entry_without_commune() -> None:
    e = Entry.build(EntryType.CERTIFICATE_ISSUED, time=T, serial="0AB1", issuer="CN=Kyso Issuing CA,O=UBND",
                    certificate_sha256=H, profile="specialist", not_before=T, not_after=T + dt.timedelta(days=1))
    assert Entry.parse(e.encode()).commune is None


def test_a_tlog_proof_round_trips_and_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    s = NoteSigner("kyso.example/log", note.raw_ed25519(key.public_key()), key.sign)
    entries = [registered(version=i + 1).encode() for i in range(6)]
    tree = MemoryTree()
    for e in entries:
        tree.append(e)
    signed = Checkpoint(s.name, 6, tree.root()).sign([s])
    p = TlogProof(4, tuple(inclusion_proof(4, 6, tree.subtree)), signed, entries[4])
    text = p.encode()
    assert text.startswith("c2sp.org/tlog-proof@v1\nextra ") and "\nindex 4\n" in text
    again = TlogProof.parse(text)
    assert again == p
    cp, entry = again.verify_extra(s.verifier)
    assert cp.size == 6 and entry == entries[4]
    with pytest.raises(LogVerificationError):
        again.verify(entries[3], s.verifier)
    no_extra = TlogProof(4, p.path, signed)
    assert TlogProof.parse(no_extra.encode()) == no_extra
    with pytest.raises(LogVerificationError):
        no_extra.verify_extra(s.verifier)


@pytest.mark.parametrize("text", [
    "c2sp.org/tlog-proof@v2\nindex 0\n\ncp\n", "c2sp.org/tlog-proof@v1\nindex 01\n\ncp\n",
    "c2sp.org/tlog-proof@v1\n\ncp\n", "c2sp.org/tlog-proof@v1\nindex 0\nAAAA\n\ncp\n",
    "c2sp.org/tlog-proof@v1\nindex 0\ncp\n",
])
def test_malformed_proofs_are_refused(text: str) -> None:
    with pytest.raises(LogFormatError):
        TlogProof.parse(text)


@pytest.mark.parametrize("number", ["1" * 5000, str(2**63), "09"])
def test_a_huge_or_non_canonical_size_or_index_is_a_format_error(number: str) -> None:
    """Before: 5,000 digits made ``int()`` raise ValueError (a crash in ``kyso log verify-proof``, a 500 on
    the witness); 2**63 is beyond Go's int64 tree sizes and the BIGINT columns."""
    root = b64(bytes(32))
    with pytest.raises(LogFormatError):
        Checkpoint.parse(f"example.org/log\n{number}\n{root}\n")
    with pytest.raises(LogFormatError):
        TlogProof.parse(f"c2sp.org/tlog-proof@v1\nindex {number}\n\nexample.org/log\n1\n{root}\n\n— x AAAA\n")
    assert Checkpoint.parse(f"example.org/log\n{2**63 - 1}\n{root}\n").size == 2**63 - 1
