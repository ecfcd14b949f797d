"""C2SP tlog-cosignature (Ed25519, cosignature/v1): checked against a verifier written here from the spec's
text alone (not from kyso's module), the spec's own example line, then forgeries and the K-of-N policy."""
from __future__ import annotations

import struct

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pki.transparency import note
from pki.transparency.cosignature import Cosigner, CosignerVerifier, cosigner_vkey, verify_cosignatures
from pki.transparency.errors import LogFormatError, LogVerificationError
from pki.transparency.note import Checkpoint, NoteSigner, NoteVerifier, open_checkpoint
from tests.helpers.witness import spec_verify

LOG = "kyso.example/log"
BODY = "kyso.example/log\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def witness(name: str = "witness.example/w1") -> tuple[Cosigner, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    return Cosigner(name, note.raw_ed25519(key.public_key()), key.sign), key


def log_signed(body: str = BODY) -> tuple[str, NoteVerifier]:
    key = Ed25519PrivateKey.generate()
    s = NoteSigner(LOG, note.raw_ed25519(key.public_key()), key.sign)
    return note.sign_note(body, [s]), s.verifier


def test_a_cosignature_verifies_with_a_verifier_written_from_the_spec() -> None:
    w, _ = witness()
    line = w.cosign(BODY, 1679315147).line
    assert spec_verify(line, w.name, w.public_key, BODY) == 1679315147


def test_the_spec_example_line_has_the_layout_we_write() -> None:
    # the example in c2sp.org/tlog-cosignature (its key is not published: the layout is what can be checked)
    spec_line = ("\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2"
                 "oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n")
    sig = note.parse_note(BODY + "\n" + spec_line).signatures[0]
    assert len(sig.signature) == 8 + 64
    assert struct.unpack(">Q", sig.signature[:8])[0] == 1679315147  # "time 1679315147" in the spec's message


def test_key_id_and_vkey_use_type_0x04_never_the_log_type() -> None:
    w, _ = witness()
    v = CosignerVerifier.parse(cosigner_vkey(w.name, w.public_key))
    assert v == w.verifier
    assert v.key_id != note.ed25519_key_id(w.name, w.public_key)
    with pytest.raises(LogFormatError, match="0x04"):  # a log key (0x01) is not a witness key
        CosignerVerifier.parse(note.verifier_key(w.name, w.public_key))
    with pytest.raises(LogFormatError, match="0x01"):  # and the reverse
        NoteVerifier.parse(v.vkey)
    tampered = v.vkey.replace("+", "+0", 1)[:-1]
    with pytest.raises(LogFormatError):
        CosignerVerifier.parse(tampered)


def test_k_of_n_policy() -> None:
    signed, log_v = log_signed()
    (w1, _), (w2, _), (w3, _) = witness("w.example/1"), witness("w.example/2"), witness("w.example/3")
    cosigned = signed + w1.cosign(BODY, 100).line + w2.cosign(BODY, 200).line
    got = verify_cosignatures(cosigned, [w1.verifier, w2.verifier.vkey, w3.verifier], 2)
    assert [(c.witness, c.timestamp) for c in got] == [("w.example/1", 100), ("w.example/2", 200)]
    with pytest.raises(LogVerificationError, match="2 of the trusted witnesses; the policy asks for 3"):
        verify_cosignatures(cosigned, [w1.verifier, w2.verifier, w3.verifier], 3)
    open_checkpoint(cosigned, log_v)  # the log's own check ignores the cosignature lines


def test_a_witness_counts_once_and_unknown_lines_are_ignored() -> None:
    signed, _ = log_signed()
    w1, _ = witness("w.example/1")
    stranger, _ = witness("w.example/1")  # same name, other key: an unknown key, ignored
    cosigned = signed + w1.cosign(BODY, 1).line + w1.cosign(BODY, 2).line + stranger.cosign(BODY, 3).line
    assert [c.timestamp for c in verify_cosignatures(cosigned, [w1.verifier], 1)] == [2]
    with pytest.raises(LogVerificationError):
        verify_cosignatures(signed + stranger.cosign(BODY, 3).line, [w1.verifier], 1)


@pytest.mark.parametrize("attack", ["other_body", "timestamp", "signature", "log_line_as_cosig"])
def test_forged_cosignatures_are_refused(attack: str) -> None:
    signed, _ = log_signed()
    w, key = witness()
    sig = w.cosign(BODY, 1000)
    if attack == "other_body":  # cosigned a fork: same size, other root
        forged = w.cosign(BODY.replace("CsUY", "DsUY"), 1000)
    elif attack == "timestamp":  # a cosignature moved in time
        forged = note.NoteSignature(sig.name, sig.key_id, struct.pack(">Q", 1001) + sig.signature[8:])
    elif attack == "signature":
        forged = note.NoteSignature(sig.name, sig.key_id, sig.signature[:-1] + bytes([sig.signature[-1] ^ 1]))
    else:  # the witness key signing the body as a plain note (type 0x01 message) under the 0x04 key ID
        forged = note.NoteSignature(sig.name, sig.key_id, struct.pack(">Q", 1000) + key.sign(BODY.encode()))
    with pytest.raises(LogVerificationError, match="does not verify"):
        verify_cosignatures(signed + forged.line, [w.verifier], 1)
    with pytest.raises(InvalidSignature):
        spec_verify(forged.line, w.name, w.public_key, BODY)


def test_bad_timestamps_and_policies_are_refused() -> None:
    w, _ = witness()
    for t in (0, 2**63):
        with pytest.raises(ValueError):
            w.cosign(BODY, t)
    zero = w.cosign(BODY, 1)
    zero = note.NoteSignature(zero.name, zero.key_id, bytes(8) + zero.signature[8:])
    signed, _ = log_signed()
    with pytest.raises(LogVerificationError, match="no valid timestamp"):
        verify_cosignatures(signed + zero.line, [w.verifier], 1)
    with pytest.raises(ValueError):
        verify_cosignatures(signed, [w.verifier], 2)


def test_a_cosigned_checkpoint_round_trips_through_the_checkpoint_parser() -> None:
    signed, log_v = log_signed(Checkpoint(LOG, 3, bytes(32)).text)
    w, _ = witness()
    cp, _ = open_checkpoint(signed + w.cosign(Checkpoint(LOG, 3, bytes(32)).text, 5).line, log_v)
    assert cp.size == 3
