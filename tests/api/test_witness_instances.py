"""Two kyso instances, two databases and homes: B witnesses A's log (another province's kyso, say).

A's log key and B's witness key are keystore keys of their own instance. A asks B through its WitnessPool
(B's app served by a TestClient, over HTTP semantics); B's cosignature is checked by a verifier written
from the spec's text and by Go's sumdb/note; a fork A shows B is refused and kept in B's audit log; an unreachable witness never
raises and is logged once."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from api.app import create_app
from api.container import Container
from core.audit import AuditEntry
from core.db import transaction
from core.settings import Settings
from hsm.interfaces import KeyType
from pki.transparency import note, witness
from pki.transparency.cosignature import Cosigner, CosignerVerifier, verify_cosignatures
from pki.transparency.errors import LogFormatError, LogVerificationError
from pki.transparency.witness_client import WitnessEndpoint, WitnessOutcome, WitnessPool, cosigned_checkpoint
from pki.transparency.witness_models import LogWitnessState
from tests.helpers.db import build_for_test, make_settings
from tests.helpers.witness import MemoryLog, go_note_check, spec_verify

ORIGIN = "kyso.hanoi.example/log"


@pytest.fixture
def instance_a(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    a = build_for_test(request, make_settings(tmp_path / "a" / "home", f"sqlite:///{tmp_path / 'a' / 'kyso.db'}",
                                              base_url="https://kyso.hanoi.example"))
    yield a
    a.engine.dispose()


def keystore_log(c: Container, salt: str = "", ref: str | None = None) -> tuple[MemoryLog, str]:
    """A's log, its checkpoints signed by an Ed25519 key in A's keystore."""
    store = c.pki.keystores.get()
    ref = ref or store.generate(KeyType.ED25519, "log")
    public = note.raw_ed25519(store.public_key(ref))  # type: ignore[arg-type]  # an Ed25519 key: made above
    return MemoryLog(ORIGIN, public, lambda m: store.sign_message(ref, m), salt=salt), ref


@pytest.fixture
def instance_b(container: Container) -> Iterator[tuple[TestClient, CosignerVerifier]]:
    row = witness.ensure_key(container.sessions, container.pki.keystores, "kyso.hue.example/witness", actor="test")
    with TestClient(create_app(container, scheduler=False), raise_server_exceptions=False) as c:
        yield c, CosignerVerifier(row.name, row.public_key)


def test_b_witnesses_a_and_refuses_a_split_view(instance_a: Container, instance_b: tuple[TestClient, CosignerVerifier],
                                                container: Container, go_cosigcheck: Path, tmp_path: Path) -> None:
    b_client, b_key = instance_b
    log, ref = keystore_log(instance_a)
    witness.add_log(container.sessions, log.verifier.vkey, actor="operator-b")  # B's operator pins A's key
    # a generous deadline: this test is about what B signs and refuses, and a loaded CI machine once made B's
    # first answer (in process, its key loaded on demand) miss the 5-second production default
    pool = WitnessPool(instance_a.sessions, [WitnessEndpoint.parse(f"http://testserver/witness {b_key.vkey}")],
                       client=b_client, timeout=60)

    log.grow(5)
    cp5 = log.checkpoint()
    assert pool.collect(cp5, log.proof) == {b_key.name: WitnessOutcome.COSIGNED}
    with transaction(instance_a.sessions, read_only=True) as session:
        served = cosigned_checkpoint(session, cp5, pool.verifiers)
    assert served.startswith(cp5) and served != cp5
    assert [c.witness for c in verify_cosignatures(served, [b_key.vkey], 1)] == [b_key.name]
    note.open_checkpoint(served, log.verifier)  # the log's signature still verifies on the cosigned note
    line = served[len(cp5):]
    assert spec_verify(line, b_key.name, b_key.public_key, cp5.split("\n\n")[0] + "\n") > 0
    go = go_note_check(go_cosigcheck, tmp_path, served, log.verifier.vkey, b_key.vkey)  # Go's note package
    assert go.returncode == 0 and go.stdout.startswith("ok 2"), go.stdout

    log.grow(8)  # A grows; B checks the consistency proof from 5
    cp8 = log.checkpoint()
    assert pool.collect(cp8, log.proof) == {b_key.name: WitnessOutcome.COSIGNED}
    with transaction(instance_a.sessions, read_only=True) as session:
        assert cosigned_checkpoint(session, cp5, pool.verifiers) == cp5  # no longer current: served bare
        assert verify_cosignatures(cosigned_checkpoint(session, cp8, pool.verifiers), [b_key], 1)

    # A, compromised, signs another tree of the same size for somebody else: B refuses it
    fork, _ = keystore_log(instance_a, salt="forked", ref=ref)
    fork.grow(8)
    forked = fork.checkpoint()
    assert forked.split("\n")[:2] == cp8.split("\n")[:2] and forked != cp8
    assert pool.collect(forked, fork.proof) == {b_key.name: WitnessOutcome.REFUSED}
    with transaction(instance_a.sessions, read_only=True) as session, pytest.raises(LogVerificationError):
        # nobody can show a client a cosigned fork
        verify_cosignatures(cosigned_checkpoint(session, forked, pool.verifiers), [b_key], 1)
    # a bigger fork, and a smaller tree than B cosigned: refused as well
    fork.grow(11)
    assert pool.collect(fork.checkpoint(), fork.proof) == {b_key.name: WitnessOutcome.REFUSED}
    assert pool.collect(log.checkpoint(6), log.proof) == {b_key.name: WitnessOutcome.AHEAD}
    direct = b_client.post("/witness/add-checkpoint", content=f"old 6\n\n{log.checkpoint(6)}".encode())
    assert (direct.status_code, direct.text) == (409, "8\n")
    # B kept the same-size fork as evidence (two roots signed for size 8: provable to anyone); the bigger fork
    # is refused but not recorded: with a wrong proof it looks like any public checkpoint sent with junk lines
    with transaction(container.sessions, read_only=True) as session:
        evidence = [json.loads(e.details) for e in session.execute(
            select(AuditEntry).where(AuditEntry.action == "pki:witness:split-view")).scalars()]
    assert [(e["cosigned_size"], e["presented_size"]) for e in evidence] == [(8, 8)]
    assert evidence[0]["checkpoint"] == forked

    # A lost its record of B (a restore): B's 409 tells it the size, and A catches up without a fork
    with transaction(instance_a.sessions) as session:
        session.delete(session.get(LogWitnessState, b_key.name))
    log.grow(10)
    assert pool.collect(log.checkpoint(), log.proof) == {b_key.name: WitnessOutcome.COSIGNED}


def test_an_unreachable_witness_never_raises_and_is_logged_once(instance_a: Container,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    down = CosignerVerifier("down.example/witness", bytes(32))
    pool = WitnessPool(instance_a.sessions, [WitnessEndpoint.parse(f"http://127.0.0.1:9/witness {down.vkey}")],
                       timeout=2)
    log, _ = keystore_log(instance_a)
    log.grow(3)
    with caplog.at_level(logging.WARNING, logger="kyso.log.witnesses"):
        for size in (3, 4, 5):
            log.grow(size)
            assert pool.collect(log.checkpoint(), log.proof) == {down.name: WitnessOutcome.UNREACHABLE}
        pool.submit(log.checkpoint(), log.proof)  # the sequencer's call: returns at once, never raises
        pool.close()  # waits for the background round
        log.grow(6)
        pool.submit(log.checkpoint(), log.proof)  # after close (the app stopping): ignored, never raises
    warnings = [r for r in caplog.records if "down.example/witness" in r.getMessage()]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
    with transaction(instance_a.sessions, read_only=True) as session:
        assert cosigned_checkpoint(session, log.checkpoint(), pool.verifiers) == log.checkpoint()


@pytest.mark.parametrize("answer", ["garbage", "other_key", "other_body", "409_untyped", "409_twice", "500"])
def test_a_lying_or_broken_witness_gives_nothing_to_serve(instance_a: Container, answer: str) -> None:
    """What the log keeps from a witness is only its pinned key's valid cosignature on this very checkpoint."""
    w_key = Ed25519PrivateKey.generate()
    cosigner = Cosigner("w.example/witness", note.raw_ed25519(w_key.public_key()), w_key.sign)
    impostor = Cosigner("w.example/witness", note.raw_ed25519(Ed25519PrivateKey.generate().public_key()),
                        Ed25519PrivateKey.generate().sign)
    log, _ = keystore_log(instance_a)
    log.grow(4)
    body = log.checkpoint().split("\n\n")[0] + "\n"

    def handler(request: httpx.Request) -> httpx.Response:
        if answer == "garbage":
            return httpx.Response(200, text="not a signature line\n")
        if answer == "other_key":  # same name, key not pinned
            return httpx.Response(200, text=impostor.cosign(body, 5).line)
        if answer == "other_body":  # the pinned key, on another checkpoint
            return httpx.Response(200, text=cosigner.cosign(body.replace("\n4\n", "\n5\n"), 5).line)
        if answer == "409_untyped":
            return httpx.Response(409, text="3\n")
        if answer == "409_twice":
            return httpx.Response(409, text="0\n", headers={"Content-Type": "text/x.tlog.size"})
        return httpx.Response(500, text="boom")

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        pool = WitnessPool(instance_a.sessions, [WitnessEndpoint("https://w.example", cosigner.verifier)],
                           client=client)
        outcome = pool.collect(log.checkpoint(), log.proof)[cosigner.name]
    assert outcome in (WitnessOutcome.BAD_RESPONSE, WitnessOutcome.REFUSED)
    with transaction(instance_a.sessions, read_only=True) as session:
        assert cosigned_checkpoint(session, log.checkpoint(), pool.verifiers) == log.checkpoint()


