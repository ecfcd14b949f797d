"""Figure 3: time to build a full CRL with many revoked entries (pki.crl.publish) vs raw cryptography."""
from __future__ import annotations

import statistics
import time

from cryptography import x509

from core import clock
from core.db import transaction
from pki import crl
from pki.store import get_ca

from . import raw
from .bulk import insert_revoked
from .common import Figure, Profiler, Results, issuing_ca, new_instance, say, workdir


def run(results: Results, backends: list[str], *, n_entries: int, repeats: int, profiler: Profiler) -> None:
    entries = raw.crl_entries(n_entries)
    for backend in backends:
        say(f"[3] full CRL with {n_entries:,} revoked entries on {backend}")
        with workdir("kyso-bench-crl-") as folder:
            inst = new_instance(folder, backend)
            try:
                _measure(results, inst, backend, entries, repeats=repeats, profiler=profiler)
            finally:
                inst.close()


def _measure(results: Results, inst, backend: str, entries, *, repeats: int, profiler: Profiler) -> None:  # type: ignore[no-untyped-def]
    ctx, sessions = inst.container.pki, inst.container.sessions
    ca = issuing_ca(inst)
    n = len(entries)
    inserted = insert_revoked(inst.container.engine, ca.id, n, now=clock.now(), progress=n >= 200_000)
    say(f"    bulk-inserted {n:,} rows in {inserted.seconds:.1f} s")
    issuer = x509.load_der_x509_certificate(ca.cert_der)
    raw_build = raw.crl_builder(entries, issuer)
    kyso_s, raw_s, sizes = [], [], []
    t0 = time.perf_counter()
    raw.crl_builder(entries, issuer, incremental=True)(0)
    raw_loop_s = time.perf_counter() - t0
    say(f"    raw with the add_revoked_certificate loop (once): {raw_loop_s:.2f} s")
    for r in range(repeats):
        t0 = time.perf_counter()
        raw_der = raw_build(0)
        raw_s.append(time.perf_counter() - t0)
        with profiler.section(f"crl-{backend}-{r}") if r == 0 else _null():
            t0 = time.perf_counter()
            with transaction(sessions) as session:  # one transaction: lock the CA row, build, sign, store
                stored = crl.publish(ctx, session, get_ca(session, ca.name), delta=False)
                count, der_len = stored.entries, len(stored.der)
            kyso_s.append(time.perf_counter() - t0)
        sizes.append(der_len)
        if count != n:
            results.notes.append(f"CRL on {backend} listed {count} entries, expected {n}")
        say(f"    round {r + 1}: kyso {kyso_s[-1]:.2f} s, raw {raw_s[-1]:.2f} s "
            f"(DER {der_len / 1e6:.1f} MB vs raw {len(raw_der) / 1e6:.1f} MB)")
    k, b = statistics.median(kyso_s), statistics.median(raw_s)
    section = f"3. full CRL, {n:,} entries ({backend})"
    results.add(Figure(section, "crl.publish(delta=False), one transaction", k, "s",
                       "raw: entries built, list passed to CertificateRevocationListBuilder, sign (P-256), DER", b,
                       higher_is_better=False,
                       note=f"median of {repeats}; CRL {sizes[-1] / 1e6:.1f} MB; ratio = kyso time / raw time"))
    results.add(Figure(section, "crl.publish(delta=False), vs raw add_revoked_certificate loop", k, "s",
                       "raw: the documented builder.add_revoked_certificate() loop (copies the list each call)",
                       raw_loop_s, higher_is_better=False, note="raw measured once; the loop is quadratic in entries"))


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
