"""``kyso crl publish``: publish certificate revocation lists now."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from . import common
from .common import actor, lazy, out

if TYPE_CHECKING:
    from pki import crl
else:
    crl = lazy("pki.crl")

app = typer.Typer(help="Certificate revocation lists.", no_args_is_help=True)


@app.command("publish")
def crl_publish(ca: Annotated[str | None, typer.Argument(help="CA name (default: all due)")] = None) -> None:
    """Publish a new full and delta CRL for a CA now, or for every CA whose CRL is due."""
    from ..scheduler import republish_once

    container = common.container()
    if ca is None:
        out.print(republish_once(container))
        return
    full, delta = crl.publish_now(container.pki, ca, actor())
    out.print(f"published CRL #{full.number} ({full.entries} entries) and delta #{delta.number}")
