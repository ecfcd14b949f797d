"""kyso as a C2SP tlog witness: POST /witness/add-checkpoint answers per the spec (200, 400, 403, 404, 409,
422), moves its record by compare-and-swap (two requests from one old size: one 200, one 409, on SQLite and
PostgreSQL), and keeps a forked checkpoint as evidence."""
from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.container import Container
from core import audit
from core.audit import AuditEntry
from core.db import transaction
from pki.transparency import note, witness
from pki.transparency.cosignature import CosignerVerifier, cosigner_key_id, verify_cosignatures
from pki.transparency.witness_client import request_body
from pki.transparency.witness_models import WitnessedLog
from tests.helpers.witness import MemoryLog, spec_verify

ORIGIN = "kyso.hanoi.example/log"


def memory_log(salt: str = "", key: Ed25519PrivateKey | None = None) -> MemoryLog:
    key = key or Ed25519PrivateKey.generate()
    return MemoryLog(ORIGIN, note.raw_ed25519(key.public_key()), key.sign, salt=salt)


@pytest.fixture
def log_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def witnessed(container: Container, log_key: Ed25519PrivateKey) -> CosignerVerifier:
    """This kyso witnesses ORIGIN (signed by ``log_key``) and has its witness key; its verifier."""
    row = witness.ensure_key(container.sessions, container.pki.keystores, witness.default_name(container.settings),
                             actor="test")
    witness.add_log(container.sessions, memory_log(key=log_key).verifier.vkey, actor="test")
    return CosignerVerifier(row.name, row.public_key)


@pytest.fixture
def wclient(container: Container, witnessed: CosignerVerifier) -> Iterator[TestClient]:
    with TestClient(create_app(container, scheduler=False), raise_server_exceptions=False) as c:
        yield c


def post(client: TestClient, body: bytes | str) -> tuple[int, str, str]:
    r = client.post("/witness/add-checkpoint", content=body.encode() if isinstance(body, str) else body)
    return r.status_code, r.text, r.headers.get("content-type", "")


def test_cosigns_then_extends_with_a_consistency_proof(wclient: TestClient, witnessed: CosignerVerifier,
                                                       log_key: Ed25519PrivateKey, container: Container) -> None:
    log = memory_log(key=log_key)
    log.grow(5)
    status, text, ctype = post(wclient, request_body(0, [], log.checkpoint()))
    assert (status, ctype) == (200, "text/plain; charset=utf-8"), text
    body = log.checkpoint().split("\n\n")[0] + "\n"
    assert spec_verify(text, witnessed.name, witnessed.public_key, body) > 0
    log.grow(13)
    status, text, _ = post(wclient, request_body(5, log.proof(5, 13), log.checkpoint()))
    assert status == 200, text
    with transaction(container.sessions) as session:
        row = session.get(WitnessedLog, ORIGIN)
        assert row is not None and (row.size, row.root_hash) == (13, log.tree.root())
        assert row.checkpoint == log.checkpoint() + text  # the log's signature and ours, served to monitors
    origin_hash = hashlib.sha256(ORIGIN.encode()).hexdigest()
    served = wclient.get(f"/witness/{origin_hash}/checkpoint")
    assert served.status_code == 200 and served.text == log.checkpoint() + text
    assert wclient.get(f"/witness/{'0' * 64}/checkpoint").status_code == 404
    # the same checkpoint again: consistent with itself, cosigned again
    assert post(wclient, request_body(13, [], log.checkpoint()))[0] == 200


def test_wrong_old_size_is_409_with_the_witness_size(wclient: TestClient, log_key: Ed25519PrivateKey) -> None:
    log = memory_log(key=log_key)
    log.grow(4)
    assert post(wclient, request_body(0, [], log.checkpoint()))[0] == 200
    log.grow(6)
    status, text, ctype = post(wclient, request_body(0, [], log.checkpoint()))
    assert (status, text, ctype) == (409, "4\n", "text/x.tlog.size")
    status, text, ctype = post(wclient, request_body(3, log.proof(3, 6), log.checkpoint()))
    assert (status, text, ctype) == (409, "4\n", "text/x.tlog.size")


