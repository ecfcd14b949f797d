"""Helpers for transparency-log tests: a log in memory signed by a given key, a cosignature verifier written
from the text of c2sp.org/tlog-cosignature alone (not from kyso's module), and the fixture ``go_cosigcheck``:
Go's golang.org/x/mod/sumdb/note verifying a log signature and cosignatures (registered in the root conftest)."""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pki.transparency.merkle import MemoryTree, consistency_proof
from pki.transparency.note import Checkpoint, NoteSigner, NoteVerifier

from .db import IN_CI


def spec_verify(line: str, name: str, public_key: bytes, body: str) -> int:
    """tlog-cosignature's Ed25519 section, read literally: '— <name> base64(keyID || u64 BE time || sig)',
    keyID = SHA-256(name || 0x0A || 0x04 || key)[:4], message = 'cosignature/v1\\ntime <T>\\n' || body.
    Returns the timestamp; raises ``InvalidSignature`` (or fails an assert) otherwise."""
    assert line.startswith("\u2014 " + name + " ") and line.endswith("\n")
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == hashlib.sha256(name.encode() + b"\n" + b"\x04" + public_key).digest()[:4]
    assert len(raw) == 4 + 8 + 64
    timestamp = int.from_bytes(raw[4:12], "big")
    message = b"cosignature/v1\n" + b"time " + str(timestamp).encode() + b"\n" + body.encode()
    Ed25519PublicKey.from_public_bytes(public_key).verify(raw[12:], message)
    return timestamp


class MemoryLog:
    """A log of ``n`` numbered entries in memory, whose checkpoints ``sign`` signs (a keystore key, say)."""

    def __init__(self, origin: str, public_key: bytes, sign: Callable[[bytes], bytes], *, salt: str = "") -> None:
        self.signer = NoteSigner(origin, public_key, sign)
        self.tree = MemoryTree()
        self.salt = salt

    @property
    def verifier(self) -> NoteVerifier:
        return self.signer.verifier

    def grow(self, n: int) -> None:
        while self.tree.size < n:
            self.tree.append(f"entry {self.tree.size}{self.salt}".encode())

    def checkpoint(self, size: int | None = None) -> str:
        size = self.tree.size if size is None else size
        return Checkpoint(self.signer.name, size, self.tree.root(size)).sign([self.signer])

    def proof(self, old: int, new: int) -> list[bytes]:
        return consistency_proof(old, new, self.tree.subtree)


GOPATH = Path("/usr/share/gocode")
SOURCE = Path(__file__).resolve().parents[1] / "pki" / "transparency" / "cosigcheck"


@pytest.fixture(scope="session")
def go_cosigcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Go's sumdb/note with a cosignature/v1 Verifier (tests/pki/transparency/cosigcheck), built once."""
    go = shutil.which("go")
    if go is None or not (GOPATH / "src/golang.org/x/mod/sumdb/note").is_dir():
        if IN_CI:
            pytest.fail("the Go toolchain and golang-golang-x-mod-dev are required in CI (apt install golang-go "
                        "golang-golang-x-mod-dev)")
        pytest.skip("Go or golang.org/x/mod missing")
    out = tmp_path_factory.mktemp("cosigcheck") / "cosigcheck"
    env = {**os.environ, "GOPATH": str(GOPATH), "GO111MODULE": "off", "GOFLAGS": "",
           "GOCACHE": str(out.parent / "cache")}
    subprocess.run([go, "build", "-o", str(out), "."], cwd=SOURCE, env=env, check=True, timeout=300)
    return out


def go_note_check(checker: Path, tmp_path: Path, text: str, *keys: str) -> subprocess.CompletedProcess[str]:
    """Run the Go checker on a note: exit 0 when the log key (first) and every witness key signed it."""
    path = tmp_path / "note"
    path.write_text(text, encoding="utf-8")
    return subprocess.run([str(checker), str(path), *keys], capture_output=True, text=True, timeout=60)
