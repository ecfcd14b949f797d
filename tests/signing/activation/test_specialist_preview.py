"""What you see is what you sign on /me: every page of a pending document as an image, the stamp's place
drawn where the signature then really puts it, images for her eyes only, and an approval that names the
documents she saw and her confirmation that she saw every page."""
from __future__ import annotations

import io
import json
import re

import pikepdf
import pypdf
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from api.container import Container
from core import audit
from core.db import transaction
from signing.activation import factors
from signing.activation.models import SigningRequest
from signing.create import preview
from signing.verify import visual_diff
from tests.helpers.activation import PIN, enroll
from tests.helpers.clock import FrozenClock
from tests.helpers.signing import COMMUNE, issue_credential
from tests.helpers.specialist_page import CCCD, csrf, login, request_page, seen, submit


def visible_meta(credential: str, **extra: object) -> dict[str, object]:
    return {"document_type": "dossier-result", "commune_code": COMMUNE, "credential_id": credential,
            "level": "B-B", **extra}


def png(client: TestClient, url: str) -> Image.Image:
    r = client.get(url)
    assert r.status_code == 200, r.text
    # never stored: /me runs on shared counter PCs, and a cached page image outlives logout and the decision
    assert r.headers["content-type"] == "image/png" and r.headers["cache-control"] == "no-store"
    return Image.open(io.BytesIO(r.content)).convert("RGB")


def red_pixels(image: Image.Image) -> int:
    data = image.tobytes()
    return sum(1 for i in range(0, len(data), 3) if data[i] > 150 and data[i + 1] < 90 and data[i + 2] < 90)


def image_urls(page: str, request_id: str) -> list[str]:
    return re.findall(rf'src="(/me/requests/{request_id}/documents/0/pages/\d+\.png)"', page)