def test_unknown_origin_is_404_and_a_bad_log_signature_is_403(wclient: TestClient, log_key: Ed25519PrivateKey) -> None:
    stranger = MemoryLog("other.example/log", note.raw_ed25519(log_key.public_key()), log_key.sign)
    stranger.grow(2)
    assert post(wclient, request_body(0, [], stranger.checkpoint()))[0] == 404
    impostor = memory_log()  # right origin, another key: no signature by a trusted key
    impostor.grow(2)
    assert post(wclient, request_body(0, [], impostor.checkpoint()))[0] == 403
    genuine = memory_log(key=log_key)
    genuine.grow(2)
    cp = genuine.checkpoint()
    text, sig_line = cp.split("\n\n")
    tampered = text.replace("\n2\n", "\n3\n") + "\n\n" + sig_line  # a trusted key's signature that fails
    assert post(wclient, request_body(0, [], tampered))[0] == 403


@pytest.mark.parametrize("body", [
    b"", b"old 0\n", b"old 01\n\nx\n", b"old -1\n\n", b"new 0\n\n", b"old 0\nnot base64!\n\n",
    b"old 0\nAAAA\n\n", b"old 0\n" + b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 64 + b"\n",
    b"old 0\n\nnot a checkpoint\n", b"old 0\n\n\xff\xfe\n\n\xe2\x80\x94 x y\n", b"old 0\n\n" + b"x" * 40_000,
    b"old 99\n\n__CHECKPOINT__",
])
def test_malformed_requests_are_400(wclient: TestClient, log_key: Ed25519PrivateKey, body: bytes) -> None:
    log = memory_log(key=log_key)
    log.grow(3)
    body = body.replace(b"__CHECKPOINT__", log.checkpoint().encode())  # old size above the checkpoint's
    status, text, ctype = post(wclient, body)
    assert status == 400 and ctype.startswith("text/plain"), (status, text)


def cosigned_with_fork(wclient: TestClient, log_key: Ed25519PrivateKey) -> tuple[MemoryLog, MemoryLog]:
    """A log of 8 entries the witness has cosigned, and a fork of the same size signed by the same key."""
    log, fork = memory_log(key=log_key), memory_log("forked", key=log_key)
    log.grow(8)
    fork.grow(8)
    assert post(wclient, request_body(0, [], log.checkpoint()))[0] == 200
    return log, fork


def test_a_fork_or_a_bad_proof_is_422_and_only_a_fork_is_kept_as_evidence(wclient: TestClient, container: Container,
                                                           log_key: Ed25519PrivateKey) -> None:
    log, fork = cosigned_with_fork(wclient, log_key)
    # same size, another root (a split view): the log's key signed both
    assert post(wclient, request_body(8, [], fork.checkpoint()))[0] == 422
    # a bigger tree whose proof does not start from the cosigned one
    fork.grow(12)
    assert post(wclient, request_body(8, fork.proof(8, 12), fork.checkpoint()))[0] == 422
    # a genuine extension with a proof altered
    log.grow(12)
    proof = log.proof(8, 12)
    proof[0] = bytes(32)
    assert post(wclient, request_body(8, proof, log.checkpoint()))[0] == 422
    # a smaller tree: refused (400 if it claims the old size is bigger, 409 otherwise)
    assert post(wclient, request_body(8, [], log.checkpoint(5)))[0] == 400
    assert post(wclient, request_body(5, [], log.checkpoint(5)))[0] == 409
    # the record did not move, and the genuine extension still works
    assert post(wclient, request_body(8, log.proof(8, 12), log.checkpoint()))[0] == 200
    with transaction(container.sessions) as session:
        evidence = session.execute(select(AuditEntry).where(AuditEntry.action == "pki:witness:split-view")
                                   ).scalars().all()
        # only the same-size fork proves a split view on its own; a bad proof is unsigned and proves nothing
        assert len(evidence) == 1
        first = json.loads(evidence[0].details)
        assert first["presented_size"] == 8 and first["checkpoint"] == fork.checkpoint(8)
        assert audit.verify(session).ok


def test_size_zero_must_be_the_empty_tree(wclient: TestClient, log_key: Ed25519PrivateKey) -> None:
    from pki.transparency.note import Checkpoint, NoteSigner

    s = NoteSigner(ORIGIN, note.raw_ed25519(log_key.public_key()), log_key.sign)
    assert post(wclient, request_body(0, [], Checkpoint(ORIGIN, 0, bytes(32)).sign([s])))[0] == 422
    assert post(wclient, request_body(0, [], memory_log(key=log_key).checkpoint(0)))[0] == 200


