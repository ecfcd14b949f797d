"""The specialist's page /me in a real browser at phone size: headless Debian Chromium driven by Playwright on a
live kyso. She redeems the enrolment code an operator gave her on /me/enrol, chooses her PIN, takes the key
as text (what an authenticator on the same phone is typed), confirms its first code; signs in with her CCCD
number; opens the pending request from /me, sees every page of every pending document (images loaded), ticks
"I have seen every page", approves with PIN and a fresh code, and what kyso signed is byte for byte what she
saw: the signed PDF begins with the exact bytes whose SHA-256 she approved. No /me page scrolls sideways at
360 px. Screenshots go to artifacts/.

TOTP codes are the real clock's, the server being another process: enrolment takes the previous step's code,
sign-in this step's, the approval the next one's (all inside the one-step drift window), so the test never
waits for a new step.
"""
from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api import tokens
from api.container import Container
from core import clock
from signing.activation import crypto as sec, enrolment
from tests.helpers.activation import PIN
from tests.helpers.api import new_token
from tests.helpers.servers import LiveServer
from tests.helpers.signing import COMMUNE, CORPUS, issue_credential
from tests.helpers.specialist_page import CCCD

PHONE = {"width": 412, "height": 915}
NARROW = {"width": 360, "height": 740}


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                              locale="vi-VN")
    ctx.set_default_timeout(30_000)
    try:
        yield ctx
    finally:
        ctx.close()


def shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"me-{name}.png"), full_page=True)


def no_sideways_scroll(page: Any, what: str) -> None:
    """At 360 px (the narrowest phone the page is made for) and at 412 px, nothing is wider than the screen."""
    size = page.viewport_size
    for viewport in (NARROW, size):
        page.set_viewport_size(viewport)
        width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= inner, f"{what} is {width} px wide on a {inner} px screen"


