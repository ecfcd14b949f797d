"""``kyso sign`` and ``kyso doc …``: signing PDFs and managing the registry from the command line."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from core.db import transaction
from core.errors import InvalidInput, KysoError
from signing.registry import lifecycle
from signing.create import upgrade
from signing.create.service import AppearanceOptions, SignRequest, SignResult

from .cli import JsonOpt, _actor, _container, _print_json, app, err, out
from .schemas_signing import DocumentOut

doc_app = typer.Typer(help="The registry of signed documents: list, show, fetch, withdraw, supersede, upgrade.",
                      no_args_is_help=True)
app.add_typer(doc_app, name="doc")

DEMO_PIN = "246813"
LevelOpt = Annotated[Optional[str], typer.Option("--level", help="B-B, B-T, B-LT or B-LTA (default: the document type's)")]


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


def _result_dict(result: SignResult, source: str, target: str, base_url: str) -> dict[str, Any]:
    return {"input": source, "output": target, "document_id": result.document_id, "level": result.level,
            "requested_level": result.requested_level, "upgrade_pending": result.pending_upgrade,
            "sha256": result.sha256, "verify_url": f"{base_url}/v/{result.document_id}",
            "offline_seal": result.offline_seal}


@app.command()
def sign(
    files: Annotated[list[Path], typer.Argument(help="PDF(s) to sign; several are signed as a batch", exists=True,
                                                 dir_okay=False, readable=True)],
    credential: Annotated[str, typer.Option("--credential", "-c", help="The signer's credential id (cred_…)")],
    commune: Annotated[str, typer.Option(help="Commune/ward code the document is issued for, e.g. 00004")],
    document_type: Annotated[str, typer.Option("--type", help="Document type (see policies/documents/)")] = "dossier-result",
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Output file (one input only)")] = None,
    out_dir: Annotated[Optional[Path], typer.Option(help="Folder for signed files (default: next to each input, "
                                                         "with -signed added)")] = None,
    dossier: Annotated[Optional[str], typer.Option(help="Dossier number, kept in the registry")] = None,
    level: LevelOpt = None,
    invisible: Annotated[bool, typer.Option("--invisible", help="No visible stamp")] = False,
    kind: Annotated[Optional[str], typer.Option(help="Stamp: person, seal or copy (default: from the document type)")] = None,
    field: Annotated[Optional[str], typer.Option("--signature-field",
                                                 help="Sign this existing empty signature field")] = None,
    page: Annotated[Optional[int], typer.Option(help="Page for the stamp (1-based, -1 = last)")] = None,
    box: Annotated[Optional[str], typer.Option(help="Stamp box x1,y1,x2,y2 in PDF points")] = None,
    title: Annotated[Optional[str], typer.Option(help="Title above the signature, e.g. 'KT. CHỦ TỊCH'")] = None,
    copy_form: Annotated[Optional[str], typer.Option(help="SAO Y, SAO LỤC or TRÍCH SAO (copy stamps)")] = None,
    seal_field: Annotated[Optional[list[str]], typer.Option(
        "--field", "--seal-field", help="name=value, repeatable: a fact signed into the QR code's offline seal "
                        "(the names the document type lists, e.g. --field permit_no=12/GPXD)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign PDFs with a credential's key (which stays in its keystore) and register them.

    Example: kyso sign ket-qua.pdf -o ket-qua-ky.pdf -c cred_… --commune 00004 --level B-LT
    """
    if output and len(files) > 1:
        raise InvalidInput("-o names one output file; for several inputs use --out-dir")
    fields = _seal_fields(seal_field)
    container = _container()
    appearance = AppearanceOptions(visible=not invisible, kind=kind, field_name=field, page=page, box=_box(box),  # type: ignore[arg-type]
                                   title=title, copy_form=copy_form)
    results: list[dict[str, Any]] = []
    failures = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  disable=as_json or len(files) == 1, console=err) as progress:
        task = progress.add_task("signing", total=len(files))
        for source in files:
            target = output or (out_dir or source.parent) / f"{source.stem}-signed.pdf"
            try:
                result = container.signing.sign(SignRequest(
                    pdf=source.read_bytes(), document_type=document_type, commune_code=commune,
                    credential_id=credential, dossier_number=dossier, level=level, appearance=appearance,  # type: ignore[arg-type]
                    seal_fields=fields,
                ), actor=_actor())
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
        _print_json(results if len(files) > 1 else results[0])
    else:
        for item in results:
            if "error" in item:
                err.print(f"[red]✗[/] {item['input']}: {item['error']['message']}")
            else:
                pending = " [yellow](timestamp pending; upgraded in the background)[/]" if item["upgrade_pending"] else ""
                out.print(f"[green]✓[/] {item['output']}  {item['level']}{pending}  id {item['document_id']}  "
                          f"{item['verify_url']}")
    if failures:
        raise typer.Exit(1)


