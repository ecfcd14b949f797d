"""The citizen page's live site (made by the ``site`` fixture in tests/web/conftest.py) and ways to tamper with
what it serves; headless Debian Chromium is the ``browser`` fixture there.

One ``kyso serve`` per test module (the page is presentation over the registry: SQLite is enough).
Documents are signed in this process into the server's database. With ``CI=true`` a missing
browser or Playwright fails the run instead of skipping it.
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from api.container import Container
from hsm import SignatureScheme
from signing.create import offline_seal
from signing.create.service import SignRequest, SignResult
from tests.helpers.db import IN_CI
from tests.helpers.servers import LiveServer
from tests.helpers.signing import COMMUNE, CONSENTED, CORPUS

CHROMIUM = os.environ.get("KYSO_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
APPLICANT = "Nguyễn Văn An"


@contextlib.contextmanager
def chromium(needed_by: str) -> Iterator[object]:
    """Debian's Chromium driven by Playwright (never a downloaded browser). Missing: the test fails in CI
    (saying what ``needed_by`` needs), and is skipped elsewhere."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "Playwright is not installed (make install-test)"
    if problem is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
    if problem:
        if IN_CI:
            pytest.fail(f"{needed_by} need(s) a browser in CI: {problem}")
        pytest.skip(problem)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
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
    return container.signing.sign(request, actor="test", activation=CONSENTED)


def tamper_seal(token: str, name: str, value: str) -> str:
    """The same signature over a payload with one field changed (what an altered paper would carry)."""
    if token.startswith(offline_seal.PREFIX2):
        parsed = offline_seal.parse(token)
        fields = tuple((key, value if key == name else old) for key, old in parsed.facts.fields)
        assert fields != parsed.facts.fields, f"the seal has no field {name}"
        facts = dataclasses.replace(parsed.facts, fields=fields)
        return offline_seal.token2(offline_seal.encode2(facts, parsed.kid), parsed.signature)
    payload, signature = token.split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    items = [f"{name}={value}" if item.startswith(name + "=") else item for item in raw.split("\x1f")]
    assert items != raw.split("\x1f"), f"the seal has no field {name}"
    changed = base64.urlsafe_b64encode("\x1f".join(items).encode()).rstrip(b"=").decode()
    return f"{changed}.{signature}"


def ks1_seal(container: Container, token: str) -> str:
    """The same facts as the KS2 ``token``, signed in the KS1 form by the same seal key: what kyso
    printed before issue 19 (those papers must keep verifying)."""
    parsed = offline_seal.parse(token)
    material = offline_seal.SealMaterialCache(container.pki).get()
    payload = offline_seal.encode(parsed.facts, parsed.kid)
    der = container.pki.keystores.for_ref(material.key_ref).sign_digest(
        material.key_ref, hashlib.sha256(payload).digest(), hashes.SHA256(), SignatureScheme.ECDSA)
    r, s = decode_dss_signature(der)
    return offline_seal.b64url(payload) + "." + offline_seal.b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def tamper_pdf(pdf: bytes) -> bytes:
    """One byte changed inside the first signed range (the binary comment on the header's second line)."""
    index = pdf.index(b"%", 5) + 1
    assert index < 64 and pdf[index] >= 0x80
    return pdf[:index] + bytes([pdf[index] ^ 0x01]) + pdf[index + 1:]
