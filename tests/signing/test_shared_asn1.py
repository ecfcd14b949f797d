"""Certificates, OCSP responses and CRLs that kyso caches are fully parsed before threads share them.

asn1crypto parses lazily and without locks; under load two verifications touching a freshly loaded
certificate at once failed inside pyHanko's validator (KeyError: 'No field numbered N …'), and a
genuine document was reported as damaged."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

from asn1crypto import ocsp as asn1_ocsp, x509 as asn1_x509

from signing.shared_asn1 import shareable
from signing.verify.trust import read_certificates

TRUST = Path(__file__).resolve().parents[2] / "policies" / "trust"  # the bundled trust list


def _race(objects: list, touch, threads: int = 4) -> list[BaseException]:
    """Every thread touches every object at the same moment (a barrier per object)."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def run() -> None:
        for obj in objects:
            barrier.wait()
            try:
                touch(obj)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted on
                errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as a loaded server does, so a race shows
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(interval)
    return errors


def _touch_certificate(cert: asn1_x509.Certificate) -> None:
    # what pyhanko-certvalidator reads while building and checking a path
    assert cert.public_key.sha1 and cert.subject.hashable and cert.issuer.hashable
    assert cert.key_identifier_value is not None or cert.self_signed != "no"
    assert cert["tbs_certificate"]["extensions"].native is not None


def _ders() -> list[bytes]:
    ders = [c.dump() for f in sorted(TRUST.glob("*.crt")) for c in read_certificates(f.read_bytes())]
    assert ders, f"no certificates in {TRUST}"
    return ders * 100


def test_the_race_is_real_for_unparsed_certificates() -> None:
    """The control: the same threads on certificates that were not made shareable do trip (or the test
    below would prove nothing)."""
    errors = _race([asn1_x509.Certificate.load(der) for der in _ders()], _touch_certificate)
    assert errors, "no race seen on unparsed certificates"


def test_shared_certificates_survive_concurrent_first_use() -> None:
    assert _race([shareable(asn1_x509.Certificate.load(der)) for der in _ders()], _touch_certificate) == []


def test_read_certificates_returns_shareable_objects() -> None:
    certs = [c for f in sorted(TRUST.glob("*.crt")) for c in read_certificates(f.read_bytes())]
    assert all(c._native is not None for c in certs)  # parsed once, before anything shares them


def test_shareable_parses_the_inner_ocsp_response(pki) -> None:
    from sqlalchemy import select

    from core.db import transaction
    from pki.models import OcspResponse

    with transaction(pki.sessions) as session:
        der = session.execute(select(OcspResponse.der).limit(1)).scalar_one()
    response = shareable(asn1_ocsp.OCSPResponse.load(der))
    inner = response["response_bytes"]["response"]
    assert inner._parsed is not None and inner.parsed._native is not None
