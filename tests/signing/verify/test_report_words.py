"""Reports in plain Vietnamese (issue 18, item 5).

Every value a report shows is said in words; the ETSI codes and the other slugs (built here from the enums
and literal types a report carries) appear only in the technical section; no exception class name appears
anywhere. And the two cases once mis-named: an expired foreign signer with no proof of existence is
OUT_OF_BOUNDS_NO_POE (EN 319 102-1 5.2.7 / 5.6.2.4), never a general chain failure."""
from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
import typing
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader

from api.container import Container
from signing.create import report_pdf
from signing.registry import lifecycle
from signing.registry.models import DocumentStatus
from signing.verify import report_text
from signing.verify.indications import Indication, SubIndication
from signing.verify.report import CoverageInfo, RevocationInfo, VerificationReport
from signing.verify.verifier import Verifier
from tests.helpers.clock import FrozenClock
from tests.helpers.pdfs import ForeignCA, append_page, flip_content_byte, trusting
from tests.helpers.signing import CONSENTED, CORPUS, request

# every code a report's values can take: the enums, the literal types, and RFC 5280's reason names
SLUGS = sorted({*(i.value for i in Indication), *(s.value for s in SubIndication), *(d.value for d in DocumentStatus),
                *typing.get_args(typing.get_type_hints(RevocationInfo)["status"]),
                *typing.get_args(typing.get_type_hints(RevocationInfo)["source"]),
                *typing.get_args(typing.get_type_hints(CoverageInfo)["covers"]),
                "NONE", "LTA_UPDATES", "FORM_FILLING", "ANNOTATIONS", "OTHER", *report_text.REASONS} - {"kyso"},
               key=len, reverse=True)
SLUG = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, SLUGS)) + r")(?![\w-])")
CODE_WORDS = re.compile(r"<class|\b\w*(?:Error|Exception)\b|ArrayObject|DictionaryObject|Traceback")
QUOTED = re.compile(r"«[^«»]*»")  # the file's own words (names, fields): data, not kyso's vocabulary


def assert_plain(text: str) -> None:
    own = QUOTED.sub("«»", text)
    assert not SLUG.findall(own), (SLUG.findall(own), own)
    assert not CODE_WORDS.search(text), text


