"""Section 10, the transparency log: entries sequenced per second, beside raw SHA-256 of the same
entries, and signing throughput with the log on (entries queued in each signature's transaction, the
sequencer running every second beside it) and off (nothing queued, no sequencer)."""
from __future__ import annotations

import datetime as dt
import hashlib
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.helpers.signing import CONSENTED

from .common import Figure, Results, interleaved_rates, new_instance, say, workdir

COMMUNE = "00004"
DOC_TYPE = "dossier-result"


def _entries(n: int) -> list[Any]:
    from pki.transparency.entry import Entry, EntryType

    at = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    return [Entry.build(EntryType.DOCUMENT_REGISTERED, time=at, document=f"D{i:011d}", version=1,
                        file_sha256=hashlib.sha256(b"f%d" % i).hexdigest(),
                        signature_sha256=[hashlib.sha256(b"s%d" % i).hexdigest()],
                        signer_sha256="ab" * 32, signer_serial="1A2B3C4D", document_type=DOC_TYPE,
                        commune=COMMUNE) for i in range(n)]


def _append_rate(inst: Any, entries: list[Any], batch: int) -> float:
    """Entries per second through pending rows → ``sequence`` (indices, tiles, one signed checkpoint a batch)."""
    from core.db import transaction
    from pki.transparency import events, service

    with transaction(inst.container.pki.sessions) as session:
        for e in entries:
            events.record(session, e, document_id=e.get("document"))
    t0 = time.perf_counter()
    done = 0
    while done < len(entries):
        done += service.sequence(inst.container.pki, batch=batch, anchor_seconds=None).appended
    return len(entries) / (time.perf_counter() - t0)


def _raw_sha256_rate(entries: list[Any]) -> float:
    encoded = [e.encode() for e in entries]
    t0 = time.perf_counter()
    for e in encoded:
        hashlib.sha256(b"\x00" + e).digest()
    return len(entries) / (time.perf_counter() - t0)


@contextmanager
def _sequencer(inst: Any) -> Iterator[None]:
    """The scheduler's loop, in a thread: one batch a second while signatures run."""
    from pki.transparency import service

    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            service.sequence(inst.container.pki)
            stop.wait(1.0)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def _log_off() -> Iterator[None]:
    """Signing as before the log: the registry hook queues nothing."""
    import signing.create.service as create

    original = create.transparency.record
    create.transparency.record = lambda *a, **k: None
    try:
        yield
    finally:
        create.transparency.record = original


def run(results: Results, backends: list[str], *, n_entries: int, batch: int, n_sign: int, repeats: int) -> None:
    say(f"[10] transparency log: {n_entries:,} entries in batches of {batch}; signing with the log on and off")
    entries = _entries(n_entries)
    for backend in backends:
        with workdir(f"kyso-bench-tlog-{backend}-") as folder:
            inst = new_instance(folder, backend)
            try:
                _append_rate(inst, entries[:200], batch)  # warm-up (and the hierarchy's own entries)
                kyso = statistics.median(_append_rate(inst, entries, batch) for _ in range(repeats))
                raw = statistics.median(_raw_sha256_rate(entries) for _ in range(repeats))
                results.add(Figure("transparency log", f"entries sequenced per second, batches of {batch} ({backend})",
                                   kyso, "entries/s", "raw SHA-256 leaf hashes of the same entries", raw))
                if backend == "sqlite":
                    _signing(results, inst, n_sign, repeats)
            finally:
                inst.close()


def _signing(results: Results, inst: Any, n: int, repeats: int) -> None:
    from pki.issuance import IssueRequest, issue
    from pki.names import SubjectInfo
    from signing.create.sample import sample_document
    from signing.create.service import AppearanceOptions, SignRequest

    credential = issue(inst.container.pki, IssueRequest(
        profile="specialist", subject=SubjectInfo(common_name="Nguyễn Thị Hoa", title="Công chức Tư pháp - Hộ tịch",
                                                  id_number="001190000009"), commune_code=COMMUNE), "bench").credential_id
    request = SignRequest(pdf=sample_document(inst.settings.stamp_font), document_type=DOC_TYPE, commune_code=COMMUNE, credential_id=credential,
                          level="B-B", appearance=AppearanceOptions(visible=False))  # type: ignore[arg-type]

    def sign(_: int) -> bytes:
        return inst.container.signing.sign(request, actor="bench", activation=CONSENTED).pdf

    def on(i: int) -> bytes:
        return sign(i)

    def off(i: int) -> bytes:
        with _log_off():
            return sign(i)

    sign(0)
    with _sequencer(inst):
        rates: dict[str, float] = interleaved_rates({"on": (on, n), "off": (off, n)}, repeats)
    drop = 100 * (1 - rates["on"] / rates["off"])
    results.add(Figure("transparency log", "B-B signatures per second with the log on (SQLite, in process)",
                       rates["on"], "sig/s", "the same with the log off", rates["off"],
                       note=f"drop {drop:.1f}% (target ≤ 5%)"))

