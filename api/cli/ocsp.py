"""``kyso ocsp export DIR``: the pre-produced OCSP responses as static files for any web server or CDN."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from . import common
from .common import lazy, out

if TYPE_CHECKING:
    from core import db
    from pki import ocsp
else:
    db = lazy("core.db")
    ocsp = lazy("pki.ocsp")

app = typer.Typer(help="OCSP responses.", no_args_is_help=True)


@app.command("export")
def ocsp_export(directory: Annotated[Path, typer.Argument(help="Folder a web server serves as /ocsp/")]) -> None:
    """Write each valid pre-produced response as DIRECTORY/<Base64 of the GET request> (RFC 5019), so a web
    server or CDN answers `GET /ocsp/...` from files (nginx: `location /ocsp/ { alias DIRECTORY/;
    default_type application/ocsp-response; }`). Run it after each republication."""
    container = common.container()
    with db.transaction(container.sessions, read_only=True) as session:
        count = ocsp.export(container.pki, session, directory)
    out.print(f"wrote {count} OCSP responses under {directory}")
