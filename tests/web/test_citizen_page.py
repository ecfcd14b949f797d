"""The citizen page /v/{document_id} over HTTP, without a browser: content, languages, sizes, errors, uploads."""
from __future__ import annotations

import re

import httpx
import pytest

from api.routes.citizen import grouped, mask
from signing.create import offline_seal
from tests.helpers.signing import CORPUS
from tests.helpers.web import APPLICANT, DOSSIER, Site, tamper_pdf

PAGE_LIMIT = 30 * 1024


def get(site: Site, path: str, **kw: object) -> httpx.Response:
    return httpx.get(site.url + path, timeout=30, **kw)  # type: ignore[arg-type]


def upload(site: Site, document_id: str, content: bytes, name: str = "received.pdf", lang: str = "vi") -> httpx.Response:
    return httpx.post(f"{site.url}/v/{document_id}?lang={lang}", files={"file": (name, content, "application/pdf")},
                      timeout=60)


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", html, flags=re.S)))


def test_valid_document_in_vietnamese_by_default(site: Site) -> None:
    r = get(site, f"/v/{site.genuine.document_id}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<html lang="vi">' in html and 'data-status="valid"' in html
    text = visible_text(html)
    assert "CÒN HIỆU LỰC" in text
    assert "Kết quả giải quyết hồ sơ" in text  # the policy's title_vi
    assert "Phường Ba Đình, Thành phố Hà Nội" in text  # the unit catalogue's name
    assert "Nguyễn Thị Hồng Nhung" in text and "Công chức Tư pháp - Hộ tịch" in text
    assert "(giờ Việt Nam)" in text and grouped(site.genuine.document_id) in text  # as printed under the QR
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{4}(-[2-9A-HJ-NP-Z]{4}){2}", grouped(site.genuine.document_id))
    assert 'href="/v/%s?lang=en"' % site.genuine.document_id in html  # the English switch is a plain link
    assert '<form method="post" action="/v/%s?lang=vi" enctype="multipart/form-data">' % site.genuine.document_id in html
    assert r.headers["cache-control"] == "no-cache" and "set-cookie" not in r.headers


def test_english_switch(site: Site) -> None:
    text = visible_text(get(site, f"/v/{site.genuine.document_id}?lang=en").text)
    assert "VALID" in text and "Dossier result" in text and "Ba Dinh Ward, Hanoi" in text and "(Vietnam time)" in text
    assert "Tiếng Việt" in text and "CÒN HIỆU LỰC" not in text


def test_signing_time_is_vietnam_time(site: Site) -> None:
    local = site.genuine.signed_at.astimezone(__import__("datetime").timezone(__import__("datetime").timedelta(hours=7)))
    text = visible_text(get(site, f"/v/{site.genuine.document_id}").text)
    assert f"{local:%H:%M} ngày {local:%d/%m/%Y}" in text


def test_page_weight_under_30_kb(site: Site) -> None:
    """Everything a phone downloads to show the page: HTML (CSS inline), the seal script and the keys it
    fetches (the service worker's background downloads are not part of the page)."""
    extras = len(get(site, "/v/seal.js").content) + len(get(site, "/v/keys.json").content)
    for lang in ("vi", "en"):
        html = get(site, f"/v/{site.genuine.document_id}?lang={lang}").content
        result = upload(site, site.genuine.document_id, site.genuine.pdf, lang=lang).content
        assert len(html) + extras < PAGE_LIMIT and len(result) + extras < PAGE_LIMIT, (len(html), len(result), extras)
        assert not re.search(rb"""(src|href|action)=["']?(https?:)?//""", html + result), "no external resources"
    assert len(get(site, "/v/offline").content) + len(get(site, "/v/seal.js").content) < PAGE_LIMIT


def test_personal_seal_fields_are_masked(site: Site) -> None:
    text = visible_text(get(site, f"/v/{site.genuine.document_id}").text)
    assert "Người nộp hồ sơ" in text and "Nguyễn V** A*" in text and APPLICANT not in text
    assert "Mã hồ sơ" in text and DOSSIER in text  # not masked by the policy


@pytest.mark.parametrize("value,masked", [
    ("Nguyễn Văn An", "Nguyễn V** A*"), ("Bình", "B***"), ("001190000001", "*********001"), ("", ""),
])
def test_mask(value: str, masked: str) -> None:
    assert mask(value) == masked


@pytest.mark.parametrize("which,status,tone,words", [
    ("withdrawn", "withdrawn", "bad", ["ĐÃ BỊ THU HỒI", "đã bị thu hồi ngày", "liên hệ UBND Phường Ba Đình để được cấp lại"]),
    ("superseded", "superseded", "warn", ["ĐÃ CÓ VĂN BẢN MỚI THAY THẾ", "Xem văn bản mới"]),
    ("revoked", "revoked", "bad", ["CHỮ KÝ KHÔNG CÒN TIN CẬY", "đã bị thu hồi"]),
])
def test_statuses_no_longer_valid(site: Site, which: str, status: str, tone: str, words: list[str]) -> None:
    r = get(site, f"/v/{getattr(site, which).document_id}")
    assert r.status_code == 200 and f'class="box {tone}" data-status="{status}" data-verdict' in r.text
    text = visible_text(r.text)
    for word in words:
        assert word in text
    if which == "superseded":
        assert f'href="/v/{site.other.document_id}?lang=vi"' in r.text


@pytest.mark.parametrize("path", ["/v/ABCDEFGHJKLM", "/v/abcdefghjklm", "/v/0OI1", "/v/%3Cscript%3E", "/v/" + "A" * 80])
def test_unknown_and_malformed_ids_are_friendly_404s(site: Site, path: str) -> None:
    r = get(site, path, follow_redirects=True)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "KHÔNG TÌM THẤY" in r.text or "MÃ KHÔNG ĐÚNG" in r.text
    assert "<script>" not in r.text and "Traceback" not in r.text
    english = get(site, path + "?lang=en", follow_redirects=True).text
    assert english.count("NOT FOUND") + english.count("WRONG ID") >= 1
    # true whether or not the paper carries the printed code: scan again, or type the code on the lookup page
    assert "in dưới mã QR" not in r.text and 'href="/v?lang=vi"' in r.text


@pytest.mark.parametrize("typed", ["{id}", "{lower}", "{g1}-{g2}-{g3}", "{g1} {g2} {g3}", "{lg1}-{lg2}–{lg3}",
                                   "https://kyso.example/v/{id}#seal"])
def test_printed_and_typed_forms_of_the_code_are_accepted(site: Site, typed: str) -> None:
    doc_id = site.genuine.document_id
    groups = {f"g{i + 1}": doc_id[4 * i:4 * i + 4] for i in range(3)}
    text = typed.format(id=doc_id, lower=doc_id.lower(), **groups, **{"l" + k: v.lower() for k, v in groups.items()})
    r = get(site, "/v", params={"ma": text})
    assert r.status_code == 303 and r.headers["location"] == f"/v/{doc_id}"
    assert get(site, r.headers["location"]).status_code == 200
    if "/" not in text and " " not in text:  # typed straight into the address bar: one canonical address
        r = get(site, f"/v/{text}")
        if text == doc_id:
            assert r.status_code == 200
        else:
            assert r.status_code == 308 and r.headers["location"] == f"/v/{doc_id}"


def test_upload_without_javascript_genuine(site: Site) -> None:
    r = upload(site, site.genuine.document_id, site.genuine.pdf)
    assert r.status_code == 200, r.text
    assert 'data-result="genuine"' in r.text and "HỢP LỆ" in visible_text(r.text)
    assert "KHÔNG HỢP LỆ" not in visible_text(r.text)
    english = upload(site, site.genuine.document_id, site.genuine.pdf, lang="en")
    assert "GENUINE" in visible_text(english.text)


def test_upload_tampered_copy(site: Site) -> None:
    r = upload(site, site.genuine.document_id, tamper_pdf(site.genuine.pdf))
    assert r.status_code == 200, r.text
    assert 'class="box bad"' in r.text and "KHÔNG HỢP LỆ" in visible_text(r.text)
    assert 'data-result="genuine"' not in r.text


def test_upload_of_another_document(site: Site) -> None:
    r = upload(site, site.genuine.document_id, site.other.pdf)
    assert r.status_code == 200 and 'data-result="other_document"' in r.text and site.other.document_id in r.text


def test_upload_of_withdrawn_document_is_not_genuine(site: Site) -> None:
    r = upload(site, site.withdrawn.document_id, site.withdrawn.pdf)
    assert r.status_code == 200 and 'data-result="withdrawn"' in r.text and 'class="box bad"' in r.text


@pytest.mark.parametrize("content,name,status,code", [
    (b"GIF89a not a pdf", "photo.gif", 422, "unreadable_pdf"),
    ((CORPUS / "graph-encrypted.pdf").read_bytes(), "locked.pdf", 422, "encrypted_pdf"),
    (b"%PDF-1.7\n garbage that no reader repairs", "broken.pdf", 422, "unreadable_pdf"),
])
def test_bad_uploads_get_friendly_pages(site: Site, content: bytes, name: str, status: int, code: str) -> None:
    r = upload(site, site.genuine.document_id, content, name)
    assert r.status_code == status and r.headers["content-type"].startswith("text/html")
    assert f'data-error="{code}"' in r.text and "Traceback" not in r.text


def test_upload_without_file(site: Site) -> None:
    r = httpx.post(f"{site.url}/v/{site.genuine.document_id}", data={"nothing": "here"}, timeout=30)
    assert r.status_code == 422 and 'data-error="no_file"' in r.text


def test_upload_for_unknown_document(site: Site) -> None:
    r = upload(site, "ABCDEFGHJKLM", site.genuine.pdf)
    assert r.status_code == 404 and "KHÔNG TÌM THẤY" in r.text


def test_keys_and_scripts(site: Site) -> None:
    keys = get(site, "/v/keys.json")
    assert keys.status_code == 200 and "public" in keys.headers["cache-control"]
    body = keys.json()
    kid = offline_seal.parse(site.genuine.offline_seal or "").kid
    assert body["keys"] and all(k["alg"] == "ES256" and k["jwk"]["crv"] == "P-256" for k in body["keys"])
    assert kid in [k["kid"] for k in body["keys"]] and body["document_types"]["dossier-result"]["seal_fields"][1]["label_vi"] == "Người nộp hồ sơ"
    script = get(site, "/v/seal.js")
    assert script.headers["content-type"].startswith("application/javascript")
    worker = get(site, "/v/sw.js")
    assert "__VERSION__" not in worker.text and worker.headers["cache-control"] == "no-cache"
    offline = get(site, "/v/offline?lang=en")
    assert offline.status_code == 200 and "NO CONNECTION" in offline.text
    units = get(site, "/v/units.json").json()
    assert units["01"][1]["00004"] == "Phường Ba Đình"


def test_scripts_are_es5(site: Site) -> None:
    """Old Android WebViews (Zalo's in-app browser) parse ES5 only: no ES2015+ syntax in what the page runs."""
    for name in ("seal.js", "sw.js"):
        source = get(site, f"/v/{name}").text
        code = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
        code = re.sub(r"'(?:\\.|[^'\\])*'", "''", code)  # string literals (the scripts use single quotes)
        code = re.sub(r"//[^\n]*", "", code)
        for pattern, what in [(r"=>", "arrow function"), (r"`", "template string"), (r"\blet\s", "let"),
                              (r"\bconst\s", "const"), (r"\bclass\s", "class"), (r"\basync\b", "async"),
                              (r"\bawait\b", "await"), (r"\.\.\.", "spread"), (r"\?\.", "optional chaining"),
                              (r"\?\?", "nullish coalescing"), (r"\bfor\s*\([^)]*\bof\b", "for-of"),
                              (r"\.catch\b", ".catch (a reserved word for ES3 parsers)")]:
            assert not re.search(pattern, code), f"{name} uses {what}"


def test_rate_limited_uploads_get_a_friendly_429(site: Site) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.ratelimit import RateLimiter

    app = create_app(site.container, scheduler=False)
    # a bucket of its own: the buckets live in the database, which the module's tests share
    app.state.verify_limiter = RateLimiter(site.container.sessions, rate=0.001, burst=1, scope="test-429")
    with TestClient(app, raise_server_exceptions=False) as client:
        files = {"file": ("a.pdf", b"GIF89a", "application/pdf")}
        first = client.post(f"/v/{site.genuine.document_id}", files=files)
        assert first.status_code == 422
        second = client.post(f"/v/{site.genuine.document_id}", files=files)
        assert second.status_code == 429 and 'data-error="rate_limited"' in second.text
        assert "QUÁ NHIỀU YÊU CẦU" in second.text and int(second.headers["retry-after"]) >= 1
        assert client.get(f"/v/{site.genuine.document_id}").status_code == 200  # reading the page is not limited


def test_oversize_upload_gets_a_friendly_413(site: Site) -> None:
    import dataclasses

    from fastapi.testclient import TestClient

    from api.app import create_app

    small = dataclasses.replace(site.container, settings=site.container.settings.model_copy(update={"max_pdf_bytes": 2048}))
    with TestClient(create_app(small, scheduler=False), raise_server_exceptions=False) as client:
        r = client.post(f"/v/{site.genuine.document_id}?lang=en",
                        files={"file": ("big.pdf", b"%PDF-1.7\n" + b"0" * 5000, "application/pdf")})
        assert r.status_code == 413 and 'data-error="pdf_too_large"' in r.text and "FILE TOO LARGE" in r.text


def test_lookup_form_and_landing_page(site: Site) -> None:
    for path in ("/v", "/v/"):
        r = get(site, path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert '<form id="lookup" method="get" action="/v">' in r.text and "Mã văn bản" in visible_text(r.text)
    home = get(site, "/")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    text = visible_text(home.text)
    assert "Ủy ban nhân dân các xã, phường" in text and "Quét mã QR" in text and 'href="/docs"' in home.text
    assert '<form id="lookup"' in home.text
    assert "For software developers" in visible_text(get(site, "/?lang=en").text)


@pytest.mark.parametrize("typed", ["0OI1-0000-0000", "<script>alert(1)</script>", "A" * 5000, "RZ7P", "%00", "ĐĐĐĐ"])
def test_lookup_of_a_wrong_code_is_a_friendly_page(site: Site, typed: str) -> None:
    r = get(site, "/v", params={"ma": typed})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "MÃ KHÔNG ĐÚNG" in r.text and "<script>alert" not in r.text and "Traceback" not in r.text
    assert r.text.count('class="box') == 1


def test_unknown_code_through_the_lookup_is_a_404_page(site: Site) -> None:
    r = get(site, "/v", params={"ma": "abcd-efgh-jklm"}, follow_redirects=True)
    assert r.status_code == 404 and "KHÔNG TÌM THẤY" in r.text


def test_commune_contacts_or_where_to_ask(site: Site) -> None:
    text = visible_text(get(site, f"/v/{site.genuine.document_id}").text)
    assert "Hỏi về văn bản này" in text and "Phường Ba Đình" in text
    assert "Hệ thống chưa có số điện thoại của UBND Phường Ba Đình" in text  # the fixture imports no contacts
    assert "bộ phận một cửa" in text


@pytest.mark.parametrize("path", ["/?lang=%3Cscript%3E", "/v?ma=%00&lang=xx", "/v/?ma=" + "%E2%80%94" * 300,
                                  "/v/%00", "/v/%E2%80%94%E2%80%94", "/v?ma=https%3A%2F%2Fx%2Fv%2F"])
def test_junk_on_the_citizen_doors_is_never_a_500(site: Site, path: str) -> None:
    r = get(site, path, follow_redirects=True)
    assert r.status_code in (200, 404, 422) and r.headers["content-type"].startswith("text/html"), (path, r.status_code)
    assert "<script>" not in r.text and "Traceback" not in r.text
