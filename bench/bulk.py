"""Bulk-inserted revoked certificate rows, only to measure CRL build and OCSP lookup times.

Rows are inserted with SQLAlchemy Core (``insert(Certificate)``): random 159-bit serials as
kyso issues them, status "revoked", a revocation date in the past year, a realistic mix of
reasons, a unique fake sha256 and a small placeholder DER (no real certificate behind them).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import random
import time
from dataclasses import dataclass, field

from cryptography import x509
from sqlalchemy import insert

from pki.models import Certificate, OcspResponse

from .common import say

# Roughly what a commune PKI revokes: people move or retire, units merge, keys get replaced.
REASONS = (["affiliationChanged"] * 40 + ["cessationOfOperation"] * 20 + ["superseded"] * 20
           + ["keyCompromise"] * 5 + ["privilegeWithdrawn"] * 5 + ["unspecified"] * 10)
PLACEHOLDER_DER = b"\x30\x03\x02\x01\x00"


def _complete(table, row: dict) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """Fail clearly if the schema gained a required column this module does not know about."""
    missing = [c.name for c in table.columns if not c.nullable and c.default is None and c.server_default is None
               and not c.primary_key and c.name not in row]
    if missing:
        raise RuntimeError(f"bench/bulk.py does not fill {table.name}.{', '.join(missing)}; update it")
    return row


def _insert_many(conn, table, rows: list[dict]) -> None:  # type: ignore[no-untyped-def, type-arg]
    """``insert(table)`` compiled once by SQLAlchemy, values converted by the columns' own bind
    processors, then one DBAPI executemany: the same rows as ``conn.execute(insert(table), rows)``
    at about twice the speed (SQLAlchemy's per-row parameter assembly is most of the cost)."""
    keys = list(rows[0])
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=keys)
    order = compiled.positiontup if compiled.positional else keys
    if order is None or set(order) != set(keys):
        conn.execute(insert(table), rows)
        return
    procs = [(k, table.c[k].type.bind_processor(conn.dialect)) for k in order]
    if compiled.positional:
        params = [tuple(p(row[k]) if p else row[k] for k, p in procs) for row in rows]
    else:
        params = [{k: (p(row[k]) if p else row[k]) for k, p in procs} for row in rows]
    conn.exec_driver_sql(str(compiled), params)


@dataclass
class Inserted:
    count: int
    seconds: float
    with_response: list[str] = field(default_factory=list)  # sample serials that have a stored OCSP response
    without_response: list[str] = field(default_factory=list)  # sample serials that have none


def insert_revoked(engine, ca_id: int, n: int, *, now: dt.datetime, response_der: bytes | None = None,  # type: ignore[no-untyped-def]
                   sample: int = 0, chunk: int = 20_000, seed: int = 2025, progress: bool = False) -> Inserted:
    """Insert ``n`` revoked rows for ``ca_id``; with ``response_der``, a stored OCSP response for each
    row except ``sample`` of them (those are the on-demand sample; another ``sample`` rows that
    have one are returned too)."""
    rng = random.Random(seed)
    result = Inserted(n, 0.0)
    sample_every = max(1, n // max(1, sample)) if sample else 0
    response_columns = set(OcspResponse.__table__.columns.keys())
    t0 = time.perf_counter()
    last_report = t0
    done = 0
    while done < n:
        size = min(chunk, n - done)
        certs, responses = [], []
        for i in range(done, done + size):
            serial = format(x509.random_serial_number(), "X")
            issued = now - dt.timedelta(days=rng.uniform(30, 700))
            revoked = issued + (now - issued) * rng.uniform(0.05, 0.95)
            cn = f"Bench Subject {i:07d}"
            certs.append({
                "serial": serial, "ca_id": ca_id, "profile": "specialist",
                "subject": f"CN={cn},O=Bench Commune,C=VN", "common_name": cn,
                "commune_code": None, "province_code": None,
                "not_before": issued, "not_after": issued + dt.timedelta(days=730 + 30),
                "status": "revoked", "status_changed_at": revoked, "revoked_at": revoked,
                "revocation_reason": rng.choice(REASONS), "released_at": None,
                "der": PLACEHOLDER_DER, "sha256": hashlib.sha256(b"bench:" + serial.encode()).hexdigest(),
                "key_ref": None, "replaces_serial": None, "issued_by": "bench", "issued_at": issued, "external": False,
            })
            on_demand = bool(sample_every) and i % sample_every == 0 and len(result.without_response) < sample
            if on_demand:
                result.without_response.append(serial)
            elif sample_every and i % sample_every == sample_every // 2 and len(result.with_response) < sample:
                result.with_response.append(serial)
            if response_der is not None and not on_demand:
                response = {"ca_id": ca_id, "serial": serial, "der": response_der,
                            "this_update": now, "next_update": now + dt.timedelta(hours=24)}
                if "cert_status" in response_columns:  # the status the stored response says
                    response["cert_status"] = "revoked"
                responses.append(response)
        certs.sort(key=lambda r: r["serial"])  # index locality: somewhat faster inserts, same content
        responses.sort(key=lambda r: r["serial"])
        if done == 0:
            _complete(Certificate.__table__, certs[0])
            if responses:
                _complete(OcspResponse.__table__, responses[0])
        with engine.begin() as conn:
            _insert_many(conn, Certificate.__table__, certs)
            if responses:
                _insert_many(conn, OcspResponse.__table__, responses)
        done += size
        if progress and (time.perf_counter() - last_report > 10 or done == n):
            last_report = time.perf_counter()
            elapsed = last_report - t0
            say(f"    inserted {done:,}/{n:,} rows ({done / elapsed:,.0f} rows/s, {elapsed:.0f} s)")
    result.seconds = time.perf_counter() - t0
    return result
