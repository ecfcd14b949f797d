"""kyso's log asking its witnesses (C2SP tlog-witness, client side), and serving what they cosigned.

After the sequencer commits a checkpoint it hands the signed note to ``WitnessPool.submit`` (returns at
once): a background thread asks every configured witness, in parallel, with a bounded timeout, to cosign
it, sending the consistency proof from the size that witness last cosigned (``log_witness_state``; 0 at
first). A 409 carries the witness's own size: the pool retries once from there. A witness that reports a
size above the checkpoint's has seen a bigger tree of this log than the log says it has: a rollback or a
split view, logged as an error. An unreachable or refusing witness never blocks sequencing: it is counted
(``kyso_log_cosignature_requests``) and logged once when its state changes, and asked again next time.

A returned line is kept only if it is a valid ``cosignature/v1`` by that witness's pinned key on exactly this
checkpoint. ``cosigned_checkpoint`` adds the kept lines to the note served at ``/log/checkpoint`` for as long
as that checkpoint is the current one.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import clock, metrics
from core.db import transaction

from .cosignature import CosignerVerifier
from .errors import LogFormatError, LogVerificationError
from .note import Checkpoint, b64, parse_note
from .witness import SIZE_MEDIA_TYPE
from .witness_models import LogWitnessState

log = logging.getLogger("kyso.log.witnesses")

ConsistencyProof = Callable[[int, int], Sequence[bytes]]
"""``(old_size, new_size) -> hashes``: RFC 6962 consistency proof over the log's own tree."""


MAX_ANSWER_BYTES = 64 * 1024  # a few cosignature lines, or a size: far less


class _TooMuch(Exception):
    """A witness's answer too large or too slow."""


