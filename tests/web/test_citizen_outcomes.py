"""Every outcome a citizen can meet, in headless Chromium at phone size: one verdict, one colour, plain words.

For each outcome (genuine current, earlier version, withdrawn, changed file, a file kyso did not sign,
an unknown code, the manual lookup) the page shows exactly one verdict box; every coloured box and
badge on it has that verdict's colour (computed styles, as the phone draws them); and the text a
person sees outside the closed "Chi tiết kỹ thuật" disclosure holds no ETSI indication or
sub-indication and no English slug. Screenshots go to tests/web/artifacts/ (gitignored).
"""
from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from core.db import transaction
from policies import units
from signing.verify.indications import Indication, SubIndication
from tests.helpers.pdfs import ForeignCA
from tests.helpers.signing import CORPUS
from tests.helpers.web import Site, tamper_pdf, tamper_seal

TONES = {"ok": "rgb(10, 107, 42)", "warn": "rgb(138, 90, 0)", "bad": "rgb(176, 0, 32)"}
NEUTRAL = {"rgb(119, 119, 119)", "rgb(68, 68, 68)"}  # .plain boxes and badges: no verdict
ETSI = sorted({*(i.value for i in Indication), *(s.value for s in SubIndication)}, key=len, reverse=True)
SLUG = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b|\b[A-Z]+(?:_[A-Z]+)+\b")  # other_document, NO_CERTIFICATE_CHAIN_FOUND
SLUG_WORDS = re.compile(r"\b(genuine|unregistered|modified|withdrawn|superseded|valid|revoked|timestamp_only|"
                        r"not_genuine|earlier_version|unknown_document|malformed_document_id|match|mismatch)\b")
CONTACTS = [{"code": "00004", "address": "Số 1 phố Thử Nghiệm, Ba Đình", "phone": "024 0000 0000",
             "source": "tệp thử nghiệm (không phải dữ liệu thật)"}]

SEEN = """() => {
  const shown = e => e.offsetParent !== null;
  const boxes = [...document.querySelectorAll('.box')].filter(shown).map(e => ({
    id: e.id, verdict: e.hasAttribute('data-verdict'), border: getComputedStyle(e).borderTopColor}));
  const badges = [...document.querySelectorAll('.badge')].filter(shown).map(e => getComputedStyle(e).backgroundColor);
  const details = [...document.querySelectorAll('details')];
  details.forEach(d => { d.dataset.was = d.style.display; d.style.display = 'none'; });
  const text = document.body.innerText;
  details.forEach(d => { d.style.display = d.dataset.was; });
  return {boxes, badges, text, tech: details.map(d => d.textContent).join(' ')};
}"""


@pytest.fixture(scope="module")
def with_contacts(site: Site) -> Site:
    """This module's commune has an address and phone (the test file says it is test data)."""
    with transaction(site.container.sessions) as session:
        units.import_contacts(session, json.dumps(CONTACTS).encode(), dt.datetime.now(dt.UTC).date(), actor="test")
    return site


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                              has_touch=True, locale="vi-VN")
    ctx.set_default_timeout(20_000)
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


def check(page: Any, artifacts: Path, name: str, tone: str) -> dict[str, Any]:
    """One verdict box, one colour (``tone``) on every coloured box and badge, no code or slug in sight."""
    page.screenshot(path=str(artifacts / f"outcome-{name}.png"), full_page=True)
    seen = page.evaluate(SEEN)
    verdicts = [b for b in seen["boxes"] if b["verdict"]]
    assert len(verdicts) == 1, seen["boxes"]
    colours = {b["border"] for b in seen["boxes"]} | set(seen["badges"])
    assert colours - NEUTRAL == {TONES[tone]}, (name, colours)
    text = seen["text"]
    assert not [code for code in ETSI if code in text], (name, text)
    assert not SLUG.search(text) and not SLUG_WORDS.search(text), (name, SLUG.search(text) or SLUG_WORDS.search(text))
    return seen


def upload(page: Any, pdf: bytes) -> None:
    page.set_input_files("#file", files=[{"name": "giay-to.pdf", "mimeType": "application/pdf", "buffer": pdf}])
    with page.expect_navigation():
        page.click("form[action^='/v/'][enctype] button[type=submit]")


def test_genuine_current(with_contacts: Site, phone: Any, artifacts: Path) -> None:
    site = with_contacts
    phone.goto(f"{site.url}/v/{site.genuine.document_id}")
    seen = check(phone, artifacts, "1-genuine-page", "ok")
    assert "CÒN HIỆU LỰC" in seen["text"] and "Việc cần làm" in seen["text"]
    assert "Số 1 phố Thử Nghiệm, Ba Đình" in seen["text"]
    assert phone.get_attribute("#contact-phone", "href") == "tel:02400000000"
    upload(phone, site.genuine.pdf)
    seen = check(phone, artifacts, "2-genuine-upload", "ok")
    assert phone.inner_text("#result .badge") == "HỢP LỆ" and "Bạn có thể dùng tệp này." in seen["text"]
    assert "còn hiệu lực" in phone.inner_text("#status") and "CÒN HIỆU LỰC" not in seen["text"]
    assert "TOTAL-PASSED" in seen["tech"]  # the code is there for staff, inside the disclosure


