"""``kyso key destroy``, ``kyso ca revoke`` and ``kyso approval …``: four eyes on operations that cannot be undone.

Each operator runs these commands under their own login: the operator recorded is the OS user
(``cli:<user>``), and the one who asked can never approve their own request.
"""
from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from core.db import transaction
from pki import approvals

from .cli import JsonOpt, _actor, _container, _print_json, app, ca_app, out

key_app = typer.Typer(help="Private keys in the keystores.", no_args_is_help=True)
approval_app = typer.Typer(help="Requests waiting for a second operator (four eyes).", no_args_is_help=True)
app.add_typer(key_app, name="key")
app.add_typer(approval_app, name="approval")


@key_app.command("destroy")
def destroy(credential: Annotated[str, typer.Argument(help="Credential whose private key is destroyed")],
            reason: Annotated[str, typer.Option(help="Why; shown to the approving operator")],
            as_json: JsonOpt = False) -> None:
    """Ask to destroy a credential's private key. Its certificate must be revoked first. Nothing happens
    until a different operator runs `kyso approval approve ID` within 24 hours.

    Example: kyso key destroy cred_… --reason "token lost, certificate revoked 2026-11-20"
    """
    row = approvals.request(_container().pki, "destroy-key", credential, reason, _actor())
    if as_json:
        _print_json(approvals.as_dict(row))
    else:
        out.print(f"requested {row.id}: destroy the key of {credential}. A second operator must run\n"
                  f"  kyso approval approve {row.id}\nbefore {row.expires_at:%Y-%m-%d %H:%M} UTC.")


@ca_app.command("revoke")
def ca_revoke(name: Annotated[str, typer.Argument(help="Issuing CA to revoke (see kyso ca list)")],
              reason: Annotated[str, typer.Option(help="RFC 5280 reason: cACompromise, affiliationChanged, "
                                                   "superseded or cessationOfOperation (keyCompromise is "
                                                   "recorded as cACompromise)")],
              why: Annotated[Optional[str], typer.Option(help="Why, in words; shown to the approving operator")] = None,
              as_json: JsonOpt = False) -> None:
    """Ask to revoke an issuing CA (it happens when a second operator approves).

    Nothing happens until a different operator runs `kyso approval approve ID` within 24 hours;
    then the CA's serial goes on its parent's CRL and OCSP, and it can no longer issue or renew
    certificates. A root CA cannot be revoked (no CRL can list it): remove it from the relying
    parties' trust stores instead.

    Example: kyso ca revoke kyso-issuing --reason cACompromise --why "HSM backup tape lost 2026-11-20"
    """
    row = approvals.request(_container().pki, "revoke-ca", name, why or f"revoke CA {name} ({reason})", _actor(),
                            params={"revocation_reason": reason})
    if as_json:
        _print_json(approvals.as_dict(row))
    else:
        out.print(f"requested {row.id}: revoke CA {name} ({approvals.as_dict(row)['revocation_reason']}). "
                  f"A second operator must run\n  kyso approval approve {row.id}\n"
                  f"before {row.expires_at:%Y-%m-%d %H:%M} UTC.")


@approval_app.command("list")
def list_(all_: Annotated[bool, typer.Option("--all", help="Also decided ones")] = False, as_json: JsonOpt = False) -> None:
    """Requests waiting for approval (or all of them with --all)."""
    with transaction(_container().sessions) as session:
        rows = [approvals.as_dict(r) for r in approvals.listing(session, pending_only=not all_)]
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "operation", "subject", "reason", "status", "requested by", "expires")
    for r in rows:
        table.add_row(r["id"], r["operation"], r["subject"], r["reason"], r["status"], r["requested_by"],
                      r["expires_at"][:16])
    out.print(table)


@approval_app.command("approve")
def approve(approval_id: str, as_json: JsonOpt = False) -> None:
    """Approve a request and run it now (refused for the operator who asked)."""
    result = approvals.approve(_container().pki, approval_id, _actor())
    if as_json:
        _print_json(result)
    else:
        out.print(f"approved {approval_id}: {result}")


@approval_app.command("reject")
def reject(approval_id: str, reason: Annotated[str, typer.Option(help="Why")]) -> None:
    """Reject a pending request; nothing is done."""
    approvals.reject(_container().pki, approval_id, _actor(), reason)
    out.print(f"rejected {approval_id}")
