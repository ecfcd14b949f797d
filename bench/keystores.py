"""Figure 5: signatures per second through ``hsm.KeyStore`` beside the raw backend, in the same run.

Backends: soft (in-memory key cache of the soft keystore) against raw ``cryptography``; pkcs11 on
SoftHSM2 (a temporary ``SOFTHSM2_CONF`` and tokens made with ``softhsm2-util``, as tests/hsm does)
against raw python-pkcs11 on a reused session; vault against a real OpenBao dev server (``bao
server -dev`` on a loopback port) against raw ``hvac`` Transit calls with keep-alive. Each kyso/raw
pair runs in interleaved rounds (order alternating), with 1 and with 8 threads; the rate is the
median of the rounds, the latency the median of every call of every round. For PKCS#11, kyso's
pooled sessions are also set beside a session opened for each signature.

Everything this module starts (OpenBao, SoftHSM2 tokens, temporary folders, the ``SOFTHSM2_CONF``
variable) is stopped, deleted or restored at the end, also on error.

The section is self-contained in docs/benchmarks.md, between the markers ``BLOCK_BEGIN`` and
``BLOCK_END``: ``--only keystores`` replaces only that block in the existing file (report.py).
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import secrets
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from hsm.interfaces import KeyStore, KeyType, SignatureScheme

from .common import Profiler, Results, fmt, percentile, say, workdir

TARGET = 0.8  # PERFORMANCE.md: >= 0.8x the raw backend rate through hsm.KeyStore
MAIN_TYPES = (KeyType.EC_P256, KeyType.RSA_2048)  # 1 and 8 threads
EXTRA_TYPES = (KeyType.EC_P384, KeyType.RSA_3072)  # 1 thread, shorter rounds, full runs only
THREADS = (1, 8)
BLOCK_BEGIN = "<!-- keystores:begin -->"
BLOCK_END = "<!-- keystores:end -->"
SOFT_PASSPHRASE = b"kyso-bench-soft-master-key-0123"
USER_PIN, SO_PIN = "bench-user-pin-4417", "bench-so-pin-9902"

_HASH = {KeyType.EC_P384: hashes.SHA384()}  # others: SHA-256
_VAULT_HASH = {"sha256": "sha2-256", "sha384": "sha2-384"}
_DIGEST_INFO_PREFIX = {  # DER DigestInfo up to the digest bytes (RFC 8017 9.2 note 1)
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
}


@dataclass
class Sizes:
    rounds: int
    seconds: float  # per round, main rows
    short_seconds: float  # per round, optional key types and session-per-signature rows
    warmup: float
    extra_types: bool


FULL = Sizes(rounds=5, seconds=1.0, short_seconds=0.5, warmup=0.3, extra_types=True)
QUICK = Sizes(rounds=3, seconds=0.3, short_seconds=0.2, warmup=0.1, extra_types=False)


@dataclass
class Row:
    backend: str
    key_type: KeyType
    threads: int
    kyso_rate: float
    kyso_p50_ms: float
    raw_rate: float
    raw_p50_ms: float
    raw_name: str

    @property
    def ratio(self) -> float:
        return self.kyso_rate / self.raw_rate if self.raw_rate else float("nan")

    @property
    def met(self) -> bool:
        return self.ratio >= TARGET


@dataclass
class SessionRow:
    key_type: KeyType
    pooled: tuple[float, float]  # (signatures/s, p50 ms)
    per_op: tuple[float, float]
    per_op_login: tuple[float, float]


@dataclass
class KeystoreResults:
    sizes: Sizes
    quick: bool
    started: dt.datetime
    finished: dt.datetime | None = None
    rows: list[Row] = field(default_factory=list)
    sessions: list[SessionRow] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    loadavg: list[tuple[str, tuple[float, float, float]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# -- timing ------------------------------------------------------------------------------------
Worker = Callable[[], Any]


class Candidate:
    """One way of signing; ``make(i)`` builds thread i's signing call once (e.g. its own session)."""

    def __init__(self, name: str, make: Callable[[int], Worker]) -> None:
        self.name, self._make, self._workers = name, make, {}  # type: dict[int, Worker]

    def workers(self, threads: int) -> list[Worker]:
        for i in range(threads):
            if i not in self._workers:
                self._workers[i] = self._make(i)
        return [self._workers[i] for i in range(threads)]


