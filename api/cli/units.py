"""``kyso units …``: the catalogue of administrative units."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core import clock

from . import common
from .common import JsonOpt, actor, lazy, out, print_json

if TYPE_CHECKING:
    from core import db
    from policies import units
else:
    db = lazy("core.db")
    units = lazy("policies.units")

app = typer.Typer(help="The catalogue of administrative units (provinces, communes, wards).", no_args_is_help=True)


@app.command("import")
def units_import(file: Path,
                 effective: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"],
                                                                help="Date the catalogue takes effect")],
                 version: Annotated[str | None, typer.Option(help="Label (default: hash of the file)")] = None,
                 as_json: JsonOpt = False) -> None:
    """Load a newer catalogue: changed units get a new version from the effective date."""
    container = common.container()
    with db.transaction(container.sessions) as session:
        report = units.import_catalogue(session, file.read_bytes(), effective.date(), version, actor=actor())
    data = report.as_dict()
    if as_json:
        print_json(data)
    else:
        out.print(f"catalogue {data['version']} from {data['effective']}: {data['added']} added, "
                  f"{data['changed']} changed, {data['closed']} closed, {data['unchanged']} unchanged")


@app.command("show")
def units_show(code: str, on: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
               as_json: JsonOpt = False) -> None:
    """Show the unit that had CODE on a date (default today)."""
    container = common.container()
    with db.transaction(container.sessions) as session:
        view = units.view(session, code, (on or clock.now()).date())
    if as_json:
        print_json(view.__dict__)
    else:
        out.print(f"{view.code}  {view.full_name} ({view.name_en}), {view.province_name or ''}  "
                  f"valid {view.valid_from} – {view.valid_to or 'now'}")


@app.command("contacts")
def units_contacts(file: Path, as_json: JsonOpt = False) -> None:
    """Load the address and phone of units' People's Committees (shown on the citizen page).

    FILE is a JSON list of {"code", "address", "phone", "source"}; "source" says where the data was
    taken from (e.g. the province portal). Units not in the file keep what they had; a unit with no
    phone makes the citizen page say where to ask instead.
    """
    container = common.container()
    with db.transaction(container.sessions) as session:
        result = units.import_contacts(session, file.read_bytes(), clock.now().date(), actor=actor())
    if as_json:
        print_json(result)
    else:
        out.print(f"contacts: {result['changed']} changed, {result['unchanged']} unchanged")
