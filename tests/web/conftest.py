"""A live kyso with signed documents for the citizen page, and headless Debian Chromium for the browser tests.

One ``kyso serve`` per test module (the page is presentation over the registry: SQLite is enough).
Documents are signed in this process into the server's database. With ``CI=true`` a missing
browser or Playwright fails the run instead of skipping it.
"""
from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.container import Container, build
from pki import revocation
from pki.authorities import init_hierarchy
from pki.reasons import Reason
from signing.registry import lifecycle
from signing.create.service import SignRequest, SignResult
from tests.conftest import IN_CI, ISSUING, ROOT, LiveServer, free_port, make_settings
from tests.signing.fixtures import COMMUNE, CORPUS, issue_credential

CHROMIUM = os.environ.get("KYSO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
APPLICANT = "Nguyễn Văn An"
DOSSIER = "HS-2026-000123"


@dataclass
class Site:
    container: Container
    server: LiveServer
    genuine: SignResult  # valid, visible stamp with a QR code and an offline seal
    other: SignResult  # valid, never opened before the offline test
    withdrawn: SignResult
    superseded: SignResult
    revoked: SignResult  # signer's key compromised after signing

    @property
    def url(self) -> str:
        return self.server.url

    def qr_url(self, doc: SignResult) -> str:
        assert doc.offline_seal, "signed without an offline seal"
        return f"{self.url}/v/{doc.document_id}#{doc.offline_seal}"


def sign(container: Container, credential: str, **seal: str) -> SignResult:
    request = SignRequest(pdf=(CORPUS / "fourpages.pdf").read_bytes(), document_type="dossier-result",
                          commune_code=COMMUNE, credential_id=credential, dossier_number=seal.get("dossier_no"),
                          seal_fields=seal)
    return container.signing.sign(request, actor="test")


def tamper_seal(token: str, name: str, value: str) -> str:
    """The same signature over a payload with one field changed (what an altered paper would carry)."""
    payload, signature = token.split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    items = [f"{name}={value}" if item.startswith(name + "=") else item for item in raw.split("\x1f")]
    assert items != raw.split("\x1f"), f"the seal has no field {name}"
    changed = base64.urlsafe_b64encode("\x1f".join(items).encode()).rstrip(b"=").decode()
    return f"{changed}.{signature}"


def tamper_pdf(pdf: bytes) -> bytes:
    """One byte changed inside the first signed range (the binary comment on the header's second line)."""
    index = pdf.index(b"%", 5) + 1
    assert index < 64 and pdf[index] >= 0x80
    return pdf[:index] + bytes([pdf[index] ^ 0x01]) + pdf[index + 1:]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("citizen") / "live"
    port = free_port()
    settings = make_settings(home, f"sqlite:///{home / 'kyso.db'}", base_url=f"http://127.0.0.1:{port}")
    container = build(settings)
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
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "Playwright is not installed (pip install -e '.[test]')"
    if problem is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
    if problem:
        if IN_CI:
            pytest.fail(f"the citizen page's browser tests need a browser in CI: {problem}")
        pytest.skip(problem)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
