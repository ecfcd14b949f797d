"""A verification report as HTML (Jinja2) or as a PDF sealed by kyso's organisation seal.

The PDF is laid out with fpdf2 in the stamp font (Liberation Serif, full Vietnamese coverage),
then signed through the same keystore signer as every other kyso signature (B-T, certified so
nothing can be added to it), and the seal lands in the audit log.

Anyone may ask for a sealed report on any file, so the file's own words (field names, certificate
subjects, TSA names) must never read as kyso's: each is shown quoted on one line (``report_text.quoted``),
and in the PDF each quoted value is also kept whole by the line breaker, shortened to fit the line, so
no wrapped line can begin inside it with words such as a forged "KẾT LUẬN: HỢP LỆ".
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fpdf import FPDF
from jinja2 import Environment, FileSystemLoader, select_autoescape

from core import audit
from core.db import transaction
from core.errors import ConfigurationError
from signing import loop
from signing.create import pades
from signing.verify.report import Modification, Text, VerificationReport, VisualDifference
from signing.verify.report_text import (
    COVERAGE,
    DOCMDP,
    INDICATIONS,
    MODIFICATION_LEVELS,
    REGISTRY_STATUSES,
    REVOCATION_SOURCES,
    REVOCATION_STATUSES,
    SUB_INDICATIONS,
    flat,
    log_text,
    one_line,
    quoted,
    reason_text,
    when,
    who,
    word,
)

if TYPE_CHECKING:
    from signing.create.service import SigningService

Lang = Literal["vi", "en"]
TEMPLATES = Path(__file__).resolve().parent / "templates"


@lru_cache(maxsize=1)  # kept: the Jinja environment over the packaged templates; one, immutable
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def to_html(report: VerificationReport, lang: Lang = "vi") -> str:
    def t(vi: str, en: str) -> str:
        return en if lang == "en" else vi

    return _environment().get_template("verification-report.html").render(
        report=report, lang=lang, t=t, when=when, q=quoted, one_line=one_line, who=who,
        verdict=lambda indication, sub: say(lang, verdict_words(indication, sub)),
        status=lambda value: say(lang, word(REGISTRY_STATUSES, value)),
        revocation=lambda value: say(lang, word(REVOCATION_STATUSES, value)),
        source=lambda value: say(lang, word(REVOCATION_SOURCES, value)),
        covers=lambda value: say(lang, word(COVERAGE, value)),
        level=lambda value: say(lang, word(MODIFICATION_LEVELS, value)),
        docmdp=lambda value: say(lang, DOCMDP.get(value, Text("khác", "other"))),
        trust=lambda value: trust_words(lang, value), reason=lambda value: say(lang, reason_text(value)),
        logged=lambda value: say(lang, log_text(value)))


def say(lang: Lang, text: Text) -> str:
    return text.en if lang == "en" else text.vi


def verdict_words(indication: str, sub: str | None) -> Text:
    """The bottom line in words ("chưa thể khẳng định: chứng thư số đã hết hạn…"); the ETSI codes themselves
    are shown only in the technical section."""
    main = word(INDICATIONS, indication)
    if not sub:
        return main
    why = word(SUB_INDICATIONS, sub)
    return Text(f"{main.vi} ({why.vi})", f"{main.en} ({why.en})")


CONFIGURED = "configured: "


COMMON_NAME = re.compile(r"Common Name: ([^,]+)")  # in asn1crypto's human_friendly subject


def trust_words(lang: Lang, anchor: str | None) -> str:
    """The trust anchor by its name (a root's common name, not asn1crypto's "Common Name: …, Country: …")."""
    if not anchor:
        return say(lang, Text("không dẫn tới tổ chức chứng thực tin cậy nào", "no trusted authority"))
    configured = anchor.startswith(CONFIGURED)
    named = COMMON_NAME.search(anchor)
    name = named.group(1) if named else anchor[len(CONFIGURED):] if configured else anchor
    if configured:
        return say(lang, Text("tổ chức chứng thực do tỉnh cấu hình thêm: ", "an authority the province added: ")) \
            + quoted(name)
    return quoted(name)


def sealed_by(report_organisation: str | None, lang: Lang) -> str:
    """The line a sealed report opens with: it is sealed, by whom, and how to check that."""
    name = quoted(report_organisation or "kyso")
    return say(lang, Text(f"Báo cáo này được đóng dấu số (ký số) bởi {name}. Mở tệp bằng phần mềm đọc PDF để "
                          "kiểm tra con dấu: nếu báo cáo bị sửa, con dấu sẽ không còn hợp lệ.",
                          f"This report is sealed (digitally signed) by {name}. Open it in a PDF reader to check "
                          "the seal: if the report was altered, the seal is no longer valid."))


def to_pdf(report: VerificationReport, lang: Lang, font: Path, font_bold: Path, *,
           sealed_by_organisation: str | None = None) -> bytes:
    """The report's facts as a plain A4 document; ``sealed_by_organisation`` (the seal certificate's
    organisation) when the document is about to be sealed, so the report says so."""
    def t(vi: str, en: str) -> str:
        return en if lang == "en" else vi

    doc = FPDF(format="A4")
    doc.set_auto_page_break(True, margin=15)
    doc.add_font("kyso", "", str(font))
    doc.add_font("kyso", "B", str(font_bold))
    doc.set_title(t("Báo cáo kiểm tra chữ ký số", "Signature verification report"))
    doc.set_creator("kyso")
    doc.add_page()
    doc.set_font("kyso", "B", 16)
    doc.multi_cell(0, 8, t("BÁO CÁO KIỂM TRA CHỮ KÝ SỐ", "SIGNATURE VERIFICATION REPORT"), align="C",
                   new_x="LMARGIN", new_y="NEXT")
    if sealed_by_organisation is not None:
        doc.set_font("kyso", "", 10)
        _write(doc, 0, 5, sealed_by(sealed_by_organisation, lang))
    doc.ln(3)
    doc.set_font("kyso", "B", 12)
    _write(doc, 0, 6, t(report.summary.vi, report.summary.en))
    doc.ln(2)
    rows = [
        (t("Kết luận", "Conclusion"), say(lang, verdict_words(report.indication, report.sub_indication))),
        ("SHA-256", report.sha256),
        (t("Thời điểm kiểm tra", "Validated at"), when(report.validated_at)),
    ]
    if report.registry:
        reg = report.registry
        rows += [
            (t("Mã văn bản", "Document id"), f"{reg.document_id} ({t('phiên bản', 'version')} {reg.version}/"
                                             f"{reg.current_version})"),
            (t("Trạng thái đăng ký", "Registry status"),
             say(lang, word(REGISTRY_STATUSES, reg.status))
             + (f" ({one_line(reg.status_reason)})" if reg.status_reason else "")),
            (t("Loại văn bản", "Document type"), say(lang, reg.document_type_title) if reg.document_type_title
             else reg.document_type),
            (t("Xã/phường", "Commune"), reg.commune_name or reg.commune_code),
        ]
    _table(doc, rows)
    for note in report.notes:
        doc.set_font("kyso", "", 10)
        _write(doc, 0, 5, t(note.vi, note.en))
    changes: list[Modification | VisualDifference] = [*report.modifications, *report.visual_differences]
    if changes:
        doc.ln(2)
        doc.set_font("kyso", "B", 11)
        _write(doc, 0, 6, t("Những thay đổi sau khi ký", "Changes after signing"))
        doc.set_font("kyso", "", 10)
        for change in changes[:30]:
            _write(doc, 0, 5, "– " + t(change.text.vi, change.text.en))
    for index, sig in enumerate(report.signatures, 1):
        doc.ln(3)
        doc.set_font("kyso", "B", 12)
        kind = (t("Dấu thời gian lưu trữ", "Archive timestamp") if sig.kind == "document_timestamp"
                else t("Chữ ký", "Signature"))
        _write(doc, 0, 6, f"{index}. {kind} {quoted(sig.field_name)}")
        doc.set_font("kyso", "", 10)
        _write(doc, 0, 5, t(sig.summary.vi, sig.summary.en))
        signer = sig.signer
        rows = [(t("Kết luận", "Conclusion"), say(lang, verdict_words(sig.indication, sig.sub_indication)))]
        if signer:
            rows.append((t("Người ký", "Signer"), who(signer)))
            rows.append((t("Chứng thư số", "Certificate"), f"{signer.serial} ({when(signer.not_before)} – "
                                                           f"{when(signer.not_after)})"))
        rows.append((t("Toàn vẹn", "Integrity"), t("khớp", "intact") if sig.intact else t("KHÔNG khớp", "NOT intact")))
        if sig.timestamp:
            rows.append((t("Dấu thời gian", "Timestamp"), f"{when(sig.timestamp.time)} ({quoted(sig.timestamp.tsa)})"))
        rows.append((t("Tin cậy", "Trust"), trust_words(lang, sig.trust_anchor)))
        rev = sig.revocation
        rows.append((t("Tình trạng thu hồi", "Revocation"),
                     say(lang, word(REVOCATION_STATUSES, rev.status))
                     + (f" {when(rev.revoked_at)} ({say(lang, reason_text(rev.reason))})" if rev.revoked_at else "")
                     + f" — {t('nguồn', 'source')}: {say(lang, word(REVOCATION_SOURCES, rev.source))}"))
        cov = sig.coverage
        rows.append((t("Phạm vi ký", "Coverage"), f"{say(lang, word(COVERAGE, cov.covers))}; {cov.later_revisions} "
                     f"{t('lần cập nhật sau đó', 'later updates')} "
                     f"({say(lang, word(MODIFICATION_LEVELS, cov.modification_level))})"))
        if sig.entitlement:
            ent = sig.entitlement
            verdict = t("có", "yes") if ent.allowed else (t("KHÔNG", "NO") if ent.allowed is False
                                                          else t("không kiểm tra được", "not checked"))
            rows.append((t("Thẩm quyền ký", "Entitled to sign"),
                         f"{verdict} — {t('chính sách ký số phiên bản', 'signing policy version')} "
                         f"{ent.policy_version}"))
        if sig.log:
            rows.append((t("Sổ công khai", "Public log"), say(lang, log_text(sig.log))))
        _table(doc, rows)
    _technical(doc, report, t)
    return bytes(doc.output())


def _technical(doc: FPDF, report: VerificationReport, t: Callable[[str, str], str]) -> None:
    """The codes a PKI engineer looks for (ETSI EN 319 102-1 indications, PAdES level, DocMDP, policy rule),
    after everything a person reads, under their own heading."""
    doc.ln(4)
    doc.set_font("kyso", "B", 11)
    _write(doc, 0, 6, t("Chi tiết kỹ thuật (ETSI EN 319 102-1)", "Technical details (ETSI EN 319 102-1)"))
    rows = [(t("Tệp", "File"), technical_code(report.indication, report.sub_indication))]
    for index, sig in enumerate(report.signatures, 1):
        cov = sig.coverage
        parts = [technical_code(sig.indication, sig.sub_indication), sig.level or "—",
                 f"{cov.covers}/{cov.modification_level}" + (f", DocMDP P={cov.docmdp_permission}"
                                                             if cov.docmdp_permission else ""),
                 f"{sig.revocation.status}/{sig.revocation.source}",
                 f"{sig.digest_algorithm}, {sig.signature_algorithm}"]
        if sig.entitlement and sig.entitlement.rule:
            parts.append(f"rule {sig.entitlement.rule}")
        rows.append((f"{index}. {quoted(sig.field_name, 40)}", "; ".join(parts)))
    _table(doc, rows)
    doc.set_font("kyso", "", 9)
    _write(doc, 0, 5, f"{t('Kiểm tra theo', 'Validation policy')}: {report.validation_policy}.")


def technical_code(indication: str, sub: str | None) -> str:
    return indication + (f" / {sub}" if sub else "")


def _table(doc: FPDF, rows: list[tuple[str, str]]) -> None:
    doc.set_font("kyso", "", 10)
    for label, value in rows:
        y = doc.get_y()
        _write(doc, 50, 5, label, new_x="RIGHT", new_y="TOP")
        _write(doc, 0, 5, value)
        doc.set_y(max(doc.get_y(), y + 5))


QUOTED = re.compile(r"«[^«»]*»")  # one_line turns « » inside a value into ‹ ›: these are whole values
NBSP = "\u00a0"  # fpdf2 never breaks a line at it (and prints a plain space)


def _write(doc: FPDF, w: float, h: float, text: str, **where: str) -> None:
    """``multi_cell`` for report text: on one logical line (``flat``), and each quoted value unbreakable and
    short enough for the cell, so a wrap falls before a value's opening « or not at all inside it."""
    width = (w or doc.w - doc.r_margin - doc.get_x()) - 2 * doc.c_margin - 0.5

    def whole(match: re.Match[str]) -> str:
        value = match.group(0)
        if doc.get_string_width(value) > width:
            inner = value[1:-1].rstrip("…")
            while inner and doc.get_string_width(f"«{inner}…»") > width:
                inner = inner[:-1]
            value = f"«{inner.rstrip()}…»"
        return value.replace(" ", NBSP)

    doc.multi_cell(w, h, QUOTED.sub(whole, flat(text)), new_x=where.get("new_x", "LMARGIN"),
                   new_y=where.get("new_y", "NEXT"))