def run_round(workers: list[Worker], seconds: float) -> tuple[int, float, list[float]]:
    """All workers call in a loop from a common start until ``seconds`` have passed: (calls, elapsed, latencies)."""
    n = len(workers)
    barrier = threading.Barrier(n + 1)
    latencies: list[list[float]] = [[] for _ in range(n)]
    ends = [0.0] * n
    errors: list[BaseException] = []
    deadline = [0.0]

    def work(i: int) -> None:
        fn, out, clock = workers[i], latencies[i], time.perf_counter
        barrier.wait()
        end = deadline[0]
        try:
            while True:
                t0 = clock()
                fn()
                t1 = clock()
                out.append(t1 - t0)
                if t1 >= end:
                    break
        except BaseException as exc:  # noqa: BLE001 - reported below, in the main thread
            errors.append(exc)
        ends[i] = clock()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    deadline[0] = start + seconds
    barrier.wait()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(map(len, latencies)), max(ends) - start, [x for part in latencies for x in part]


def compare(candidates: list[Candidate], threads: int, rounds: int, seconds: float,
            warmup: float) -> dict[str, tuple[float, float]]:
    """Interleaved rounds (order alternating): name -> (median signatures/s, p50 latency in ms)."""
    for c in candidates:
        run_round(c.workers(threads), warmup)
    rates: dict[str, list[float]] = {c.name: [] for c in candidates}
    lats: dict[str, list[float]] = {c.name: [] for c in candidates}
    for r in range(rounds):
        for c in candidates if r % 2 == 0 else candidates[::-1]:
            calls, elapsed, latencies = run_round(c.workers(threads), seconds)
            rates[c.name].append(calls / elapsed)
            lats[c.name] += latencies
    return {name: (statistics.median(rates[name]), 1000 * percentile(sorted(lats[name]), 50)) for name in rates}


# -- what is signed ----------------------------------------------------------------------------
@dataclass
class Job:
    key_type: KeyType
    hash: hashes.HashAlgorithm
    scheme: SignatureScheme
    digest: bytes

    @classmethod
    def for_type(cls, key_type: KeyType) -> Job:
        h = _HASH.get(key_type, hashes.SHA256())
        scheme = SignatureScheme.RSA_PKCS1V15 if key_type.is_rsa else SignatureScheme.ECDSA
        return cls(key_type, h, scheme, secrets.token_bytes(h.digest_size))


def verify(public_key: Any, signature: bytes, job: Job) -> None:
    """Check one signature, so that a benchmark never times a broken signing path."""
    prehashed = utils.Prehashed(job.hash)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, job.digest, ec.ECDSA(prehashed))
    elif isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, job.digest, padding.PKCS1v15(), prehashed)
    else:
        raise TypeError(type(public_key))


def kyso_candidate(store: KeyStore, ref: str, job: Job) -> Candidate:
    verify(store.public_key(ref), store.sign_digest(ref, job.digest, job.hash, job.scheme), job)

    def make(_: int) -> Worker:
        return lambda: store.sign_digest(ref, job.digest, job.hash, job.scheme)

    return Candidate("kyso", make)