def test_witness_settings_and_endpoints_are_checked() -> None:
    w = CosignerVerifier("w.example/witness", bytes(32))
    assert WitnessEndpoint.parse(f"https://w.example/witness/ {w.vkey}").url == "https://w.example/witness"
    for bad in (f"ftp://w.example {w.vkey}", "https://w.example", f"https://w.example {w.vkey} extra",
                "https://w.example w.example/witness+00000000+AQ" + "A" * 42):
        with pytest.raises(LogFormatError):
            WitnessEndpoint.parse(bad)
    with pytest.raises(ValidationError, match="KYSO_LOG_WITNESSES"):
        Settings(log_witnesses=["ftp://w.example key"])
    with pytest.raises(ValueError, match="share a name"):
        WitnessPool(None, [WitnessEndpoint("https://a", w), WitnessEndpoint("https://b", w)])  # type: ignore[arg-type]  # never reaches the database


def test_submit_asks_in_the_background_once_per_checkpoint(instance_a: Container) -> None:
    w_key = Ed25519PrivateKey.generate()
    cosigner = Cosigner("w.example/witness", note.raw_ed25519(w_key.public_key()), w_key.sign)
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        body = request.content.decode().split("\n\n", 1)[1].split("\n\n")[0] + "\n"
        return httpx.Response(200, text=cosigner.cosign(body, 7).line)

    log, _ = keystore_log(instance_a)
    log.grow(3)
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        pool = WitnessPool(instance_a.sessions, [WitnessEndpoint("https://w.example", cosigner.verifier)],
                           client=client)
        for _ in range(3):  # the sequencer hands over the current checkpoint on every pass
            pool.submit(log.checkpoint(), log.proof)
        pool.close()
    assert len(seen) == 1 and seen[0].startswith(b"old 0\n\n")
    with transaction(instance_a.sessions, read_only=True) as session:
        assert verify_cosignatures(cosigned_checkpoint(session, log.checkpoint(), pool.verifiers), [cosigner.verifier], 1)


