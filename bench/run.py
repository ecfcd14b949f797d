"""Entry point of `make bench`: ``.venv/bin/python -m bench.run [--quick]``.

Measures, each beside the raw library in the same run:
  1. certificates issued per second in process (soft-keystore key generation, and from a CSR);
  2. OCSP responses per second over HTTP from a local load generator (pre-produced and signed on
     demand) and in process;
  3. the time to build a full CRL with 100,000 revoked entries;
  4. OCSP lookup time with 1,000,000 revoked rows in SQLite, against the same lookups with 1,000;
  5. signatures per second through hsm.KeyStore (soft, PKCS#11 on SoftHSM2, Vault on OpenBao);
  6. PDF documents signed per second (PAdES B-B / B-LT) in process and over HTTP, beside raw pyHanko;
  7. verification; 8. the rate limit's cost per request, beside an in-memory bucket; 9. the offline-seal QR
  code's version and build time per document type; 10. transparency-log entries sequenced per second beside
  raw SHA-256, and signing with the log on and off.
Prints a table and writes docs/benchmarks.md. The keystore figures are a block of their own in that
file: `--only keystores` replaces only that block and keeps the rest of the file as it was; any
other selection rewrites the file from the sections it ran (keeping the last keystore block when
keystores were not run).
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
import warnings
from pathlib import Path

from .common import ROOT_DIR, Profiler, Results, machine_info, postgres_problem, postgres_version, say

SECTIONS = ("issue", "ocsp", "crl", "scale", "keystores", "signing", "verify", "limits", "qr", "tlog")

FULL = dict(issue_n=100, issue_raw=2000, issue_repeats=5,
            ocsp_certs=1000, ocsp_inproc=1000, ocsp_raw=3000, ocsp_repeats=5, warmup=2.0, duration=8.0,
            crl_entries=100_000, crl_repeats=3, scale_sizes=[1_000, 1_000_000], scale_samples=200,
            sign_n=40, sign_raw=20, sign_raw_lt=6, sign_repeats=5, sign_http_duration=8.0, sign_threads=4, sign_batch=10,
            verify_n=40, verify_repeats=5, limits_n=2000, limits_repeats=5, qr_n=100, qr_repeats=5,
            tlog_entries=20_000, tlog_batch=4096, tlog_sign=30, tlog_repeats=5)
QUICK = dict(issue_n=30, issue_raw=600, issue_repeats=3,
             ocsp_certs=200, ocsp_inproc=300, ocsp_raw=1000, ocsp_repeats=3, warmup=1.0, duration=3.0,
             crl_entries=10_000, crl_repeats=3, scale_sizes=[1_000, 100_000], scale_samples=200,
             sign_n=15, sign_raw=8, sign_raw_lt=3, sign_repeats=3, sign_http_duration=3.0, sign_threads=4, sign_batch=10,
             verify_n=15, verify_repeats=3, limits_n=500, limits_repeats=3, qr_n=30, qr_repeats=3,
             tlog_entries=5_000, tlog_batch=4096, tlog_sign=12, tlog_repeats=3)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs, for iteration")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--no-postgres", action="store_true", help="SQLite only, even if PostgreSQL is reachable")
    ap.add_argument("--concurrency", type=int, default=32, help="HTTP connections of the load generator (32)")
    ap.add_argument("--duration", type=float, help="seconds measured per HTTP mode (8; quick 3)")
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw",
                    help="load generator: raw asyncio HTTP/1.1 (default, ~20x less CPU) or httpx.AsyncClient")
    ap.add_argument("--workers", type=int, default=1, help="`kyso serve --workers` for the HTTP runs (1)")
    ap.add_argument("--crl-entries", type=int, help="revoked entries in the CRL figure (100,000; quick 10,000)")
    ap.add_argument("--scale-rows", type=int, help="revoked rows in the OCSP lookup figure (1,000,000; quick 100,000)")
    ap.add_argument("--profile", type=Path, metavar="DIR", help="write cProfile .pstats of kyso's measured code to DIR")
    ap.add_argument("--output", type=Path, default=ROOT_DIR / "docs" / "benchmarks.md", help="report file")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write the report file")
    args = ap.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    return args


def method_notes(args: argparse.Namespace, sizes: dict, postgres: bool) -> list[str]:  # type: ignore[type-arg]
    notes = {
        "all": "One benchmark process; every kyso instance is fresh (temporary data folder, migrated database, soft "
        "keystore, the test hierarchy of tests/helpers/db.py: root CA P-384, issuing CA and OCSP responders P-256). "
        "Rates are medians of interleaved rounds (kyso and raw alternate, so background noise hits both).",
        "issue": f"1. Issuance: `pki.issuance.issue` with profile `specialist` (commune 00004), {sizes['issue_n']} "
        f"certificates per round × {sizes['issue_repeats']} rounds; server-side P-256 key generation in the soft "
        "keystore, and from distinct P-256 CSRs made beforehand. Raw: `CertificateBuilder` with the same subject, "
        "issuer and extensions as a kyso certificate, `sign` with an in-memory P-256 key, DER "
        f"({sizes['issue_raw']} per round); a second raw variant also generates the subject key. "
        + ("SQLite and PostgreSQL (private schema on the local server)." if postgres
           else "SQLite only (PostgreSQL not measured)."),
        "ocsp": f"2. OCSP: {sizes['ocsp_certs']:,} certificates issued from CSRs (5% then revoked) in a SQLite data "
        "folder; `python -m api.cli serve --port P` started as tests/helpers/servers.py's LiveServer does (KYSO_HOME, "
        f"KYSO_DATABASE_URL, KYSO_SOFT_MASTER_KEY, KYSO_BASE_URL), {args.workers} worker"
        + (", then again with `--workers 2`" if not args.quick and args.workers == 1 else "")
        + "; its log goes to a file (uvicorn logs every request); other settings are kyso's defaults (e.g. "
        "KYSO_OCSP_CACHE_CHECK_SECONDS, where the route has a per-worker answer cache). "
        "First, every pre-produced request once on the fresh server (`cache cold`); then the steady-state runs"
        + (" (before those, the 2-worker server gets two more passes on new connections, since keep-alive pins "
           "a connection to one worker)" if not args.quick and args.workers == 1 else "") + ". "
        f"Load: {args.concurrency} asyncio tasks on uvloop, one keep-alive connection each, closed loop, "
        f"{sizes['warmup']:.0f} s warm-up then {sizes['duration']:.0f} s measured per mode (connections opened "
        "one after another), "
        + ("with a minimal HTTP/1.1 client on asyncio streams (bench/loadgen.py): httpx.AsyncClient itself "
           "needs about a core at 32 connections on this machine and starves the server it shares the cores "
           "with (one httpx run is listed for reference). " if args.client == "raw" else
           "with httpx.AsyncClient (its own CPU use is large at high concurrency). ")
        + "Every response is parsed and checked (HTTP 200, OCSP successful, nonce echoed only when signed on "
        "demand, GET answers cacheable only when pre-produced). Pre-produced = SHA-1 CertID, no nonce; on "
        "demand = a 16-byte nonce. The load generator shares the 2 cores with the server (CPU columns), so the "
        "HTTP figures are a lower bound for a dedicated node. `GET /healthz` (a route doing nothing, declared "
        "with a plain `def`, so FastAPI runs it in its thread pool) is a reference for the framework's cost. "
        "In process: a transaction + `ocsp.answer` per request (the database path; no answer cache). Raw: `OCSPResponseBuilder` (by hash, responder certificate included, "
        "nonce) + `sign` with an in-memory P-256 key + DER.",
        "crl": f"3. CRL: {sizes['crl_entries']:,} revoked rows bulk-inserted (an `insert(Certificate)` compiled by "
        "SQLAlchemy, executemany; random 159-bit serials, revocation dates in the past, a mix of reasons of "
        "which 10% unspecified, a tiny placeholder DER), then `crl.publish(delta=False)` timed in one "
        "transaction including commit; " + ("SQLite and PostgreSQL. " if postgres else "SQLite. ")
        + "Raw: the same number of `RevokedCertificateBuilder` entries (built inside the timing, as any caller "
        "must) with the same reasons and CRL extensions, signed with an in-memory P-256 key, DER; the list "
        "passed to the `CertificateRevocationListBuilder` constructor, and (measured once) the documented "
        "`add_revoked_certificate` loop, which copies the list on every call.",
        "scale": f"4. OCSP at scale: {', '.join(f'{n:,}' for n in sizes['scale_sizes'])} revoked rows "
        "bulk-inserted into SQLite, each with a stored pre-produced response (a copy of a real signed one) "
        f"except the on-demand sample; median of {sizes['scale_samples']} `ocsp.answer` calls (in a "
        "transaction each, after 20 warm-up calls) for (a) serials with a stored response and (b) revoked "
        "serials without one (signed on demand), the databases measured in 4 interleaved rounds. Baseline: the "
        "same lookups with 1,000 rows.",
        "keystores": "5. Keystores: see the Keystores section above (its own date, method and target verdicts).",
        "signing": f"6. Signing: a 1-page document (signing/sample.py, Vietnamese text, embedded Liberation Serif "
        "subset) and a generated 50-page one (~1.5 MB of uncompressed text); credentials with keys in the soft "
        "keystore (EC P-256, RSA-2048), document type dossier-result. kyso: `container.signing.sign` in process "
        f"({sizes['sign_n']} signatures per round × {sizes['sign_repeats']} interleaved rounds; each one a registry "
        "record, a file version and an audit entry), B-LT with kyso's in-process TSA and revocation data from its own "
        "store. Raw (with kyso's library speed-ups of signing/speedups.py switched off): pyHanko `signers.sign_pdf` with `SimpleSigner.load` from PEM files (defaults; a key made with "
        "cryptography, certified by the same kyso issuing CA from a CSR), `PdfSignatureMetadata(field_name='Sig1')`; "
        "visible: a new field with a box and pyHanko's default stamp; B-LT: `embed_validation_info=True`, a fresh "
        "`ValidationContext(trust_roots=[root], allow_fetching=True)` per signature fetching kyso's OCSP/CRL over "
        f"loopback, timestamp from kyso's `POST /tsa` by `HTTPTimeStamper` ({sizes['sign_raw']} raw B-B, "
        f"{sizes['sign_raw_lt']} raw B-LT signatures per round). HTTP: a `kyso serve` (1 worker) on loopback, "
        f"{sizes['sign_threads']} client threads with one keep-alive `httpx.Client` each, closed loop for "
        f"{sizes['sign_http_duration']:.0f} s after one warm-up request each; batch = {sizes['sign_batch']} files per "
        "request; clients and server share the machine's cores. The B-LT ÷ B-B line divides kyso's own times. "
        "When a target is missed, the run adds a cProfile of kyso B-B signatures to the notes. Storage (bench/storage.py): "
        "each file goes through person B-LT (visible) → agency seal B-LT → archive timestamp B-LTA (3 versions), "
        "documents alternately stored as appended tails (now) and as whole copies of every version (before); bytes "
        "the document's blobs take, and the median time of each version's registry transaction.",
        "verify": f"7. Verification: {sizes['verify_n']} distinct documents per level (the 1-page sample signed "
        "separately by one kyso specialist credential, EC P-256, invisible), B-B and B-LT, "
        f"{sizes['verify_repeats']} interleaved rounds of raw, kyso warm and kyso cold. kyso: "
        "`container.verifier.verify` (every signature: integrity, chain with revocation from kyso's own store, "
        "timestamp, coverage and level; the registry lookup; the full report with Vietnamese and English "
        "sentences). Warm: caches as a busy service has them; cold: every kyso cache emptied before each "
        "document. Raw: pyHanko `validate_pdf_signature` with a fresh `ValidationContext` per file (B-B: the "
        "kyso root, soft-fail, as the file has no revocation data; B-LT: the file's DSS, hard-fail, no fetching), "
        "run with kyso's library speed-ups switched off (`signing.speedups.disabled`).",
        "limits": f"8. Rate limit: `api.ratelimit.RateLimiter.take` ({sizes['limits_n']} requests from 250 addresses "
        f"per round × {sizes['limits_repeats']} rounds, one thread, a limit never reached), each a short transaction "
        "with one UPSERT on a fresh instance's database; beside an in-memory dict-and-lock token bucket, the "
        "per-process limiter kyso had before (free, but N workers allowed N times the rate).",
        "qr": "9. Offline-seal QR: the five document types with a QR code, realistic seal fields (Vietnamese names "
        "and addresses) behind a 54-character public address, a placeholder 64-byte signature. kyso: "
        "`visible._qr_path` uncached (zxing-cpp, the QR code as PDF path operators), for the KS2 text and the KS1 text of the "
        "same facts; raw: `qrcode` defaults on the KS2 text (all eight masks scored); segno (not a kyso dependency) and bare zxing-cpp when "
        "installed. Median of the per-round means.",
        "tlog": f"10. Transparency log: {sizes['tlog_entries']:,} distinct `document-registered` entries inserted "
        f"as pending rows, then `pki.transparency.service.sequence` in batches of {sizes['tlog_batch']} until none is "
        "left (each batch: indices, entry rows, hash tiles, one Ed25519 checkpoint signed by the soft keystore, one "
        f"transaction), median of {sizes['tlog_repeats']} rounds; raw: `hashlib.sha256(0x00 || entry)` of the same "
        "entries. Signing: B-B, 1-page sample, EC P-256 specialist, SQLite, in process, with the log on (the registry "
        "hook queues an entry in each signature's transaction, a sequencer thread runs every second) and off (the "
        f"hook replaced by a no-op), {sizes['tlog_sign']} signatures per round, interleaved.",
        "end": "Targets come from the team's performance brief (PERFORMANCE.md, outside this repository; its figures are quoted in the targets section). The machine may be shared with other work (other "
        "test runs, databases): the load averages above show how busy it was.",
    }
    return [notes["all"]] + [notes[s] for s in SECTIONS if s in args.sections] + [notes["end"]]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")  # tests/helpers/api.py imports TestClient
    logging.basicConfig(level=logging.WARNING)
    sizes = dict(QUICK if args.quick else FULL)
    if args.duration:
        sizes["duration"] = args.duration
    if args.crl_entries:
        sizes["crl_entries"] = args.crl_entries
    if args.scale_rows:
        sizes["scale_sizes"] = [1_000, args.scale_rows]
    results = Results(quick=args.quick, started=dt.datetime.now().astimezone())
    results.params["workers"] = args.workers
    machine = machine_info()
    results.mark_load("start")
    say(f"kyso bench{' --quick' if args.quick else ''}: {machine['nproc']} CPUs ({machine['cpu']}), {machine['python']}")
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        say(f"note: load average {load1:.2f} at start — other work is running; figures will be noisy")
        results.notes.append(f"load average was {load1:.2f} at the start: other work shared the CPUs")
    pg = None if args.no_postgres else postgres_problem()
    backends = ["sqlite"]
    if args.no_postgres:
        say("PostgreSQL skipped (--no-postgres)")
    elif pg is None:
        backends.append("postgresql")
        machine["postgres"] = postgres_version()
    else:
        say(f"PostgreSQL not reachable ({pg}); SQLite only")
        results.notes.append(f"PostgreSQL was not reachable, SQLite only: {pg}")
    profiler = Profiler(args.profile)
    t0 = time.perf_counter()

    if "issue" in args.sections:
        from . import issuance

        issuance.run(results, backends, n_kyso=sizes["issue_n"], n_raw=sizes["issue_raw"],
                     repeats=sizes["issue_repeats"], profiler=profiler)
        results.mark_load("after issuance")
    if "ocsp" in args.sections:
        from . import ocsp_http

        ocsp_http.run(results, n_certs=sizes["ocsp_certs"], concurrency=args.concurrency, warmup=sizes["warmup"],
                      duration=sizes["duration"], n_inproc=sizes["ocsp_inproc"], n_raw=sizes["ocsp_raw"],
                      repeats=sizes["ocsp_repeats"], workers=args.workers, client=args.client,
                      httpx_reference=not args.quick,
                      second_workers=None if args.quick or args.workers != 1 else 2, profiler=profiler)
        results.mark_load("after OCSP")
    if "crl" in args.sections:
        from . import crl

        crl.run(results, backends, n_entries=sizes["crl_entries"], repeats=sizes["crl_repeats"], profiler=profiler)
        results.mark_load("after CRL")
    if "scale" in args.sections:
        from . import ocsp_scale

        ocsp_scale.run(results, sizes["scale_sizes"], samples=sizes["scale_samples"], profiler=profiler)
        results.mark_load("end")
    if "keystores" in args.sections:
        from . import keystores

        keystores.run(results, quick=args.quick, profiler=profiler)
        results.mark_load("after keystores")
    if "signing" in args.sections:
        from . import signing

        signing.run(results, backends, n_kyso=sizes["sign_n"], n_raw=sizes["sign_raw"], n_raw_lt=sizes["sign_raw_lt"],
                    repeats=sizes["sign_repeats"], http_duration=sizes["sign_http_duration"],
                    http_threads=sizes["sign_threads"], batch=sizes["sign_batch"], quick=args.quick, profiler=profiler)
        results.mark_load("after signing")
    if "verify" in args.sections:
        from . import verification

        verification.run(results, n_docs=sizes["verify_n"], repeats=sizes["verify_repeats"], profiler=profiler)
        results.mark_load("after verification")
    if "limits" in args.sections:
        from . import limits

        limits.run(results, backends, n=sizes["limits_n"], repeats=sizes["limits_repeats"])
        results.mark_load("after rate limits")
    if "qr" in args.sections:
        from . import qr

        qr.run(results, n=sizes["qr_n"], repeats=sizes["qr_repeats"])
        results.mark_load("after QR")
    if "tlog" in args.sections:
        from . import tlog

        tlog.run(results, backends, n_entries=sizes["tlog_entries"], batch=sizes["tlog_batch"],
                 n_sign=sizes["tlog_sign"], repeats=sizes["tlog_repeats"])
        results.mark_load("after the transparency log")

    say(f"done in {time.perf_counter() - t0:.0f} s")
    from .report import print_table, splice_keystores, splice_section, write_markdown

    print_table(results)
    if args.no_write:
        pass
    elif args.sections == ["keystores"] and args.output.exists():
        splice_keystores(results, machine, args.output)
        say(f"updated the keystore block of {args.output} (the rest of the file is unchanged)")
    elif len(args.sections) == 1 and args.sections[0] in ("signing", "verify") and args.output.exists():
        splice_section(results, machine, args.output, args.sections[0],
                       method_notes(args, sizes, "postgresql" in backends)[:-1])
        say(f"updated the {args.sections[0]} block of {args.output} (the rest of the file is unchanged)")
    else:
        write_markdown(results, machine, args.output, method_notes(args, sizes, "postgresql" in backends))
        say(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
