"""Figure 4: OCSP lookup time with a large number of revoked entries in the database (SQLite)."""
from __future__ import annotations

import contextlib
import gc
import os
import statistics
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as xocsp
from sqlalchemy import select

from core import clock
from core.db import transaction
from pki import ocsp
from pki.issuance import IssueRequest, issue
from pki.models import OcspResponse

from .bulk import insert_revoked
from .common import Figure, Profiler, Results, issuing_ca, new_instance, percentile, say, workdir
from .issuance import COMMUNE, PROFILE, csr_der, subject

ROUNDS = 4


def run(results: Results, sizes: list[int], *, samples: int, profiler: Profiler) -> None:
    """Build every database first, then measure them in interleaved rounds, so that a burst of
    background load hits all sizes alike."""
    with contextlib.ExitStack() as stack:
        prepared = {}
        for n in sorted(sizes):
            say(f"[4] OCSP lookups: {n:,} revoked rows in SQLite")
            folder = stack.enter_context(workdir("kyso-bench-scale-"))
            inst = new_instance(folder, "sqlite")
            stack.callback(inst.close)
            prepared[n] = _prepare(inst, n, samples=samples, folder=folder)
        gc.collect()
        say(f"[4] {samples} lookups per kind and size, in {ROUNDS} interleaved rounds (after 20 warm-up lookups)")
        times: dict[tuple[int, str], list[float]] = {(n, k): [] for n in prepared for k in ("pre", "demand")}
        for n, prep in prepared.items():  # warm-up: caches, compiled statements, first page reads
            for kind in ("pre", "demand"):
                _lookups(prep, kind, prep[kind][:20])
        for r in range(ROUNDS):
            for n, prep in prepared.items():
                for kind in ("pre", "demand"):
                    chunk = prep[kind][20:][r::ROUNDS]
                    with profiler.section(f"ocsp-scale-{n}-{kind}-{r}") if r == 0 else contextlib.nullcontext():
                        times[(n, kind)] += _lookups(prep, kind, chunk)
    measured: dict[int, dict[str, float]] = {}
    for n, prep in prepared.items():
        m = measured[n] = {"db_mb": prep["db_mb"], "insert_s": prep["insert_s"]}
        for kind in ("pre", "demand"):
            t = sorted(times[(n, kind)])
            m[kind], m[kind + "_p95"] = statistics.median(t), percentile(t, 95)
            say(f"    {n:>9,} rows, {kind:>6}: median {m[kind] * 1000:.2f} ms, p95 {m[kind + '_p95'] * 1000:.2f} ms "
                f"over {len(t)} lookups")
    small, *big = sorted(sizes)
    for n in big:
        for kind, label in (("pre", "pre-produced response (no nonce)"), ("demand", "revoked, no stored response (signed)")):
            m, s = measured[n], measured[small]
            results.add(Figure(f"4. OCSP lookup, {n:,} revoked rows (SQLite)", f"ocsp.answer median, {label}",
                               m[kind] * 1000, "ms", f"same lookup with {small:,} rows", s[kind] * 1000,
                               higher_is_better=False,
                               note=f"p95 {m[kind + '_p95'] * 1000:.2f} ms vs {s[kind + '_p95'] * 1000:.2f} ms; "
                                    f"DB {m['db_mb']:,.0f} MB; ratio = large / small"))
    results.params["scale"] = measured


def _request(issuer_name_hash: bytes, issuer_key_hash: bytes, serial_hex: str) -> bytes:
    return (xocsp.OCSPRequestBuilder()
            .add_certificate_by_hash(issuer_name_hash, issuer_key_hash, int(serial_hex, 16), hashes.SHA1())
            .build().public_bytes(serialization.Encoding.DER))


def _prepare(inst, n: int, *, samples: int, folder) -> dict:  # type: ignore[no-untyped-def, type-arg]
    ctx, sessions = inst.container.pki, inst.container.sessions
    ca = issuing_ca(inst)
    # A real pre-produced response to copy into the bulk rows' stored responses (realistic size).
    row = issue(ctx, IssueRequest(profile=PROFILE, subject=subject(0), commune_code=COMMUNE, csr=csr_der(0)),
                "bench").certificate
    with transaction(sessions) as session:
        response_der = session.execute(select(OcspResponse.der).where(OcspResponse.serial == row.serial)).scalar_one()
    inserted = insert_revoked(inst.container.engine, ca.id, n, now=clock.now(), response_der=response_der,
                              sample=samples + 20, progress=n >= 200_000)
    db_mb = os.path.getsize(folder / "kyso.db") / 1e6
    say(f"    bulk-inserted {n:,} certificate rows + {n - len(inserted.without_response):,} stored responses "
        f"in {inserted.seconds:.1f} s ({n / inserted.seconds:,.0f} rows/s), database {db_mb:,.0f} MB")
    name_hash, key_hash = ocsp.issuer_hashes(x509.load_der_x509_certificate(ca.cert_der), hashes.SHA1())
    return {"inst": inst, "db_mb": db_mb, "insert_s": inserted.seconds,
            "pre": [(s, _request(name_hash, key_hash, s)) for s in inserted.with_response],
            "demand": [(s, _request(name_hash, key_hash, s)) for s in inserted.without_response]}


def _lookups(prep: dict, kind: str, requests: list[tuple[str, bytes]]) -> list[float]:  # type: ignore[type-arg]
    ctx, sessions = prep["inst"].container.pki, prep["inst"].container.sessions
    times = []
    for serial, der in requests:
        t0 = time.perf_counter()
        with transaction(sessions) as session:
            answer = ocsp.answer(ctx, session, der)
        times.append(time.perf_counter() - t0)
        if answer.pre_produced != (kind == "pre") or answer.status != "revoked":
            raise AssertionError(f"unexpected answer for {serial}: {answer.status}, pre_produced={answer.pre_produced}")
    return times