def test_every_page_is_shown_with_the_stamp_where_the_signature_puts_it(
        client: TestClient, pki: Container, specialist: str, client_headers: dict[str, str], sample_pdf: bytes,
        frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    request_id = submit(client, client_headers, [sample_pdf], visible_meta(specialist, dossier_number="HS-7")).json()["id"]
    assert login(client, CCCD, phone.code()).status_code == 303
    home = client.get("/me").text
    # /me lists the request by its documents' titles and links to its page; nothing is rendered for the list
    assert "Kết quả giải quyết hồ sơ — HS-7 (Phường Ba Đình, Thành phố Hà Nội)" in home
    assert f'href="/me/requests/{request_id}?lang=vi">Xem từng trang và ký (1 văn bản)' in home
    assert ".png" not in home and pki.previews.cache.misses == 0
    page = request_page(client, request_id)
    # the document by its Vietnamese title, the commune by its name, the page count, one image per page
    assert "1. Kết quả giải quyết hồ sơ" in page and "Phường Ba Đình" in page and "4 trang" in page
    assert f">{COMMUNE}<" not in page and "dossier-result" not in page
    urls = image_urls(page, request_id)
    assert [u.rsplit("/", 1)[1] for u in urls] == ["1.png", "2.png", "3.png", "4.png"]
    assert "Trang 4/4 — <b>Khung đỏ: nơi chữ ký số sẽ được đặt.</b>" in page
    assert 'name="seen" value="yes" required' in page and "Tôi đã xem từng trang của các văn bản này" in page
    images = [png(client, u) for u in urls]
    assert all(i.width == preview.SMALL_WIDTH and i.height > i.width for i in images)
    # the red box is on the last page only (where the signature goes by default)
    assert [red_pixels(i) > 500 for i in images] == [False, False, False, True]
    large = png(client, urls[3] + "?size=large")
    assert large.width > images[3].width
    # the previewed box is the rectangle the signature widget then really gets
    planned = pki.signing.stamp_preview(_request(pki, request_id))
    assert planned.page == 3 and planned.box is not None
    frozen.next_step()
    ok = client.post(f"/me/requests/{request_id}/approve",
                     data={"pin": PIN, "otp": phone.code(), **seen(client, request_id)}, follow_redirects=False)
    assert ok.status_code == 303, ok.text
    document_id = client.get(f"/api/v1/sign/requests/{request_id}", headers=client_headers).json()["items"][0][
        "document_id"]
    signed = client.get(f"/api/v1/documents/{document_id}/file", headers=client_headers).content
    reader = pypdf.PdfReader(io.BytesIO(signed))
    widgets = [(index, [float(v) for v in a.get_object()["/Rect"]]) for index, p in enumerate(reader.pages)
               for a in p.get("/Annots", []) if a.get_object().get("/FT") == "/Sig"]
    assert widgets == [(3, [round(v) for v in planned.box])]


def _request(pki: Container, request_id: str):  # type: ignore[no-untyped-def]
    from api.schemas_signing import SignMetadata
    from signing.activation import requests

    with transaction(pki.sessions) as session:
        [item] = requests.items(session, request_id)
        return SignMetadata.model_validate(json.loads(item.metadata_json)).to_request(item.pdf)


def test_english_page(client: TestClient, pki: Container, specialist: str, client_headers: dict[str, str],
                      sample_pdf: bytes, frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    request_id = submit(client, client_headers, [sample_pdf], visible_meta(specialist)).json()["id"]
    assert login(client, CCCD, phone.code()).status_code == 303
    assert "See every page and sign (1 document(s))" in client.get("/me?lang=en").text
    page = request_page(client, request_id, "en")
    assert f'href="/me/requests/{request_id}?lang=vi">Tiếng Việt' in page
    assert "1. Dossier result" in page and "Ba Dinh Ward" in page and "4 page(s)" in page
    assert "Page 4/4 — <b>Red box" in page and "I have seen every page of these documents" in page


def test_images_and_file_are_hers_alone(client: TestClient, pki: Container, specialist: str,
                                        client_headers: dict[str, str], sample_pdf: bytes,
                                        frozen: FrozenClock) -> None:
    request_id = submit(client, client_headers, [sample_pdf], visible_meta(specialist)).json()["id"]
    image, pdf = f"/me/requests/{request_id}/documents/0/pages/1.png", f"/me/requests/{request_id}/documents/0.pdf"
    assert client.get(image).status_code == 401 and client.get(pdf).status_code == 401, "signed out"
    assert request_id not in client.get(f"/me/requests/{request_id}").text, "signed out: the sign-in form"
    assert client.get(image, headers=client_headers).status_code == 401, "a client token is no specialist session"
    colleague = issue_credential(pki, name="Trần Văn Bình", id_number="001190000009")
    other = enroll(pki, colleague, frozen)
    assert login(client, "001190000009", other.code()).status_code == 303
    assert client.get(image).status_code == 404 and client.get(pdf).status_code == 404, "another specialist's"
    assert client.get(f"/me/requests/{request_id}").status_code == 404
    client.cookies.clear()
    frozen.next_step()
    phone = enroll(pki, specialist, frozen)
    assert login(client, CCCD, phone.code()).status_code == 303
    r = client.get(pdf)
    assert r.status_code == 200 and r.content == sample_pdf and r.headers["content-type"] == "application/pdf"
    assert r.headers["cache-control"] == "no-store", "the citizen's document is not left in a shared PC's cache"
    assert "sandbox" in r.headers["content-security-policy"]
    assert client.get(f"/me/requests/{request_id}/documents/0/pages/5.png").status_code == 404, "no page 5"
    assert client.get(f"/me/requests/{request_id}/documents/1/pages/1.png").status_code == 404, "no document 1"
    assert client.get(image + "?size=huge").status_code == 422
    # once the request is decided its page and its images are no longer served
    page = request_page(client, request_id)
    assert client.post(f"/me/requests/{request_id}/reject", data={"csrf": csrf(page)}).status_code == 200
    assert client.get(image).status_code == 404
    gone = client.get(f"/me/requests/{request_id}")
    assert gone.status_code == 404 and "Không có văn bản nào đang chờ" in gone.text


def test_rendered_once_and_cached(client: TestClient, pki: Container, specialist: str,
                                  client_headers: dict[str, str], sample_pdf: bytes, frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    request_id = submit(client, client_headers, [sample_pdf], visible_meta(specialist)).json()["id"]
    assert login(client, CCCD, phone.code()).status_code == 303
    cache = pki.previews.cache
    misses = cache.misses
    page = request_page(client, request_id)
    for url in image_urls(page, request_id):
        png(client, url)
        png(client, url + "?size=large")
    request_page(client, request_id)
    assert cache.misses == misses + 1 and cache.hits >= 9, "one rendering, every later look from the cache"
    assert cache.weight > 0 and cache.weight <= cache.max_weight  # type: ignore[operator]


def test_approval_needs_her_confirmation_and_the_documents_shown(
        client: TestClient, pki: Container, specialist: str, client_headers: dict[str, str], sample_pdf: bytes,
        frozen: FrozenClock) -> None:
    phone = enroll(pki, specialist, frozen)
    request_id = submit(client, client_headers, [sample_pdf, sample_pdf + b"\n% 2\n"],
                        visible_meta(specialist)).json()["id"]
    assert login(client, CCCD, phone.code()).status_code == 303
    form = seen(client, request_id)
    frozen.next_step()
    code = phone.code()
    unticked = client.post(f"/me/requests/{request_id}/approve", data={**form, "seen": "", "pin": PIN, "otp": code})
    assert unticked.status_code == 422 and "Hãy xem từng trang" in unticked.text
    first = form["documents"].split(",")[0]
    for documents in (first, f"{first},{first}", form["documents"].upper().replace(",", ";"), ""):
        other = client.post(f"/me/requests/{request_id}/approve",
                            data={**form, "documents": documents, "pin": PIN, "otp": code})
        assert other.status_code == 422 and "không khớp" in other.text, documents
    # nothing was authorized: the PIN was not tried, and the same code still approves
    assert factors.status(pki.pki, specialist).state == "active"
    assert client.get(f"/api/v1/sign/requests/{request_id}", headers=client_headers).json()["status"] == "pending"
    ok = client.post(f"/me/requests/{request_id}/approve", data={**form, "pin": PIN, "otp": code},
                     follow_redirects=False)
    assert ok.status_code == 303, ok.text
    assert client.get(f"/api/v1/sign/requests/{request_id}", headers=client_headers).json()["status"] == "signed"
    # the approval, audited once, records the documents she confirmed having seen page by page
    with transaction(pki.sessions) as session:
        entries = session.execute(select(audit.AuditEntry).where(audit.AuditEntry.subject == request_id,
                                                                 audit.AuditEntry.action == "signing:request:approve")
                                  ).scalars().all()
        assert [json.loads(e.details)["seen_every_page"] for e in entries] == [form["documents"].split(",")]


def test_long_documents_are_bounded(client: TestClient, pki: Container, specialist: str,
                                    client_headers: dict[str, str], frozen: FrozenClock) -> None:
    pdf = pikepdf.new()
    for _ in range(preview.MAX_PAGES + 5):
        pdf.add_blank_page(page_size=(595, 842))
    out = io.BytesIO()
    pdf.save(out)
    phone = enroll(pki, specialist, frozen)
    request_id = submit(client, client_headers, [out.getvalue()], visible_meta(specialist)).json()["id"]
    assert login(client, CCCD, phone.code()).status_code == 303
    page = request_page(client, request_id)
    assert f"{preview.MAX_PAGES + 5} trang" in page and len(image_urls(page, request_id)) == preview.MAX_PAGES
    assert "Còn 5 trang không hiện ở đây" in page and f"/me/requests/{request_id}/documents/0.pdf" in page
    assert client.get(f"/me/requests/{request_id}/documents/0/pages/{preview.MAX_PAGES + 1}.png").status_code == 404


def test_the_stamp_box_follows_the_requested_placement(client: TestClient, pki: Container, specialist: str,
                                                       client_headers: dict[str, str], sample_pdf: bytes,
                                                       frozen: FrozenClock) -> None:
    """A box on page 1 asked for by the software is drawn on page 1; an invisible signature draws none and says so."""
    phone = enroll(pki, specialist, frozen)
    boxed = visible_meta(specialist, appearance={"page": 1, "box": [40, 590, 330, 740]})
    hidden = visible_meta(specialist, appearance={"visible": False})
    first = submit(client, client_headers, [sample_pdf], boxed).json()["id"]
    second = submit(client, client_headers, [sample_pdf + b"\n% 2\n"], hidden).json()["id"]
    assert login(client, CCCD, phone.code()).status_code == 303
    page = request_page(client, first)
    assert "Trang 1/4 — <b>Khung đỏ" in page and "Trang 4/4 — <b>" not in page
    reds = [red_pixels(png(client, u)) for u in image_urls(page, first)]
    assert reds[0] > 500 and reds[1:] == [0, 0, 0]
    # the box is where the software asked: in the upper half of the page, left of the middle
    image = png(client, image_urls(page, first)[0])
    data = image.tobytes()
    xs = [(i // 3) % image.width for i in range(0, len(data), 3) if data[i] > 150 and data[i + 1] < 90]
    ys = [(i // 3) // image.width for i in range(0, len(data), 3) if data[i] > 150 and data[i + 1] < 90]
    assert max(xs) < image.width * 0.6 and max(ys) < image.height * 0.4
    page = request_page(client, second)
    assert "Chữ ký này không hiện trên trang (chữ ký ẩn)." in page and "Khung đỏ" not in page
    assert all(red_pixels(png(client, u)) == 0 for u in image_urls(page, second))


def _with_hidden(sample_pdf: bytes, how: str) -> bytes:
    """The sample with, on page 1, a black block in an optional-content layer switched off for viewing (the
    preview hides it; a viewer's layer panel, or printing with /Usage, shows it), or a document script."""
    pdf = pikepdf.open(io.BytesIO(sample_pdf))
    if how == "layers":
        layer = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.OCG, Name=pikepdf.String("Ghi chú")))
        page = pdf.pages[0]
        page.obj.Resources.Properties = pikepdf.Dictionary(hid=layer)
        page.contents_add(pdf.make_stream(b"/OC /hid BDC 0 0 0 rg 50 100 400 300 re f EMC"), prepend=False)
        pdf.Root.OCProperties = pikepdf.Dictionary(OCGs=[layer], D=pikepdf.Dictionary(OFF=[layer], Order=[layer]))
    elif how == "annotations":  # Print (4) + NoView (32): on paper, never on screen
        look = pdf.make_stream(b"0 0 0 rg 0 0 300 200 re f", Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Form,
                               BBox=[0, 0, 300, 200])
        pdf.pages[0].obj.Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Square, Rect=[100, 300, 400, 500], F=4 | 32,
            AP=pikepdf.Dictionary(N=look)))]))
    else:
        pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("this.print();"))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_a_document_hiding_content_from_her_preview_is_refused_at_submission(
        client: TestClient, pki: Container, specialist: str, client_headers: dict[str, str],
        sample_pdf: bytes) -> None:
    hidden = {how: _with_hidden(sample_pdf, how) for how in ("layers", "annotations", "scripts")}
    # what the preview would show her: the block in the switched-off layer, the print-only box, not drawn at all
    plain_page = visual_diff.render_pages(sample_pdf, max_pages=1, budget_seconds=30).pages[0]
    for how in ("layers", "annotations"):
        seen_page = visual_diff.render_pages(hidden[how], max_pages=1, budget_seconds=30).pages[0]
        assert seen_page is not None and plain_page is not None
        assert seen_page.image.tobytes() == plain_page.image.tobytes(), f"the {how} are invisible in the preview"
    for how, pdf in hidden.items():
        r = submit(client, client_headers, [sample_pdf, pdf], visible_meta(specialist))
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "pdf_hidden_content" and error["details"]["hidden"] == how
        assert error["message"].startswith("item 1: ")
    with transaction(pki.sessions) as session:
        assert session.execute(select(SigningRequest)).first() is None, "nothing was put before her"