def test_two_requests_from_one_old_size_one_wins(container: Container, witnessed: CosignerVerifier,
                                                 log_key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race the spec warns about. On PostgreSQL both requests are held after reading the record (old size
    0 matches for both) until both have signed, so only the compare-and-swap can tell them apart; on SQLite
    the write lock taken at BEGIN serialises them. Either way: one 200, one 409, and the record holds the
    winner's tree, never a rollback to the loser's."""
    a, b = memory_log(key=log_key), memory_log(key=log_key)
    a.grow(5)
    b.grow(9)
    store = container.pki.keystores.get()
    if container.engine.dialect.name == "postgresql":
        barrier = threading.Barrier(2, timeout=30)
        real = store.sign_message

        def both_read_then_sign(ref: str, message: bytes) -> bytes:
            barrier.wait()  # both transactions have read size 0 and passed every check
            return real(ref, message)

        monkeypatch.setattr(store, "sign_message", both_read_then_sign)
    results: dict[int, object] = {}

    def run(size: int, log: MemoryLog) -> None:
        try:
            results[size] = witness.add_checkpoint(container.sessions, container.pki.keystores,
                                                   request_body(0, [], log.checkpoint()))
        except witness.OldSizeMismatch as exc:
            results[size] = exc

    threads = [threading.Thread(target=run, args=(5, a)), threading.Thread(target=run, args=(9, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [size for size, r in results.items() if isinstance(r, str)]
    lost = [r for r in results.values() if isinstance(r, witness.OldSizeMismatch)]
    assert len(won) == 1 and len(lost) == 1, results
    assert lost[0].details["size"] in (0, won[0])
    with transaction(container.sessions) as session:
        row = session.get(WitnessedLog, ORIGIN)
        assert row is not None and row.size == won[0]


def test_cli_key_add_log_list(container: Container, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from api import cli
    from api.cli import common

    monkeypatch.setattr(common, "container", lambda: container)
    runner = CliRunner()
    got = runner.invoke(cli.app, ["witness", "key", "--json"])
    assert got.exit_code == 0, got.output
    key = json.loads(got.output)
    assert CosignerVerifier.parse(key["vkey"]).name == key["name"] == "127.0.0.1:8000/witness"
    assert runner.invoke(cli.app, ["witness", "key", "--json"]).output == got.output  # made once
    log = memory_log()
    assert runner.invoke(cli.app, ["witness", "add-log", log.verifier.vkey]).exit_code == 0
    again = runner.invoke(cli.app, ["witness", "add-log", log.verifier.vkey])
    assert again.exit_code != 0
    bad = runner.invoke(cli.app, ["witness", "add-log", key["vkey"]])  # a witness key is not a log key
    assert bad.exit_code != 0
    listed = json.loads(runner.invoke(cli.app, ["witness", "list", "--json"]).output)
    assert [(r["origin"], r["size"]) for r in listed] == [(ORIGIN, 0)]


def test_without_a_witness_key_it_answers_503_and_keeps_nothing(container: Container,
                                                               log_key: Ed25519PrivateKey) -> None:
    witness.add_log(container.sessions, memory_log(key=log_key).verifier.vkey, actor="test")
    log = memory_log(key=log_key)
    log.grow(2)
    with TestClient(create_app(container, scheduler=False), raise_server_exceptions=False) as c:
        r = c.post("/witness/add-checkpoint", content=request_body(0, [], log.checkpoint()))
    assert r.status_code == 503 and r.headers["retry-after"] and "kyso witness key" in r.text
    with transaction(container.sessions) as session:
        row = session.get(WitnessedLog, ORIGIN)
        assert row is not None and row.size == 0 and row.checkpoint is None


def test_the_witness_key_is_made_once(container: Container) -> None:
    first = witness.ensure_key(container.sessions, container.pki.keystores, "w.example/witness", actor="test")
    again = witness.ensure_key(container.sessions, container.pki.keystores, "other.example/witness", actor="test")
    assert (again.name, again.key_ref, again.public_key) == (first.name, first.key_ref, first.public_key)
    with transaction(container.sessions) as session:
        made = session.execute(select(AuditEntry).where(AuditEntry.action == "pki:witness-key:create")).scalars()
        assert len(list(made)) == 1


# -- attacks by someone without the log's key (review 20) ----------------------------------------------------


def split_views(container: Container) -> int:
    with transaction(container.sessions, read_only=True) as session:
        return int(session.execute(select(func.count()).select_from(AuditEntry)
                                   .where(AuditEntry.action == witness.SPLIT_VIEW)).scalar_one())


def audit_size(container: Container) -> int:
    with transaction(container.sessions, read_only=True) as session:
        return int(session.execute(select(func.count()).select_from(AuditEntry)).scalar_one())


def test_junk_proofs_on_public_checkpoints_write_nothing(wclient: TestClient, container: Container,
                                                          log_key: Ed25519PrivateKey) -> None:
    """Before: each junk proof on a genuine checkpoint became a 'split view' audit record, so anyone could
    flood the audit chain (and page the operator) without the log's key."""
    log = memory_log(key=log_key)
    log.grow(8)
    assert post(wclient, request_body(0, [], log.checkpoint()))[0] == 200
    before = audit_size(container)
    current = log.checkpoint()
    log.grow(12)
    newer = log.checkpoint()
    for _ in range(20):
        assert post(wclient, request_body(8, [bytes(32)], current))[0] == 422  # same tree, a needless proof line
        assert post(wclient, request_body(8, [bytes(32)] * 3, newer))[0] == 422  # a genuine extension, bad proof
    assert audit_size(container) == before and split_views(container) == 0
    assert post(wclient, request_body(8, log.proof(8, 12), newer))[0] == 200  # the record did not move


def test_a_real_fork_is_recorded_once_with_both_notes(wclient: TestClient, container: Container,
                                                      log_key: Ed25519PrivateKey) -> None:
    log, fork = cosigned_with_fork(wclient, log_key)
    for _ in range(5):  # replayed by anyone who saw it: evidence once
        assert post(wclient, request_body(8, [], fork.checkpoint()))[0] == 422
    assert split_views(container) == 1
    with transaction(container.sessions) as session:
        details = json.loads(session.execute(select(AuditEntry.details)
                                             .where(AuditEntry.action == witness.SPLIT_VIEW)).scalar_one())
        assert details["checkpoint"] == fork.checkpoint()
        assert details["cosigned_checkpoint"].startswith(log.checkpoint())  # the other signed root
        assert audit.verify(session).ok


def test_extra_signature_lines_are_not_served_as_the_witness_checkpoint(
        wclient: TestClient, witnessed: CosignerVerifier, log_key: Ed25519PrivateKey) -> None:
    """Before: the lines a sender added were stored and served; a junk line under another trusted witness's
    name and key ID makes every monitor reject the note (a known key's bad signature rejects it)."""
    other_key = Ed25519PrivateKey.generate().public_key()
    other = CosignerVerifier("witness.other.example", note.raw_ed25519(other_key))
    log = memory_log(key=log_key)
    log.grow(3)
    fake = note.NoteSignature(other.name, cosigner_key_id(other.name, other.public_key), bytes(72))
    junk = note.NoteSignature("unknown.example", b"\x00" * 4, b"x" * 64)
    status, line, _ = post(wclient, request_body(0, [], log.checkpoint() + fake.line + junk.line))
    assert status == 200
    served = wclient.get(f"/witness/{hashlib.sha256(ORIGIN.encode()).hexdigest()}/checkpoint").text
    assert served == log.checkpoint() + line
    assert [c.witness for c in verify_cosignatures(served, [witnessed], 1)] == [witnessed.name]


def test_huge_sizes_are_400_not_500(wclient: TestClient, log_key: Ed25519PrivateKey) -> None:
    """Before: a 5,000-digit size made int() raise ValueError: HTTP 500 before any signature was checked."""
    root = note.b64(bytes(32))
    signer = note.NoteSigner(ORIGIN, note.raw_ed25519(log_key.public_key()), log_key.sign)
    for size in ("1" * 5000, str(2**63), "99999999999999999999"):
        unsigned = f"{ORIGIN}\n{size}\n{root}\n\n\u2014 {ORIGIN} {note.b64(bytes(68))}\n"
        assert post(wclient, f"old 0\n\n{unsigned}")[0] == 400, size[:20]
        body = f"{ORIGIN}\n{size}\n{root}\n"
        signed = body + "\n" + note.NoteSignature(ORIGIN, signer.key_id, log_key.sign(body.encode())).line
        assert post(wclient, f"old 0\n\n{signed}")[0] == 400, size[:20]  # even signed by the log