@doc_app.command("list")
def doc_list(
    dossier: Annotated[Optional[str], typer.Option(help="Dossier number")] = None,
    commune: Annotated[Optional[str], typer.Option(help="Commune code")] = None,
    status: Annotated[Optional[str], typer.Option(help="valid, withdrawn or superseded")] = None,
    pending: Annotated[bool, typer.Option("--pending", help="Only documents waiting for a timestamp upgrade")] = False,
    limit: int = 50, as_json: JsonOpt = False,
) -> None:
    """List signed documents, newest first."""
    container = _container()
    with transaction(container.sessions) as session:
        rows, total = lifecycle.list_documents(session, lifecycle.DocumentFilter(
            dossier_number=dossier, commune_code=commune, status=status,
            upgrade_status="pending" if pending else None, limit=limit))
        data = [_doc_dict(r, container.settings.base_url) for r in rows]
    if as_json:
        _print_json({"total": total, "items": data})
        return
    table = Table("id", "type", "commune", "dossier", "signer", "signed", "level", "status")
    for d in data:
        level = d["level"] + ("→" + d["requested_level"] if d["upgrade_status"] != "none" else "")
        table.add_row(d["document_id"], d["document_type"], d["commune_code"], d["dossier_number"] or "",
                      d["signer_name"], d["signed_at"][:19], level, d["status"])
    out.print(table)
    out.print(f"{len(data)} of {total}")


def _doc_dict(doc: Any, base_url: str) -> dict[str, Any]:
    """The same record the API returns (``GET /api/v1/documents/{id}``)."""
    return DocumentOut.of(doc, base_url).model_dump(mode="json")


@doc_app.command("show")
def doc_show(document_id: str, as_json: JsonOpt = False) -> None:
    """One document's registry record."""
    container = _container()
    with transaction(container.sessions) as session:
        data = _doc_dict(lifecycle.get_document(session, document_id), container.settings.base_url)
    if as_json:
        _print_json(data)
    else:
        for key, value in data.items():
            out.print(f"{key:16} {value if value is not None else ''}")


@doc_app.command("get")
def doc_get(document_id: str, output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the PDF")],
            version: Annotated[Optional[int], typer.Option(help="A given version (default: current)")] = None) -> None:
    """Write a signed document's current (possibly upgraded) PDF to a file."""
    container = _container()
    with transaction(container.sessions) as session:
        row = lifecycle.get_file(session, document_id, version)
        output.write_bytes(row.pdf)
        out.print(f"wrote {output} (version {row.version}, {row.level}, {row.size:,} bytes)")


@doc_app.command("withdraw")
def doc_withdraw(document_id: str, reason: Annotated[str, typer.Option(help="Shown to citizens who scan the QR")]) -> None:
    """Withdraw a document (the citizen page will say so)."""
    doc = lifecycle.withdraw(_container().pki, document_id, reason, _actor())
    out.print(f"{doc.id} withdrawn: {reason}")


@doc_app.command("supersede")
def doc_supersede(document_id: str, by: Annotated[str, typer.Option(help="Id of the replacing document")],
                  reason: Annotated[str, typer.Option(help="Why it was replaced")]) -> None:
    """Mark a document as replaced by another one."""
    doc = lifecycle.supersede(_container().pki, document_id, by, reason, _actor())
    out.print(f"{doc.id} superseded by {doc.superseded_by}")


@doc_app.command("upgrade")
def doc_upgrade(as_json: JsonOpt = False) -> None:
    """Run one pass of the background upgrade now (documents signed while the TSA was unreachable)."""
    result = upgrade.upgrade_due(_container().signing, limit=10_000)
    _print_json(result) if as_json else out.print(
        f"upgraded {result['upgraded']}, to retry {result['retry']}, given up {result['failed']}")


