"""Figure 2: OCSP responses per second, over HTTP from a local load generator and in process."""
from __future__ import annotations

import os
import random

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as xocsp

from core.db import transaction
from pki import ocsp
from pki.issuance import IssueRequest, issue
from pki.reasons import Reason
from pki.revocation import revoke

from . import raw
from .common import Figure, Profiler, Results, interleaved_rates, issuing_ca, new_instance, say, workdir
from .issuance import COMMUNE, PROFILE, csr_der, subject
from .loadgen import run_load
from .server import BenchServer, free_port


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = None) -> bytes:
    builder = xocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def populate(inst, n_certs: int, revoked_share: float = 0.05):  # type: ignore[no-untyped-def]
    """Issue ``n_certs`` certificates from CSRs (each with its pre-produced response); revoke a few."""
    ctx = inst.container.pki
    certs = []
    for i in range(n_certs):
        row = issue(ctx, IssueRequest(profile=PROFILE, subject=subject(i), commune_code=COMMUNE, csr=csr_der(i)),
                    "bench").certificate
        certs.append(x509.load_der_x509_certificate(row.der))
        if (i + 1) % 250 == 0:
            say(f"    issued {i + 1}/{n_certs}")
    rng = random.Random(1)
    for cert in rng.sample(certs, int(n_certs * revoked_share)):
        revoke(ctx, format(cert.serial_number, "X"), Reason.affiliationChanged, "bench")
    return certs


def run(results: Results, *, n_certs: int, concurrency: int, warmup: float, duration: float, n_inproc: int,
        n_raw: int, repeats: int, workers: int, client: str, httpx_reference: bool, second_workers: int | None,
        profiler: Profiler) -> None:
    say(f"[2] OCSP: populating a SQLite data folder with {n_certs} issued certificates")
    with workdir("kyso-bench-ocsp-") as folder:
        port = free_port()
        inst = new_instance(folder, "sqlite", base_url=f"http://127.0.0.1:{port}")
        try:
            certs = populate(inst, n_certs)
            ca_cert = x509.load_der_x509_certificate(issuing_ca(inst).cert_der)
            plain = [ocsp_request(c, ca_cert) for c in certs]
            with_nonce = [ocsp_request(c, ca_cert, os.urandom(16)) for c in certs for _ in range(4)]
            random.Random(2).shuffle(with_nonce)
            _in_process(results, inst, plain, with_nonce, n_inproc=n_inproc, n_raw=n_raw, repeats=repeats,
                        profiler=profiler)
        finally:
            inst.close()  # the server opens its own connections
        _over_http(results, inst, folder, port, plain, with_nonce, concurrency=concurrency, warmup=warmup,
                   duration=duration, workers=workers, client=client, httpx_reference=httpx_reference,
                   second_workers=second_workers)


def _in_process(results: Results, inst, plain: list[bytes], with_nonce: list[bytes], *, n_inproc: int,  # type: ignore[no-untyped-def]
                n_raw: int, repeats: int, profiler: Profiler) -> None:
    ctx, sessions = inst.container.pki, inst.container.sessions

    def answer(der: bytes) -> ocsp.OcspAnswer:
        with transaction(sessions) as session:  # as api/routes/protocol.py calls it
            return ocsp.answer(ctx, session, der)

    for der in plain[:20]:
        a = answer(der)
        assert a.pre_produced and a.status in ("good", "revoked"), a
    for der in with_nonce[:20]:
        a = answer(der)
        assert not a.pre_produced and a.status in ("good", "revoked"), a
    say(f"[2] OCSP in process: {repeats} interleaved rounds of {n_inproc} ocsp.answer / {n_raw} raw")
    with profiler.section("ocsp-answer"):
        rates = interleaved_rates({
            "raw": (raw.ocsp_signer(nonce=True), n_raw),
            "pre": (lambda i: answer(plain[i % len(plain)]), n_inproc),
            "demand": (lambda i: answer(with_nonce[i % len(with_nonce)]), n_inproc),
        }, repeats)
    section = "2. OCSP in process"
    raw_name = "raw OCSPResponseBuilder build+sign+DER (P-256)"
    how = ("transaction + ocsp.answer, as the route calls it on an answer-cache miss" if hasattr(ctx, "ocsp_cache")
           else "transaction + ocsp.answer, as the route calls it")
    results.add(Figure(section, "ocsp.answer, stored pre-produced response (no nonce)", rates["pre"], "responses/s",
                       raw_name, rates["raw"], note=how))
    results.add(Figure(section, "ocsp.answer, signed on demand (nonce)", rates["demand"], "responses/s", raw_name,
                       rates["raw"], note=how))
    results.params["inproc_pre_over_demand"] = rates["pre"] / rates["demand"]
    results.params["raw_ocsp"] = rates["raw"]


COLD = "pre-produced, cache cold"
PRE, DEMAND, FLOOR = "pre-produced", "signed on demand", "reference: GET /healthz"


