"""The citizen page in a real browser: headless Debian Chromium driven by Playwright, on a live kyso.

A phone-sized context with an in-app-browser user agent opens the page, uploads the signed file and
a tampered copy, opens QR addresses carrying the offline seal (intact, altered), and, after a first
visit, opens another document's QR address with the connection cut. Screenshots go to artifacts/.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.signing import COMMUNE, CONSENTED
from tests.helpers.web import APPLICANT, DOSSIER, Site, ks1_seal, tamper_pdf, tamper_seal

ZALO_UA = ("Mozilla/5.0 (Linux; Android 10; SM-A105F) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
           "Chrome/120.0.0.0 Mobile Safari/537.36 Zalo android/12100 ZaloTheme/light ZaloLanguage/vi")
SETTLED = "#seal-result:not([data-result='pending'])"


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                              has_touch=True, user_agent=ZALO_UA, locale="vi-VN")
    ctx.set_default_timeout(20_000)
    try:
        yield ctx
    finally:
        ctx.close()


def shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def choose_and_check(page: Any, pdf: bytes) -> None:
    page.set_input_files("#file", files=[{"name": "ban-nhan-duoc.pdf", "mimeType": "application/pdf", "buffer": pdf}])
    with page.expect_navigation():
        page.click("button[type=submit]")


def test_upload_genuine_then_tampered(site: Site, context: Any, artifacts: Path) -> None:
    page = context.new_page()
    page.goto(f"{site.url}/v/{site.genuine.document_id}")
    assert page.inner_text("#status .badge") == "CÒN HIỆU LỰC"
    assert "Nguyễn V** A*" in page.inner_text("#paper-facts")
    shot(page, artifacts, "01-page")
    choose_and_check(page, site.genuine.pdf)
    assert page.get_attribute("#result", "data-result") == "genuine", page.inner_text("#result")
    assert page.inner_text("#result .badge") == "HỢP LỆ"
    shot(page, artifacts, "02-upload-genuine")
    page.goto(f"{site.url}/v/{site.genuine.document_id}")
    choose_and_check(page, tamper_pdf(site.genuine.pdf))
    assert page.inner_text("#result .badge") == "KHÔNG HỢP LỆ"
    assert page.get_attribute("#result", "data-result") in ("unregistered", "not_genuine", "modified")
    shot(page, artifacts, "03-upload-tampered")


def test_upload_works_without_javascript(site: Site, browser: Any, artifacts: Path) -> None:
    ctx = browser.new_context(java_script_enabled=False, viewport={"width": 360, "height": 740})
    try:
        page = ctx.new_page()
        page.goto(f"{site.url}/v/{site.genuine.document_id}?lang=en#{site.genuine.offline_seal}")
        assert page.is_visible("noscript p") or "JavaScript is off" in page.content()
        choose_and_check(page, site.genuine.pdf)
        assert page.inner_text("#result .badge") == "GENUINE"
        shot(page, artifacts, "04-no-javascript-upload")
    finally:
        ctx.close()


def test_seal_verified_from_qr_address(site: Site, context: Any, artifacts: Path) -> None:
    page = context.new_page()
    page.goto(site.qr_url(site.genuine))
    page.wait_for_selector(SETTLED)
    assert page.get_attribute("#seal-result", "data-result") == "match"
    assert page.inner_text("#seal-result .badge") == "CON DẤU ĐÚNG"
    facts = page.inner_text("#seal-facts")
    assert APPLICANT in facts and "Người nộp hồ sơ" in facts and DOSSIER in facts and "Phường Ba Đình" in facts
    shot(page, artifacts, "05-seal-match")
    page.click("#lang-switch")  # the English switch keeps the seal
    page.wait_for_selector(SETTLED)
    assert page.url.endswith(f"?lang=en#{site.genuine.offline_seal}")
    assert page.inner_text("#seal-result .badge") == "SEAL MATCHES" and "Applicant" in page.inner_text("#seal-facts")


def test_compact_and_old_seals_both_verify_in_the_browser(site: Site, context: Any) -> None:
    """kyso prints KS2 now (issue 19); a paper printed earlier carries KS1: WebCrypto checks both."""
    token = site.genuine.offline_seal or ""
    assert token.startswith("KS2:")
    old = ks1_seal(site.container, token)
    for seal in (token, old, tamper_seal(old, "applicant", "Nguyễn Văn Ân")):
        page = context.new_page()
        page.goto(f"{site.url}/v/{site.genuine.document_id}#{seal}")
        page.wait_for_selector(SETTLED)
        expected = "mismatch" if seal not in (token, old) else "match"
        assert page.get_attribute("#seal-result", "data-result") == expected, seal
        facts = page.inner_text("#seal-facts")
        assert DOSSIER in facts and "Người nộp hồ sơ" in facts and site.genuine.document_id in facts
        page.close()


def test_altered_seal_field_is_a_mismatch(site: Site, context: Any, artifacts: Path) -> None:
    token = tamper_seal(site.genuine.offline_seal or "", "applicant", "Nguyễn Văn Ân")
    page = context.new_page()
    page.goto(f"{site.url}/v/{site.genuine.document_id}#{token}")
    page.wait_for_selector(SETTLED)
    assert page.get_attribute("#seal-result", "data-result") == "mismatch"
    assert page.inner_text("#seal-result .badge") == "KHÔNG KHỚP"
    assert "có thể đã bị sửa" in page.inner_text("#seal-result")
    shot(page, artifacts, "06-seal-altered")


def test_seal_of_another_document(site: Site, context: Any) -> None:
    page = context.new_page()
    page.goto(f"{site.url}/v/{site.genuine.document_id}#{site.other.offline_seal}")
    page.wait_for_selector(SETTLED)
    assert page.get_attribute("#seal-result", "data-result") == "other_document"


def test_offline_seal_check_after_a_first_visit(site: Site, context: Any, artifacts: Path) -> None:
    page = context.new_page()
    page.goto(site.qr_url(site.genuine))
    page.wait_for_selector(SETTLED)
    assert page.evaluate("navigator.serviceWorker.ready.then(function () { return true; })")
    context.set_offline(True)
    try:
        page.goto(site.qr_url(site.other))  # a document this phone never opened
        page.wait_for_selector(SETTLED)
        assert page.get_attribute("#main", "data-offline") == "true"
        assert page.inner_text("#offline .badge") == "KHÔNG CÓ KẾT NỐI MẠNG"
        assert page.get_attribute("#seal-result", "data-result") == "match"
        assert "chưa kiểm tra sổ đăng ký" in page.inner_text("#seal-result .offline-note")
        assert page.inner_text("#doc-id") == site.other.document_id
        assert "Trần Thị Bình" in page.inner_text("#seal-facts")
        assert "Phường Ba Đình, Hà Nội" in page.inner_text("#seal-facts")  # commune names cached too
        shot(page, artifacts, "07-offline-seal")
        page.goto(f"{site.url}/v/{site.other.document_id}?lang=en#"
                  + tamper_seal(site.other.offline_seal or "", "dossier_no", "HS-2026-000778"))
        page.wait_for_selector(SETTLED)
        assert page.get_attribute("#seal-result", "data-result") == "mismatch"
        assert "NO CONNECTION" in page.inner_text("#offline")
        shot(page, artifacts, "08-offline-seal-altered-en")
    finally:
        context.set_offline(False)


def test_without_webcrypto_the_page_says_so(site: Site, context: Any, artifacts: Path) -> None:
    context.add_init_script("Object.defineProperty(Crypto.prototype, 'subtle', {get: function () { return undefined; }});")
    page = context.new_page()
    page.goto(site.qr_url(site.genuine))
    page.wait_for_selector(SETTLED)
    assert page.get_attribute("#seal-result", "data-result") == "nocrypto"
    assert "không kiểm tra được con dấu số trên thiết bị này" in page.inner_text("#seal-result").lower()
    shot(page, artifacts, "09-no-webcrypto")


def test_unknown_document_page(site: Site, context: Any, artifacts: Path) -> None:
    page = context.new_page()
    response = page.goto(f"{site.url}/v/ABCDEFGHJKLM")
    assert response.status == 404 and page.inner_text("#error .badge") == "KHÔNG TÌM THẤY"
    shot(page, artifacts, "10-unknown")


def test_public_log_line_at_phone_size(site: Site, context: Any, artifacts: Path) -> None:
    """Below the one verdict, a plain line: "recorded in the public log, entry N" with the proof to download,
    fitting a 360 px screen; a withdrawn document shows its withdrawal entry too."""
    from pki.transparency import service

    service.sequence_all(site.container.pki)  # what `kyso serve` does every second, done now
    page = context.new_page()
    page.goto(f"{site.url}/v/{site.genuine.document_id}")
    line = page.locator("#log [data-log='logged']")
    assert line.is_visible() and line.inner_text().startswith("Đã ghi vào sổ công khai: mục số ")
    assert page.locator("[data-verdict]").count() == 1
    verdict, log_box = page.locator("[data-verdict]").bounding_box(), line.bounding_box()
    assert verdict and log_box and log_box["y"] > verdict["y"] + verdict["height"] - 1  # below the verdict
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # nothing wider than the phone
    assert log_box["x"] >= 0 and log_box["x"] + log_box["width"] <= 360
    proof = page.request.get(site.url + line.locator("a[download]").get_attribute("href"))
    assert proof.ok and proof.text().startswith("c2sp.org/tlog-proof@v1\n")
    shot(page, artifacts, "11-public-log-line")
    page.goto(f"{site.url}/v/{site.withdrawn.document_id}?lang=en")
    assert page.locator("#log [data-log='withdrawn']").inner_text().startswith(
        "The withdrawal is recorded in the public log too: entry number ")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, artifacts, "12-public-log-withdrawn-en")


def test_a_later_versions_seal_shows_its_log_entry(site: Site, context: Any, artifacts: Path) -> None:
    """A second signature's QR seal carries the log index of the document's (proven) registration; the
    browser decodes it and names it; a change to it breaks the seal."""
    from pki.transparency import service
    from signing.create import offline_seal
    from tests.helpers.signing import issue_credential
    from tests.helpers.web import sign

    def signed_twice() -> Any:  # in a thread: Playwright's event loop runs in this one, and signing runs its own
        first = sign(site.container, issue_credential(site.container, name="Phạm Văn Dũng",
                                                      id_number="001190000011"), dossier_no="HS-2026-000500")
        service.sequence_all(site.container.pki)
        request = dataclasses.replace(_request_of(first.pdf), credential_id=issue_credential(
            site.container, name="Đỗ Thị Em", id_number="001190000012"))
        return site.container.signing.sign(request, actor="test", activation=CONSENTED)

    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(signed_twice).result()
    assert second.version == 2 and second.offline_seal
    index = offline_seal.parse(second.offline_seal).facts.field(offline_seal.LOG_FIELD)
    assert index is not None and index.isdigit()
    page = context.new_page()
    page.goto(site.qr_url(second))
    page.wait_for_selector(SETTLED)
    assert page.get_attribute("#seal-result", "data-result") == "match"
    facts = page.inner_text("#seal-facts")
    assert "Mục số trong sổ công khai" in facts and index in facts
    # the seal's index is version 1's registration entry
    from core.db import transaction
    with transaction(site.container.sessions, read_only=True) as session:
        assert service.registration_index(session, second.document_id, 1) == int(index)
    # the page names the newest proven registration: version 1's (the seal's index) while version 2's entry
    # waits, or version 2's once the server's own sequencer (every second) has taken it
    logged = page.locator("#log [data-log='logged']").inner_text()
    if page.locator("#log [data-log='version_pending']").count():
        assert logged.startswith(f"Đã ghi vào sổ công khai: mục số {index},")
    else:
        assert int(logged.split("mục số ", 1)[1].split(",", 1)[0]) > int(index)
    shot(page, artifacts, "13-seal-with-log-index")
    page = context.new_page()  # (a new page: only the fragment differs)
    page.goto(f"{site.url}/v/{second.document_id}#{tamper_seal(second.offline_seal, 'log', str(int(index) + 1))}")
    page.wait_for_selector(SETTLED)
    assert page.get_attribute("#seal-result", "data-result") == "mismatch"


def _request_of(pdf: bytes) -> Any:
    from signing.create.service import SignRequest

    return SignRequest(pdf=pdf, document_type="dossier-result", commune_code=COMMUNE, credential_id="",
                       dossier_number="HS-2026-000500", seal_fields={"dossier_no": "HS-2026-000500"})
