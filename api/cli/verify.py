"""``kyso verify FILE``: the same report as ``POST /api/v1/verify``, on the operator's machine."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from core.errors import InvalidInput

from . import common
from .common import JsonOpt, lazy, out, print_json

if TYPE_CHECKING:
    from signing.create import report_pdf
    from signing.verify import pdf_facts
    from signing.verify.report import VerificationReport
else:
    report_pdf = lazy("signing.create.report_pdf")
    pdf_facts = lazy("signing.verify.pdf_facts")

app = typer.Typer()  # added to the root without a name: `verify` is a top-level command

STYLE = {"TOTAL-PASSED": "bold green", "TOTAL-FAILED": "bold red", "INDETERMINATE": "bold yellow"}


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="The signed PDF to check", exists=True, dir_okay=False, readable=True)],
    as_json: JsonOpt = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write the report as HTML to this file")] = None,
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Also write the report as a PDF sealed by kyso's "
                                                     "organisation seal (KYSO_REPORT_SEAL_CREDENTIAL)")] = None,
    lang: Annotated[str, typer.Option(help="vi (default) or en, for the sentences")] = "vi",
    signed_revision: Annotated[Path | None, typer.Option(
        "--signed-revision", help="Also write what the first signer signed (the part of FILE their signature "
                                  "covers, before any later change) to this file")] = None,
) -> None:
    """Check every signature in FILE: integrity, signer and chain, revocation at the signing time, timestamps,
    PAdES level, changes after signing, and the registry record when kyso issued the document.

    Exit status: 0 when the document is genuine (signed, every signature TOTAL-PASSED, nothing changed after
    signing but signatures, timestamps and validation data, and not withdrawn), 1 otherwise, 2 on bad input.

    Example: kyso verify giay-phep.pdf --lang en --html report.html
    """
    if lang not in ("vi", "en"):
        raise InvalidInput("--lang is vi or en")
    container = common.container()
    data = file.read_bytes()
    report = container.verifier.verify(data)
    if signed_revision:
        settings = container.settings
        signed_revision.write_bytes(pdf_facts.signed_revision(data, max_signatures=settings.verify_max_signatures,
                                                              max_revisions=settings.verify_max_revisions)[0])
    if html:
        html.write_text(report_pdf.to_html(report, lang), encoding="utf-8")  # type: ignore[arg-type]
    if pdf:
        pdf.write_bytes(report_pdf.sealed_pdf(container.signing, report, lang, actor="cli:verify"))  # type: ignore[arg-type]
    if as_json:
        print_json(report.as_dict())
    else:
        _print(report, lang)
    if not report.genuine:
        raise typer.Exit(1)


def _print(report: VerificationReport, lang: str) -> None:
    from signing.verify import report_text

    def t(vi: str, en: str) -> str:
        return en if lang == "en" else vi

    out.print(f"[{STYLE[report.indication]}]{report.indication}"
              f"{' / ' + report.sub_indication if report.sub_indication else ''}[/]  "
              f"{t(report.summary.vi, report.summary.en)}")
    if report.registry:
        reg = report.registry
        status = report_text.word(report_text.REGISTRY_STATUSES, reg.status)
        out.print(t(f"Văn bản kyso {reg.document_id}: {status.vi}, phiên bản {reg.version}/{reg.current_version}",
                    f"kyso document {reg.document_id}: {status.en}, version {reg.version}/{reg.current_version}"))
    for note in report.notes:
        out.print(t(note.vi, note.en))
    for mod in report.modifications:
        out.print(f"[bold red]✗[/] {escape(t(mod.text.vi, mod.text.en))}", highlight=False)
    for diff in report.visual_differences:
        out.print(f"[bold red]✗[/] {escape(t(diff.text.vi, diff.text.en))}", highlight=False)
    table = Table(show_lines=False)
    for column in (t("chữ ký", "signature"), t("kết luận", "indication"), t("người ký", "signer"),
                   t("thời điểm", "time"), t("mức", "level")):
        table.add_column(column)
    for sig in report.signatures:
        when = sig.timestamp.time if sig.timestamp else sig.claimed_signing_time
        table.add_row(sig.field_name, f"[{STYLE[sig.indication]}]{sig.indication}[/]"
                      + (f"\n{sig.sub_indication}" if sig.sub_indication else ""),
                      sig.signer.common_name if sig.signer and sig.signer.common_name else "?",
                      when.isoformat() if when else "—", sig.level or "—")
    out.print(table)
    for sig in report.signatures:
        out.print(f"• {sig.field_name}: {t(sig.summary.vi, sig.summary.en)}")