def sealed_pdf(service: SigningService, report: VerificationReport, lang: Lang, *, actor: str) -> bytes:
    """The PDF report signed (B-T, certified) with the credential named by ``KYSO_REPORT_SEAL_CREDENTIAL``,
    which must be an organisation seal (a specialist's credential is refused: anyone may ask for a report)."""
    from pyhanko.sign.fields import SigFieldSpec

    from signing.create.signer import default_digest, default_scheme

    settings = service.ctx.settings
    credential = settings.report_seal_credential
    if not credential:
        raise ConfigurationError("PDF reports are sealed by kyso's organisation seal, and none is configured: "
                                 "issue a seal certificate (kyso cert issue --profile seal …) and set "
                                 "KYSO_REPORT_SEAL_CREDENTIAL to its credential id; JSON and HTML reports work now",
                                 code="report_seal_not_configured")
    material = service.material.signer(credential)
    if material.profile != "seal":
        # a person's key signs only with that person's consent (signing.activation.sole_control), never
        # an anonymous caller's report
        with transaction(service.ctx.sessions) as session:
            audit.record(session, actor=actor, action="signing:report:deny", subject=credential,
                         reason=f"KYSO_REPORT_SEAL_CREDENTIAL names a {material.profile} credential")
        raise ConfigurationError(f"KYSO_REPORT_SEAL_CREDENTIAL names credential {credential}, a {material.profile}'s; "
                                 "PDF reports are sealed only by an organisation seal (kyso cert issue --profile "
                                 "seal …): a person's key never signs without their own authorization",
                                 code="report_seal_not_a_seal")
    pdf = to_pdf(report, lang, settings.stamp_font, settings.stamp_font_bold,
                 sealed_by_organisation=_organisation(material.certificate))
    # the service's own cached signer (its DER templates built once); report_pdf is the service's companion
    signer = service._signer(material, default_scheme(material.key_type, None))  # noqa: SLF001
    reserve = sum(len(c.dump()) for c in (material.certificate, *material.chain)) + 2048 + service.ts_reserve()
    job = pades.SignatureJob(
        signer=signer, field_name="KysoVerificationReport", new_field=SigFieldSpec("KysoVerificationReport"),
        stamp_style=None, text_params={}, md_algorithm=default_digest(material.key_type), certify=True,
        reason="Báo cáo kiểm tra chữ ký số / signature verification report", location=None,
        bytes_reserved=2 * reserve)
    signed = loop.run(pades.sign_once(pades.open_writer(pdf), job, service.timestamper()))
    with transaction(service.ctx.sessions) as session:
        audit.record(session, actor=actor, action="signing:report:seal", subject=report.sha256,
                     credential_id=credential, signer_serial=material.serial, indication=report.indication,
                     document_id=report.registry.document_id if report.registry else None,
                     at=dt.datetime.now(dt.UTC).isoformat())
    return signed


def _organisation(certificate: Any) -> str | None:
    """The seal certificate's organisation (O), or its common name when it names none."""
    subject = certificate.subject.native
    name = subject.get("organization_name") or subject.get("common_name")
    return str(name) if name else None
