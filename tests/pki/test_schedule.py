"""Scheduled republication: CRLs past half their life and OCSP responses near expiry are renewed."""
import datetime as dt

from cryptography import x509

from api.scheduler import republish_once
from core import clock
from core.db import transaction
from pki import crl, issuance, store
from tests import factories


def test_republish_when_due(pki):
    row = issuance.issue(pki.pki, issuance.IssueRequest(profile="specialist", subject=factories.specialist(),
                                                        commune_code="00004"), "test").certificate
    assert republish_once(pki) == {"crls": 0, "ocsp": 0}  # everything fresh
    later = clock.now() + dt.timedelta(hours=20)
    clock.set_clock(lambda: later)
    try:
        result = republish_once(pki)
    finally:
        clock.set_clock(None)
    assert result["crls"] == 4  # full + delta for both CAs
    assert result["ocsp"] >= 1
    with transaction(pki.sessions) as session:
        current = crl.latest(session, store.get_ca(session, "test-issuing"), delta=False)
        assert current.this_update == later
        parsed = x509.load_der_x509_crl(current.der)
        assert parsed.next_update_utc == later + dt.timedelta(hours=pki.settings.crl_validity_hours)
        from sqlalchemy import select

        from pki.models import OcspResponse

        stored = session.execute(select(OcspResponse).where(OcspResponse.serial == row.serial)).scalar_one()
        assert stored.this_update == later


def test_responder_certificate_is_renewed_before_it_expires(pki):
    row = issuance.issue(pki.pki, issuance.IssueRequest(profile="specialist", subject=factories.specialist(),
                                                        commune_code="00004"), "test").certificate
    with transaction(pki.sessions) as session:
        old_serial = store.get_ca(session, "test-issuing").ocsp_responder_serial
    later = clock.now() + dt.timedelta(days=340)
    clock.set_clock(lambda: later)
    try:
        result = republish_once(pki)
    finally:
        clock.set_clock(None)
    assert result["responders"] == 2
    with transaction(pki.sessions) as session:
        ca = store.get_ca(session, "test-issuing")
        assert ca.ocsp_responder_serial != old_serial
        responder = x509.load_der_x509_certificate(store.get_certificate(session, ca.ocsp_responder_serial).der)
        assert responder.not_valid_after_utc > later + dt.timedelta(days=300)
        from cryptography.x509 import ocsp as x_ocsp
        from sqlalchemy import select

        from pki.models import OcspResponse

        stored = session.execute(select(OcspResponse).where(OcspResponse.serial == row.serial)).scalar_one()
        assert x_ocsp.load_der_ocsp_response(stored.der).certificates[0] == responder


def test_delta_crls_are_refreshed_between_full_crls(pki):
    """A delta (4 h) must not lapse while its full CRL (24 h) is still fresh: the scheduler publishes a new
    delta on top of the current full CRL once the delta is past half its life."""
    with transaction(pki.sessions) as session:
        ca = store.get_ca(session, "test-issuing")
        full_before = crl.latest(session, ca, delta=False).number
    later = clock.now() + dt.timedelta(hours=pki.settings.delta_crl_validity_hours * 0.75)
    clock.set_clock(lambda: later)
    try:
        assert republish_once(pki)["crls"] == 2  # one delta per CA, no full CRL
        assert republish_once(pki)["crls"] == 0  # now fresh
    finally:
        clock.set_clock(None)
    with transaction(pki.sessions) as session:
        ca = store.get_ca(session, "test-issuing")
        full, delta = crl.latest(session, ca, delta=False), crl.latest(session, ca, delta=True)
        assert full.number == full_before
        assert delta.this_update == later and delta.base_number == full.number and delta.number > full.number
        parsed = x509.load_der_x509_crl(delta.der)
        assert parsed.next_update_utc == later + dt.timedelta(hours=pki.settings.delta_crl_validity_hours)
        assert parsed.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number == full.number
