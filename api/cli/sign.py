"""``kyso sign``: signing PDFs from the command line (each signed document goes into the registry).

An organisation seal signs as the operator who holds the keystore. A specialist's credential signs
only with her consent, here as everywhere: the command asks for her PIN and current code (hidden,
typed by her at this terminal), which authorize exactly these files' SHA-256 and nothing else; with
no terminal or no answer it refuses (exit status 2) and signs nothing.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from core.errors import InvalidInput, KysoError

from . import common
from .common import JsonOpt, actor, err, lazy, out, print_json

if TYPE_CHECKING:
    from signing.activation import factors, sole_control
    from signing.create import service
    from signing.create.consent import Activation
else:
    service = lazy("signing.create.service")
    factors = lazy("signing.activation.factors")
    sole_control = lazy("signing.activation.sole_control")

app = typer.Typer()  # added to the root without a name: `sign` is a top-level command

LevelOpt = Annotated[str | None, typer.Option("--level", help="B-B, B-T, B-LT or B-LTA (default: the document type's)")]


def _box(value: str | None) -> tuple[float, float, float, float] | None:
    if not value:
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in value.split(","))
    except ValueError:
        raise InvalidInput("--box takes four numbers in PDF points: x1,y1,x2,y2 (origin bottom left)") from None
    return x1, y1, x2, y2


def _seal_fields(values: list[str] | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--field takes name=value (a seal field of the document type), not {item!r}")
        if name.strip() in fields:
            raise InvalidInput(f"--field {name.strip()} is given twice")
        fields[name.strip()] = value
    return fields


def _result_dict(result: service.SignResult, source: str, target: str, base_url: str) -> dict[str, Any]:
    return {"input": source, "output": target, "document_id": result.document_id, "level": result.level,
            "requested_level": result.requested_level, "upgrade_pending": result.pending_upgrade,
            "sha256": result.sha256, "verify_url": f"{base_url}/v/{result.document_id}",
            "offline_seal": result.offline_seal}


def _consent(container: Any, credential: str, pdfs: list[bytes], who: str) -> Activation:
    """``Required`` for a seal; for a specialist's credential, her SAD for exactly ``pdfs`` from the PIN and
    code she types now (prompted on stderr, hidden), or a refusal, audited, when nobody answers."""
    material = container.signing.material.signer(credential)  # unknown, revoked, retired: refused here
    if not sole_control.needs_activation(material):
        return sole_control.Required(container.pki, who)
    err.print(f"Credential {credential} is a specialist's ({material.common_name}): it signs only with her consent. "
              f"She types her PIN and the current code of her authenticator app, which authorize exactly these "
              f"{len(pdfs)} file(s).")
    hidden = sys.stdin.isatty()  # at a terminal nothing she types is shown; piped input is never echoed
    try:
        pin = typer.prompt("Her PIN / Mã PIN", hide_input=hidden, err=True)
        code = typer.prompt("Her current code / Mã xác thực", hide_input=hidden, err=True)
    except typer.Abort:
        err.print()  # the prompt's line ends here
        sole_control.refuse(container.pki, who, credential, "no PIN and code at the command line",
                            f"credential {credential} is a specialist's: signing with it needs her PIN and current "
                            "code, typed at this terminal, and none came (no terminal, or no answer); nothing was "
                            "signed. Let her run the command herself, or submit the files as a signing request "
                            "(POST /api/v1/sign/requests) for her to approve on her page (/me)")
    hashes = [sole_control.document_hash(pdf) for pdf in pdfs]
    sad = factors.authorize(container.pki, credential, pin, code, hashes, "sha256", len(hashes), who,
                            purpose=factors.SADPurpose.DOCUMENTS)
    return sole_control.SADActivation(container.pki, credential, sad.token, hashes, who)


@app.command()
def sign(
    files: Annotated[list[Path], typer.Argument(help="PDF(s) to sign; several are signed as a batch", exists=True,
                                                 dir_okay=False, readable=True)],
    credential: Annotated[str, typer.Option("--credential", "-c", help="The signer's credential id (cred_…)")],
    commune: Annotated[str, typer.Option(help="Commune/ward code the document is issued for, e.g. 00004")],
    document_type: Annotated[str, typer.Option("--type",
                                               help="Document type (see policies/documents/)")] = "dossier-result",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file (one input only)")] = None,
    out_dir: Annotated[Path | None, typer.Option(help="Folder for signed files (default: next to each input, "
                                                         "with -signed added)")] = None,
    dossier: Annotated[str | None, typer.Option(help="Dossier number, kept in the registry")] = None,
    level: LevelOpt = None,
    invisible: Annotated[bool, typer.Option("--invisible", help="No visible stamp")] = False,
    kind: Annotated[str | None,
                    typer.Option(help="Stamp: person, seal or copy (default: from the document type)")] = None,
    field: Annotated[str | None, typer.Option("--signature-field",
                                                 help="Sign this existing empty signature field")] = None,
    page: Annotated[int | None, typer.Option(help="Page for the stamp (1-based, -1 = last)")] = None,
    box: Annotated[str | None, typer.Option(help="Stamp box x1,y1,x2,y2 in PDF points")] = None,
    title: Annotated[str | None, typer.Option(help="Title above the signature, e.g. 'KT. CHỦ TỊCH'")] = None,
    copy_form: Annotated[str | None, typer.Option(help="SAO Y, SAO LỤC or TRÍCH SAO (copy stamps)")] = None,
    seal_field: Annotated[list[str] | None, typer.Option(
        "--field", "--seal-field", help="name=value, repeatable: a fact signed into the QR code's offline seal "
                        "(the names the document type lists, e.g. --field permit_no=12/GPXD)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign PDFs with a credential's key (which stays in its keystore) and register them.

    An organisation seal signs as the operator. A specialist's credential asks for her PIN and current
    code (she types them; hidden) and signs exactly these files, or refuses with exit status 2.

    Example: kyso sign ket-qua.pdf -o ket-qua-ky.pdf -c cred_… --commune 00004 --level B-LT
    """
    if output and len(files) > 1:
        raise InvalidInput("-o names one output file; for several inputs use --out-dir")
    fields = _seal_fields(seal_field)
    container = common.container()
    appearance = service.AppearanceOptions(visible=not invisible, kind=kind, field_name=field, page=page, box=_box(box),  # type: ignore[arg-type]
                                   title=title, copy_form=copy_form)
    who = actor()
    pdfs = [source.read_bytes() for source in files]
    consent = _consent(container, credential, pdfs, who)
    results: list[dict[str, Any]] = []
    failures = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  disable=as_json or len(files) == 1, console=err) as progress:
        task = progress.add_task("signing", total=len(files))
        for source, pdf in zip(files, pdfs, strict=True):
            target = output or (out_dir or source.parent) / f"{source.stem}-signed.pdf"
            try:
                result = container.signing.sign(service.SignRequest(
                    pdf=pdf, document_type=document_type, commune_code=commune,
                    credential_id=credential, dossier_number=dossier, level=level, appearance=appearance,  # type: ignore[arg-type]
                    seal_fields=fields,
                ), actor=who, activation=consent)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(result.pdf)
                results.append(_result_dict(result, str(source), str(target), container.settings.base_url))
            except KysoError as exc:
                if len(files) == 1:
                    raise
                failures += 1
                results.append({"input": str(source), "error": {"code": exc.code, "message": exc.message}})
            progress.advance(task)
    if as_json:
        print_json(results if len(files) > 1 else results[0])
    else:
        for item in results:
            if "error" in item:
                err.print(f"[red]✗[/] {item['input']}: {item['error']['message']}")
            else:
                pending = (" [yellow](timestamp pending; upgraded in the background)[/]"
                           if item["upgrade_pending"] else "")
                out.print(f"[green]✓[/] {item['output']}  {item['level']}{pending}  id {item['document_id']}  "
                          f"{item['verify_url']}")
    if failures:
        raise typer.Exit(1)
