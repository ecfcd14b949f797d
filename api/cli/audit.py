"""``kyso audit verify``: check the hash-chained audit log."""
from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from . import common
from .common import JsonOpt, err, lazy, out, print_json

if TYPE_CHECKING:
    from core import audit as audit_log, db
else:
    db = lazy("core.db")
    audit_log = lazy("core.audit")

app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Check the audit log's hash chain; exits 1 and names the first broken entry if tampered."""
    container = common.container()
    with db.transaction(container.sessions) as session:
        report = audit_log.verify(session)
    if as_json:
        print_json(report.__dict__)
    elif report.ok:
        out.print(f"audit log intact: {report.entries} entries")
    else:
        err.print(f"[bold red]audit log broken[/] at entry {report.first_broken_seq}: {report.problem}")
    if not report.ok:
        raise typer.Exit(1)