# -- soft ----------------------------------------------------------------------------------------
def _soft(out: KeystoreResults, folder: Path, types: list[tuple[KeyType, tuple[int, ...], float]], sizes: Sizes) -> None:
    from hsm.soft import SoftKeyStore

    store = SoftKeyStore(folder / "soft", SOFT_PASSPHRASE)
    for key_type, threads, seconds in types:
        job = Job.for_type(key_type)
        ref = store.generate(key_type, "bench")
        key = ec.generate_private_key(ec.SECP384R1() if key_type is KeyType.EC_P384 else ec.SECP256R1()) \
            if not key_type.is_rsa else rsa.generate_private_key(65537, int(key_type.value[4:]))
        if key_type.is_rsa:
            pad, algorithm = padding.PKCS1v15(), utils.Prehashed(job.hash)

            def raw_sign() -> bytes:
                return key.sign(job.digest, pad, algorithm)  # type: ignore[union-attr,call-arg]
        else:
            ecdsa = ec.ECDSA(utils.Prehashed(job.hash))

            def raw_sign() -> bytes:
                return key.sign(job.digest, ecdsa)  # type: ignore[union-attr,call-arg]
        verify(key.public_key(), raw_sign(), job)
        raw = Candidate("raw", lambda _, f=raw_sign: f)
        _pair(out, "soft", key_type, kyso_candidate(store, ref, job), raw, threads, seconds, sizes,
              "cryptography sign, in-memory key")


def _pair(out: KeystoreResults, backend: str, key_type: KeyType, kyso: Candidate, raw: Candidate,
          threads: tuple[int, ...], seconds: float, sizes: Sizes, raw_name: str) -> None:
    for n in threads:
        res = compare([kyso, raw], n, sizes.rounds, seconds, sizes.warmup)
        row = Row(backend, key_type, n, *res["kyso"], *res["raw"], raw_name)
        out.rows.append(row)
        say(f"  {backend} {key_type.value} {n} thread{'s' if n > 1 else ''}: kyso {fmt(row.kyso_rate)}/s "
            f"(p50 {row.kyso_p50_ms:.3f} ms), raw {fmt(row.raw_rate)}/s (p50 {row.raw_p50_ms:.3f} ms), "
            f"ratio {row.ratio:.2f} {'met' if row.met else 'NOT met'}")


# -- pkcs11 --------------------------------------------------------------------------------------
def _pkcs11_module() -> tuple[str, str]:
    from tests.hsm.pkcs11_fixtures import MODULE_PATHS

    util = shutil.which("softhsm2-util")
    module = os.environ.get("KYSO_TEST_PKCS11_MODULE") or next((p for p in MODULE_PATHS if Path(p).is_file()), None)
    if util is None or module is None or not Path(module).is_file():
        raise RuntimeError(f"SoftHSM2 is missing (softhsm2-util: {util}, module: {module}); run "
                           "`bash scripts/install-system-deps.sh` or set KYSO_TEST_PKCS11_MODULE")
    return module, util