def _over_http(results: Results, inst, folder, port: int, plain: list[bytes], with_nonce: list[bytes], *,  # type: ignore[no-untyped-def]
               concurrency: int, warmup: float, duration: float, workers: int, client: str,
               httpx_reference: bool, second_workers: int | None) -> None:
    # "cold": each pre-produced request once on a fresh server (the route's per-worker answer cache,
    # if any, is empty); the later pre-produced runs then measure the steady state.
    plan = [(client, "GET", plain, "cold"), (client, "GET", plain, "pre"), (client, "POST", plain, "pre"),
            (client, "POST", with_nonce, "demand"), (client, "GET", with_nonce, "demand"),
            (client, "GET", [], "healthz")]
    if httpx_reference and client != "httpx":
        plan.append(("httpx", "GET", plain, "pre"))
    _serve(results, inst, folder, port, plan, concurrency=concurrency, warmup=warmup, duration=duration,
           workers=workers)
    if second_workers:
        # Keep-alive pins each connection to one worker: two more passes over every request on new
        # connections, so that each worker has seen (and cached) most of them before measuring.
        _serve(results, inst, folder, free_port(), [
            (client, "GET", plain, "cold"), (client, "GET", plain, "prime"), (client, "POST", plain, "prime"),
            (client, "GET", plain, "pre"), (client, "POST", plain, "pre"), (client, "POST", with_nonce, "demand"),
        ], concurrency=concurrency, warmup=warmup, duration=duration, workers=second_workers)
    main = [r for r in results.http if r.client == client and r.workers == workers]
    by = {(r.mode, r.method): r for r in main}
    p = results.params
    p["http_pre_get"], p["http_pre_post"] = by[(PRE, "GET")].rate, by[(PRE, "POST")].rate
    p["http_demand_get"], p["http_demand_post"] = by[(DEMAND, "GET")].rate, by[(DEMAND, "POST")].rate
    p["http_cold_get"] = by[(COLD, "GET")].rate
    p["http_floor"] = by[(FLOOR, "GET")].rate
    p["http_runs"] = {(r.mode, r.method, r.workers, r.client): r for r in results.http}
    if second_workers:
        more = {(r.mode, r.method): r.rate for r in results.http if r.workers == second_workers}
        p["second_workers"] = second_workers
        p["http_pre_get_2"], p["http_pre_post_2"] = more[(PRE, "GET")], more[(PRE, "POST")]
        p["http_demand_post_2"] = more[(DEMAND, "POST")]
    raw_rate = p.get("raw_ocsp")
    for run in results.http:
        label = f"{run.mode}, {run.method}, {run.concurrency} conns"
        if run.workers != 1:
            label += f", {run.workers} workers"
        if run.client != client:
            label += f" ({run.client} client)"
        results.add(Figure("2. OCSP over HTTP", label, run.rate, "responses/s",
                           "raw OCSPResponseBuilder build+sign+DER (P-256), in process", raw_rate,
                           note=f"p50 {run.p50_ms:.1f} ms, p95 {run.p95_ms:.1f} ms, p99 {run.p99_ms:.1f} ms, "
                                f"{run.errors} errors; server {run.server_cpu:.2f} cores "
                                f"({run.server_ms_per_response:.2f} ms CPU per response), "
                                f"load generator {run.client_cpu:.2f} cores"))


def _serve(results: Results, inst, folder, port: int, plan, *, concurrency: int, warmup: float,  # type: ignore[no-untyped-def]
           duration: float, workers: int) -> None:
    say(f"[2] OCSP over HTTP: `kyso serve --workers {workers}` on port {port}, {concurrency} keep-alive "
        f"connections, {warmup:.0f} s warm-up + {duration:.0f} s per mode")
    server = BenchServer(inst.settings, port, folder / f"server-{port}.log", workers=workers)
    try:
        for kind, method, requests, mode in plan:
            run = run_load(server.url, method, requests, concurrency=concurrency, warmup=warmup, duration=duration,
                           server_pid=server.pid, expect_pre_produced=mode in ("pre", "cold", "prime"), client=kind,
                           fixed_path="/healthz" if mode == "healthz" else None, once=mode in ("cold", "prime"))
            run.mode = {"cold": COLD, "prime": "(priming pass)", "healthz": FLOOR}.get(mode, run.mode)
            run.workers = workers
            if mode == "prime":
                say(f"  priming pass {method}: {run.rate:,.0f} responses/s, {run.errors} errors")
                continue
            results.http.append(run)
            if workers > 1 and run.server_cpu < 0.65 * min(workers, 2):
                results.notes.append(
                    f"{run.mode} {method} with {workers} workers used only {run.server_cpu:.2f} cores of the server: "
                    "the kernel handed most keep-alive connections to one worker, so that figure understates "
                    "what the workers could do together.")
            say(f"  {run.mode:>16} {method:4} ({kind}): {run.rate:8,.0f} responses/s  p50 {run.p50_ms:6.1f} ms  "
                f"p95 {run.p95_ms:6.1f} ms  p99 {run.p99_ms:6.1f} ms  errors {run.errors}  "
                f"server CPU {run.server_cpu:.2f} cores, load generator {run.client_cpu:.2f} cores")
            for sample in run.error_samples:
                say(f"      error: {sample}")
        tracebacks = server.count_in_log("Traceback")
        if tracebacks:
            results.notes.append(f"the server log had {tracebacks} tracebacks during the HTTP runs:\n"
                                 + server.log_tail(15))
    finally:
        server.stop()
