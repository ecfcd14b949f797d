"""C2SP signed notes and checkpoints: the spec's own example, then forgeries."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pki.transparency import note
from pki.transparency.errors import LogFormatError, LogVerificationError
from pki.transparency.note import Checkpoint, NoteSigner, NoteVerifier, open_checkpoint, open_note

# the example in c2sp.org/signed-note ("Verifier keys")
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = ("This is an example message.\n\n\u2014 example.com/foo "
             "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")


def signer(name: str = "kyso.example/log") -> NoteSigner:
    key = Ed25519PrivateKey.generate()
    return NoteSigner(name, note.raw_ed25519(key.public_key()), key.sign)


def test_the_spec_example_verifies() -> None:
    v = NoteVerifier.parse(SPEC_VKEY)
    assert v.vkey == SPEC_VKEY and v.key_id.hex() == "530d903a"
    parsed, sigs = open_note(SPEC_NOTE, [v])
    assert parsed.text == "This is an example message.\n" and len(sigs) == 1
    assert parsed.encode() == SPEC_NOTE


def test_the_spec_example_altered_is_refused() -> None:
    v = NoteVerifier.parse(SPEC_VKEY)
    with pytest.raises(LogVerificationError, match="does not verify"):
        open_note(SPEC_NOTE.replace("example message", "exemple message"), [v])


def test_sign_and_open_a_checkpoint() -> None:
    s = signer()
    cp = Checkpoint("kyso.example/log", 42, bytes(range(32)))
    signed = cp.sign([s])
    assert signed.startswith("kyso.example/log\n42\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n\u2014 kyso.example/log ")
    got, text = open_checkpoint(signed, NoteVerifier.parse(s.verifier.vkey))
    assert got == cp and text == signed


def test_unknown_signatures_are_ignored_but_a_bad_known_one_is_fatal() -> None:
    log, witness = signer(), signer("witness.example/w1")
    signed = note.sign_note("body\n", [log, witness])
    open_note(signed, [log.verifier])  # the witness line is ignored
    other = signer()  # same name, another key: its ID differs, so it is unknown, and nothing verifies
    with pytest.raises(LogVerificationError, match="no signature by a trusted key"):
        open_note(signed, [other.verifier])
    forged = note.Note("body\n", (note.NoteSignature(log.name, log.key_id, bytes(64)),)).encode()
    with pytest.raises(LogVerificationError, match="does not verify"):
        open_note(forged, [log.verifier])


def test_a_checkpoint_for_another_origin_is_refused() -> None:
    s = signer("kyso.example/log")
    signed = Checkpoint("other.example/log", 1, bytes(32)).sign([s])
    with pytest.raises(LogVerificationError, match="not 'kyso.example/log'"):
        open_checkpoint(signed, s.verifier)


@pytest.mark.parametrize("body", [
    "o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",  # leading zero
    "o\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    "o\n1\nAAAA\n",  # short root
    "o\n1\n",
    "\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n",  # empty extension line
])
def test_malformed_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(LogFormatError):
        Checkpoint.parse(body)


@pytest.mark.parametrize("text", [
    "no blank line\n\u2014 a AAAAAAA=\n", "t\n\n", "t\n\n\u2014 a AAAAAAA=", "t\n\n\u2014 a+b AAAAAAA=\n",
    "t\x01\n\n\u2014 a AAAAAAA=\n", "t\n\n- a AAAAAAA=\n", "t\n\n\u2014 a AAA\n", b"t\xff\n\n\xe2\x80\x94 a AAAAAAA=\n",
])
def test_malformed_notes_are_refused(text: str | bytes) -> None:
    with pytest.raises(LogFormatError):
        note.parse_note(text)


def test_verifier_keys_are_checked() -> None:
    s = signer()
    vkey = s.verifier.vkey
    name, kid, key = vkey.split("+", 2)
    # another case of the same hex digits: a key ID of digits only has none, so one digit becomes "A"
    recased = kid.upper() if kid != kid.upper() else "A" + kid[1:]
    for bad in (f"{name}+{kid}", f"{name}+00000000+{key}", f"other+{kid}+{key}", f"{name}+{kid}+AQ==",
                f"{name}+{recased}+{key}"):
        with pytest.raises(LogFormatError):
            NoteVerifier.parse(bad)
