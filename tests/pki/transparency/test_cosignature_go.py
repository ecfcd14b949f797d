"""kyso's cosigned checkpoints verified by Go's golang.org/x/mod/sumdb/note (Debian golang-golang-x-mod-dev):
the log's signature by the library itself, the witness's cosignature/v1 by a Verifier plugged into it (see
cosigcheck/main.go). Fails, not skips, when the Go toolchain is missing in CI."""
from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pki.transparency import note
from pki.transparency.cosignature import Cosigner
from tests.helpers.witness import MemoryLog, go_note_check as run


def test_go_verifies_the_log_and_the_witness_and_refuses_forgeries(go_cosigcheck: Path, tmp_path: Path) -> None:
    checker = go_cosigcheck
    log_key, w_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    log = MemoryLog("kyso.hanoi.example/log", note.raw_ed25519(log_key.public_key()), log_key.sign)
    log.grow(7)
    cp = log.checkpoint()
    body = cp.split("\n\n")[0] + "\n"
    w = Cosigner("kyso.hue.example/witness", note.raw_ed25519(w_key.public_key()), w_key.sign)
    cosigned = cp + w.cosign(body, 1_765_000_000).line
    ok = run(checker, tmp_path, cosigned, log.verifier.vkey, w.verifier.vkey)
    assert ok.returncode == 0 and ok.stdout.startswith("ok 2"), ok.stdout
    # the cosignature on a forked body, pasted under the genuine checkpoint: refused
    forged = cp + w.cosign(body.replace("\n7\n", "\n8\n"), 1_765_000_000).line
    bad = run(checker, tmp_path, forged, log.verifier.vkey, w.verifier.vkey)
    assert bad.returncode == 1 and "refused" in bad.stdout, bad.stdout
    # no cosignature at all: the witness is missing
    assert run(checker, tmp_path, cp, log.verifier.vkey, w.verifier.vkey).returncode == 1
