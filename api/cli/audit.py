"""``kyso audit``: read the hash-chained audit log (list, show, export) and verify it, in the database or
in an export file (offline, by an auditor who has only the file)."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from . import common
from .common import JsonOpt, err, lazy, out, print_json

if TYPE_CHECKING:
    from core import audit as audit_log, db
else:
    db = lazy("core.db")
    audit_log = lazy("core.audit")

app = typer.Typer(help="The hash-chained audit log: list, show, export, verify.", no_args_is_help=True)

SinceOpt = Annotated[str | None, typer.Option(
    help="From this time on (ISO 8601, e.g. 2026-12-01 or 2026-12-01T08:00+07:00; a date alone is 00:00 UTC)")]
UntilOpt = Annotated[str | None, typer.Option(help="Before this time (ISO 8601, as --since)")]
ActorOpt = Annotated[str | None, typer.Option(help="Who: exactly, or a prefix ending in * (token:*, cli:*)")]
ActionOpt = Annotated[str | None, typer.Option(help="What: exactly (pki:cert:revoke) or a prefix ending in * (pki:*)")]
SubjectOpt = Annotated[str | None, typer.Option(
    "--subject", "--object", help="On what: the object's id exactly, or a prefix ending in *")]


def _time(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{option} {value!r} is not an ISO 8601 date or time (2026-12-01T08:00+07:00)"
                                 ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _filter(since: str | None, until: str | None, actor: str | None, action: str | None, subject: str | None,
            after: int = 0, limit: int | None = None) -> audit_log.AuditFilter:
    return audit_log.AuditFilter(since=_time(since, "--since"), until=_time(until, "--until"), actor=actor,
                                 action=action, subject=subject, after_seq=after, limit=limit)


@app.command("list")
def audit_list(since: SinceOpt = None, until: UntilOpt = None, actor: ActorOpt = None, action: ActionOpt = None,
               subject: SubjectOpt = None,
               after: Annotated[int, typer.Option(help="Entries after this seq (the next page)")] = 0,
               limit: Annotated[int, typer.Option(help="At most this many entries")] = 50,
               as_json: JsonOpt = False) -> None:
    """List audit entries, oldest first: seq, time, who, what, on what. `kyso audit show SEQ` for the details."""
    container = common.container()
    with db.transaction(container.sessions) as session:
        rows = [audit_log.as_dict(row) for row in audit_log.entries(
            session, _filter(since, until, actor, action, subject, after, limit))]
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("no audit entries match")
        return
    from rich.table import Table

    table = Table("seq", "at (UTC)", "actor", "action", "subject", box=None)
    for row in rows:
        table.add_row(str(row["seq"]), row["at"][:19].replace("T", " "), row["actor"], row["action"], row["subject"])
    out.print(table)
    if len(rows) == limit:
        out.print(f"(more may follow: --after {rows[-1]['seq']})")


@app.command("show")
def audit_show(seq: int, as_json: JsonOpt = False) -> None:
    """One audit entry in full: its details and its place in the chain (previous hash, own hash)."""
    container = common.container()
    with db.transaction(container.sessions) as session:
        row = audit_log.entry(session, seq)
        data = audit_log.as_dict(row) if row is not None else None
    if data is None:
        err.print(f"[red]no audit entry {seq}[/] (`kyso audit list` shows them)")
        raise typer.Exit(1)
    if as_json:
        print_json(data)
        return
    for key in ("seq", "at", "actor", "action", "subject"):
        out.print(f"{key:10} {data[key]}")
    out.print("details")
    details = data["details_parsed"] if isinstance(data["details_parsed"], dict) else {"": data["details"]}
    for key, value in details.items():
        out.print(f"  {key}: {value}")
    out.print(f"{'prev_hash':10} {data['prev_hash']}")
    out.print(f"{'hash':10} {data['hash']}")


@app.command("export")
def audit_export(output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write (default: stdout)")
                                   ] = None,
                 since: SinceOpt = None, until: UntilOpt = None, actor: ActorOpt = None, action: ActionOpt = None,
                 subject: SubjectOpt = None) -> None:
    """Export entries as JSON lines (UTF-8), with their chain hashes: `kyso audit verify --file` re-checks them
    offline. Without filters the export is the whole chain, and any edited, deleted or reordered line fails."""
    container = common.container()
    stream = output.open("w", encoding="utf-8") if output is not None else sys.stdout
    count = 0
    try:
        with db.transaction(container.sessions, read_only=True) as session:  # no write lock while it streams
            for line in audit_log.export_lines(session, _filter(since, until, actor, action, subject)):
                stream.write(line)
                count += 1
    finally:
        if output is not None:
            stream.close()
    if output is not None:
        err.print(f"exported {count} audit entries to {output}")


@app.command("verify")
def audit_verify(file: Annotated[Path | None, typer.Option(
                     "--file", help="Verify an export (JSON lines from `kyso audit export`) offline, not the database")
                 ] = None,
                 partial: Annotated[bool, typer.Option(
                     "--partial", help="With --file: the export was filtered, so gaps in seq are expected")] = False,
                 as_json: JsonOpt = False) -> None:
    """Check the audit log's hash chain; exits 1 and names the first broken entry if tampered."""
    if file is not None:
        try:
            with file.open(encoding="utf-8") as lines:
                report = audit_log.verify_export(lines, complete=not partial)
        except OSError as exc:
            err.print(f"[red]cannot read {file}[/]: {exc.strerror}")
            raise typer.Exit(1) from None
        where = f"export {file}"
    else:
        container = common.container()
        with db.transaction(container.sessions) as session:
            report = audit_log.verify(session)
        where = "audit log"
    if as_json:
        print_json(report.__dict__)
    elif report.ok:
        out.print(f"{where} intact: {report.entries} entries" + (f" ({report.problem})" if report.problem else ""))
    else:
        err.print(f"[bold red]{where} broken[/] at entry {report.first_broken_seq}: {report.problem}")
    if not report.ok:
        raise typer.Exit(1)
