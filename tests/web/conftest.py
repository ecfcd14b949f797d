"""A live kyso with signed documents for the citizen page, and headless Debian Chromium for the browser tests.

One ``kyso serve`` per test module (the page is presentation over the registry: SQLite is enough).
Documents are signed in this process into the server's database. With ``CI=true`` a missing
browser or Playwright fails the run instead of skipping it.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pki import revocation
from pki.authorities import init_hierarchy
from pki.reasons import Reason
from signing.registry import lifecycle
from tests.helpers.db import ISSUING, ROOT, build_for_test, make_settings
from tests.helpers.servers import LiveServer, free_port
from tests.helpers.signing import issue_credential
from tests.helpers.web import APPLICANT, DOSSIER, Site, chromium, sign

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
@pytest.fixture(scope="module")
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("citizen") / "live"
    port = free_port()
    settings = make_settings(home, f"sqlite:///{home / 'kyso.db'}", base_url=f"http://127.0.0.1:{port}")
    container = build_for_test(request, settings)
    init_hierarchy(container.pki, root=ROOT, issuing=ISSUING, actor="test")
    specialist = issue_credential(container)
    genuine = sign(container, specialist, dossier_no=DOSSIER, applicant=APPLICANT)
    other = sign(container, specialist, dossier_no="HS-2026-000777", applicant="Trần Thị Bình")
    withdrawn = sign(container, specialist, dossier_no="HS-2026-000200")
    superseded = sign(container, specialist, dossier_no="HS-2026-000300")
    lifecycle.withdraw(container.pki, withdrawn.document_id, "issued by mistake", "test")
    lifecycle.supersede(container.pki, superseded.document_id, other.document_id, "corrected", "test")
    leaked = issue_credential(container, name="Lê Văn Cường", id_number="001190000002")
    revoked = sign(container, leaked, dossier_no="HS-2026-000400")
    revocation.revoke(container.pki, revoked.signer_serial, Reason.keyCompromise, "test")
    server = LiveServer(settings, port)
    try:
        yield Site(container, server, genuine, other, withdrawn, superseded, revoked)
    finally:
        server.stop()
        container.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium("the citizen page's browser tests") as launched:
        yield launched


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