class WitnessOutcome(StrEnum):
    COSIGNED = "cosigned"
    UNREACHABLE = "unreachable"  # no answer in time, connection refused
    REFUSED = "refused"  # 4xx/5xx (unknown log, bad signature, inconsistent, a second 409)
    AHEAD = "ahead"  # the witness cosigned a bigger tree than this checkpoint: rollback or split view
    BAD_RESPONSE = "bad_response"  # 200 without a valid cosignature by its pinned key


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the log asks: its submission prefix and its pinned cosigner key."""

    url: str
    verifier: CosignerVerifier

    @classmethod
    def parse(cls, spec: str) -> WitnessEndpoint:
        """``'<URL prefix> <verifier key>'`` as in ``KYSO_LOG_WITNESSES``."""
        parts = spec.split()
        if len(parts) != 2 or not parts[0].startswith(("http://", "https://")):
            raise LogFormatError(f"a witness is '<URL prefix> <verifier key>', not {spec[:80]!r}")
        return cls(parts[0].rstrip("/"), CosignerVerifier.parse(parts[1]))

    @property
    def name(self) -> str:
        return self.verifier.name


def request_body(old_size: int, proof: Sequence[bytes], checkpoint_note: str) -> bytes:
    """An add-checkpoint request body: ``old N``, the proof lines, a blank line, the signed checkpoint."""
    return (f"old {old_size}\n" + "".join(b64(h) + "\n" for h in proof) + "\n" + checkpoint_note).encode()


class WitnessPool:
    """The configured witnesses of kyso's log, their last answers, and one background worker.

    One keep-alive HTTP client for all witnesses (the spec asks for keep-alive); ``client`` replaces it (tests
    hand in another kyso's app) and is then the caller's to close."""

    def __init__(self, sessions: sessionmaker[Session], endpoints: Sequence[WitnessEndpoint], *,
                 timeout: float = 5.0, client: httpx.Client | None = None) -> None:
        names = [e.name for e in endpoints]
        if len(set(names)) != len(names):
            raise ValueError("two configured witnesses share a name")
        self.sessions = sessions
        self.endpoints = tuple(endpoints)
        self.timeout = timeout
        self._own_client = client is None
        self._client = client or httpx.Client(timeout=timeout)
        self._last: dict[str, WitnessOutcome] = {}
        self._lock = threading.Lock()
        self._pending: tuple[str, ConsistencyProof] | None = None
        self._running = False
        self._submitted: str | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kyso-witnesses")

    @classmethod
    def from_settings(cls, sessions: sessionmaker[Session], specs: Sequence[str], timeout: float) -> WitnessPool:
        return cls(sessions, [WitnessEndpoint.parse(s) for s in specs], timeout=timeout)

    @property
    def verifiers(self) -> list[CosignerVerifier]:
        return [e.verifier for e in self.endpoints]

    # -- asking ------------------------------------------------------------------------------------------
    def submit(self, checkpoint_note: str, proof: ConsistencyProof) -> None:
        """Ask the witnesses about this checkpoint in the background; a newer one replaces one still waiting, the
        one asked last is not asked again (so the sequencer may hand over the current checkpoint on every pass)."""
        if not self.endpoints:
            return
        with self._lock:
            if checkpoint_note == self._submitted:
                return
            self._submitted = checkpoint_note
            self._pending = (checkpoint_note, proof)
            if self._running:
                return
            self._running = True
            try:
                self._worker.submit(self._drain)
            except RuntimeError:  # closed (the app is stopping): the next process asks
                self._running = False

    def _drain(self) -> None:
        while True:
            with self._lock:
                job, self._pending = self._pending, None
                if job is None:
                    self._running = False
                    return
            try:
                self.collect(*job)
            except Exception:  # the worker must survive anything: the next checkpoint asks again
                log.exception("asking the witnesses failed")

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        if self._own_client:
            self._client.close()

    def collect(self, checkpoint_note: str, proof: ConsistencyProof) -> dict[str, WitnessOutcome]:
        """Ask every witness now, in parallel; store what they cosigned; each one's outcome."""
        note = parse_note(checkpoint_note)
        cp = Checkpoint.parse(note.text)
        if not self.endpoints:
            return {}
        with ThreadPoolExecutor(max_workers=len(self.endpoints)) as pool:
            outcomes = dict(zip((e.name for e in self.endpoints),
                                pool.map(lambda e: self._ask(e, checkpoint_note, note.text, cp, proof), self.endpoints),
                                strict=True))
        return outcomes

    def _ask(self, endpoint: WitnessEndpoint, checkpoint_note: str, body: str, cp: Checkpoint,
             proof: ConsistencyProof) -> WitnessOutcome:
        try:
            outcome, detail = self._exchange(endpoint, checkpoint_note, body, cp, proof)
        except Exception as exc:  # noqa: BLE001 - one witness's failure must not stop the others
            outcome, detail = WitnessOutcome.BAD_RESPONSE, f"{type(exc).__name__}: {exc}"
        self._note(endpoint, outcome, cp, detail)
        return outcome

    def _exchange(self, endpoint: WitnessEndpoint, checkpoint_note: str, body: str, cp: Checkpoint,
                  proof: ConsistencyProof) -> tuple[WitnessOutcome, str]:
        with transaction(self.sessions, read_only=True) as session:
            row = session.get(LogWitnessState, endpoint.name)
            old = row.size if row is not None else 0
        for attempt in range(2):
            if old > cp.size:
                return WitnessOutcome.AHEAD, f"the witness cosigned size {old}, above this checkpoint's {cp.size}"
            try:
                answer = self._post(endpoint.url + "/add-checkpoint", request_body(old, proof(old, cp.size),
                                                                                  checkpoint_note))
            except httpx.HTTPError as exc:
                return WitnessOutcome.UNREACHABLE, f"{type(exc).__name__}: {exc}"
            except _TooMuch as exc:
                return WitnessOutcome.BAD_RESPONSE, str(exc)
            if answer.status_code == 409 and attempt == 0:
                reported = _reported_size(answer)
                if reported is None:
                    return WitnessOutcome.BAD_RESPONSE, "409 without a text/x.tlog.size body"
                old = reported
                continue
            if answer.status_code != 200:
                return WitnessOutcome.REFUSED, f"HTTP {answer.status_code}: {answer.text[:200]}"
            return self._keep(endpoint, body, cp, answer.text)
        return WitnessOutcome.REFUSED, "a second 409"

    def _post(self, url: str, body: bytes) -> httpx.Response:
        """POST and read at most ``MAX_ANSWER_BYTES`` within ``timeout`` seconds in all (httpx's timeout is per
        read: a witness dripping a byte at a time, or sending gigabytes, would hold the worker or the memory)."""
        start = time.monotonic()
        with self._client.stream("POST", url, content=body, headers={"Accept-Encoding": "identity"}) as answer:
            data = bytearray()
            for chunk in answer.iter_bytes():
                data += chunk
                if len(data) > MAX_ANSWER_BYTES:
                    raise _TooMuch(f"the witness answered more than {MAX_ANSWER_BYTES} bytes")
                if time.monotonic() - start > self.timeout:
                    raise _TooMuch(f"the witness took more than {self.timeout:g} seconds to answer")
        return httpx.Response(answer.status_code, headers=answer.headers, content=bytes(data))

    def _keep(self, endpoint: WitnessEndpoint, body: str, cp: Checkpoint, answer: str) -> tuple[WitnessOutcome, str]:
        """Store the witness's valid cosignature on ``body``; lines by other keys are ignored."""
        try:
            lines = parse_note(body + "\n" + answer).signatures
        except LogFormatError as exc:
            return WitnessOutcome.BAD_RESPONSE, exc.message
        for sig in lines:
            if endpoint.verifier.matches(sig):
                try:
                    endpoint.verifier.verify(body, sig)
                except LogVerificationError as exc:
                    return WitnessOutcome.BAD_RESPONSE, exc.message
                self._store(endpoint.name, cp.size, body, sig.line)
                return WitnessOutcome.COSIGNED, ""
        return WitnessOutcome.BAD_RESPONSE, "no cosignature by the pinned key"

    def _store(self, witness: str, size: int, body: str, line: str) -> None:
        with transaction(self.sessions) as session:
            row = session.get(LogWitnessState, witness)
            if row is None:
                session.add(LogWitnessState(witness=witness, size=size, body=body, cosignature=line,
                                            updated_at=clock.now()))
            elif size >= row.size:  # a late answer about an older checkpoint never moves it back
                row.size, row.body, row.cosignature, row.updated_at = size, body, line, clock.now()

    def _note(self, endpoint: WitnessEndpoint, outcome: WitnessOutcome, cp: Checkpoint, detail: str) -> None:
        """Count every answer; log a witness only when its outcome changes (once, not every second)."""
        metrics.LOG_COSIGNATURES.labels(endpoint.name, outcome.value).inc()
        with self._lock:
            before, self._last[endpoint.name] = self._last.get(endpoint.name), outcome
        if outcome is before:
            return
        if outcome is WitnessOutcome.COSIGNED:
            log.info("witness %s cosigns again (size %d)", endpoint.name, cp.size)
        elif outcome is WitnessOutcome.AHEAD:
            log.error("witness %s has cosigned a bigger tree of %s than size %d: the log was rolled back or shown "
                      "in two versions: %s", endpoint.name, cp.origin, cp.size, detail)
        else:
            log.warning("witness %s did not cosign size %d (%s): %s", endpoint.name, cp.size, outcome.value, detail)

    def last_outcomes(self) -> dict[str, WitnessOutcome]:
        with self._lock:
            return dict(self._last)


def _reported_size(answer: httpx.Response) -> int | None:
    if answer.headers.get("content-type", "").split(";")[0].strip() != SIZE_MEDIA_TYPE:
        return None
    text = answer.text
    if not text.endswith("\n") or not text[:-1].isdigit() or len(text) > 21:
        return None
    return int(text[:-1])


def cosigned_checkpoint(session: Session, checkpoint_note: str, witnesses: Sequence[CosignerVerifier]) -> str:
    """The signed checkpoint with every stored cosignature on exactly this checkpoint, by the given witnesses."""
    note = parse_note(checkpoint_note)
    names = {w.name for w in witnesses}
    if not names:
        return checkpoint_note
    present = {s.line for s in note.signatures}
    rows = session.execute(select(LogWitnessState).where(LogWitnessState.witness.in_(names),
                                                         LogWitnessState.body == note.text)).scalars()
    extra = [r.cosignature for r in sorted(rows, key=lambda r: r.witness) if r.cosignature not in present]
    return checkpoint_note + "".join(extra)