def test_she_sees_every_page_approves_and_kyso_signs_exactly_that(
        live_pki: tuple[Container, LiveServer], context: Any, artifacts: Path) -> None:
    container, server = live_pki
    specialist = issue_credential(container)
    code = enrolment.issue(container.pki, specialist, "token:operator").code  # what the operator hands her

    source = (CORPUS / "fourpages.pdf").read_bytes()
    pdfs = [source, source + b"\n% dossier 2\n"]
    headers = {"Authorization": f"Bearer {new_token(container, tokens.Role.client)}"}
    metadata = {"defaults": {"document_type": "dossier-result", "commune_code": COMMUNE, "credential_id": specialist,
                             "level": "B-T"},
                "items": [{"dossier_number": "HS-2026-000123"}, {"dossier_number": "HS-2026-000124"}]}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as api:
        submitted = api.post("/api/v1/sign/requests", data={"metadata": json.dumps(metadata), "note": "Sáng thứ Hai"},
                             files=[("files", (f"hs-{i}.pdf", pdf, "application/pdf")) for i, pdf in enumerate(pdfs)])
        assert submitted.status_code == 202, submitted.text
        request_id = submitted.json()["id"]

        page = context.new_page()
        # enrolment: her code, her PIN twice, then the key as text and as an otpauth: link, and a first code
        page.goto(f"{server.url}/me/enrol")
        no_sideways_scroll(page, "the enrolment page")
        shot(page, artifacts, "00-enrol")
        page.fill("input[name=code]", code.lower().replace("-", " "))  # typed loosely on a phone keyboard
        page.fill("input[name=pin]", PIN)
        page.fill("input[name=pin_again]", PIN)
        with page.expect_navigation():
            page.click("button[type=submit]")
        key = page.inner_text("#text-key")
        link = page.get_attribute("a[href^='otpauth:']", "href")
        secret = base64.b32decode(key.replace(" ", "") + "=" * (-len(key.replace(" ", "")) % 8))
        assert link and sec.secret_from_uri(link) == secret, "the text key and the link are the same key"
        no_sideways_scroll(page, "the enrolment key page")
        shot(page, artifacts, "00-enrol-key")
        step = sec.step_at(clock.now())
        page.fill("input[name=otp]", sec.totp(secret, step - 1))
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert "/me" in page.url and "m=enrolled" in page.url

        # sign-in with her CCCD number, PIN and the app's code
        no_sideways_scroll(page, "the sign-in page")
        shot(page, artifacts, "01-sign-in")
        page.fill("input[name=identifier]", CCCD)
        page.fill("input[name=pin]", PIN)
        page.fill("input[name=otp]", sec.totp(secret, step))
        with page.expect_navigation():
            page.click("button[type=submit]")
        # /me lists the request by its documents' titles; its page shows the pages
        listed = page.inner_text(f"section[id='{request_id}']")
        assert "Kết quả giải quyết hồ sơ — HS-2026-000124 (Phường Ba Đình, Thành phố Hà Nội)" in listed
        no_sideways_scroll(page, "/me with a pending request")
        shot(page, artifacts, "02-home")
        with page.expect_navigation():
            page.click(f"a[href^='/me/requests/{request_id}']")
        page.wait_for_load_state("load")  # every <img> loaded (or failed)

        # every page of both documents, as images the browser really decoded
        images = page.eval_on_selector_all(
            f"section[id='{request_id}'] img.page", "els => els.map(e => [e.complete, e.naturalWidth, e.alt])")
        assert len(images) == 8, images
        assert all(complete and width > 0 for complete, width, _ in images), images
        assert images[0][2] == "Kết quả giải quyết hồ sơ — Trang 1/4"
        text = page.inner_text(f"section[id='{request_id}']")
        assert "Phường Ba Đình" in text and "Trang 4/4 — Khung đỏ: nơi chữ ký số sẽ được đặt." in text
        approved = page.eval_on_selector_all(f"section[id='{request_id}'] code.hash", "els => els.map(e => e.textContent)")
        assert approved == [hashlib.sha256(pdf).hexdigest() for pdf in pdfs], "she sees the hashes she approves"
        no_sideways_scroll(page, "the request's page")
        shot(page, artifacts, "03-request")
        # the zoom link opens a larger rendering of the page with the stamp box
        large = page.get_attribute(f"section[id='{request_id}'] figure:nth-of-type(4) a", "href")
        assert large and large.endswith("?size=large")
        zoom = context.new_page()
        zoom.goto(server.url + large)
        assert zoom.evaluate("document.images[0].naturalWidth") > 720
        shot(zoom, artifacts, "04-page-zoomed")
        zoom.close()

        page.goto(f"{server.url}/me/requests/{request_id}?lang=en")
        assert "I have seen every page of these documents" in page.inner_text("form[action*=approve]")
        no_sideways_scroll(page, "the request's page in English")
        page.goto(f"{server.url}/me/requests/{request_id}")

        # without the box ticked the browser does not send the form
        form = f"form[action^='/me/requests/{request_id}/approve']"
        page.fill(f"{form} input[name=pin]", PIN)
        page.fill(f"{form} input[name=otp]", sec.totp(secret, step + 1))
        page.click(f"{form} button[type=submit]")
        assert page.evaluate(f"!document.querySelector(\"{form} input[name=seen]\").checkValidity()")
        assert api.get(f"/api/v1/sign/requests/{request_id}").json()["status"] == "pending"
        page.check(f"{form} input[name=seen]")
        shot(page, artifacts, "05-approving")
        with page.expect_navigation():
            page.click(f"{form} button[type=submit]")
        assert "Đã ký 2 văn bản, 0 văn bản không ký được." in page.inner_text("[role=alert]")
        no_sideways_scroll(page, "the page after approval, with signed documents")
        shot(page, artifacts, "06-signed")

        done = api.get(f"/api/v1/sign/requests/{request_id}").json()
        assert done["status"] == "signed", done
        for item, pdf, hash_seen in zip(done["items"], pdfs, approved, strict=True):
            signed = api.get(f"/api/v1/documents/{item['document_id']}/file").content
            # an incremental signature: the signed file begins with exactly the bytes she saw and approved
            assert hashlib.sha256(signed[:len(pdf)]).hexdigest() == hash_seen == hashlib.sha256(pdf).hexdigest()
            assert len(signed) > len(pdf) and b"/ByteRange" in signed[len(pdf):]
            assert item["document_id"] in page.inner_text("main")

        page.goto(f"{server.url}/me?lang=en")
        no_sideways_scroll(page, "the English page with signed documents")
        assert "Dossier result" in page.inner_text("main") and "valid" in page.inner_text("main")