def visible_html(page: str) -> str:
    """The report's text outside the technical disclosure, without tags."""
    page = re.sub(r"<details class=\"technical\">.*?</details>", " ", page, flags=re.S)
    page = re.sub(r"<(style|title)>.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def pdf_text_before_technical(pdf: bytes) -> str:
    text = "\n".join(page.extract_text() or "" for page in PdfReader(BytesIO(pdf)).pages)
    head, found, _ = text.partition("Chi tiết kỹ thuật")
    assert found, "the technical section has its own heading"
    return head


def test_every_code_has_words() -> None:
    for sub in SubIndication:
        assert sub in report_text.SUB_INDICATIONS, sub
    for table, values in ((report_text.INDICATIONS, [i.value for i in Indication]),
                          (report_text.REGISTRY_STATUSES, [d.value for d in DocumentStatus]),
                          (report_text.REVOCATION_STATUSES,
                           typing.get_args(typing.get_type_hints(RevocationInfo)["status"])),
                          (report_text.REVOCATION_SOURCES,
                           typing.get_args(typing.get_type_hints(RevocationInfo)["source"])),
                          (report_text.COVERAGE, typing.get_args(typing.get_type_hints(CoverageInfo)["covers"]))):
        for value in values:
            assert value in table, value
    for words in [*report_text.SUB_INDICATIONS.values(), *report_text.INDICATIONS.values()]:
        assert_plain(words.vi)


def reports(pki: Container, specialist: str, sample_pdf: bytes, frozen: FrozenClock,
            tmp_path: Path) -> dict[str, VerificationReport]:
    signed = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    withdrawn = pki.signing.sign(request(append_page(sample_pdf, "khác"), specialist, "B-T"), actor="test",
                                 activation=CONSENTED)
    lifecycle.withdraw(pki.pki, withdrawn.document_id, "ban hành nhầm", actor="test")
    foreign = ForeignCA.create(frozen.moment)
    certified = foreign.sign((CORPUS / "pdfa-multipage.pdf").read_bytes(), pss=False, revinfo="crl")
    found = {
        "genuine": pki.verifier.verify(signed.pdf),
        "page added": pki.verifier.verify(append_page(signed.pdf)),
        "altered": pki.verifier.verify(flip_content_byte(signed.pdf)[0]),
        "withdrawn": pki.verifier.verify(withdrawn.pdf),
        "unknown authority": pki.verifier.verify(certified),
        "unsigned": pki.verifier.verify(sample_pdf),
    }
    frozen.set(foreign.signer.not_valid_after_utc + dt.timedelta(days=1))
    found["expired"] = trusting(pki, [foreign.write_root(tmp_path)]).verify(certified)
    return found


def test_reports_say_every_value_in_vietnamese(pki: Container, specialist: str, sample_pdf: bytes,
                                               frozen: FrozenClock, tmp_path: Path) -> None:
    settings = pki.settings
    for case, report in reports(pki, specialist, sample_pdf, frozen, tmp_path).items():
        page = report_pdf.to_html(report, "vi")
        assert_plain(visible_html(page))
        assert "Chi tiết kỹ thuật" in page and report.indication.value in page  # the codes, in their place
        pdf = report_pdf.to_pdf(report, "vi", settings.stamp_font, settings.stamp_font_bold,
                                sealed_by_organisation="UBND xã Thử Nghiệm")
        head = pdf_text_before_technical(pdf)
        assert_plain(head)
        assert "đóng dấu số" in head and "UBND xã Thử Nghiệm" in head, case
        everything = "\n".join(p.extract_text() or "" for p in PdfReader(BytesIO(pdf)).pages)
        assert not CODE_WORDS.search(everything), case
        for text in (report.summary, *report.notes, *(s.summary for s in report.signatures),
                     *(m.text for m in report.modifications), *(v.text for v in report.visual_differences)):
            assert_plain(text.vi)


def test_the_words_seen_for_values_once_left_in_english(pki: Container, specialist: str, sample_pdf: bytes,
                                                        frozen: FrozenClock, tmp_path: Path) -> None:
    found = reports(pki, specialist, sample_pdf, frozen, tmp_path)
    genuine = visible_html(report_pdf.to_html(found["genuine"], "vi"))
    assert "còn hiệu lực" in genuine and "chưa bị thu hồi" in genuine
    registry = found["genuine"].registry
    assert registry is not None and registry.document_type_title is not None
    kind = pki.signing.policy.types[registry.document_type]
    assert kind.title_vi in genuine and registry.document_type not in genuine  # the type's name, not its slug
    assert "Phường Ba Đình" in genuine and registry.commune_code not in genuine
    assert "Trạng thái đăng ký valid" not in genuine and "good" not in genuine
    added = visible_html(report_pdf.to_html(found["page added"], "vi"))
    assert "toàn bộ phiên bản đã ký" in added and "entire_revision" not in added
    expired = visible_html(report_pdf.to_html(found["expired"], "vi"))
    assert "chứng thư số đã hết hạn" in expired and "OUT_OF_BOUNDS_NO_POE" not in expired


@pytest.mark.parametrize("fetch", [False, True], ids=["offline", "fetching"])
@pytest.mark.parametrize("revinfo", ["crl", "ocsp", None])
def test_expired_foreign_signer_without_poe_is_out_of_bounds(pki: Container, frozen: FrozenClock, tmp_path: Path,
                                                             revinfo: str | None, fetch: bool) -> None:
    foreign = ForeignCA.create(frozen.moment)
    pdf = foreign.sign((CORPUS / "pdfa-multipage.pdf").read_bytes(), pss=True, revinfo=revinfo)
    frozen.set(foreign.signer.not_valid_after_utc + dt.timedelta(days=1))

    verifier = trusting(pki, [foreign.write_root(tmp_path)])
    if fetch:
        settings = pki.settings.model_copy(update={"trust_anchors": [tmp_path / "foreign-root.pem"],
                                                   "verify_fetch_revocation": True})
        verifier = Verifier(dataclasses.replace(pki.pki, settings=settings), pki.signing.material)
    report = verifier.verify(pdf)

    [s] = report.signatures
    assert (s.indication, s.sub_indication) == ("INDETERMINATE", "OUT_OF_BOUNDS_NO_POE"), s.summary.en


@pytest.mark.parametrize("fetch", [False, True], ids=["offline", "fetching"])
@pytest.mark.parametrize("revinfo", ["crl", None])
def test_signer_expired_before_signing(pki: Container, frozen: FrozenClock, tmp_path: Path,
                                       revinfo: str | None, fetch: bool) -> None:
    foreign = ForeignCA.create(frozen.moment - dt.timedelta(days=800))
    pdf = foreign.sign((CORPUS / "pdfa-multipage.pdf").read_bytes(), pss=True, revinfo=revinfo)

    settings = pki.settings.model_copy(update={"trust_anchors": [foreign.write_root(tmp_path)],
                                               "verify_fetch_revocation": fetch})
    report = Verifier(dataclasses.replace(pki.pki, settings=settings), pki.signing.material).verify(pdf)

    [s] = report.signatures
    assert (s.indication, s.sub_indication) == ("INDETERMINATE", "OUT_OF_BOUNDS_NO_POE"), s.summary.en


@pytest.mark.parametrize("message, plain", [
    ("ValueError: expected <class 'pyhanko.pdf_utils.generic.ArrayObject'>", "expected array"),
    ("Update 3 touched <class 'DictionaryObject'> (KeyError)", "Update 3 touched dictionary ()"),
    ("object 12 0 R was freed", "object 12 0 R was freed"),
])
def test_library_messages_lose_their_programming_words(message: str, plain: str) -> None:
    assert report_text.plain_message(message) == plain
    assert not CODE_WORDS.search(report_text.plain_message(message))
