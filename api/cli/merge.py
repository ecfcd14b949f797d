"""``kyso merge``: a commune merger re-issues the certificates of the merged units."""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from pki.reasons import Reason

from . import common
from .common import JsonOpt, actor, err, lazy, out, print_json

if TYPE_CHECKING:
    from pki import merger
else:
    merger = lazy("pki.merger")

app = typer.Typer()  # added to the root without a name: `merge` is a top-level command


@app.command()
def merge(
    from_codes: Annotated[list[str], typer.Option("--from", help="Code of a unit merged away (repeat)")],
    into: Annotated[str, typer.Option("--into", help="Code of the unit they become")],
    effective: Annotated[dt.datetime | None,
                         typer.Option(formats=["%Y-%m-%d"], help="Date the merger takes effect")] = None,
    reason: Annotated[Reason, typer.Option(
        help="affiliationChanged, superseded or cessationOfOperation")] = Reason.affiliationChanged,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show exactly what would change; change nothing")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Commune merger: re-issue the certificates of every specialist of the merged units under the
    new unit's name and code (same keys), and revoke the old ones, in one audited transaction."""
    with Progress(TextColumn("re-issuing"), BarColumn(), MofNCompleteColumn(), console=err, transient=True,
                  disable=as_json) as progress:
        task = progress.add_task("merge", total=None)
        report = merger.merge(common.container().pki, from_codes, into, actor(), reason=reason,
                              effective=effective.date() if effective else None, dry_run=dry_run,
                              progress=lambda done, total: progress.update(task, completed=done, total=total))
    if as_json:
        print_json({**report.__dict__, "changes": [c.__dict__ for c in report.changes]})
        return
    verb = "would re-issue" if dry_run else "re-issued"
    out.print(f"{verb} {len(report.changes)} certificate(s) into {report.into_name} ({report.into_code}), "
              f"old ones {'would be ' if dry_run else ''}revoked as {report.reason}")
    table = Table("old serial", "new serial", "name", "from", "new subject")
    for c in report.changes:
        table.add_row(c.old_serial[:16] + "…", (c.new_serial or "-")[:16], c.common_name, c.old_commune,
                      c.new_subject[:60])
    out.print(table)
