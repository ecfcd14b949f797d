"""Figure 6: PDF documents signed per second, kyso beside raw pyHanko with its defaults on the same file.

kyso: ``container.signing.sign`` in process (registry record, file version and audit entry included),
and ``POST /api/v1/sign`` / ``/api/v1/sign/batch`` against a live ``kyso serve`` from a few client
threads (httpx, keep-alive). Raw: ``signers.sign_pdf`` with a ``SimpleSigner`` loaded once from PEM
files (its defaults: the key is parsed again for every signature, the CMS is built twice), the key
generated with ``cryptography`` and certified by the same kyso issuing CA from a CSR, so the raw B-LT
baseline fetches the signer's and the TSA's revocation data from the live kyso OCSP/CRL endpoints
over loopback, as PERFORMANCE.md measured it (a fresh ``ValidationContext`` per signature, timestamp
from kyso's ``POST /tsa`` over HTTP).
"""
from __future__ import annotations

import cProfile
import hashlib
import io
import pstats
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.helpers.pdfs import many_pages
from tests.helpers.signing import CONSENTED, SpecialistPhone

from . import storage
from .common import Figure, Profiler, Results, interleaved_rates, new_instance, say, workdir
from .server import BenchServer, free_port

COMMUNE = "00004"
DOC_TYPE = "dossier-result"
TARGET_INPROC, TARGET_HTTP, TARGET_LT_OVER_BB = 3.0, 2.0, 1.5
BOX = (360, 60, 560, 140)  # raw pyHanko's visible field: bottom right of page 1, like kyso's default stamp


# -- documents -----------------------------------------------------------------------------------
def one_page(font: Path) -> bytes:
    from signing.create.sample import sample_document

    return sample_document(font)


# -- raw pyHanko -----------------------------------------------------------------------------------
@dataclass
class RawSigner:
    """A key made with ``cryptography``, certified by kyso's issuing CA from a CSR, as PEM files."""

    signer: Any  # pyhanko.sign.signers.SimpleSigner
    root: asn1_x509.Certificate
    label: str


def raw_signer(inst, folder: Path, key_type: str) -> RawSigner:  # type: ignore[no-untyped-def]
    from pyhanko.sign import signers

    from bench.common import issuing_ca
    from pki.issuance import IssueRequest, issue
    from pki.names import SubjectInfo

    key = ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else rsa.generate_private_key(65537, 2048)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"raw pyHanko {key_type}")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    subject = SubjectInfo(common_name=f"Trần Văn Raw {key_type}", title="Công chức Tư pháp - Hộ tịch",
                          id_number="001190009999" if key_type == "ec" else "001190009998")
    row = issue(inst.container.pki, IssueRequest(profile="specialist", subject=subject, commune_code=COMMUNE, csr=csr),
                "bench").certificate
    issuing = issuing_ca(inst)
    from core.db import transaction
    from pki.store import get_ca

    with transaction(inst.container.sessions) as session:
        root_der = get_ca(session, "test-root").cert_der
    files = {"key": folder / f"raw-{key_type}.key", "cert": folder / f"raw-{key_type}.pem",
             "issuing": folder / "issuing.pem", "root": folder / "root.pem"}
    files["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    for name, der in (("cert", row.der), ("issuing", issuing.cert_der), ("root", root_der)):
        files[name].write_bytes(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM))
    signer = signers.SimpleSigner.load(str(files["key"]), str(files["cert"]),
                                       ca_chain_files=(str(files["issuing"]), str(files["root"])))
    assert signer is not None
    return RawSigner(signer, asn1_x509.Certificate.load(root_der), key_type)


