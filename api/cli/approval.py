"""``kyso approval …``: four eyes on operations that cannot be undone (`kyso key destroy`, `kyso ca revoke`).

Each operator runs these commands under their own login: the operator recorded is the OS user
(``cli:<user>``), and the one who asked can never approve their own request.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from . import common
from .common import JsonOpt, actor, lazy, out, print_json

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
def approve(approval_id: str, as_json: JsonOpt = False) -> None:
    """Approve a request and run it now (refused for the operator who asked)."""
    result = approvals.approve(common.container().pki, approval_id, actor())
    if as_json:
        print_json(result)
    else:
        out.print(f"approved {approval_id}: {result}")


@app.command("reject")
def reject(approval_id: str, reason: Annotated[str, typer.Option(help="Why")]) -> None:
    """Reject a pending request; nothing is done."""
    approvals.reject(common.container().pki, approval_id, actor(), reason)
    out.print(f"rejected {approval_id}")