def _pkcs11(out: KeystoreResults, folder: Path, types: list[tuple[KeyType, tuple[int, ...], float]], sizes: Sizes,
            stack: contextlib.ExitStack) -> None:
    import pkcs11
    from pkcs11 import Attribute, Mechanism, ObjectClass
    from pydantic import SecretStr

    from hsm.pkcs11 import Pkcs11KeyStore, Pkcs11Uri, load_module
    from tests.hsm.pkcs11_fixtures import SoftHsm

    module, util = _pkcs11_module()
    (folder / "tokens").mkdir(parents=True)
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
    hsm = SoftHsm(Path(module), util, conf)
    env = stack.enter_context(pytest.MonkeyPatch.context())  # SOFTHSM2_CONF, restored at the end
    # Two tokens, both made before any session: SoftHSM2 scans tokens only at C_Initialize, which
    # new_token redoes through load_module(reload=True) (OS locking for threads). Token A holds the
    # keys kyso and the raw reused sessions use; token B, whose login nobody keeps, serves the
    # "session + login per signature" baseline (PKCS#11 login state is per application and token).
    label_a = hsm.new_token(env, USER_PIN)
    label_b = hsm.new_token(env, USER_PIN)
    stack.callback(hsm.delete_token, label_b)
    stack.callback(hsm.delete_token, label_a)

    def close_all() -> None:  # C_Finalize + C_Initialize: closes every session, kyso's pool included
        with contextlib.suppress(Exception):
            load_module(module, reload=True)

    stack.callback(close_all)
    lib = load_module(module)
    token_a, token_b = lib.get_token(token_label=label_a), lib.get_token(token_label=label_b)
    store = Pkcs11KeyStore(module, label_a, SecretStr(USER_PIN), pool_size=8)  # pool size: kyso's default
    raw_sessions: list[Any] = []

    def close_raw() -> None:
        for s in raw_sessions:
            with contextlib.suppress(Exception):
                s.close()

    stack.callback(close_raw)
    for key_type, threads, seconds in types:
        job = Job.for_type(key_type)
        ref = store.generate(key_type, "bench")  # kyso logs in to token A here (its anchor session)
        key_id = Pkcs11Uri.parse(ref).id
        public = store.public_key(ref)
        if key_type.is_rsa:
            mechanism = Mechanism.RSA_PKCS
            prefix = _DIGEST_INFO_PREFIX[job.hash.name]
        else:
            mechanism, prefix = Mechanism.ECDSA, b""
        digest = job.digest

        def raw_signature(sig: bytes) -> bytes:
            if key_type.is_rsa:
                return sig
            half = len(sig) // 2
            return utils.encode_dss_signature(int.from_bytes(sig[:half]), int.from_bytes(sig[half:]))

        def reused(_: int, mechanism=mechanism, prefix=prefix, digest=digest, key_id=key_id) -> Worker:
            # One session per thread, opened once; the process is already logged in to token A (by
            # kyso's anchor session), so a session without the PIN may use the private key.
            session = token_a.open()
            raw_sessions.append(session)
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
            return lambda: key.sign(prefix + digest, mechanism=mechanism)

        raw = Candidate("raw", reused)
        verify(public, raw_signature(raw.workers(1)[0]()), job)
        kyso = kyso_candidate(store, ref, job)
        _pair(out, "pkcs11", key_type, kyso, raw, threads, seconds, sizes,
              "python-pkcs11 sign on a reused session (one per thread)")
        if key_type not in MAIN_TYPES:
            continue
        # The same key type on token B, made there with the raw API (its session logs out on close).
        id_b = secrets.token_bytes(16)
        with token_b.open(rw=True, user_pin=USER_PIN) as s:
            kwargs: dict[str, Any] = {"key_length": int(key_type.value[4:]),
                                      "mechanism": Mechanism.RSA_PKCS_KEY_PAIR_GEN} if key_type.is_rsa else {
                "mechanism": Mechanism.EC_KEY_PAIR_GEN,
                "public_template": {Attribute.EC_PARAMS: bytes.fromhex("06082a8648ce3d030107")}}
            s.generate_keypair(pkcs11.KeyType.RSA if key_type.is_rsa else pkcs11.KeyType.EC, id=id_b,
                               label=f"bench-{id_b.hex()[:8]}", store=True, **kwargs)

        def per_op(token: Any, key_id: bytes, pin: str | None) -> Callable[[], bytes]:
            def sign() -> bytes:
                with token.open(user_pin=pin) as session:  # closing logs out when it logged in
                    key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
                    return key.sign(prefix + digest, mechanism=mechanism)
            return sign

        open_sign = per_op(token_a, key_id, None)
        login_sign = per_op(token_b, id_b, USER_PIN)
        verify(public, raw_signature(open_sign()), job)
        login_sign()
        res = compare([kyso, Candidate("open", lambda _: open_sign), Candidate("login", lambda _: login_sign)],
                      1, sizes.rounds, sizes.short_seconds, sizes.warmup)
        out.sessions.append(SessionRow(key_type, res["kyso"], res["open"], res["login"]))
        say(f"  pkcs11 {key_type.value} session per signature: kyso pooled {fmt(res['kyso'][0])}/s, raw open+sign+close "
            f"{fmt(res['open'][0])}/s, raw open+login+sign+logout+close {fmt(res['login'][0])}/s")


