"""``kyso token …``: API bearer tokens (stored only as hashes), their scopes, and client certificates for mTLS."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from core import clock

from .. import roles
from . import common
from .common import JsonOpt, actor, err, lazy, out, print_json

if TYPE_CHECKING:
    from core import db

    from .. import mtls, tokens
else:
    db = lazy("core.db")
    mtls = lazy("api.mtls")
    tokens = lazy("api.tokens")

app = typer.Typer(help="API bearer tokens (stored only as hashes) and client certificates for mTLS.",
                  no_args_is_help=True)


CommuneOpt = Annotated[list[str] | None, typer.Option(
    "--commune", help="Client scope: a 5-digit commune/ward code, a 2-digit province code (every commune of it) or "
                      "'*' (every commune, the default). Repeat for several.")]
OperationOpt = Annotated[list[roles.Operation] | None, typer.Option(
    "--operation", help="Client scope: what it may do. Repeat for several. Default: all four.")]
DocTypeOpt = Annotated[list[str] | None, typer.Option(
    "--doc-type", help="Client scope: a document type it may sign and see, e.g. dossier-result (the names in "
                       "policies/documents/document-types.yaml, GET /api/v1/document-types). Repeat for several. "
                       "Default: every type.")]
ExpiresOpt = Annotated[int | None, typer.Option(
    "--expires-in-days", min=1, help="The token stops working after N days (default: never).")]


def _expiry(days: int | None) -> dt.datetime | None:
    return clock.now() + dt.timedelta(days=days) if days is not None else None


@app.command("create")
def token_create(name: Annotated[str, typer.Option(help="Who or what uses it, e.g. hotich-phuong-ba-dinh")],
                 role: Annotated[roles.Role,
                                 typer.Option(help="ca-operator, policy-admin, auditor, read-only or client")],
                 commune: CommuneOpt = None, operation: OperationOpt = None, doc_type: DocTypeOpt = None,
                 expires_in_days: ExpiresOpt = None) -> None:
    """Create a token and print it alone on stdout (it is shown only this once).

    A client token (civil-registration or dossier software) can be narrowed to communes, operations
    and document types; operator and auditor tokens are never scoped. For example, software of the
    Ba Đình ward that signs dossier results and reads them back, for one year:

        kyso token create --name hotich-ba-dinh --role client --commune 00004 \\
            --operation sign --operation read --doc-type dossier-result --expires-in-days 365

    A province code covers every commune of the province: --commune 01 is all of Hà Nội.
    """
    container = common.container()
    with db.transaction(container.sessions) as session:
        scope = tokens.build_scope(session, units=commune, operations=operation, document_types=doc_type)
        value = tokens.create(session, name, role, actor(), scope=scope, expires_at=_expiry(expires_in_days))
    if role is roles.Role.client and scope.units is None:
        err.print("[yellow]note[/]: this client token may act for every commune; narrow it with --commune")
    sys.stdout.write(value + "\n")


@app.command("rotate")
def token_rotate(name: str,
                 grace_hours: Annotated[float, typer.Option(
                     min=0, help="Hours the current secret keeps working, so the software can switch "
                                 "(0: stops at once)")] = 24,
                 expires_in_days: Annotated[int | None, typer.Option(
                     "--expires-in-days", min=1,
                     help="New expiry, N days from now (default: keep the current one)")] = None,
                 ) -> None:
    """Issue a new secret for the same token (name, role and scope) and print it alone on stdout.

    The old secret keeps working for --grace-hours (default 24), then stops; rotating again ends the
    grace of the previous secret at once.
    """
    container = common.container()
    with db.transaction(container.sessions) as session:
        value = tokens.rotate(session, name, actor(), grace=dt.timedelta(hours=grace_hours),
                              expires_at=_expiry(expires_in_days))
    err.print(f"token {name} rotated; the old secret works "
              + (f"until {clock.now() + dt.timedelta(hours=grace_hours):%Y-%m-%d %H:%M} UTC"
                 if grace_hours else "no more"))
    sys.stdout.write(value + "\n")


@app.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke a token by name; it (and a previous secret still in its grace period) stops working at once."""
    container = common.container()
    with db.transaction(container.sessions) as session:
        tokens.revoke(session, name, actor())
    out.print(f"token {name} revoked")


@app.command("list")
def token_list(as_json: JsonOpt = False) -> None:
    """List tokens: role, scope, created, expires, last used, revoked, rotation (never the token values)."""
    container = common.container()
    with db.transaction(container.sessions) as session:
        rows: list[dict[str, Any]] = [v.as_dict() for v in tokens.views(session)]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "role", "state", "communes", "operations", "doc types", "created", "expires", "last used",
                  "old secret until")
    for r in rows:
        scope = r["scope"]
        table.add_row(r["name"], r["role"], r["state"], " ".join(scope["communes"]), " ".join(scope["operations"]),
                      " ".join(scope["document_types"]), r["created_at"][:10], (r["expires_at"] or "never")[:10],
                      (r["last_used_at"] or "")[:19], (r["previous_secret_valid_until"] or "")[:16])
    out.print(table)


@app.command("cert")
def token_cert(name: Annotated[str, typer.Argument(help="The client token the certificate stands for")],
               csr: Annotated[Path, typer.Option("--csr", help="PKCS#10 request (PEM or DER) made by the client: "
                                                 "its key never leaves the client; only the public key is used")],
               out_file: Annotated[Path | None, typer.Option("--out", help="Write the certificate (PEM) here "
                                                                "instead of stdout")] = None,
               validity_days: Annotated[int | None, typer.Option(min=1, help="Default: the api-client "
                                                                    "profile's (365)")] = None,
               ca: Annotated[str | None, typer.Option(help="Issuing CA (default: the only active one)")] = None,
               as_json: JsonOpt = False) -> None:
    """Issue a TLS client certificate (profile api-client) for a client token, for mTLS instead of its secret.

    The client makes the key and the CSR, e.g.

        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=x \\
            -keyout client.key -out client.csr

    The certificate's subject is CN=NAME, O=kyso (the CSR's subject is ignored). A request with it,
    through a proxy in KYSO_TRUSTED_PROXIES, acts with the token's role and scope. `kyso cert revoke
    SERIAL` or `kyso token revoke NAME` ends its use.
    """
    issued = mtls.issue_certificate(common.container().pki, name, csr.read_bytes(), actor(), ca=ca,
                                    validity_days=validity_days)
    if out_file:
        out_file.write_text(issued.pem)
    if as_json:
        print_json(issued.as_dict())
    elif out_file:
        out.print(f"issued [bold]{issued.serial}[/] for token {name}, valid until {issued.not_after:%Y-%m-%d}; "
                  f"written to {out_file}")
    else:
        err.print(f"issued {issued.serial} for token {name}, valid until {issued.not_after:%Y-%m-%d}")
        sys.stdout.write(issued.pem)
