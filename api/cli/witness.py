"""``kyso witness``: kyso as a transparency-log witness for other logs (C2SP tlog-witness)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from . import common
from .common import JsonOpt, lazy, out, print_json

if TYPE_CHECKING:
    from pki.transparency import cosignature, witness
else:
    witness = lazy("pki.transparency.witness")
    cosignature = lazy("pki.transparency.cosignature")

app = typer.Typer(help="Witness other transparency logs: cosign their checkpoints, refuse forks.",
                  no_args_is_help=True)


@app.command("key")
def key(as_json: JsonOpt = False) -> None:
    """Show this witness's verifier key (made in the default keystore on first use). Give it to the log's
    operator: they add '<this server>/witness <key>' to KYSO_LOG_WITNESSES, clients to their policy.

    Example: kyso witness key
    """
    container = common.container()
    row = witness.ensure_key(container.sessions, container.pki.keystores, witness.default_name(container.settings),
                             actor=common.actor())
    vkey = cosignature.cosigner_vkey(row.name, row.public_key)
    if as_json:
        print_json({"name": row.name, "vkey": vkey, "key_ref": row.key_ref,
                    "submission_prefix": container.settings.base_url + "/witness"})
    else:
        out.print(vkey)


@app.command("add-log")
def add_log(vkey: Annotated[str, typer.Argument(help="The log's verifier key, name+hash+base64 (type 0x01)")],
            origin: Annotated[str | None, typer.Option(help="The log's origin line; default: the key's name")] = None,
            as_json: JsonOpt = False) -> None:
    """Start witnessing a log. Its checkpoints are cosigned from then on, and any checkpoint that is not an
    append-only extension of the last one cosigned is refused and kept in the audit log (a split view).

    Example: kyso witness add-log "kyso.hanoi.example/log+3c1f9a2e+AQ…"
    """
    container = common.container()
    row = witness.add_log(container.sessions, vkey, origin=origin, actor=common.actor())
    if as_json:
        print_json({"origin": row.origin, "vkey": row.vkey, "size": row.size})
    else:
        out.print(f"witnessing {row.origin}")


@app.command("list")
def list_logs(as_json: JsonOpt = False) -> None:
    """The logs this kyso witnesses, with the latest size it cosigned for each."""
    container = common.container()
    from core.db import transaction

    with transaction(container.sessions, read_only=True) as session:
        rows = [{"origin": r.origin, "vkey": r.vkey, "size": r.size, "root_hash": r.root_hash.hex(),
                 "updated_at": r.updated_at.isoformat()} for r in witness.logs(session)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("no logs witnessed yet: kyso witness add-log VKEY")
    for r in rows:
        out.print(f"{r['origin']}  size {r['size']}  (updated {r['updated_at']})\n  {r['vkey']}")