@doc_app.command("enroll-image")
def doc_enroll_image(
    credential: Annotated[str, typer.Argument(help="Credential id (cred_…)")],
    image: Annotated[Path, typer.Argument(help="Transparent PNG", exists=True, dir_okay=False)],
    kind: Annotated[str, typer.Option(help="signature (handwritten, blue) or seal (agency, red)")] = "signature",
) -> None:
    """Enrol the handwritten-signature or seal image a credential's visible signatures show."""
    row = lifecycle.enroll_image(_container().pki, credential, kind, image.read_bytes(), _actor())
    out.print(f"{kind} image enrolled for {credential} (sha256 {row.sha256[:16]}…)")


ASSETS = Path(__file__).resolve().parent.parent / "signing" / "create" / "assets"


def prepare_signing_demo(container: Any, actor: str) -> dict[str, str]:
    """Idempotent demo set-up: a specialist and a seal credential with sample images, a client token,
    a sample PDF, and one signed example (ids kept in KYSO_HOME/demo-signing.json)."""
    import json

    from pki import issuance
    from pki.names import SubjectInfo
    from signing.create.sample import sample_document

    from . import tokens

    home = container.settings.home
    state_file = home / "demo-signing.json"
    state: dict[str, str] = json.loads(state_file.read_text()) if state_file.exists() else {}
    if "specialist" not in state:
        state["specialist"] = issuance.issue(container.pki, issuance.IssueRequest(
            profile="specialist", commune_code="00004", subject=SubjectInfo(
                common_name="Nguyễn Thị Hồng Nhung", title="Công chức Tư pháp - Hộ tịch", id_number="001190000001")),
            actor).credential_id or ""
        state["seal"] = issuance.issue(container.pki, issuance.IssueRequest(
            profile="seal", commune_code="00004", subject=SubjectInfo(common_name="Ủy ban nhân dân phường Ba Đình")),
            actor).credential_id or ""
        for credential, kind, name in ((state["specialist"], "signature", "sample-signature.png"),
                                       (state["seal"], "seal", "sample-seal.png")):
            if (ASSETS / name).exists():
                lifecycle.enroll_image(container.pki, credential, kind, (ASSETS / name).read_bytes(), actor)
    if "pin" not in state:
        # the demo specialist's PIN, set up as an operator would: they sign in to /me with it, scan the
        # QR code with an authenticator app and then approve signing requests (demo only: a real PIN is
        # chosen by the specialist, never printed)
        from signing.activation import factors

        if factors.status(container.pki, state["specialist"]).state == "none":
            factors.enroll(container.pki, state["specialist"], DEMO_PIN, actor)
        state["pin"] = DEMO_PIN
    if "report_seal" not in state:
        # kyso's organisation seal: signs the PDF verification reports (KYSO_REPORT_SEAL_CREDENTIAL)
        state["report_seal"] = issuance.issue(container.pki, issuance.IssueRequest(
            profile="seal", commune_code="00004", subject=SubjectInfo(common_name="kyso - Dịch vụ xác thực văn bản")),
            actor).credential_id or ""
    if not container.settings.report_seal_credential:
        container.settings.report_seal_credential = state["report_seal"]
    token_file = home / "demo-client.token"
    if not token_file.exists():
        with transaction(container.sessions) as session:
            scope = tokens.build_scope(session, units=["00004"])  # the demo commune's software: its documents only
            token_file.write_text(tokens.create(session, f"demo-client-{state['specialist'][-6:]}",
                                                tokens.Role.client, actor, scope=scope) + "\n")
        token_file.chmod(0o600)
    sample = home / "sample.pdf"
    if not sample.exists():
        sample.write_bytes(sample_document(container.settings.stamp_font))
    if "example" not in state:
        result = container.signing.sign(SignRequest(
            pdf=sample.read_bytes(), document_type="dossier-result", commune_code="00004",
            credential_id=state["specialist"], dossier_number="HS-2026-000123"), actor=actor)
        (home / "sample-signed.pdf").write_bytes(result.pdf)
        state["example"] = result.document_id
    state_file.write_text(json.dumps(state, indent=2))
    state["token_file"] = str(token_file)
    state["sample"] = str(sample)
    return state
