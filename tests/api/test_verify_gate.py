"""Public verifications are bounded per process: a full gate answers 503 + Retry-After after the queue wait,
a slot that frees in time serves the waiting request, and the gate's bookkeeping survives every path."""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Container
from api.verify_gate import VerifyGate
from signing.errors import VerificationBusy
from tests.helpers.api import meta, sign
from tests.helpers.signing import SpecialistPhone
from tests.helpers.waiting import until

SLOTS, WAIT = 2, 0.5


@pytest.fixture
def gated(pki: Container) -> Iterator[TestClient]:
    settings = pki.settings.model_copy(update={"verify_max_concurrent": SLOTS, "verify_queue_wait_seconds": WAIT,
                                               "verify_time_budget_seconds": 7})
    with TestClient(create_app(dataclasses.replace(pki, settings=settings), scheduler=False),
                    raise_server_exceptions=False) as client:
        yield client


def _gate(client: TestClient) -> VerifyGate:
    return client.app.state.verify_gate  # type: ignore[attr-defined]


class Holders:
    """Threads that each take a gate slot, the way slow verifications do, and keep it until let go."""

    def __init__(self, gate: VerifyGate, n: int) -> None:
        self.gate, self.go = gate, threading.Event()
        held = threading.Barrier(n + 1)

        def hold() -> None:
            with gate.slot():
                held.wait()
                self.go.wait(30)

        self.threads = [threading.Thread(target=hold) for _ in range(n)]
        for t in self.threads:
            t.start()
        held.wait(10)

    def release(self) -> None:
        self.go.set()
        for t in self.threads:
            t.join(10)


def _verify(client: TestClient, pdf: bytes):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/verify", files={"file": ("doc.pdf", pdf, "application/pdf")})


def test_a_full_gate_answers_503_with_retry_after_then_serves_once_free(gated: TestClient, sample_pdf: bytes) -> None:
    gate = _gate(gated)
    assert gate.slots == SLOTS
    holders = Holders(gate, SLOTS)
    try:
        assert gate.busy == SLOTS
        started = time.monotonic()
        r = _verify(gated, sample_pdf)
        waited = time.monotonic() - started
    finally:
        holders.release()
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "verification_busy"
    assert int(r.headers["Retry-After"]) == 7  # a slot turns over within one time budget
    assert waited >= WAIT  # it waited its turn, then gave up (no wall-clock upper bound in make test)
    assert gate.busy == 0
    after = _verify(gated, sample_pdf)
    assert after.status_code == 200, after.text
    assert gate.busy == 0


def test_a_request_waiting_in_line_is_served_when_a_slot_frees(pki: Container, sample_pdf: bytes) -> None:
    settings = pki.settings.model_copy(update={"verify_max_concurrent": 1, "verify_queue_wait_seconds": 20})
    with TestClient(create_app(dataclasses.replace(pki, settings=settings), scheduler=False)) as client:
        gate = _gate(client)
        holders = Holders(gate, 1)
        answer: list[int] = []
        waiting = threading.Thread(target=lambda: answer.append(_verify(client, sample_pdf).status_code))
        waiting.start()
        time.sleep(0.5)
        assert not answer  # still in line behind the holder
        holders.release()
        waiting.join(30)
        assert answer == [200] and gate.busy == 0


def test_the_citizen_upload_is_gated_too(gated: TestClient, specialist: str, client_headers: dict[str, str],
                                         sample_pdf: bytes, phone: SpecialistPhone) -> None:
    signed = sign(gated, client_headers, sample_pdf, meta(specialist), phone)
    assert signed.status_code == 200, signed.text
    document_id = signed.headers["x-document-id"]
    holders = Holders(_gate(gated), SLOTS)
    try:
        r = gated.post(f"/v/{document_id}", files={"file": ("doc.pdf", signed.content, "application/pdf")})
    finally:
        holders.release()
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
    assert "HỆ THỐNG ĐANG BẬN" in r.text
    ok = gated.post(f"/v/{document_id}", files={"file": ("doc.pdf", signed.content, "application/pdf")})
    assert ok.status_code == 200, ok.text


def test_gate_is_first_come_first_served_and_never_leaks_slots() -> None:
    gate = VerifyGate(1, wait_seconds=60, retry_after=1)  # the line's order is tested here, not its patience
    order: list[int] = []
    with ExitStack() as stack:
        stack.enter_context(gate.slot())
        threads = []
        for n in range(3):
            def take(n: int = n) -> None:
                with gate.slot():
                    order.append(n)
            threads.append(threading.Thread(target=take))
            threads[-1].start()
            until(lambda: gate.waiting == len(threads), 30, f"thread {n} to join the line")  # 0, 1, 2 in that order
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2] and gate.busy == 0


def test_a_timed_out_waiter_leaves_the_line_without_taking_a_slot() -> None:
    gate = VerifyGate(1, wait_seconds=0.2, retry_after=3)
    with gate.slot(), pytest.raises(VerificationBusy) as refused, gate.slot():
        pass
    assert refused.value.retry_after == 3 and gate.busy == 0
    with gate.slot():  # the slot came back
        assert gate.busy == 1


def test_too_complex_is_a_clear_422() -> None:
    from api.errors import status_for
    from signing.errors import TooComplex

    error = TooComplex("this PDF has 41 signatures; kyso verifies files with at most 20", signatures=41, limit=20)
    assert status_for(error) == 422 and error.code == "too_complex"
    assert status_for(VerificationBusy("busy", retry_after=2)) == 503
