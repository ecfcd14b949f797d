"""The ``kyso`` command line for operators. Every command has --help; most have --json."""
from __future__ import annotations

import sys

import typer

from core.errors import KysoError

from . import (
    activation,
    approval,
    audit,
    ca,
    cert,
    crl,
    doc,
    key,
    log,
    merge,
    ocsp,
    policy,
    serve,
    sign,
    token,
    units,
    verify,
    witness,
)
from .common import err

# the root only composes: each group lives in its own module, the helpers they share in common.py
WHO = ("Who is recorded: four-eyes commands (key destroy, ca revoke, approval approve/reject) need your own "
       "ca-operator token (KYSO_OPERATOR_TOKEN or --token-file) and record token:NAME, as the API does; the other "
       "commands record your login, cli:USER.")
app = typer.Typer(help=__doc__ + "\n\nStart with `kyso demo` (a demo PKI and a server), or `kyso ca init`.\n\n" + WHO,
                  no_args_is_help=True, pretty_exceptions_enable=False)
for commands in (serve, merge, sign, verify):  # top-level commands (kyso serve, demo, db-upgrade, merge, sign, verify)
    app.add_typer(commands.app)
for name, group in (("ca", ca), ("cert", cert), ("token", token), ("units", units), ("audit", audit), ("crl", crl),
                    ("ocsp", ocsp), ("activation", activation), ("key", key), ("approval", approval),
                    ("policy", policy), ("doc", doc), ("log", log), ("witness", witness)):
    app.add_typer(group.app, name=name)


def main() -> None:
    """Commands let domain errors rise; they are printed here once, in words, with exit status 2."""
    try:
        app()
    except KysoError as exc:
        err.print(f"[bold red]error[/] ({exc.code}): {exc.message}")
        sys.exit(2)
