"""`make load`: a bounded load test of a production-like kyso over real HTTP on loopback.

Sets up a private PostgreSQL schema (on KYSO_TEST_POSTGRES_URL, default 127.0.0.1:5432/test) and a
temporary data folder with the benchmark's test hierarchy, the demo's signing set-up (a specialist
with PIN + authenticator, an agency seal, kyso's report seal, a scoped client token, the sample PDF),
a few hundred issued certificates with pre-produced OCSP responses and a few signed documents; then
starts `kyso serve --workers N` and drives it with C closed-loop virtual clients (asyncio, one
keep-alive connection each, each from its own address as a reverse proxy would forward it) for a
fixed time. Each client picks its next action by weight: OCSP (GET and POST, pre-produced; POST with
a nonce, signed on demand), the citizen page `/v/{id}`, `POST /api/v1/verify`, and signing: one PDF
with the agency seal, a batch of 10 with an Idempotency-Key, and one PDF with the specialist's
credential and a fresh SAD (PIN + one-time code, authorized in this process as the specialist's
phone would).

Reports requests, throughput and p50/p95/p99 latency and errors per endpoint (rich table, `--json`),
writes docs/benchmarks-load.md beside the single-process figures of docs/benchmarks.md, tears
everything down (server, schema, folder) even on Ctrl-C, and exits 1 if any request failed.

    .venv/bin/python -m bench.load [--clients 200] [--duration 60] [--workers 2] [--json FILE|-]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import datetime as dt
import json
import os
import random
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.signing import CONSENTED

from .common import (
    PG_URL,
    ROOT_DIR,
    fmt,
    machine_info,
    new_instance,
    percentile,
    postgres_problem,
    postgres_version,
    process_tree_cpu,
    say,
    self_cpu,
    workdir,
)
from .loadgen import _check as check_ocsp, _Response, get_path, read_response

DOCS = ROOT_DIR / "docs"
BENCHMARKS_MD = DOCS / "benchmarks.md"
LOAD_MD = DOCS / "benchmarks-load.md"
COMMUNE = "00004"
SEAL_TYPE = "certified-copy"  # appearance "copy": an agency seal may sign it alone (no person first)
SPECIALIST_TYPE = "dossier-result"
PIN = "271828"
IDLE_REUSE_SECONDS = 4.0  # uvicorn closes a keep-alive connection idle for 5 s (--timeout-keep-alive)


@dataclass(frozen=True)
class Action:
    name: str
    label: str  # what the report calls it: method, path and what is sent
    weight: float


ACTIONS = [
    Action("ocsp_get", "GET /ocsp/{request} (pre-produced)", 34),
    Action("ocsp_post", "POST /ocsp (pre-produced)", 30),
    Action("ocsp_nonce", "POST /ocsp with nonce (signed on demand)", 5),
    Action("citizen", "GET /v/{id} (citizen page)", 12),
    Action("verify", "POST /api/v1/verify (JSON report)", 8),
    Action("sign_seal", "POST /api/v1/sign (agency seal)", 6),
    Action("sign_batch", "POST /api/v1/sign/batch (10 PDFs, seal, Idempotency-Key)", 1.5),
    Action("sign_sad", "POST /api/v1/sign (specialist + SAD)", 2),
]


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # completed in the measured window, OK
    docs: int = 0  # signed documents completed in the window
    errors: int = 0  # every failed request, warm-up and drain included
    reasons: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.errors += 1
        key = re.sub(r"[0-9a-f]{8,}|\d+(\.\d+)? ?(s|ms)\b", "…", reason)[:600]
        self.reasons[key] = self.reasons.get(key, 0) + 1


# -- HTTP client ---------------------------------------------------------------------------------
class Conn:
    """One keep-alive HTTP/1.1 connection (asyncio streams), as bench/loadgen.py's, with extra
    headers: a few microseconds of CPU per request, so the generator leaves the shared cores to kyso."""

    def __init__(self, host: str, port: int, forwarded_for: str) -> None:
        self.host, self.port, self.forwarded_for = host, port, forwarded_for
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> _Response:
        if self.writer is not None and (time.monotonic() - self.last_used > IDLE_REUSE_SECONDS
                                        or (self.reader is not None and self.reader.at_eof())):
            await self.close()  # as HTTP clients do: never send on a connection the server may be closing
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nX-Forwarded-For: {self.forwarded_for}\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        assert self.reader is not None
        try:
            status, resp_headers, content, closing = await read_response(self.reader)
        except ConnectionError:
            await self.close()
            raise
        if closing:
            await self.close()
        self.last_used = time.monotonic()
        return _Response(status, resp_headers, content, method)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def multipart(files: list[tuple[str, tuple[str, bytes, str]]], data: dict[str, str]) -> tuple[bytes, str]:
    """A multipart/form-data body (encoded once by httpx) and its Content-Type."""
    request = httpx.Request("POST", "http://127.0.0.1/", files=files, data=data)
    return request.read(), request.headers["content-type"]


# -- the world the load runs against --------------------------------------------------------------
@dataclass
class World:
    url: str
    token: str
    seal: str
    specialist: str
    ocsp_plain: list[bytes]
    ocsp_nonce: list[bytes]
    pdfs: list[bytes]
    signed: list[bytes]  # for POST /api/v1/verify
    document_ids: list[str]  # for /v/{id}; grows with documents signed during the run
    sads: SadPool  # fresh SADs, each for exactly one PDF (the specialist's phone)
    batch: int


def _sign_meta(credential: str, doc_type: str, **extra: Any) -> dict[str, Any]:
    return {"document_type": doc_type, "commune_code": COMMUNE, "credential_id": credential, **extra}


def setup(folder: Path, port: int, n_certs: int, batch: int, prefill: int,  # type: ignore[no-untyped-def]
          database_url: str | None = None):
    """The instance (schema + folder, or the empty database ``database_url``), the demo signing set-up and
    everything the clients send."""
    from cryptography import x509

    from api import tokens
    from api.cli.serve import prepare_signing_demo
    from core.db import transaction
    from signing.create.service import SignRequest
    from tests.helpers.signing import CORPUS, SpecialistPhone

    from .common import issuing_ca
    from .ocsp_http import ocsp_request, populate

    url = f"http://127.0.0.1:{port}"
    inst = new_instance(folder, "postgresql", base_url=url, database_url=database_url)
    try:
        container = inst.container
        demo = prepare_signing_demo(container, "load")
        name = f"load-client-{uuid.uuid4().hex[:6]}"
        with transaction(container.sessions) as session:  # a commune's software: scoped to its commune
            token = tokens.create(session, name, tokens.Role.client, "load",
                                  scope=tokens.build_scope(session, units=[COMMUNE]))
        phone = SpecialistPhone(container, demo["specialist"], pin=PIN)
        phone_lock = threading.Lock()  # the phone moves this process's clock for each authorization

        def authorize(pdf: bytes) -> str:
            with phone_lock:
                return phone.authorize_for(f"token:{name}", pdf)

        say(f"  issuing {n_certs} certificates (each with its pre-produced OCSP response; 5% revoked)")
        certs = populate(inst, n_certs)
        ca_cert = x509.load_der_x509_certificate(issuing_ca(inst).cert_der)
        plain = [ocsp_request(c, ca_cert) for c in certs]
        with_nonce = [ocsp_request(c, ca_cert, os.urandom(16)) for c in certs for _ in range(3)]
        random.Random(2).shuffle(with_nonce)

        from signing.create.sample import sample_document

        candidates = [sample_document(container.settings.stamp_font), (CORPUS / "fourpages.pdf").read_bytes(),
                      (CORPUS / "pdfa-fpdf2_cjk.pdf").read_bytes()]
        pdfs, signed, ids = [], [], [demo["example"]]
        signed.append((container.settings.home / "sample-signed.pdf").read_bytes())
        for i, pdf in enumerate(candidates):  # each must sign both ways in process, else it is left out
            try:
                for credential, doc_type, extra in (
                        (demo["seal"], SEAL_TYPE, {"seal_fields": {"cert_no": f"SCT-{i}"}}),
                        (demo["specialist"], SPECIALIST_TYPE, {"dossier_number": f"HS-LOAD-{i}"})):
                    result = container.signing.sign(SignRequest(pdf=pdf, **_sign_meta(credential, doc_type, **extra)),
                                                    actor="load", activation=CONSENTED)
                    signed.append(result.pdf)
                    ids.append(result.document_id)
                pdfs.append(pdf)
            except Exception as exc:  # noqa: BLE001 - reported, the file is not used
                say(f"  left out corpus PDF {i}: {type(exc).__name__}: {str(exc)[:120]}")
        say(f"  {len(pdfs)} PDFs to sign ({', '.join(f'{len(p) / 1024:.0f} KB' for p in pdfs)}), "
            f"{len(signed)} signed ones to verify, {len(ids)} documents for the citizen page")
        sads = SadPool(authorize, pdfs, prefill)
        say(f"  {prefill} SADs authorized ahead; more are authorized during the run by a background thread")
        world = World(url, token, demo["seal"], demo["specialist"], plain, with_nonce, pdfs, signed, ids,
                      sads, batch)
        return inst, world, demo
    except BaseException:
        inst.close()
        raise


class SadPool:
    """Specialist SADs made ahead by a background thread (PIN + a fresh one-time code each, bound to one PDF's
    hash; scrypt and the database in this process, ~50-100 ms each, serialized because the phone moves this
    process's clock). In real use the specialist authorizes on their own device before their software sends the
    document, so a signing request's latency starts when it is sent with its SAD; authorizing inline would
    make the load generator, not kyso, the bottleneck."""

    def __init__(self, authorize: Callable[[bytes], str], pdfs: list[bytes], prefill: int) -> None:
        import queue

        self.authorize, self.pdfs = authorize, pdfs
        self.ready: queue.Queue[tuple[bytes, str] | BaseException] = queue.Queue()
        self.stop = threading.Event()
        self.made = 0
        for _ in range(prefill):
            self._make()
        self.thread = threading.Thread(target=self._run, name="sad-pool", daemon=True)
        self.thread.start()

    def _make(self) -> None:
        pdf = self.pdfs[self.made % len(self.pdfs)]
        self.made += 1
        self.ready.put((pdf, self.authorize(pdf)))

    def _run(self) -> None:
        while not self.stop.is_set():
            if self.ready.qsize() >= 50:
                self.stop.wait(0.05)
                continue
            try:
                self._make()
            except BaseException as exc:  # noqa: BLE001 - handed to the client that takes it
                self.ready.put(exc)
                self.stop.wait(1)

    async def take(self, timeout: float) -> tuple[bytes, str]:
        import queue

        deadline = time.monotonic() + timeout
        while True:  # polled: a blocking get would hold one of the event loop's few executor threads
            try:
                item = self.ready.get_nowait()
                break
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no SAD ready within {timeout:.0f} s") from None
                await asyncio.sleep(0.02)
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


# -- the load -------------------------------------------------------------------------------------
OCSP_ACTIONS = ("ocsp_get", "ocsp_post", "ocsp_nonce")


class Load:
    """C closed-loop clients. ``api_urls``: the nodes the clients spread over (client k uses node k mod n; by
    default the world's one URL); ``ocsp_url``: where OCSP goes (a `kyso serve --role ocsp` worker), if apart.
    ``address``: every client sends this one X-Forwarded-For (one client behind many connections: the rate
    limit probe) instead of an address of its own."""

    def __init__(self, world: World, actions: list[Action], clients: int, warmup: float, duration: float,
                 timeout: float, seed: int, *, api_urls: list[str] | None = None, ocsp_url: str | None = None,
                 address: str | None = None, accept: frozenset[int] = frozenset()) -> None:
        self.w, self.actions, self.clients = world, actions, clients
        self.api_urls, self.ocsp_url = api_urls or [world.url], ocsp_url
        self.address, self.accept = address, accept
        self.answered: dict[int, int] = {}  # status → answers in the window (the rate limit probe)
        self.warmup, self.duration, self.timeout, self.seed = warmup, duration, timeout, seed
        self.stats = {a.name: Stats() for a in actions}
        self.auth = {"Authorization": f"Bearer {world.token}"}
        w = world
        self.ocsp_get_paths = [get_path(r) for r in w.ocsp_plain]
        self.verify_bodies = [multipart([("file", ("signed.pdf", pdf, "application/pdf"))], {}) for pdf in w.signed]
        seal_meta = json.dumps(_sign_meta(w.seal, SEAL_TYPE))
        self.seal_bodies = [multipart([("file", (f"d{i}.pdf", pdf, "application/pdf"))], {"metadata": seal_meta})
                            for i, pdf in enumerate(w.pdfs)]
        batch_meta = json.dumps({"defaults": _sign_meta(w.seal, SEAL_TYPE)})
        self.batch_bodies = [multipart([("files", (f"d{k}.pdf", w.pdfs[(i + k) % len(w.pdfs)], "application/pdf"))
                                        for k in range(w.batch)], {"metadata": batch_meta})
                             for i in range(len(w.pdfs))]
        self.window = (0.0, 0.0)
        self.cpu: dict[str, float] = {}
        self.cpu_each: dict[int, float] = {}
        self.pg_peak = 0
        self.harvested = 0

    # one request of each kind: (response, documents signed) or an error raised as ValueError
    async def _do(self, name: str, conn: Conn, rng: random.Random, sad: tuple[bytes, str] | None = None) -> int:
        w = self.w
        if name in ("ocsp_get", "ocsp_post", "ocsp_nonce"):
            if name == "ocsp_get":
                resp = await conn.request("GET", rng.choice(self.ocsp_get_paths))
            else:
                der = rng.choice(w.ocsp_plain if name == "ocsp_post" else w.ocsp_nonce)
                resp = await conn.request("POST", "/ocsp", der, {"Content-Type": "application/ocsp-request"})
            problem = check_ocsp(resp, expect_pre_produced=name != "ocsp_nonce")
            if problem:
                raise ValueError(problem)
            return 0
        if name == "citizen":
            doc = rng.choice(w.document_ids)
            resp = await conn.request("GET", f"/v/{doc}")
            _ok(resp, "text/html")
            if doc.encode() not in resp.content and doc.upper().encode() not in resp.content:
                raise ValueError("the page does not name the document")
            return 0
        if name == "verify":
            body, ctype = rng.choice(self.verify_bodies)
            resp = await conn.request("POST", "/api/v1/verify", body, {"Content-Type": ctype,
                                                                       "Accept": "application/json"})
            _ok(resp, "application/json")
            report = json.loads(resp.content)
            if report.get("genuine") is not True:
                sigs = "; ".join(f"{sg.get('field_name')}: {sg.get('indication')}/{sg.get('sub_indication')} "
                                 f"{str(sg.get('summary'))[:160]}" for sg in report.get("signatures", []))
                raise ValueError(f"a genuine document was not reported genuine: {report.get('indication')}/"
                                 f"{report.get('sub_indication')}; {sigs}")
            return 0
        if name == "sign_seal":
            body, ctype = rng.choice(self.seal_bodies)
            resp = await conn.request("POST", "/api/v1/sign", body, {**self.auth, "Content-Type": ctype})
            _ok(resp, "application/pdf")
            self._harvest(resp.headers.get("x-document-id"))
            return 1
        if name == "sign_batch":
            body, ctype = rng.choice(self.batch_bodies)
            resp = await conn.request("POST", "/api/v1/sign/batch", body, {
                **self.auth, "Content-Type": ctype, "Idempotency-Key": f"load-{uuid.uuid4()}"})
            _ok(resp, "application/json")
            out = json.loads(resp.content)
            if out.get("signed") != w.batch:
                failed = [i.get("error") for i in out.get("items", []) if not i.get("ok")]
                raise ValueError(f"batch signed {out.get('signed')} of {w.batch}: {str(failed[:1])[:200]}")
            return w.batch
        if name == "sign_sad":
            assert sad is not None
            pdf, token = sad
            meta = json.dumps(_sign_meta(w.specialist, SPECIALIST_TYPE, sad=token,
                                         dossier_number=f"HS-{rng.randrange(10**6):06d}"))
            body, ctype = multipart([("file", ("d.pdf", pdf, "application/pdf"))], {"metadata": meta})
            resp = await conn.request("POST", "/api/v1/sign", body, {**self.auth, "Content-Type": ctype})
            _ok(resp, "application/pdf")
            self._harvest(resp.headers.get("x-document-id"))
            return 1
        raise AssertionError(name)

    def _harvest(self, document_id: str | None) -> None:
        if document_id and len(self.w.document_ids) < 2000:
            self.w.document_ids.append(document_id)
            self.harvested += 1

    async def client(self, k: int, start: float) -> None:
        _accepting.set(self.accept)  # this client's task only
        rng = random.Random(self.seed * 100_003 + k)
        names = [a.name for a in self.actions]
        weights = [a.weight for a in self.actions]
        url = httpx.URL(self.api_urls[k % len(self.api_urls)])
        forwarded = self.address or f"10.{k // 62500 % 256}.{k // 250 % 250}.{k % 250 + 1}"
        api = Conn(url.host, url.port or 80, forwarded)
        ocsp = api
        if self.ocsp_url:
            o = httpx.URL(self.ocsp_url)
            ocsp = Conn(o.host, o.port or 80, forwarded)
        window_start, window_end = self.window
        # connections opened one by one over the first part of the warm-up, so that every server worker
        # gets its share (a keep-alive connection stays with the worker that accepted it)
        await asyncio.sleep(k * min(0.02, self.warmup / (2 * self.clients)))
        clock = time.perf_counter
        try:
            while clock() < window_end:
                name = rng.choices(names, weights)[0]
                stats = self.stats[name]
                sad = None
                if name == "sign_sad":  # the specialist's SAD first (not the server's time: see SadPool)
                    try:
                        sad = await self.w.sads.take(self.timeout)
                    except Exception as exc:  # noqa: BLE001
                        stats.fail(f"SAD authorization: {type(exc).__name__}: {exc}")
                        continue
                    if clock() >= window_end:
                        break
                conn = ocsp if name in OCSP_ACTIONS else api
                t0 = clock()
                try:
                    docs = await asyncio.wait_for(self._do(name, conn, rng, sad), self.timeout)
                except RateLimitedAnswer as exc:  # an expected refusal (the rate limit probe): counted, not failed
                    if window_start <= clock() <= window_end:
                        self.answered[exc.status] = self.answered.get(exc.status, 0) + 1
                    continue
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, KeyError, IndexError, httpx.HTTPError) as exc:
                    stats.fail(str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}")
                    await conn.close()
                    continue
                except Exception as exc:  # noqa: BLE001 - e.g. the SAD authorization in process
                    stats.fail(f"{type(exc).__name__}: {exc}")
                    await conn.close()
                    continue
                t1 = clock()
                if window_start <= t1 <= window_end:  # completed inside the window
                    stats.latencies.append(t1 - t0)
                    stats.docs += docs
                    self.answered[200] = self.answered.get(200, 0) + 1
        finally:
            await api.close()
            if ocsp is not api:
                await ocsp.close()

    async def run(self, server_pid: int, *more_pids: int) -> None:
        """Drive the load; CPU seconds of ``server_pid`` (and ``more_pids``: other nodes) and their children
        are read at both ends of the measured window (``cpu``; each pid's own in ``cpu_each``)."""
        clock = time.perf_counter
        start = clock()
        self.window = (start + self.warmup, start + self.warmup + self.duration)

        async def marker() -> None:
            await asyncio.sleep(max(0.0, self.window[0] - clock()))
            pids = (server_pid, *more_pids)
            before = {pid: process_tree_cpu(pid) for pid in pids}
            self.cpu["server0"], self.cpu["self0"] = sum(before.values()), self_cpu()
            self.cpu["load0"] = os.getloadavg()[0]
            await asyncio.sleep(max(0.0, self.window[1] - clock()))
            after = {pid: process_tree_cpu(pid) for pid in pids}
            self.cpu_each = {pid: after[pid] - before[pid] for pid in pids}
            self.cpu["server1"], self.cpu["self1"] = sum(after.values()), self_cpu()
            self.cpu["load1"] = os.getloadavg()[0]

        stop = asyncio.Event()

        async def progress() -> None:
            while not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 10)
                if stop.is_set():
                    return
                done = sum(len(s.latencies) for s in self.stats.values())
                errors = sum(s.errors for s in self.stats.values())
                phase = "warm-up" if clock() < self.window[0] else "measuring" if clock() < self.window[1] else "draining"
                say(f"  {clock() - start:5.0f} s {phase}: {done:,} requests measured, {errors} errors, "
                    f"PostgreSQL connections now {await asyncio.to_thread(pg_connections)}")

        async def pg_sampler() -> None:
            while not stop.is_set():
                with contextlib.suppress(Exception):
                    self.pg_peak = max(self.pg_peak, await asyncio.to_thread(pg_connections))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2)

        helpers = [asyncio.create_task(progress()), asyncio.create_task(pg_sampler())]
        try:
            await asyncio.gather(marker(), *(self.client(k, start) for k in range(self.clients)))
        finally:
            stop.set()
            await asyncio.gather(*helpers, return_exceptions=True)


class RateLimitedAnswer(Exception):
    """An answer the probe expects (429 from the rate limit), not a failure."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


_accepting: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar("accepting", default=frozenset())


def _ok(resp: _Response, content_type: str) -> None:
    if resp.status_code in _accepting.get():
        raise RateLimitedAnswer(resp.status_code)
    if not 200 <= resp.status_code < 300:
        raise ValueError(f"HTTP {resp.status_code}: {resp.text[:200]}")
    if content_type not in resp.headers.get("content-type", ""):
        raise ValueError(f"HTTP {resp.status_code} with {resp.headers.get('content-type')}, expected {content_type}")


_pg_engine = None
sample_url = PG_URL  # the server whose connections are sampled (the two-node mode's private primary)


def pg_connections() -> int:
    """Connections open on the PostgreSQL server now (every database: max_connections is server-wide)."""
    global _pg_engine
    from sqlalchemy import create_engine, text

    if _pg_engine is None:
        _pg_engine = create_engine(sample_url, pool_size=1, max_overflow=0)
    with _pg_engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"))
                   .scalar_one())


def pg_max_connections() -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SHOW max_connections")).scalar_one())
    finally:
        engine.dispose()


# -- results --------------------------------------------------------------------------------------
def summarize(load: Load, args: argparse.Namespace, server_log: str, tracebacks: int) -> dict[str, Any]:
    duration = args.duration
    rows = []
    for action in load.actions:
        s = load.stats[action.name]
        lat = sorted(s.latencies)
        rows.append({
            "endpoint": action.label, "action": action.name, "weight": action.weight, "requests": len(lat),
            "rate": len(lat) / duration, "docs_per_s": s.docs / duration if s.docs else None,
            "p50_ms": percentile(lat, 50) * 1000 if lat else None,
            "p95_ms": percentile(lat, 95) * 1000 if lat else None,
            "p99_ms": percentile(lat, 99) * 1000 if lat else None,
            "errors": s.errors, "error_samples": sorted(s.reasons.items(), key=lambda kv: -kv[1])[:3],
        })
    all_lat = sorted(x for a in load.actions for x in load.stats[a.name].latencies)
    total = {"requests": len(all_lat), "rate": len(all_lat) / duration,
             "docs_per_s": sum(load.stats[a.name].docs for a in load.actions) / duration,
             "p50_ms": percentile(all_lat, 50) * 1000 if all_lat else None,
             "p95_ms": percentile(all_lat, 95) * 1000 if all_lat else None,
             "p99_ms": percentile(all_lat, 99) * 1000 if all_lat else None,
             "errors": sum(load.stats[a.name].errors for a in load.actions)}
    cpu = load.cpu
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "params": {"clients": args.clients, "duration_s": duration, "warmup_s": args.warmup, "workers": args.workers,
                   "batch": args.batch, "certificates": args.certs, "timeout_s": args.timeout, "seed": args.seed,
                   "mix": {a.name: a.weight for a in load.actions}},
        "endpoints": rows, "total": total,
        "server_cpu_cores": (cpu["server1"] - cpu["server0"]) / duration if "server1" in cpu else None,
        "client_cpu_cores": (cpu["self1"] - cpu["self0"]) / duration if "self1" in cpu else None,
        "loadavg": [cpu.get("load0"), cpu.get("load1")],
        "pg_peak_connections": load.pg_peak, "pg_max_connections": args.pg_max, "pg_before": args.pg_before,
        "documents_signed_for_citizen_page": load.harvested,
        "server_tracebacks": tracebacks, "server_log_tail": server_log if tracebacks or total["errors"] else "",
    }


def print_table(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    p = summary["params"]
    table = Table(title=f"kyso under load: {p['clients']} clients, {p['workers']} workers, {p['duration_s']:.0f} s "
                        f"(after {p['warmup_s']:.0f} s warm-up), PostgreSQL")
    for col in ("endpoint", "requests", "req/s", "docs/s", "p50 ms", "p95 ms", "p99 ms", "errors"):
        table.add_column(col, justify="left" if col == "endpoint" else "right")
    for r in summary["endpoints"] + [{"endpoint": "total", **summary["total"]}]:
        table.add_row(r["endpoint"], f"{r['requests']:,}", fmt(r["rate"]), fmt(r.get("docs_per_s")),
                      _ms(r["p50_ms"]), _ms(r["p95_ms"]), _ms(r["p99_ms"]),
                      f"[red]{r['errors']}[/]" if r["errors"] else "0")
    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(table)
    console.print(f"server CPU {summary['server_cpu_cores']:.2f} cores, load generator {summary['client_cpu_cores']:.2f}"
                  f" cores; PostgreSQL connections peak {summary['pg_peak_connections']} of max "
                  f"{summary['pg_max_connections']}; server tracebacks {summary['server_tracebacks']}")
    for r in summary["endpoints"]:
        for reason, n in r["error_samples"]:
            console.print(f"[red]error[/] {r['action']} ×{n}: {reason}", markup=True, highlight=False)


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:,.1f}"


def server_problems(log: Path) -> list[dict[str, Any]]:
    """The server log's warnings and errors that carry a traceback (JSON log lines), grouped: the message,
    the exception's last line and the deepest frame in kyso's own code."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if '"exception"' not in line and '"exc_info"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            trace = str(entry.get("exception") or entry.get("exc_info") or "")
            lines = [x for x in trace.splitlines() if x.strip()]
            frames = [x.strip() for x in lines if x.strip().startswith("File ") and str(ROOT_DIR) in x
                      and "/.venv/" not in x]
            last = lines[-1].strip() if lines else ""
            kyso_frame = frames[-1].replace(str(ROOT_DIR) + "/", "") if frames else ""
            key = (str(entry.get("logger")), re.sub(r"[0-9a-f]{12,}", "…", str(entry.get("message")))[:300], last[:300])
            group = groups.setdefault(key, {"logger": key[0], "message": key[1], "exception": key[2],
                                            "kyso_frame": kyso_frame, "count": 0,
                                            "first": entry.get("ts")})
            group["count"] += 1
    return sorted(groups.values(), key=lambda g: -g["count"])


# -- the markdown -----------------------------------------------------------------------------------
def single_process_figures(text: str) -> dict[str, tuple[float, str]]:
    """The dedicated (one endpoint at a time) HTTP figures of docs/benchmarks.md, 1 worker and, where
    measured, 2 workers: {key: (value, what)}."""
    found: dict[str, tuple[float, str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        # OCSP detail table: mode | method | client | workers | connections | responses/s | p50 | p95 | p99 | …
        if len(cells) >= 9 and cells[2] == "raw" and cells[3].isdigit():
            mode, method, workers = cells[0], cells[1], int(cells[3])
            key = {("pre-produced", "GET"): "ocsp_get", ("pre-produced", "POST"): "ocsp_post",
                   ("signed on demand", "POST"): "ocsp_nonce"}.get((mode, method))
            if key:
                found.setdefault(f"{key}@{workers}", (_num(cells[5]), f"{mode} {method}, {cells[4]} conns, "
                                                                      f"{workers} worker{'s' if workers > 1 else ''}"))
        if len(cells) >= 3 and cells[1].endswith("docs/s"):
            value = _num(cells[1].split()[0])
            if cells[0] == "POST /api/v1/sign, B-B":
                found.setdefault("sign@1", (value, "POST /api/v1/sign, B-B, 4 client threads, 1 worker (SQLite)"))
            elif cells[0].startswith("POST /api/v1/sign/batch"):
                found.setdefault("batch@1", (value, cells[0] + ", 4 client threads, 1 worker (SQLite)"))
            elif cells[0] == "POST /api/v1/sign, B-LT":
                found.setdefault("sign_lt@1", (value, "POST /api/v1/sign, B-LT, 4 client threads, 1 worker (SQLite)"))
            elif cells[0] == "verify(), B-LT, warm caches":
                found.setdefault("verify_lt", (value, "verify() in process, B-LT, warm caches (no HTTP)"))
    return found


def _num(s: str) -> float:
    return float(re.sub(r"[^0-9.]", "", s) or "nan")


COMPARISON_CAVEATS = {
    "sign_seal": "invisible there; here the certified-copy stamp with its QR code, B-LT, PostgreSQL",
    "sign_batch": "B-B invisible there; here B-LT with the certified-copy stamp, PostgreSQL",
    "sign_sad": "B-B invisible there; here B-T with the person stamp and QR code, PostgreSQL",
    "verify": "in process there; here over HTTP, mixed B-LT and B-T files",
}
POOL_PER_WORKER = 30  # core/db.py make_engine: pool_size=10 + max_overflow=20 per process (PostgreSQL)


def markdown(summary: dict[str, Any], machine: dict[str, str], pg_version: str, command: str) -> str:
    p = summary["params"]
    single = single_process_figures(BENCHMARKS_MD.read_text("utf-8")) if BENCHMARKS_MD.exists() else {}
    rows = {r["action"]: r for r in summary["endpoints"]}
    t = summary["total"]
    lines = [
        "# kyso under load (`make load`)", "",
        f"Generated by `make load` (`{command}`). Do not edit by hand: rerun it. Not part of `make test`.",
        "The single-process figures it compares with are in [benchmarks.md](benchmarks.md) (`make bench`).", "",
        f"- **Date**: {summary['date']}",
        f"- **Machine**: {machine['nproc']} CPUs, {machine['cpu']}, {machine['memory']} RAM, Linux {machine['kernel']} "
        "(the load generator, the server workers and PostgreSQL share these cores)",
        f"- **Software**: {machine['python']}, PostgreSQL {pg_version}; {machine['libraries']}",
        f"- **kyso**: commit {machine['commit']}",
        f"- **Parameters**: {p['clients']} concurrent virtual clients, `kyso serve --workers {p['workers']}` on "
        f"PostgreSQL (a private schema), {p['warmup_s']:.0f} s warm-up then {p['duration_s']:.0f} s measured; "
        f"batches of {p['batch']}; {p['certificates']} certificates for OCSP; request timeout {p['timeout_s']:.0f} s",
        f"- **Load average** (1 min): {summary['loadavg'][0]:.2f} at the start of the window, "
        f"{summary['loadavg'][1]:.2f} at its end",
        f"- **Result**: {t['requests']:,} requests measured, {fmt(t['rate'])} req/s, "
        f"{t['errors']} error{'' if t['errors'] == 1 else 's'} (target: zero) — **{'met' if t['errors'] == 0 else 'NOT met'}**",
        "",
        "## Per endpoint", "",
        "| endpoint | weight | requests | req/s | docs/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["endpoints"]:
        lines.append(f"| {r['endpoint']} | {r['weight']:g} | {r['requests']:,} | {fmt(r['rate'])} | "
                     f"{fmt(r['docs_per_s']) if r['docs_per_s'] else ''} | {_ms(r['p50_ms'])} | {_ms(r['p95_ms'])} | "
                     f"{_ms(r['p99_ms'])} | {r['errors']} |")
    lines.append(f"| **total** | | **{t['requests']:,}** | **{fmt(t['rate'])}** | {fmt(t['docs_per_s'])} | "
                 f"{_ms(t['p50_ms'])} | {_ms(t['p95_ms'])} | {_ms(t['p99_ms'])} | **{t['errors']}** |")
    lines += ["",
              f"Server CPU {summary['server_cpu_cores']:.2f} cores, load generator {summary['client_cpu_cores']:.2f} "
              f"cores during the window. PostgreSQL client connections peaked at {summary['pg_peak_connections']} "
              f"(server-wide, other work included; `max_connections` = {summary['pg_max_connections']}). "
              f"Server tracebacks: {summary['server_tracebacks']}.",
              "",
              f"Connection budget: each worker's engine may open up to {POOL_PER_WORKER} PostgreSQL connections "
              f"(core/db.py: pool_size 10 + max_overflow 20), so {p['workers']} workers may hold "
              f"{p['workers'] * POOL_PER_WORKER} of the server's {summary['pg_max_connections']} (other clients of "
              f"the server had {summary['pg_before']} open before the run); a request that finds its worker's pool "
              "empty waits for a connection, one refused by the server is a 503 `database_unavailable`."]
    errors = [(r["action"], reason, n) for r in summary["endpoints"] for reason, n in r["error_samples"]]
    if errors:
        lines += ["", "Errors (most frequent reasons, as the load generator saw them):", ""]
        lines += [f"- `{a}` ×{n}: {reason.replace('|', '/')}" for a, reason, n in errors]
    if summary.get("server_problems"):
        lines += ["", "Server log entries with a traceback (grouped):", ""]
        lines += [f"- ×{g['count']} (first {g['first']}) `{g['logger']}`: {g['message'].replace('|', '/')} — "
                  f"`{g['exception'].replace('|', '/')}`" + (f", raised under {g['kyso_frame']}" if g["kyso_frame"] else "")
                  for g in summary["server_problems"]]
    if summary["loadavg"][0] and summary["loadavg"][0] > 2.5:
        lines += ["", f"Note: the load average was {summary['loadavg'][0]:.1f} at the start of the window on "
                      f"{machine['nproc']} CPUs: other work shared the machine, and the server got only "
                      f"{summary['server_cpu_cores']:.2f} cores. Absolute rates are low for that reason; "
                      "errors and the latency shape are what this run is for."]
    for note in summary.get("notes", []):
        lines += ["", f"Note: {note}"]

    lines += ["", "## Beside the single-process figures", "",
              "Each figure of `make bench` is one endpoint alone, from 32 (OCSP) or 4 (signing) clients; here every "
              "endpoint shares the same cores with all the others, so an endpoint's rate under the mix is a share "
              "of the machine, not its capacity. The ratio says how much of its dedicated rate an endpoint keeps in "
              "the mix; the total CPU the mix costs is the comparable quantity (last table).", "",
              "| endpoint | under load (req/s; docs/s) | p99 ms under load | single-process figure (benchmarks.md) | "
              "load / single |", "|---|---:|---:|---|---:|"]
    pairs = [("ocsp_get", "ocsp_get@1", "rate"), ("ocsp_post", "ocsp_post@1", "rate"),
             ("ocsp_nonce", "ocsp_nonce@1", "rate"), ("sign_seal", "sign_lt@1", "docs_per_s"),
             ("sign_batch", "batch@1", "docs_per_s"), ("sign_sad", "sign@1", "docs_per_s"),
             ("verify", "verify_lt", "rate")]
    for action, key, attr in pairs:
        r = rows.get(action)
        if r is None:
            continue
        value = r.get(attr) or 0.0
        ref = single.get(key)
        two = single.get(key.replace("@1", "@2")) if "@1" in key else None
        ref_text = f"{fmt(ref[0])}/s — {ref[1]}" if ref else "— (not in benchmarks.md)"
        if ref and action in COMPARISON_CAVEATS:
            ref_text += f" ({COMPARISON_CAVEATS[action]})"
        if two:
            ref_text += f"; {fmt(two[0])}/s with 2 workers"
        ratio = f"{value / ref[0]:.2f}×" if ref and ref[0] else "—"
        lines.append(f"| {r['endpoint']} | {fmt(value)} | {_ms(r['p99_ms'])} | {ref_text} | {ratio} |")
    # the mix as a whole: CPU per request against the dedicated runs' costs
    lines += ["", "| whole mix | value |", "|---|---:|",
              f"| requests/s (all endpoints) | {fmt(t['rate'])} |",
              f"| documents signed/s (single, batch, specialist) | {fmt(t['docs_per_s'])} |",
              f"| server CPU per request (ms, all endpoints) | "
              f"{1000 * summary['server_cpu_cores'] / t['rate']:.2f} |" if t["rate"] else "| server CPU per request | — |"]
    lines += ["", "## Method", "",
              "- Set-up (not measured): a private PostgreSQL schema and a temporary data folder "
              "(bench/common.py `new_instance`: the test hierarchy, soft keystore), the demo's signing set-up "
              "(api/cli/serve.py `prepare_signing_demo`: a specialist, an agency seal, kyso's report seal, the "
              "sample PDF), a client token scoped to commune 00004, the specialist enrolled with PIN + TOTP "
              "(tests/helpers/signing.py `SpecialistPhone`), certificates issued from CSRs with their pre-produced "
              "OCSP responses (5% revoked; bench/ocsp_http.py `populate`), and a few documents signed in "
              "process (the sample and corpus PDFs; by the seal as a certified copy and by the specialist as a "
              "dossier result) for verification and the citizen page.",
              f"- Server: `kyso serve --workers {p['workers']}` (uvicorn, access log on, as in production) on a free "
              "loopback port; `KYSO_TRUSTED_PROXIES=127.0.0.1` and each virtual client sends its own "
              "`X-Forwarded-For` address, as behind a reverse proxy, so the per-address verification rate limit "
              "applies per client and is not tripped by the test itself.",
              "- Clients: one asyncio process (uvloop), each virtual client on its own keep-alive HTTP/1.1 connection "
              "(a minimal client as bench/loadgen.py's, request bodies encoded once by httpx), connections "
              "opened one by one during the warm-up, closed loop: the next request leaves when the answer arrived. "
              "Each request picks an action by weight (table above). Checks: OCSP answers parsed (successful, a "
              "nonce echoed only on demand, GET answers cacheable only when pre-produced); the verification "
              "report says `genuine`; the citizen page is HTML naming the document; signing returns a PDF (and a "
              "batch says all signed). The SAD of a specialist signature is authorized ahead in the load "
              "generator's process (PIN + a fresh TOTP code, bound to the PDF's hash; a background thread keeps a "
              "queue of them), as the specialist's device does before their software sends the document: the "
              "request's latency starts when it is sent with its SAD. Documents signed during the run join the citizen page's targets.",
              "- Measured: requests completed inside the window (throughput = those / window; latency from sending "
              "the request to the last byte of the answer); "
              "errors are every failed request, warm-up and drain included (a non-2xx answer, a failed check, a "
              "timeout or a broken connection). After the window no new request starts; those in flight finish. "
              "Then the server is stopped and the schema dropped."]
    return "\n".join(lines) + "\n"


def link_from_benchmarks() -> None:
    """benchmarks.md is rewritten by a full `make bench`: put the pointer to this file back if it is gone."""
    if not BENCHMARKS_MD.exists():
        return
    text = BENCHMARKS_MD.read_text("utf-8")
    if "benchmarks-load.md" in text:
        return
    pointer = ("\nUnder load (many endpoints at once, hundreds of clients, several workers on PostgreSQL): see "
               "[benchmarks-load.md](benchmarks-load.md), written by `make load`.\n")
    marker = "\n- **Date**"
    at = text.find(marker)
    text = text[:at] + pointer + text[at:] if at >= 0 else text.rstrip("\n") + "\n" + pointer
    BENCHMARKS_MD.write_text(text, encoding="utf-8")


# -- main ---------------------------------------------------------------------------------------------
def parse_mix(spec: str | None) -> list[Action]:
    if not spec:
        return list(ACTIONS)
    weights = {}
    for part in spec.split(","):
        name, _, value = part.partition("=")
        weights[name.strip()] = float(value)
    unknown = set(weights) - {a.name for a in ACTIONS}
    if unknown:
        raise SystemExit(f"unknown actions in --mix: {', '.join(sorted(unknown))}; known: "
                         + ", ".join(a.name for a in ACTIONS))
    return [Action(a.name, a.label, weights.get(a.name, a.weight)) for a in ACTIONS
            if weights.get(a.name, a.weight) > 0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent virtual clients (default 200)")
    parser.add_argument("--duration", type=float, default=60, help="measured seconds (default 60)")
    parser.add_argument("--warmup", type=float, default=10, help="seconds before measuring (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="kyso serve --workers (default 2: two cores)")
    parser.add_argument("--batch", type=int, default=10, help="PDFs per batch request (default 10)")
    parser.add_argument("--certs", type=int, default=200, help="certificates to query by OCSP (default 200)")
    parser.add_argument("--timeout", type=float, default=60, help="per-request timeout in seconds (default 60)")
    parser.add_argument("--sads", type=int, default=100, help="specialist SADs authorized before the run (default 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mix", help="action weights, e.g. 'ocsp_get=50,sign_batch=0' (names: "
                                      + ", ".join(f"{a.name}={a.weight:g}" for a in ACTIONS) + ")")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON ('-': standard output)")
    parser.add_argument("--output", type=Path, default=LOAD_MD, help=f"markdown report (default {LOAD_MD.relative_to(ROOT_DIR)})")
    parser.add_argument("--no-write", action="store_true", help="do not write the markdown report")
    parser.add_argument("--note", action="append", default=[], help="a sentence for the report's notes (repeatable): "
                                                                      "what other runs showed, a known cause")
    parser.add_argument("--keep-log", metavar="FILE", help="copy the server's log (one JSON line per request) here")
    parser.add_argument("--nodes", type=int, choices=(1, 2), default=1, help="2: two `kyso serve --role api "
                        "--workers 2` nodes on a private PostgreSQL primary with a streaming replica for reads, "
                        "OCSP on a `--role ocsp` worker; then CPU-ms per operation and the rate limit across nodes "
                        "(bench/cluster.py)")
    parser.add_argument("--calibrate", type=float, default=10, help="with --nodes 2: seconds of each one-action "
                        "window (CPU per operation) and of the rate limit probe (default 10)")
    parser.add_argument("--ocsp-nice", type=int, default=0, help="with --nodes 2: run the OCSP worker at this "
                        "nice value (e.g. -10, as root): on a machine too small to give it cores of its own")
    parser.add_argument("--force", action="store_true", help="run even when the workers' connection pools could "
                                                             "exceed PostgreSQL's max_connections")
    args = parser.parse_args(argv)
    actions = parse_mix(args.mix)
    if args.nodes == 2:
        return _two_nodes(args, actions, argv)

    problem = postgres_problem()
    if problem:
        say(f"PostgreSQL is not reachable at {PG_URL}: {problem}")
        return 2
    args.pg_max, args.pg_before = pg_max_connections(), pg_connections()
    budget = args.workers * POOL_PER_WORKER + args.pg_before + 5
    if budget > args.pg_max and not args.force:
        say(f"{args.workers} workers may open {args.workers * POOL_PER_WORKER} PostgreSQL connections "
            f"({POOL_PER_WORKER} each, core/db.py), {args.pg_before} are open already and max_connections is "
            f"{args.pg_max}: the server would refuse connections (503s here, and failures for everyone else using "
            "it). Use fewer workers, raise max_connections, or --force to see it happen.")
        return 2

    def on_term(signum, frame):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    from .server import BenchServer, free_port

    given, shown = list(argv if argv is not None else sys.argv[1:]), []
    for i, a in enumerate(given):  # a note's text is in the report already
        shown.append("'…'" if i and given[i - 1] == "--note" else a.split("=", 1)[0] + "='…'"
                     if a.startswith("--note=") else a)
    command = " ".join([".venv/bin/python -m bench.load", *(a if a.startswith("-") else repr(a) if " " in a
                                                                  else a for a in shown)])
    machine, pg_version = machine_info(), postgres_version()
    say(f"load: {args.clients} clients, {args.workers} workers, {args.warmup:.0f} s warm-up + {args.duration:.0f} s; "
        f"PostgreSQL max_connections {args.pg_max}, {args.pg_before} connections open now")
    server = inst = world = None
    tracebacks, log_tail, problems = 0, "", []
    try:
        with workdir("kyso-load-") as folder:
            port = free_port()
            try:
                say("setting up (schema, hierarchy, demo signing set-up, certificates, signed documents)")
                inst, world, demo = setup(folder, port, args.certs, args.batch, args.sads)
                saved = {k: os.environ.get(k) for k in ("KYSO_TRUSTED_PROXIES", "KYSO_REPORT_SEAL_CREDENTIAL")}
                os.environ["KYSO_TRUSTED_PROXIES"] = '["127.0.0.1"]'
                os.environ["KYSO_REPORT_SEAL_CREDENTIAL"] = demo["report_seal"]
                try:
                    say(f"starting `kyso serve --workers {args.workers}` on port {port}")
                    server = BenchServer(inst.settings, port, folder / "serve.log", workers=args.workers)
                finally:
                    for k, v in saved.items():
                        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
                load = Load(world, actions, args.clients, args.warmup, args.duration, args.timeout, args.seed)
                try:
                    import uvloop

                    uvloop.run(load.run(server.pid))
                except ImportError:  # pragma: no cover
                    asyncio.run(load.run(server.pid))
                tracebacks = server.count_in_log("Traceback")
                log_tail = server.log_tail(40)
                problems = server_problems(folder / "serve.log")
                if args.keep_log:
                    import shutil

                    shutil.copy(folder / "serve.log", args.keep_log)
            finally:
                if world is not None:
                    world.sads.close()
                if server is not None:
                    server.stop()
                if inst is not None:
                    inst.close()  # drops the schema
                if _pg_engine is not None:
                    _pg_engine.dispose()
    except KeyboardInterrupt:
        say("interrupted: server stopped, schema dropped, folder removed")
        return 130
    summary = summarize(load, args, log_tail, tracebacks)
    summary["server_problems"] = problems
    summary["notes"] = args.note
    print_table(summary)
    if tracebacks:
        say(f"the server log had {tracebacks} tracebacks; its end:\n{log_tail}")
    if args.json:
        text = json.dumps(summary, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    if not args.no_write:
        args.output.write_text(markdown(summary, machine, pg_version, command), encoding="utf-8")
        if args.output == LOAD_MD:
            link_from_benchmarks()
        say(f"wrote {args.output}")
    errors = summary["total"]["errors"]
    if errors:
        say(f"{errors} requests failed (target: zero errors)")
        return 1
    return 0


def _two_nodes(args: argparse.Namespace, actions: list[Action], argv: list[str] | None) -> int:
    from . import cluster

    def on_term(signum, frame):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    args.workers, args.pg_max, args.pg_before = cluster.NODE_WORKERS * 2, 100, 0
    command = " ".join([".venv/bin/python -m bench.load", *(argv if argv is not None else sys.argv[1:])])
    machine, pg_version = machine_info(), postgres_version()
    say(f"load, two nodes: {args.clients} clients, {args.warmup:.0f} s warm-up + {args.duration:.0f} s")
    try:
        load, extra, log_tail, tracebacks, problems = cluster.run(args, actions)
    except KeyboardInterrupt:
        say("interrupted: servers and clusters stopped, folder removed")
        return 130
    summary = summarize(load, args, log_tail, tracebacks)
    summary["server_problems"], summary["notes"], summary["two_node"] = problems, args.note, extra
    summary["pg_peak_connections"] = load.pg_peak
    print_table(summary)
    cluster.print_two_node(extra)
    if args.json:
        text = json.dumps(summary, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    if not args.no_write:
        args.output.write_text(markdown(summary, machine, pg_version, command) + "\n".join(
            cluster.markdown_lines(extra)) + "\n", encoding="utf-8")
        if args.output == LOAD_MD:
            link_from_benchmarks()
        say(f"wrote {args.output}")
    errors = summary["total"]["errors"] + sum(op["errors"] for op in extra["cpu_per_operation"].values())
    if errors:
        say(f"{errors} requests failed (target: zero errors)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