# -- vault ---------------------------------------------------------------------------------------
def _vault(out: KeystoreResults, folder: Path, types: list[tuple[KeyType, tuple[int, ...], float]], sizes: Sizes,
           stack: contextlib.ExitStack) -> None:
    import hvac

    from hsm.vault import VaultKeyStore, parse_ref
    from tests.hsm.vault_fixtures import start_bao

    server = start_bao(folder / "openbao")
    stack.callback(server.stop)
    server.client().sys.enable_secrets_engine("transit", path="transit")
    store = VaultKeyStore(server.addr, mount="transit", token=server.root_token, timeout=5)
    clients: list[Any] = []

    def close_clients() -> None:
        for c in clients:
            with contextlib.suppress(Exception):
                c.adapter.close()

    stack.callback(close_clients)
    for key_type, threads, seconds in types:
        job = Job.for_type(key_type)
        ref = parse_ref(store.generate(key_type, "bench"))
        params: dict[str, Any] = {"hash_algorithm": _VAULT_HASH[job.hash.name], "prehashed": True,
                                  "key_version": ref.version}
        if key_type.is_rsa:
            params["signature_algorithm"] = "pkcs1v15"
        else:
            params["marshaling_algorithm"] = "asn1"
        b64 = base64.b64encode(job.digest).decode()

        def client_sign(_: int, name=ref.name, params=params, b64=b64) -> Worker:
            # Its own client per thread: hvac keeps one requests.Session (keep-alive) per client.
            client = hvac.Client(url=server.addr, token=server.root_token, timeout=5)
            clients.append(client)
            transit = client.secrets.transit
            return lambda: transit.sign_data(name, hash_input=b64, mount_point="transit", **params)["data"]["signature"]

        raw = Candidate("raw", client_sign)
        verify(store.public_key(str(ref)), base64.b64decode(raw.workers(1)[0]().rpartition(":")[2]), job)
        _pair(out, "vault", key_type, kyso_candidate(store, str(ref), job), raw, threads, seconds, sizes,
              "hvac transit.sign_data, keep-alive (one client per thread)")


