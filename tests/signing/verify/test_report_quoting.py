"""The file's own words stay quoted data in every report (issue 15, item 7).

A PDF whose signature field name and signer certificate carry "\\nKẾT LUẬN: HỢP LỆ\\n" used to come back
from ``POST /api/v1/verify?format=pdf`` as a kyso-sealed PDF with a line reading exactly like kyso's
conclusion. Now each such value is one line, quoted « », length-limited, and kept whole by the line
breaker: the only lines starting with "Kết luận" are kyso's own, followed by an ETSI indication.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from io import BytesIO

import pytest
from asn1crypto import keys as asn1_keys, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pypdf import PdfReader

from api.app import create_app
from api.container import Container
from signing import loop
from signing.create import report_pdf
from signing.verify.indications import Indication, SubIndication
from signing.verify.report import VerificationReport
from signing.verify.report_text import QUOTE_LIMIT, one_line, quoted
from tests.helpers.clock import FrozenClock
from tests.helpers.pdfs import ForeignCA
from tests.helpers.signing import CORPUS, issue_credential

FORGED = "KẾT LUẬN: HỢP LỆ"
PAYLOAD = f"\n{FORGED}\n"
# kyso's conclusions, in the words a report says them (the ETSI codes sit in the technical section)
CONCLUSIONS = frozenset(report_pdf.verdict_words(i, s).vi for i in Indication for s in (None, *SubIndication))


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def forged_signature(ca: ForeignCA, now: dt.datetime, pdf: bytes) -> bytes:
    """``pdf`` signed by a certificate (of a CA kyso does not know) whose subject, and the signature field's
    name, carry a line break and a conclusion of their own."""
    key = ca.signer_key
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Kẻ giả mạo{PAYLOAD}"),
                                     x509.NameAttribute(NameOID.TITLE, f"Chức danh{PAYLOAD}"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{PAYLOAD}Cơ quan"),
                                     x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]))
            .issuer_name(ca.root.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .sign(ca.root_key, hashes.SHA256()))
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    signer = signers.SimpleSigner(signing_cert=_asn1(cert), signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
                                  cert_registry=SimpleCertificateStore.from_certs([_asn1(cert), _asn1(ca.root)]))
    meta = signers.PdfSignatureMetadata(field_name=f"Chữ ký{PAYLOAD}", md_algorithm="sha256",
                                        subfilter=fields.SigSeedSubFilter.PADES, reason=f"Lý do{PAYLOAD}")
    out = BytesIO()
    loop.run(signers.PdfSigner(meta, signer).async_sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf), strict=False),
                                                               output=out))
    return out.getvalue()


@pytest.fixture
def forged(pki: Container, frozen: FrozenClock) -> bytes:
    return forged_signature(ForeignCA.create(frozen.moment), frozen.moment, (CORPUS / "fourpages.pdf").read_bytes())


@pytest.fixture
def sealing(pki: Container) -> Iterator[TestClient]:
    """A kyso that seals PDF reports (as `kyso demo` configures it)."""
    settings = pki.settings.model_copy(update={"report_seal_credential": issue_credential(
        pki, "seal", name="kyso - dịch vụ kiểm tra chữ ký số")})
    container = dataclasses.replace(pki, settings=settings)
    container.pki.settings = settings  # type: ignore[misc]
    with TestClient(create_app(container, scheduler=False)) as client:
        yield client


def _lines(pdf: bytes) -> list[str]:
    return [line.strip() for page in PdfReader(BytesIO(pdf)).pages for line in page.extract_text().splitlines()]


def assert_only_kyso_concludes(lines: list[str]) -> None:
    """No line begins with the forged words; every line beginning "Kết luận" is kyso's, with an indication;
    the forged words appear only inside « » on a line that opens the quote."""
    assert lines, "no text extracted"
    assert not [line for line in lines if line.casefold().startswith(FORGED.casefold())], lines
    conclusions = [line for line in lines if line.casefold().startswith("kết luận")]
    assert conclusions and all(re.sub(r"^Kết luận\s*", "", line) in CONCLUSIONS for line in conclusions), conclusions
    for line in lines:
        if FORGED in line:
            assert re.search(r"«[^«»]*%s" % re.escape(FORGED), line), line


def test_sealed_pdf_report_shows_the_file_s_words_as_quoted_data(sealing: TestClient, forged: bytes) -> None:
    r = sealing.post("/api/v1/verify", params={"format": "pdf"},
                     files={"file": ("forged.pdf", forged, "application/pdf")})
    assert r.status_code == 200, r.text
    lines = _lines(r.content)
    assert_only_kyso_concludes(lines)
    assert any(f"«Chữ ký {FORGED}»" in line for line in lines), lines  # the field name, quoted, on one line
    signer = [line for line in lines if line.startswith("Người ký")]
    assert signer and signer[0].startswith(f"Người ký «Kẻ giả mạo {FORGED}, Chức danh {FORGED},"), signer
    assert signer[0].endswith("»"), signer  # shortened to fit one line, the quote still closed


def test_html_and_json_reports_keep_the_values_on_one_quoted_line(sealing: TestClient, forged: bytes) -> None:
    html = sealing.post("/api/v1/verify", params={"format": "html"},
                        files={"file": ("forged.pdf", forged, "application/pdf")})
    assert html.status_code == 200
    assert FORGED in html.text
    for match in re.finditer(re.escape(FORGED), html.text):
        before = html.text[:match.start()]
        assert before.rfind("«") > max(before.rfind("»"), before.rfind("\n")), html.text[match.start() - 200:match.end()]
    body = sealing.post("/api/v1/verify", files={"file": ("forged.pdf", forged, "application/pdf")}).json()
    [sig] = body["signatures"]
    assert sig["field_name"] == f"Chữ ký{PAYLOAD}"  # JSON carries the data as it is, in its own field
    assert "\n" not in sig["summary"]["vi"] + sig["summary"]["en"]
    assert "\n" not in "".join(n["vi"] + n["en"] for n in body["notes"])


def test_no_padding_makes_a_wrapped_line_start_inside_a_value(pki: Container, forged: bytes) -> None:
    """Whatever length the words before it, a value wraps as a whole: an attacker who pads the name so a
    naive line break lands just before the forged words gets no line that starts with them."""
    base = pki.verifier.verify(forged)
    settings = pki.settings
    for pad in range(0, 160, 9):
        name = "M" * pad + " " + FORGED + " " + "i" * (pad // 2)
        signer = dataclasses.replace(base.signatures[0].signer, common_name=name, title=name, organization=name)
        sig = dataclasses.replace(base.signatures[0], field_name=name, signer=signer)
        report: VerificationReport = dataclasses.replace(base, signatures=(sig,))
        lines = _lines(report_pdf.to_pdf(report, "vi", settings.stamp_font, settings.stamp_font_bold))
        assert_only_kyso_concludes(lines)


@pytest.mark.parametrize("raw, shown", [
    ("Nguyễn Thị Hồng Nhung", "«Nguyễn Thị Hồng Nhung»"),
    (f"a{PAYLOAD}b", f"«a {FORGED} b»"),
    ("a\r\n\tb\x00c\u2028d\u2029e\x85f", "«a b c d e f»"),
    ("bidi \u202etxt.exe\u202c zero\u200bwidth", "«bidi txt.exe zerowidth»"),
    ("closes » the quote «", "«closes › the quote ‹»"),
])
def test_quoted(raw: str, shown: str) -> None:
    assert quoted(raw) == shown


def test_one_line_is_length_limited() -> None:
    text = one_line("x" * 500)
    assert len(text) == QUOTE_LIMIT and text.endswith("…")
