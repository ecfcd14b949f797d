"""``kyso ca …``: create the CA hierarchy, import a subordinate's certificate, list, revoke (four eyes)."""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from hsm import KeyType

from . import common
from .common import JsonOpt, TokenFileOpt, actor, err, lazy, out, print_json

if TYPE_CHECKING:
    from core import db
    from pki import approvals, authorities, store
else:
    db = lazy("core.db")
    approvals = lazy("pki.approvals")
    authorities = lazy("pki.authorities")
    store = lazy("pki.store")

app = typer.Typer(help="Certificate authorities: create the hierarchy, import a subordinate's certificate, "
                       "revoke (four eyes).", no_args_is_help=True)


@app.command("init")
def ca_init(
    root_name: Annotated[str, typer.Option(help="Short name of the root CA (used in URLs)")] = "kyso-root",
    root_cn: Annotated[str, typer.Option(help="Common name of the root CA")] = "kyso Root CA",
    issuing_name: Annotated[str, typer.Option(help="Short name of the issuing CA")] = "kyso-issuing",
    issuing_cn: Annotated[str, typer.Option(help="Common name of the issuing CA")] = "kyso Issuing CA - Specialists",
    organization: Annotated[str, typer.Option("--org",
                                              help="O of both CAs, e.g. Sở Khoa học và Công nghệ Hà Nội")] = "kyso",
    root_key_type: Annotated[KeyType | None,
                             typer.Option(help="Root key type (default from the root-ca profile)")] = None,
    key_type: Annotated[KeyType | None, typer.Option(help="Issuing CA key type (default from its profile)")] = None,
    root_validity_days: int | None = None,
    validity_days: Annotated[int | None, typer.Option(help="Issuing CA validity in days")] = None,
    keystore: Annotated[str | None, typer.Option(help="Keystore for the new CA keys (default: configured)")] = None,
    subordinate: Annotated[bool, typer.Option(
        "--subordinate", help="Only make the issuing CA's key and a CSR for an external root")] = False,
    config: Annotated[Path | None, typer.Option(
        help="TOML file with [root] and [issuing] tables of the same fields")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a root CA and an issuing CA (idempotent; never overwrites an existing CA).

    With --subordinate, kyso creates the issuing CA's key in the keystore and prints a CSR for an
    external root (e.g. the government's specialized CA); install the answer with `kyso ca import`.
    """
    root = authorities.CaSpec(name=root_name, common_name=root_cn, organization=organization,
                              key_type=root_key_type, validity_days=root_validity_days)
    issuing = authorities.CaSpec(name=issuing_name, common_name=issuing_cn, organization=organization,
                                 key_type=key_type, validity_days=validity_days)
    if config is not None:
        data = tomllib.loads(config.read_text("utf-8"))
        root = authorities.CaSpec(**{**root.__dict__, **_spec_fields(data.get("root", {}))})
        issuing = authorities.CaSpec(**{**issuing.__dict__, **_spec_fields(data.get("issuing", {}))})
    result = authorities.init_hierarchy(common.container().pki, root=None if subordinate else root, issuing=issuing,
                                        actor=actor(), keystore=keystore, subordinate=subordinate)
    if as_json:
        print_json(result.__dict__)
        return
    for name in result.created:
        out.print(f"created CA [bold]{name}[/]")
    for name in result.existing:
        out.print(f"CA [bold]{name}[/] already exists; nothing changed")
    if result.log_key:
        out.print(f"transparency log key (publish it; docs/transparency.md): {result.log_key}", highlight=False)
    if result.log_problem:
        err.print(f"[yellow]transparency log not created[/]: {result.log_problem}")
    if result.csr_pem:
        out.print("Send this CSR to the external root CA, then run `kyso ca import "
                  f"{issuing.name} CERT.pem` with the returned certificate and its chain:")
        sys.stdout.write(result.csr_pem)


def _spec_fields(data: dict[str, Any]) -> dict[str, Any]:
    allowed = set(authorities.CaSpec.__dataclass_fields__)
    unknown = set(data) - allowed
    if unknown:
        raise typer.BadParameter(f"unknown CA fields in config: {sorted(unknown)}; allowed: {sorted(allowed)}")
    if "key_type" in data:
        data = {**data, "key_type": KeyType(data["key_type"])}
    return data


@app.command("import")
def ca_import(name: str,
              certificate: Annotated[Path, typer.Argument(help="PEM with the CA certificate and its chain")]) -> None:
    """Install the certificate an external root issued for a pending subordinate CA."""
    ca = authorities.import_certificate(common.container().pki, name, certificate.read_bytes(), actor())
    out.print(f"CA [bold]{ca.name}[/] is active: {ca.subject}")


@app.command("list")
def ca_list(as_json: JsonOpt = False) -> None:
    """List the CAs and where their certificate, CRL and OCSP are published."""
    container = common.container()
    with db.transaction(container.sessions) as session:
        rows = [{"name": c.name, "role": c.role, "mode": c.mode, "status": c.status, "subject": c.subject,
                 "key_ref": c.key_ref} for c in store.list_cas(session)]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "role", "mode", "status", "subject")
    for r in rows:
        table.add_row(r["name"], r["role"], r["mode"], r["status"], r["subject"])
    out.print(table)


@app.command("revoke")
def ca_revoke(name: Annotated[str, typer.Argument(help="Issuing CA to revoke (see kyso ca list)")],
              reason: Annotated[str, typer.Option(help="RFC 5280 reason: cACompromise, affiliationChanged, "
                                                   "superseded or cessationOfOperation (keyCompromise is "
                                                   "recorded as cACompromise)")],
              why: Annotated[str | None, typer.Option(help="Why, in words; shown to the approving operator")] = None,
              token_file: TokenFileOpt = None, as_json: JsonOpt = False) -> None:
    """Ask to revoke an issuing CA (it happens when a second operator approves).

    Needs your own ca-operator token (KYSO_OPERATOR_TOKEN or --token-file); the approver needs theirs.

    Nothing happens until a different operator runs `kyso approval approve ID` within 24 hours;
    then the CA's serial goes on its parent's CRL and OCSP, and it can no longer issue or renew
    certificates. A root CA cannot be revoked (no CRL can list it): remove it from the relying
    parties' trust stores instead.

    Example: kyso ca revoke kyso-issuing --reason cACompromise --why "HSM backup tape lost 2026-11-20"
    """
    container = common.container()
    row = approvals.request(container.pki, "revoke-ca", name, why or f"revoke CA {name} ({reason})",
                            common.operator(container, "ca revoke", token_file), params={"revocation_reason": reason})
    if as_json:
        print_json(approvals.as_dict(row))
    else:
        out.print(f"requested {row.id}: revoke CA {name} ({approvals.as_dict(row)['revocation_reason']}). "
                  f"A second operator must run\n  kyso approval approve {row.id}\n"
                  f"before {row.expires_at:%Y-%m-%d %H:%M} UTC.")