def test_earlier_version(site: Site, phone: Any, artifacts: Path) -> None:
    phone.goto(f"{site.url}/v/{site.superseded.document_id}")
    seen = check(phone, artifacts, "3-superseded", "warn")
    assert "ĐÃ CÓ VĂN BẢN MỚI THAY THẾ" in seen["text"]
    assert phone.get_attribute("#status a", "href") == f"/v/{site.other.document_id}?lang=vi"


def test_withdrawn(site: Site, phone: Any, artifacts: Path) -> None:
    phone.goto(f"{site.url}/v/{site.withdrawn.document_id}")
    seen = check(phone, artifacts, "4-withdrawn", "bad")
    assert "ĐÃ BỊ THU HỒI" in seen["text"] and "Hãy liên hệ UBND Phường Ba Đình" in seen["text"]


def test_changed_file(site: Site, phone: Any, artifacts: Path) -> None:
    """The issue's case: a changed file on a valid document's page was a red box above a green one."""
    phone.goto(f"{site.url}/v/{site.genuine.document_id}")
    upload(phone, tamper_pdf(site.genuine.pdf))
    seen = check(phone, artifacts, "5-changed-upload", "bad")
    assert phone.inner_text("#result .badge") == "KHÔNG HỢP LỆ" and "Đừng dùng tệp này." in seen["text"]
    assert phone.get_attribute("#status", "class") == "note"  # the registry's status: a plain line, no colour


def test_not_signed_by_kyso(site: Site, phone: Any, artifacts: Path) -> None:
    ca = ForeignCA.create(dt.datetime.now(dt.UTC))
    with ThreadPoolExecutor(1) as worker:  # pyHanko's loop on a thread of its own: Playwright's runs on this one
        foreign = worker.submit(ca.sign, (CORPUS / "fourpages.pdf").read_bytes(), pss=False).result()
    phone.goto(f"{site.url}/v/{site.genuine.document_id}")
    upload(phone, foreign)
    seen = check(phone, artifacts, "6-foreign-upload", "bad")
    assert phone.get_attribute("#result", "data-result") == "unregistered"
    assert "không khớp với văn bản" in seen["text"] and "INDETERMINATE" in seen["tech"]


def test_unknown_code(site: Site, phone: Any, artifacts: Path) -> None:
    response = phone.goto(f"{site.url}/v/ABCDEFGHJKLM")
    assert response.status == 404
    seen = check(phone, artifacts, "7-unknown", "bad")
    assert "KHÔNG TÌM THẤY" in seen["text"] and "dưới mã QR" not in seen["text"]


def test_manual_lookup(site: Site, phone: Any, artifacts: Path) -> None:
    phone.goto(f"{site.url}/")
    assert "Dành cho đơn vị phát triển phần mềm" in phone.inner_text("main")
    phone.screenshot(path=str(artifacts / "outcome-8-landing.png"), full_page=True)
    phone.goto(f"{site.url}/v")
    phone.screenshot(path=str(artifacts / "outcome-8-lookup-form.png"), full_page=True)
    phone.fill("#ma", "rz7p-0000")  # a typing slip: 0 is never in a code
    with phone.expect_navigation():
        phone.click("#lookup button")
    seen = check(phone, artifacts, "8-lookup-wrong", "bad")
    assert "MÃ KHÔNG ĐÚNG" in seen["text"] and phone.input_value("#ma") == "rz7p-0000"
    doc_id = site.genuine.document_id
    phone.fill("#ma", f" {doc_id[:4].lower()}-{doc_id[4:8].lower()} {doc_id[8:]} ")  # as printed, typed loosely
    with phone.expect_navigation():
        phone.click("#lookup button")
    assert phone.url == f"{site.url}/v/{doc_id}"
    check(phone, artifacts, "8-lookup-found", "ok")


def test_altered_paper_seal_is_the_one_verdict(site: Site, phone: Any, artifacts: Path) -> None:
    """The QR's seal does not match (the paper was altered): red wins, the registry's green box turns neutral;
    a matching seal stays neutral under the registry's verdict."""
    token = tamper_seal(site.genuine.offline_seal or "", "applicant", "Nguyễn Văn Ân")
    phone.goto(f"{site.url}/v/{site.genuine.document_id}#{token}")
    phone.wait_for_selector("#seal-result:not([data-result='pending'])")
    assert phone.get_attribute("#seal-result", "data-result") == "mismatch"
    seen = phone.evaluate(SEEN)
    phone.screenshot(path=str(artifacts / "outcome-9-seal-altered.png"), full_page=True)
    colours = {b["border"] for b in seen["boxes"]} | set(seen["badges"])
    assert colours - NEUTRAL == {TONES["bad"]}, colours
    assert phone.get_attribute("#status", "class") == "box plain"
    assert [b["id"] for b in seen["boxes"] if b["verdict"]] == ["seal-result"]
    phone.goto(site.qr_url(site.withdrawn))  # a genuine paper of a withdrawn document: one colour, red
    phone.wait_for_selector("#seal-result:not([data-result='pending'])")
    check(phone, artifacts, "9-seal-match-withdrawn", "bad")
