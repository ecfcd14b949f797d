"""Figure 4: OCSP lookup time with a large number of revoked entries in the database (SQLite)."""
from __future__ import annotations

import gc
import os
import statistics
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as xocsp

from core import clock
from core.db import transaction
from pki import ocsp
from pki.issuance import IssueRequest, issue
from pki.models import OcspResponse
from sqlalchemy import select

from .bulk import insert_revoked
from .common import Figure, Profiler, Results, issuing_ca, new_instance, percentile, say, workdir
from .issuance import COMMUNE, PROFILE, csr_der, subject


def run(results: Results, sizes: list[int], *, samples: int, profiler: Profiler) -> None:
    measured: dict[int, dict[str, float]] = {}
    for n in sizes:
        say(f"[4] OCSP lookups with {n:,} revoked rows in SQLite ({samples} lookups per kind)")
        with workdir("kyso-bench-scale-") as folder:
            inst = new_instance(folder, "sqlite")
            try:
                measured[n] = _measure(inst, n, samples=samples, profiler=profiler, folder=folder)
            finally:
                inst.close()
        gc.collect()
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


def _measure(inst, n: int, *, samples: int, profiler: Profiler, folder) -> dict[str, float]:  # type: ignore[no-untyped-def]
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
    out: dict[str, float] = {"db_mb": db_mb, "insert_s": inserted.seconds}
    for kind, serials, expect_pre in (("pre", inserted.with_response, True), ("demand", inserted.without_response, False)):
        requests = [_request(name_hash, key_hash, s) for s in serials]
        times = []
        with profiler.section(f"ocsp-scale-{n}-{kind}"):
            for k, der in enumerate(requests):
                t0 = time.perf_counter()
                with transaction(sessions) as session:
                    answer = ocsp.answer(ctx, session, der)
                elapsed = time.perf_counter() - t0
                if answer.pre_produced != expect_pre or answer.status != "revoked":
                    raise AssertionError(f"unexpected answer for {serials[k]}: {answer.status}, "
                                         f"pre_produced={answer.pre_produced}")
                if k >= 20:  # the first 20 warm the caches and compiled statements
                    times.append(elapsed)
        times.sort()
        out[kind], out[kind + "_p95"] = statistics.median(times), percentile(times, 95)
        say(f"    {kind:>6}: median {out[kind] * 1000:.2f} ms, p95 {out[kind + '_p95'] * 1000:.2f} ms "
            f"over {len(times)} lookups")
    return out