def raw_sign(raw: RawSigner, pdf: bytes, *, visible: bool, lt_url: str | None = None) -> Callable[[int], bytes]:
    """raw pyHanko ``sign_pdf`` on ``pdf``: B-B, or B-LT (timestamp from ``lt_url``/tsa over HTTP,
    revocation data fetched over HTTP by a fresh validation context) when ``lt_url`` is given."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.timestamps import HTTPTimeStamper
    from pyhanko_certvalidator import ValidationContext

    spec = fields.SigFieldSpec("Sig1", box=BOX) if visible else None
    timestamper = HTTPTimeStamper(lt_url + "/tsa") if lt_url else None

    from signing import speedups

    def one(_: int) -> bytes:
        with speedups.disabled():  # the libraries as shipped, not with kyso's verification speed-ups
            return _one()

    def _one() -> bytes:
        if lt_url:
            meta = signers.PdfSignatureMetadata(
                field_name="Sig1", subfilter=fields.SigSeedSubFilter.PADES, embed_validation_info=True,
                validation_context=ValidationContext(trust_roots=[raw.root], allow_fetching=True))
        else:
            meta = signers.PdfSignatureMetadata(field_name="Sig1")
        out = signers.sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), meta, signer=raw.signer,
                               timestamper=timestamper, new_field_spec=spec)
        return out.getvalue()

    return one


# -- kyso ------------------------------------------------------------------------------------------
def kyso_sign(inst, credential: str, pdf: bytes, *, level: str, visible: bool) -> Callable[[int], bytes]:  # type: ignore[no-untyped-def]
    from signing.create.service import AppearanceOptions, SignRequest

    request = SignRequest(pdf=pdf, document_type=DOC_TYPE, commune_code=COMMUNE, credential_id=credential,
                          level=level, appearance=AppearanceOptions(visible=visible))  # type: ignore[arg-type]
    service = inst.container.signing

    def one(_: int) -> bytes:
        return service.sign(request, actor="bench", activation=CONSENTED).pdf

    return one


def _check(fn: Callable[[int], bytes], what: str) -> str | None:
    """One call before measuring; a failure is reported and the figure skipped, not the whole section."""
    try:
        out = fn(0)
        assert out.startswith(b"%PDF") or b"%PDF" in out[:1024], "not a PDF"
        return None
    except Exception as exc:  # noqa: BLE001 - a bench reports, it does not crash
        message = f"{what}: {type(exc).__name__}: {str(exc)[:200]}"
        say(f"  FAILED {message}")
        return message


# -- HTTP ------------------------------------------------------------------------------------------
def http_rate(url: str, token: str, pdf: bytes, credential: str, *, level: str, threads: int, duration: float,
              batch: int = 0, authorize: Callable[..., str]) -> tuple[float, int, list[str]]:
    """Documents signed per second by ``threads`` closed-loop clients (one keep-alive httpx.Client each).
    Each request carries a fresh SAD from ``authorize`` (one per request or batch, as a specialist's
    credential requires). The bench passes SADs obtained beforehand (``SadPool``): her PIN + code step
    happens on her phone before the software sends the file, and is measured on its own. A run whose
    pool runs dry ends there, and the rate counts the time until then."""
    import json

    meta = {"document_type": DOC_TYPE, "commune_code": COMMUNE, "credential_id": credential, "level": level,
            "appearance": {"visible": False}}
    headers = {"Authorization": f"Bearer {token}"}
    done, errors = [0] * threads, []
    lock = threading.Lock()
    start_at, stop_at = [0.0], [0.0]

    def post(client: httpx.Client) -> int:
        if batch:
            response = client.post("/api/v1/sign/batch", headers=headers,
                                   files=[("files", (f"d{i}.pdf", pdf, "application/pdf")) for i in range(batch)],
                                   data={"metadata": json.dumps({"defaults": {**meta, "sad": authorize(pdf)}})})
            if response.status_code != 200 or response.json()["signed"] != batch:
                raise RuntimeError(f"batch: HTTP {response.status_code} {response.text[:200]}")
            return batch
        response = client.post("/api/v1/sign", headers=headers, files={"file": ("d.pdf", pdf, "application/pdf")},
                               data={"metadata": json.dumps({**meta, "sad": authorize(pdf)})})
        if response.status_code != 200 or not response.content.startswith(b"%PDF"):
            raise RuntimeError(f"sign: HTTP {response.status_code} {response.text[:200]}")
        return 1

    def worker(i: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            try:
                post(client)  # warm-up: connection, server caches
                barrier.wait()
                while time.perf_counter() < stop_at[0]:
                    n = post(client)
                    if time.perf_counter() <= stop_at[0]:
                        done[i] += n
            except SadPool.Empty:
                with lock:
                    stop_at[0] = min(stop_at[0], time.perf_counter())  # the others stop after this request
            except Exception as exc:  # noqa: BLE001
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
                barrier.abort()

    def started() -> None:
        start_at[0] = time.perf_counter()
        stop_at[0] = start_at[0] + duration

    barrier = threading.Barrier(threads, action=started)
    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = max(1e-9, min(time.perf_counter(), stop_at[0] or time.perf_counter()) - start_at[0])
    return sum(done) / elapsed, sum(done), errors


class SadPool:
    """SADs authorized before a timed HTTP run, handed out once each (thread-safe)."""

    class Empty(Exception):
        pass

    def __init__(self, authorize: Callable[[bytes], str], pdf: bytes, count: int) -> None:
        started = time.perf_counter()
        self._sads = [authorize(pdf) for _ in range(count)]
        self.seconds_each = (time.perf_counter() - started) / max(count, 1)
        self._lock = threading.Lock()

    def __call__(self, _pdf: bytes) -> str:
        with self._lock:
            if not self._sads:
                raise SadPool.Empty
            return self._sads.pop()


# -- profile ---------------------------------------------------------------------------------------
def profile_top(fn: Callable[[int], Any], what: str, calls: int = 20, top: int = 18) -> str:
    """cProfile of ``calls`` kyso signatures: the top cumulative entries within kyso and pyHanko."""
    prof = cProfile.Profile()
    prof.enable()
    for i in range(calls):
        fn(i)
    prof.disable()
    stats = pstats.Stats(prof)
    rows = []
    for (filename, line, func), (_, ncalls, _, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        if any(part in filename for part in ("/signing/", "/pyhanko/", "/hsm/", "/pki/", "/core/",
                                             "/pyhanko_certvalidator/", "/asn1crypto/", "/sqlalchemy/orm/session")):
            short = filename.split("site-packages/")[-1].split("/work/main/")[-1]
            rows.append((cumtime, ncalls, f"{short}:{line}({func})"))
    rows.sort(reverse=True)
    buf = io.StringIO()
    buf.write(f"cProfile of {calls} kyso signatures ({what}), cumulative ms per signature (under the profiler):\n")
    for cum, ncalls, name in rows[:top]:
        buf.write(f"  {1000 * cum / calls:8.2f} ms  {ncalls / calls:7.1f} calls  {name}\n")
    return buf.getvalue()


# -- the section -----------------------------------------------------------------------------------
def run(results: Results, backends: list[str], *, n_kyso: int, n_raw: int, n_raw_lt: int, repeats: int,
        http_duration: float, http_threads: int, batch: int, quick: bool, profiler: Profiler) -> None:
    say(f"[6] signing: {repeats} interleaved rounds; kyso in process and over HTTP, raw pyHanko defaults")
    with workdir("kyso-bench-signing-") as folder:
        port = free_port()
        inst = new_instance(folder, "sqlite", base_url=f"http://127.0.0.1:{port}")
        server = None
        try:
            server = BenchServer(inst.settings, port, folder / "serve.log")
            _measure(results, inst, folder, server, n_kyso=n_kyso, n_raw=n_raw, n_raw_lt=n_raw_lt, repeats=repeats,
                     http_duration=http_duration, http_threads=http_threads, batch=batch, quick=quick,
                     profiler=profiler)
        finally:
            if server is not None:
                server.stop()
            inst.close()
        for backend in backends:
            if backend == "sqlite":
                continue
            with workdir("kyso-bench-signing-pg-") as pg_folder:
                pg = new_instance(pg_folder, backend)
                try:
                    _backend_figure(results, pg, backend, n_kyso=n_kyso, n_raw=n_raw, repeats=repeats)
                finally:
                    pg.close()


def _credentials(inst) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from hsm import KeyType
    from pki.issuance import IssueRequest, issue
    from pki.names import SubjectInfo

    out = {}
    for label, key_type, n in (("ec", KeyType.EC_P256, 1), ("rsa", KeyType.RSA_2048, 2)):
        subject = SubjectInfo(common_name=f"Nguyễn Thị Hoa {n}", title="Công chức Tư pháp - Hộ tịch",
                              id_number=f"{1190000000 + n:012d}")
        result = issue(inst.container.pki, IssueRequest(profile="specialist", subject=subject, commune_code=COMMUNE,
                                                        key_type=key_type), "bench")
        out[label] = result.credential_id
    return out


def _measure(results: Results, inst, folder: Path, server: BenchServer, *, n_kyso: int, n_raw: int,  # type: ignore[no-untyped-def]
             n_raw_lt: int, repeats: int, http_duration: float, http_threads: int, batch: int, quick: bool,
             profiler: Profiler) -> None:
    from api import tokens
    from core.db import transaction

    creds = _credentials(inst)
    raws = {kind: raw_signer(inst, folder, kind) for kind in ("ec", "rsa")}
    docs = {"1 page": one_page(inst.settings.stamp_font), "50 pages": many_pages()}
    say("  documents: " + ", ".join(f"{name} {len(pdf) / 1024:,.0f} KB" for name, pdf in docs.items()))
    failures: list[str] = []
    bb_rates: dict[tuple[str, bool], float] = {}

    # (label, key, level, visible) measured on each document
    configs = [("B-B, EC P-256, invisible", "ec", "B-B", False), ("B-B, EC P-256, visible", "ec", "B-B", True),
               ("B-B, RSA-2048, invisible", "rsa", "B-B", False),
               ("B-LT, EC P-256, invisible", "ec", "B-LT", False), ("B-LT, EC P-256, visible", "ec", "B-LT", True)]
    for doc_name, pdf in docs.items():
        section = f"6. signing in process ({doc_name}, {len(pdf) / 1024:,.0f} KB)"
        candidates: dict[str, tuple[Callable[[int], Any], int]] = {}
        labels: dict[str, tuple[str, str, str, bool]] = {}
        for label, key, level, visible in configs:
            kyso_fn = kyso_sign(inst, creds[key], pdf, level=level, visible=visible)
            lt = level == "B-LT"
            raw_fn = raw_sign(raws[key], pdf, visible=visible, lt_url=server.url if lt else None)
            for name, fn, n in ((f"kyso {label}", kyso_fn, n_kyso), (f"raw {label}", raw_fn, n_raw_lt if lt else n_raw)):
                problem = _check(fn, f"{name} ({doc_name})")
                if problem:
                    failures.append(problem)
                else:
                    fn(1)  # warm-up: caches, loop, connections
                    candidates[name] = (fn, n)
            labels[label] = (label, key, level, visible)
        with profiler.section(f"signing-{doc_name.replace(' ', '')}"):
            rates = interleaved_rates(candidates, repeats)
        for label, (_, key, level, visible) in labels.items():
            kyso_rate, raw_rate = rates.get(f"kyso {label}"), rates.get(f"raw {label}")
            if kyso_rate is None:
                continue
            ratio = kyso_rate / raw_rate if raw_rate else None
            verdict = (f"target ≥ {TARGET_INPROC:.0f}× raw: {'met' if ratio >= TARGET_INPROC else 'NOT met'}"
                       if ratio else "raw baseline failed")
            raw_name = ("raw pyHanko sign_pdf, SimpleSigner, defaults" + (", visible field with default stamp" if visible else "")
                        + ("; timestamp from kyso /tsa over HTTP, revocation data fetched from kyso OCSP/CRL over "
                           "loopback (fresh ValidationContext each time)" if level == "B-LT" else ""))
            results.add(Figure(section, f"sign(), {label}", kyso_rate, "docs/s", raw_name, raw_rate,
                               note=f"{verdict}; kyso: registry record, file version, audit entry in one transaction"
                               + ("; revocation data from kyso's own store" if level == "B-LT" else "")))
            if level == "B-B" and key == "ec":
                bb_rates[(doc_name, visible)] = kyso_rate
        for visible in (False, True):
            lt, bb = rates.get(f"kyso B-LT, EC P-256, {'visible' if visible else 'invisible'}"), bb_rates.get((doc_name, visible))
            if lt and bb:
                ratio = bb / lt
                results.add(Figure(section, f"B-LT cost ÷ B-B cost, EC P-256, {'visible' if visible else 'invisible'}",
                                   1000 / lt, "ms/doc", "kyso B-B, same file and key", 1000 / bb, higher_is_better=False,
                                   note=f"target ≤ {TARGET_LT_OVER_BB}×: {'met' if ratio <= TARGET_LT_OVER_BB else 'NOT met'}"))

    # -- bytes stored per document and the time to commit a version ---------------------------------
    try:
        storage.measure(results, inst, docs, n=2 if quick else 5)
    except Exception as exc:  # noqa: BLE001 - a bench reports, it does not crash
        failures.append(f"storage: {type(exc).__name__}: {str(exc)[:200]}")
        say(f"  FAILED storage: {exc}")

    # -- over HTTP ---------------------------------------------------------------------------------
    with transaction(inst.container.sessions) as session:
        token = tokens.create(session, "bench-signing-client", tokens.Role.client, "bench")
    phone = SpecialistPhone(inst.container, creds["ec"])
    phone_lock = threading.Lock()  # the phone moves the process clock for each authorization

    def authorize(pdf: bytes) -> str:
        with phone_lock:
            return phone.authorize_for("token:bench-signing-client", pdf)
    pdf = docs["1 page"]
    baseline = interleaved_rates({"raw B-B": (raw_sign(raws["ec"], pdf, visible=False), n_raw),
                                  "raw B-LT": (raw_sign(raws["ec"], pdf, visible=False, lt_url=server.url), n_raw_lt)},
                                 repeats)
    section = f"6. signing over HTTP (1 page, EC P-256, invisible, {http_threads} client threads, 1 worker)"
    scale = 0.25 if quick else 1.0
    sads_seconds: list[float] = []
    for label, level, n_batch, raw_rate, raw_name, sads in (
        ("POST /api/v1/sign, B-B", "B-B", 0, baseline["raw B-B"], "raw pyHanko B-B in process (same file and key type)",
         500),
        (f"POST /api/v1/sign/batch ({batch} files), B-B", "B-B", batch, baseline["raw B-B"],
         "raw pyHanko B-B in process (same file and key type)", 100),
        ("POST /api/v1/sign, B-LT", "B-LT", 0, baseline["raw B-LT"],
         "raw pyHanko B-LT in process, fetching over loopback", 400),
    ):
        pool = SadPool(authorize, pdf, max(http_threads * 3, int(sads * scale * http_duration / 8)))
        sads_seconds.append(pool.seconds_each)
        cpu0 = _server_cpu(server)
        rate, count, errors = http_rate(server.url, token, pdf, creds["ec"], level=level, threads=http_threads,
                                        duration=http_duration, batch=n_batch, authorize=pool)
        cpu = (_server_cpu(server) - cpu0)
        if errors:
            failures.append(f"{label}: {errors[0]}")
            say(f"  FAILED {label}: {errors[0]}")
            continue
        ratio = rate / raw_rate if raw_rate else 0
        results.add(Figure(section, label, rate, "docs/s", raw_name, raw_rate,
                           note=f"target ≥ {TARGET_HTTP:.0f}× raw: {'met' if ratio >= TARGET_HTTP else 'NOT met'}; "
                                f"{count} documents in {http_duration:.0f} s (+ warm-up); server CPU "
                                f"{1000 * cpu / max(count, 1):.1f} ms per document (incl. warm-up); SADs "
                                "obtained beforehand"))
    # her authorization, on its own: PIN (scrypt) + one-time code -> SAD, in process, beside one bare scrypt
    kdf = {"n": 16384, "r": 8, "p": 1, "dklen": 32}  # the PIN KDF's cost (signing.activation.crypto.PIN_KDF)
    raw_kdf = interleaved_rates({"scrypt": (lambda _: hashlib.scrypt(b"0" * 32, salt=b"s" * 16, **kdf), 20)}, repeats)
    authorize_rate = 1 / (sum(sads_seconds) / len(sads_seconds))
    results.add(Figure(section, "SAD: PIN + one-time code → SAD (credentials/authorize, in process)", authorize_rate,
                       "SADs/s", "one bare scrypt with the PIN's parameters (hashlib)", raw_kdf["scrypt"],
                       note="the specialist's step before her software sends files; not in the HTTP figures above; "
                            "the SAD row and its audit entry are written in one transaction"))

    # -- where the time goes, when a target is missed -----------------------------------------------
    missed = [f for f in results.figures if f.section.startswith("6.") and "NOT met" in f.note]
    if missed:
        calls = 10 if quick else 40
        plans = [("1 page", "B-B")]
        if any("50 pages" in f.section for f in missed):
            plans.append(("50 pages", "B-B"))
        if any("B-LT cost" in f.name for f in missed):
            plans.append(("1 page", "B-LT"))
        texts = [profile_top(kyso_sign(inst, creds["ec"], docs[doc], level=level, visible=False),
                             f"{level}, EC P-256, {doc}, invisible", calls=calls) for doc, level in plans]
        say("  targets missed; where kyso's time goes:")
        for text in texts:
            print(text)
        results.notes.append("signing: targets missed (" + "; ".join(f"{f.section.split('(')[0].strip()}, "
                                                                      f"{f.section.split('(')[-1].split(',')[0]}: {f.name}"
                                                                      for f in missed[:8]) + ").\n" + "\n".join(texts))
    for failure in failures:
        results.notes.append(f"signing: not measured — {failure}")


def _server_cpu(server: BenchServer) -> float:
    from .common import process_tree_cpu

    return process_tree_cpu(server.pid)


def _backend_figure(results: Results, inst, backend: str, *, n_kyso: int, n_raw: int, repeats: int) -> None:  # type: ignore[no-untyped-def]
    """The registry write on another database: kyso B-B beside raw pyHanko (which writes nothing)."""
    say(f"[6] signing on {backend}: B-B, EC P-256, 1 page, invisible")
    creds = _credentials(inst)
    with workdir("kyso-bench-signing-raw-") as folder:
        raw = raw_signer(inst, folder, "ec")
        pdf = one_page(inst.settings.stamp_font)
        kyso_fn, raw_fn = kyso_sign(inst, creds["ec"], pdf, level="B-B", visible=False), raw_sign(raw, pdf, visible=False)
        for fn in (kyso_fn, raw_fn):
            fn(0)
        rates = interleaved_rates({"kyso": (kyso_fn, n_kyso), "raw": (raw_fn, n_raw)}, repeats)
    ratio = rates["kyso"] / rates["raw"]
    results.add(Figure(f"6. signing in process ({backend})", "sign(), B-B, EC P-256, invisible, 1 page", rates["kyso"],
                       "docs/s", "raw pyHanko sign_pdf, SimpleSigner, defaults", rates["raw"],
                       note=f"target ≥ {TARGET_INPROC:.0f}× raw: {'met' if ratio >= TARGET_INPROC else 'NOT met'}; "
                            f"registry written to {backend}"))