# -- the section ---------------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    found = {}
    for dist in ("cryptography", "python-pkcs11", "hvac", "requests"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[dist] = metadata.version(dist)
    for name, cmd in (("SoftHSM2", ["softhsm2-util", "--version"]), ("OpenBao", None)):
        if cmd is None:
            with contextlib.suppress(Exception):
                from tests.hsm.vault_fixtures import bao_binary

                cmd = [bao_binary(), "version"]
        with contextlib.suppress(Exception):
            text = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()  # type: ignore[arg-type]
            found[name] = text.split()[1].lstrip("v") if name == "OpenBao" else text
    return found


def run(results: Results, *, quick: bool, profiler: Profiler) -> KeystoreResults:
    sizes = QUICK if quick else FULL
    out = KeystoreResults(sizes, quick, dt.datetime.now().astimezone())
    out.loadavg.append(("start", os.getloadavg()))
    types = [(kt, THREADS, sizes.seconds) for kt in MAIN_TYPES]
    if sizes.extra_types:
        types += [(kt, (1,), sizes.short_seconds) for kt in EXTRA_TYPES]
    say(f"[5] keystores: {sizes.rounds} interleaved rounds of {sizes.seconds:g} s per kyso/raw pair "
        f"({sizes.short_seconds:g} s for optional key types and sessions per signature)")
    out.versions = _versions()
    backends: list[tuple[str, Callable[..., None], bool]] = [("soft", _soft, False), ("pkcs11", _pkcs11, True),
                                                            ("vault", _vault, True)]
    with workdir("kyso-bench-keystores-") as folder:
        for name, measure, needs_stack in backends:
            try:
                with contextlib.ExitStack() as stack, profiler.section(f"keystores-{name}"):
                    args = (out, folder / name, types, sizes) + ((stack,) if needs_stack else ())
                    measure(*args)
            except Exception as exc:  # noqa: BLE001 - one backend failing must not lose the others
                problem = f"keystore {name}: not measured, {type(exc).__name__}: {exc}"
                say(f"  {problem}")
                out.problems.append(problem)
            except pytest.fail.Exception as exc:  # raised by the shared test fixtures (bao missing...)
                out.problems.append(f"keystore {name}: not measured, {exc}")
                say(f"  {out.problems[-1]}")
            out.loadavg.append((f"after {name}", os.getloadavg()))
    out.finished = dt.datetime.now().astimezone()
    results.params["keystores"] = out
    return out


# -- output --------------------------------------------------------------------------------------
def _rate(rate_p50: tuple[float, float]) -> str:
    return f"{fmt(rate_p50[0])}/s (p50 {rate_p50[1]:.3f} ms)"


def print_table(out: KeystoreResults) -> None:
    print(f"\nKeystores: signatures/s through hsm.KeyStore vs the raw backend (target ≥ {TARGET}×)")
    print(f"  {'backend':<8}{'key':<10}{'thr':>4}{'kyso/s':>10}{'p50 ms':>9}{'raw/s':>10}{'p50 ms':>9}{'ratio':>8}  target")
    for r in out.rows:
        print(f"  {r.backend:<8}{r.key_type.value:<10}{r.threads:>4}{r.kyso_rate:>10,.0f}{r.kyso_p50_ms:>9.3f}"
              f"{r.raw_rate:>10,.0f}{r.raw_p50_ms:>9.3f}{r.ratio:>7.2f}×  {'met' if r.met else 'NOT met'}")
    for s in out.sessions:
        print(f"  pkcs11 {s.key_type.value}, 1 thread: kyso pooled {_rate(s.pooled)}; raw session per signature: "
              f"open+sign+close {_rate(s.per_op)} (kyso/raw {s.pooled[0] / s.per_op[0]:.2f}×), "
              f"open+login+sign+logout+close {_rate(s.per_op_login)} (kyso/raw {s.pooled[0] / s.per_op_login[0]:.1f}×)")
    for p in out.problems:
        print(f"  problem: {p}")


def markdown_block(out: KeystoreResults, machine: dict[str, str]) -> str:
    sz = out.sizes
    met = sum(r.met for r in out.rows)
    lines = [
        BLOCK_BEGIN,
        "## Keystores: signatures through `hsm.KeyStore` beside the raw backend",
        "",
        "Written by the `keystores` section of `make bench` (`.venv/bin/python -m bench.run --only keystores"
        + (" --quick" if out.quick else "") + "` rewrites only this part of the file).",
        "",
        f"- **Date**: {out.started:%Y-%m-%d %H:%M %Z} → {out.finished or out.started:%H:%M %Z}"
        + (" — **quick run (reduced sizes)**" if out.quick else ""),
        f"- **Machine**: {machine['nproc']} CPUs, {machine['cpu']}; {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in out.versions.items()) + f"; kyso commit {machine['commit']}",
        "- **Load average** (1/5/15 min): " + "; ".join(f"{label} {a:.2f}/{b:.2f}/{c:.2f}"
                                                         for label, (a, b, c) in out.loadavg),
        f"- **Target** (PERFORMANCE.md): ≥ {TARGET}× the raw backend rate through `hsm.KeyStore`: "
        f"**met in {met} of {len(out.rows)} rows**"
        + (f"; not met: {', '.join(f'{r.backend} {r.key_type.value} ×{r.threads} ({r.ratio:.2f}×)' for r in out.rows if not r.met)}"
           if met < len(out.rows) else "") + ".",
        "",
        "| backend | key | threads | kyso sig/s | kyso p50 ms | raw sig/s | raw p50 ms | raw baseline (same run) "
        f"| kyso / raw | ≥ {TARGET}× |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in out.rows:
        lines.append(f"| {r.backend} | {r.key_type.value} | {r.threads} | {fmt(r.kyso_rate)} | {r.kyso_p50_ms:.3f} "
                     f"| {fmt(r.raw_rate)} | {r.raw_p50_ms:.3f} | {r.raw_name} | {r.ratio:.2f}× "
                     f"| {'met' if r.met else '**NOT met**'} |")
    if out.sessions:
        lines += [
            "",
            "### PKCS#11: kyso's pooled sessions vs a session per signature (1 thread)",
            "",
            "| key | kyso pooled sig/s (p50 ms) | raw open + find key + sign + close | kyso / that "
            "| raw open + login + find key + sign + logout + close | kyso / that |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for s in out.sessions:
            lines.append(f"| {s.key_type.value} | {fmt(s.pooled[0])} ({s.pooled[1]:.3f}) | {fmt(s.per_op[0])} "
                         f"({s.per_op[1]:.3f}) | {s.pooled[0] / s.per_op[0]:.2f}× | {fmt(s.per_op_login[0])} "
                         f"({s.per_op_login[1]:.3f}) | {s.pooled[0] / s.per_op_login[0]:.1f}× |")
    lines += [
        "",
        "Method:",
        "",
        f"- Each row: kyso and its raw baseline alternate in {sz.rounds} rounds of {sz.seconds:g} s "
        f"({sz.short_seconds:g} s for the 1-thread-only key types"
        + ("" if sz.extra_types else ", not measured in a quick run")
        + " and for the session-per-signature table), after a warm-up "
        f"of {sz.warmup:g} s; the order alternates every round. Signatures/s = median of the rounds (calls of all "
        "threads / wall time); p50 = median latency of every call of every round. 8 threads: all sign the same key "
        "at once, closed loop, on the machine's cores (OpenBao's server shares them).",
        "- kyso: `KeyStore.sign_digest(ref, digest, hash, scheme)` on a key it generated, one fixed random digest; "
        "EC keys sign with ECDSA (SHA-256 digest; SHA-384 for P-384), RSA with PKCS#1 v1.5 (SHA-256). "
        "Each candidate's first signature is verified with `cryptography` before timing.",
        "- soft: `SoftKeyStore` (its decrypted-key cache); raw: `private_key.sign(digest, ECDSA(Prehashed) | "
        "PKCS1v15(), Prehashed)` on an in-memory key of the same type, algorithm objects built once.",
        "- pkcs11: SoftHSM2 token in a temporary `SOFTHSM2_CONF`, module initialized for threads by "
        "`hsm.pkcs11.load_module`; `Pkcs11KeyStore` with 8 pooled sessions (kyso's default). Raw: python-pkcs11 "
        "`key.sign(data, mechanism=...)` with the raw mechanisms kyso uses (CKM_ECDSA on the digest, CKM_RSA_PKCS "
        "on a DigestInfo), key object found once, one session per thread opened once and reused (a PKCS#11 "
        "session runs one operation at a time); kyso also converts ECDSA r‖s to DER, the raw call does not. "
        "Session per signature: `token.open()` + find the key + sign + close, the login kept by other sessions of "
        "the process; and with `user_pin` (C_Login, then C_Logout on close) on a second token whose login "
        "nobody keeps.",
        "- vault: `bao server -dev` (in-memory storage) on loopback, Transit at `transit`; `VaultKeyStore` (one "
        "hvac client, keep-alive pool). Raw: `hvac.Client(...).secrets.transit.sign_data` with the parameters kyso "
        "sends (`prehashed`, `hash_algorithm`, `key_version`, `marshaling_algorithm=asn1` or "
        "`signature_algorithm=pkcs1v15`), one client (keep-alive requests session) per thread.",
    ]
    if out.problems:
        lines += ["", "Problems in this run:", ""] + [f"- {p}" for p in out.problems]
    lines.append(BLOCK_END)
    return "\n".join(lines)


def existing_block(text: str) -> str | None:
    start, end = text.find(BLOCK_BEGIN), text.find(BLOCK_END)
    if start < 0 or end < start:
        return None
    return text[start:end + len(BLOCK_END)]


def splice(text: str, block: str) -> str:
    """The report with its keystore block replaced (or inserted before "## Method", else appended)."""
    old = existing_block(text)
    if old is not None:
        return text.replace(old, block, 1)
    at = text.find("\n## Method")
    if at < 0:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    return text[:at + 1] + block + "\n\n" + text[at + 1:]
