"""``kyso approval …``: four eyes on operations that cannot be undone (`kyso key destroy`, `kyso ca revoke`).

Each operator runs these commands with their own ``ca-operator`` token (``KYSO_OPERATOR_TOKEN`` or
``--token-file``), recorded as ``token:<name>`` as on the REST API; the one who asked can never approve
their own request, whichever login or door (CLI or API) they use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from . import common
from .common import JsonOpt, TokenFileOpt, lazy, out, print_json

if TYPE_CHECKING:
    from core import db
    from pki import approvals
else:
    db = lazy("core.db")
    approvals = lazy("pki.approvals")

app = typer.Typer(help="Requests waiting for a second operator (four eyes).", no_args_is_help=True)


@app.command("list")
def list_(all_: Annotated[bool, typer.Option("--all", help="Also decided ones")] = False,
          as_json: JsonOpt = False) -> None:
    """Requests waiting for approval (or all of them with --all)."""
    with db.transaction(common.container().sessions) as session:
        rows = [approvals.as_dict(r) for r in approvals.listing(session, pending_only=not all_)]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "operation", "subject", "reason", "status", "requested by", "expires")
    for r in rows:
        table.add_row(r["id"], r["operation"], r["subject"], r["reason"], r["status"], r["requested_by"],
                      r["expires_at"][:16])
    out.print(table)


@app.command("approve")
def approve(approval_id: str, token_file: TokenFileOpt = None, as_json: JsonOpt = False) -> None:
    """Approve a request and run it now (refused for the operator who asked).

    Needs your own ca-operator token (KYSO_OPERATOR_TOKEN or --token-file), not the requester's.
    """
    container = common.container()
    result = approvals.approve(container.pki, approval_id, common.operator(container, "approval approve", token_file))
    if as_json:
        print_json(result)
    else:
        out.print(f"approved {approval_id}: {result}")


@app.command("reject")
def reject(approval_id: str, reason: Annotated[str, typer.Option(help="Why")], token_file: TokenFileOpt = None) -> None:
    """Reject a pending request; nothing is done. Needs your ca-operator token (KYSO_OPERATOR_TOKEN or --token-file)."""
    container = common.container()
    approvals.reject(container.pki, approval_id, common.operator(container, "approval reject", token_file), reason)
    out.print(f"rejected {approval_id}")
