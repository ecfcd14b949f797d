"""The per-worker cache of pre-produced OCSP answers never outlives a revocation by more than
the configured check interval, also when another worker made the revocation."""
from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as x_ocsp
from fastapi.testclient import TestClient

from api.app import create_app
from core.db import transaction
from pki import issuance, revocation, store
from pki.reasons import Reason
from tests import factories
from tests.helpers.db import build_migrated, make_settings


def _status(client: TestClient, path: str) -> x_ocsp.OCSPCertStatus:
    r = client.get(path)
    assert r.status_code == 200
    return x_ocsp.load_der_ocsp_response(r.content).certificate_status


@pytest.mark.parametrize("check_seconds,stale_expected", [(0, False), (3600, True)])
def test_revocation_by_another_worker(pki, tmp_path, check_seconds, stale_expected):
    row = issuance.issue(pki.pki, issuance.IssueRequest(profile="specialist", subject=factories.specialist(),
                                                        commune_code="00004"), "test").certificate
    with transaction(pki.sessions) as session:
        issuer = x509.load_der_x509_certificate(store.get_ca(session, "test-issuing").cert_der)
    request = x_ocsp.OCSPRequestBuilder().add_certificate(x509.load_der_x509_certificate(row.der), issuer, hashes.SHA1()).build()
    path = "/ocsp/" + base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()

    settings = make_settings(pki.settings.home, pki.settings.resolved_database_url, ocsp_cache_check_seconds=check_seconds)
    worker_a = build_migrated(settings)  # another process's view of the same database
    with TestClient(create_app(worker_a, scheduler=False)) as client:
        assert _status(client, path) is x_ocsp.OCSPCertStatus.GOOD
        assert _status(client, path) is x_ocsp.OCSPCertStatus.GOOD
        assert worker_a.pki.ocsp_cache.hits >= 1
        revocation.revoke(pki.pki, row.serial, Reason.keyCompromise, "worker-b")  # the other worker
        expected = x_ocsp.OCSPCertStatus.GOOD if stale_expected else x_ocsp.OCSPCertStatus.REVOKED
        assert _status(client, path) is expected
        worker_a.pki.ocsp_cache.clear()  # what the next epoch check does
        assert _status(client, path) is x_ocsp.OCSPCertStatus.REVOKED
    worker_a.engine.dispose()


def test_revocation_in_the_same_worker_is_seen_at_once(pki):
    row = issuance.issue(pki.pki, issuance.IssueRequest(profile="specialist", subject=factories.specialist(),
                                                        commune_code="00004"), "test").certificate
    settings = make_settings(pki.settings.home, pki.settings.resolved_database_url, ocsp_cache_check_seconds=3600)
    worker = build_migrated(settings)
    with transaction(worker.sessions) as session:
        issuer = x509.load_der_x509_certificate(store.get_ca(session, "test-issuing").cert_der)
    request = x_ocsp.OCSPRequestBuilder().add_certificate(x509.load_der_x509_certificate(row.der), issuer, hashes.SHA1()).build()
    path = "/ocsp/" + base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()
    with TestClient(create_app(worker, scheduler=False)) as client:
        assert _status(client, path) is x_ocsp.OCSPCertStatus.GOOD
        revocation.revoke(worker.pki, row.serial, Reason.affiliationChanged, "same-worker")
        assert _status(client, path) is x_ocsp.OCSPCertStatus.REVOKED
    worker.engine.dispose()
