"""``kyso key destroy``: ask to destroy a credential's private key (four eyes: `kyso approval approve`).

Each operator runs these commands with their own ``ca-operator`` token (``KYSO_OPERATOR_TOKEN`` or
``--token-file``), recorded as ``token:<name>`` as on the REST API; the one who asked can never approve
their own request.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from . import common
from .common import JsonOpt, TokenFileOpt, lazy, out, print_json

if TYPE_CHECKING:
    from pki import approvals
else:
    approvals = lazy("pki.approvals")

app = typer.Typer(help="Private keys in the keystores.", no_args_is_help=True)


@app.command("destroy")
def destroy(credential: Annotated[str, typer.Argument(help="Credential whose private key is destroyed")],
            reason: Annotated[str, typer.Option(help="Why; shown to the approving operator")],
            token_file: TokenFileOpt = None, as_json: JsonOpt = False) -> None:
    """Ask to destroy a credential's private key. Its certificate must be revoked first. Nothing happens
    until a different operator runs `kyso approval approve ID` within 24 hours. Needs your own ca-operator
    token (KYSO_OPERATOR_TOKEN or --token-file); the approver needs theirs.

    Example: kyso key destroy cred_… --reason "token lost, certificate revoked 2026-11-20"
    """
    container = common.container()
    row = approvals.request(container.pki, "destroy-key", credential, reason,
                            common.operator(container, "key destroy", token_file))
    if as_json:
        print_json(approvals.as_dict(row))
    else:
        out.print(f"requested {row.id}: destroy the key of {credential}. A second operator must run\n"
                  f"  kyso approval approve {row.id}\nbefore {row.expires_at:%Y-%m-%d %H:%M} UTC.")
