"""``kyso doc …``: the registry of signed documents."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from . import common
from .common import JsonOpt, actor, err, lazy, out, print_json

if TYPE_CHECKING:
    from core import db
    from signing.create import upgrade
    from signing.registry import lifecycle, versions

    from .. import schemas_signing
else:
    db = lazy("core.db")
    upgrade = lazy("signing.create.upgrade")
    lifecycle = lazy("signing.registry.lifecycle")
    versions = lazy("signing.registry.versions")
    schemas_signing = lazy("api.schemas_signing")

app = typer.Typer(help="The registry of signed documents: list, show, fetch, withdraw, supersede, upgrade, gc.",
                  no_args_is_help=True)


@app.command("list")
def doc_list(
    dossier: Annotated[str | None, typer.Option(help="Dossier number")] = None,
    commune: Annotated[str | None, typer.Option(help="Commune code")] = None,
    status: Annotated[str | None, typer.Option(help="valid, withdrawn or superseded")] = None,
    pending: Annotated[bool, typer.Option("--pending", help="Only documents waiting for a timestamp upgrade")] = False,
    limit: int = 50, as_json: JsonOpt = False,
) -> None:
    """List signed documents, newest first."""
    container = common.container()
    with db.transaction(container.sessions) as session:
        rows, total = lifecycle.list_documents(session, lifecycle.DocumentFilter(
            dossier_number=dossier, commune_code=commune, status=status,
            upgrade_status="pending" if pending else None, limit=limit))
        data = [_doc_dict(r, container.settings.base_url) for r in rows]
    if as_json:
        print_json({"total": total, "items": data})
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
    return schemas_signing.DocumentOut.of(doc, base_url).model_dump(mode="json")


@app.command("show")
def doc_show(document_id: str, as_json: JsonOpt = False) -> None:
    """One document's registry record."""
    container = common.container()
    with db.transaction(container.sessions) as session:
        data = _doc_dict(lifecycle.get_document(session, document_id), container.settings.base_url)
    if as_json:
        print_json(data)
    else:
        for key, value in data.items():
            out.print(f"{key:16} {value if value is not None else ''}")


@app.command("get")
def doc_get(document_id: str, output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the PDF")],
            version: Annotated[int | None, typer.Option(help="A given version (default: current)")] = None) -> None:
    """Write a signed document's current (possibly upgraded) PDF to a file."""
    container = common.container()
    with db.transaction(container.sessions) as session:
        row = lifecycle.get_file(session, document_id, version)
        output.write_bytes(lifecycle.file_bytes(session, container.settings, row))
        out.print(f"wrote {output} (version {row.version}, {row.level}, {row.size:,} bytes)")


@app.command("withdraw")
def doc_withdraw(document_id: str,
                 reason: Annotated[str, typer.Option(help="Shown to citizens who scan the QR")]) -> None:
    """Withdraw a document (the citizen page will say so)."""
    doc = lifecycle.withdraw(common.container().pki, document_id, reason, actor())
    out.print(f"{doc.id} withdrawn: {reason}")


@app.command("supersede")
def doc_supersede(document_id: str, by: Annotated[str, typer.Option(help="Id of the replacing document")],
                  reason: Annotated[str, typer.Option(help="Why it was replaced")]) -> None:
    """Mark a document as replaced by another one."""
    doc = lifecycle.supersede(common.container().pki, document_id, by, reason, actor())
    out.print(f"{doc.id} superseded by {doc.superseded_by}")


@app.command("upgrade")
def doc_upgrade(as_json: JsonOpt = False) -> None:
    """Run one pass of the background upgrade now (documents signed while the TSA was unreachable)."""
    result = upgrade.upgrade_due(common.container().signing, limit=10_000)
    print_json(result) if as_json else out.print(
        f"upgraded {result['upgraded']}, to retry {result['retry']}, given up {result['failed']}")


@app.command("gc")
def doc_gc(as_json: JsonOpt = False) -> None:
    """Drop callers' inputs past KYSO_INPUT_RETENTION_DAYS (the first version is then stored whole) and delete
    blobs nothing references that are older than KYSO_BLOB_GC_GRACE_HOURS (orphans of failed commits).
    Safe to run at any time, from cron or by hand; every version stays rebuildable."""
    container = common.container()
    result = versions.collect(container.sessions, container.settings)
    if as_json:
        print_json({"rebased": result.rebased, "removed": result.removed, "damaged": list(result.damaged)})
    else:
        out.print(f"inputs dropped for {result.rebased} documents, {result.removed} unreferenced blobs removed")
        for document_id in result.damaged:
            err.print(f"[red]document {document_id} cannot be rebuilt[/]: restore its blobs from a backup")
    if result.damaged:
        raise typer.Exit(1)


@app.command("enroll-image")
def doc_enroll_image(
    credential: Annotated[str, typer.Argument(help="Credential id (cred_…)")],
    image: Annotated[Path, typer.Argument(help="Transparent PNG", exists=True, dir_okay=False)],
    kind: Annotated[str, typer.Option(help="signature (handwritten, blue) or seal (agency, red)")] = "signature",
) -> None:
    """Enrol the handwritten-signature or seal image a credential's visible signatures show."""
    row = lifecycle.enroll_image(common.container().pki, credential, kind, image.read_bytes(), actor())
    out.print(f"{kind} image enrolled for {credential} (sha256 {row.sha256[:16]}…)")