class _Endless(httpx.SyncByteStream):
    """An answer that never ends: megabytes at once, or a byte at a time."""

    def __init__(self, piece: bytes, pause: float) -> None:
        self.piece, self.pause = piece, pause

    def __iter__(self) -> Iterator[bytes]:
        while True:
            time.sleep(self.pause)
            yield self.piece


@pytest.mark.parametrize(("piece", "pause"), [(b"x" * (1 << 20), 0.0), (b"x", 0.05)], ids=["flood", "drip"])
def test_a_hostile_witness_can_neither_fill_the_memory_nor_hold_the_worker(instance_a: Container,
                                                                          piece: bytes, pause: float) -> None:
    """Before: httpx read the whole answer (a witness sending gigabytes filled the memory), and its timeout is per
    read (a byte now and then held the one background worker, so no witness was asked again)."""
    w_key = Ed25519PrivateKey.generate()
    cosigner = Cosigner("w.example/witness", note.raw_ed25519(w_key.public_key()), w_key.sign)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_Endless(piece, pause))

    log, _ = keystore_log(instance_a)
    log.grow(3)
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        pool = WitnessPool(instance_a.sessions, [WitnessEndpoint("https://w.example", cosigner.verifier)],
                           client=client, timeout=0.5)
        assert pool.collect(log.checkpoint(), log.proof) == {cosigner.name: WitnessOutcome.BAD_RESPONSE}
