"""The ``kyso`` command line for operators. Every command has --help; most have --json."""
from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from core import audit as audit_log
from core import clock
from core.db import transaction
from core.errors import KysoError
from core.settings import load_settings
from hsm import KeyType
from pki import authorities, crl, issuance, merger, registration, revocation, store
from pki.authorities import CaSpec
from pki.names import SubjectInfo
from pki.reasons import Ground, Reason, resolve_reason
from policies import units

from . import mtls, tokens
from .container import Container, build

app = typer.Typer(help=__doc__ + "\n\nStart with `kyso demo` (a demo PKI and a server), or `kyso ca init`.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
ca_app = typer.Typer(help="Certificate authorities: create the hierarchy, import a subordinate's certificate, revoke (four eyes).", no_args_is_help=True)
cert_app = typer.Typer(help="Certificates: issue, list, show, export, renew, revoke, release; RA mode: request, import, check.", no_args_is_help=True)
token_app = typer.Typer(help="API bearer tokens (stored only as hashes) and client certificates for mTLS.", no_args_is_help=True)
units_app = typer.Typer(help="The catalogue of administrative units (provinces, communes, wards).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
crl_app = typer.Typer(help="Certificate revocation lists.", no_args_is_help=True)
for sub, name in ((ca_app, "ca"), (cert_app, "cert"), (token_app, "token"), (units_app, "units"),
                  (audit_app, "audit"), (crl_app, "crl")):
    app.add_typer(sub, name=name)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001
        return "cli:unknown"


def _container() -> Container:
    return build(load_settings())


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _cert_dict(row: Any) -> dict[str, Any]:
    return {"serial": row.serial, "ca": row.ca.name, "profile": row.profile, "subject": row.subject,
            "commune_code": row.commune_code, "status": row.status, "not_before": row.not_before.isoformat(),
            "not_after": row.not_after.isoformat(), "revocation_reason": row.revocation_reason,
            "key_ref": row.key_ref, "sha256": row.sha256}


# -- server -------------------------------------------------------------------------------
def _warn_connection_budget(settings, workers: int) -> None:  # type: ignore[no-untyped-def]
    """Warn when the workers could open more PostgreSQL connections than the server allows: at a peak the
    extra requests would wait for a connection and then answer 503."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        return
    from sqlalchemy import text

    from core.db import make_engine

    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            allowed = int(conn.execute(text("SHOW max_connections")).scalar_one())
    except Exception:  # noqa: BLE001 - only a warning; serving reports the database itself
        return
    finally:
        engine.dispose()
    wanted = workers * (settings.database_pool_size + settings.database_max_overflow)
    if wanted > allowed:
        typer.secho(f"warning: {workers} workers × ({settings.database_pool_size} + {settings.database_max_overflow}) "
                    f"database connections = {wanted}, more than PostgreSQL's max_connections ({allowed}); lower "
                    "KYSO_DATABASE_POOL_SIZE / KYSO_DATABASE_MAX_OVERFLOW or raise max_connections "
                    "(or put PgBouncer in front)", fg="yellow", err=True)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          workers: Annotated[int, typer.Option(help="Worker processes (share the database and keystore)")] = 1,
          access_log: Annotated[Optional[bool], typer.Option(
              help="Log every request (default KYSO_ACCESS_LOG, on; off gains ~20% on busy OCSP nodes)")] = None,
          log_format: Annotated[Optional[str], typer.Option(
              help="json (one object per line) or text; default KYSO_LOG_FORMAT, json")] = None) -> None:
    """Serve the REST API, OCSP, CRLs and CA certificates over HTTP (metrics at /metrics)."""
    import shutil
    import tempfile

    import uvicorn

    from core import metrics

    from .container import prepare_database
    from .observability import log_config

    settings = load_settings()
    fmt = log_format or settings.log_format
    if fmt not in ("json", "text"):
        raise typer.BadParameter(f"--log-format is json or text, not {fmt!r}")
    if settings.migrate_on_start:  # once, here: workers starting together must not race on migrations
        prepare_database(settings)
    _warn_connection_budget(settings, workers)
    os.environ["KYSO_MIGRATE_ON_START"] = "false"
    if access_log is not None:  # the workers read it from their settings
        os.environ["KYSO_ACCESS_LOG"] = "true" if access_log else "false"
    metrics_dir = None
    if workers > 1 and not metrics.multiprocess_dir():
        # each worker writes its counters here and /metrics adds them up; fresh, so a restart starts at zero
        metrics_dir = tempfile.mkdtemp(prefix="kyso-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        # proxy_headers off: kyso reads X-Forwarded-For itself, only from KYSO_TRUSTED_PROXIES; uvicorn's own
        # rewriting would replace a same-host proxy's address with the citizen's, and mTLS would refuse the proxy
        uvicorn.run("api.asgi:app", host=host, port=port, workers=workers, log_level="info", proxy_headers=False,
                    access_log=False, log_config=log_config(fmt),  # RequestContext writes the access log
                    timeout_worker_healthcheck=30)  # a worker busy signing a batch is not dead
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@app.command()
def demo(host: str = "127.0.0.1", port: int = 8000,
         no_serve: Annotated[bool, typer.Option("--no-serve", help="Set up and print, but do not start the server")] = False) -> None:
    """Set up an embedded demo PKI (idempotent), print where everything is, then serve."""
    container = _container()
    result = authorities.init_hierarchy(container.pki, root=_DEFAULT_ROOT, issuing=_DEFAULT_ISSUING, actor=_actor())
    token_file = container.settings.home / "demo-operator.token"
    token = token_file.read_text().strip() if token_file.exists() else None
    with transaction(container.sessions) as session:
        if token is not None:
            try:
                tokens.authenticate(session, token)
            except KysoError:
                token = None
        if token is None:
            name = f"demo-operator-{clock.now():%Y%m%d%H%M%S}"
            token = tokens.create(session, name, tokens.Role.ca_operator, _actor())
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    base = f"http://{host}:{port}"
    from .cli_signing import prepare_signing_demo

    demo_signing = prepare_signing_demo(container, _actor())
    os.environ.setdefault("KYSO_REPORT_SEAL_CREDENTIAL", demo_signing["report_seal"])  # the server below reads it
    created = ", ".join(result.created) or "none (already set up: " + ", ".join(result.existing) + ")"
    out.print(f"""
[bold green]kyso is ready[/]
  data folder     {container.settings.home.resolve()}
  database        {container.settings.resolved_database_url}
  CAs created     {created}
  URL             {base}
  OpenAPI docs    {base}/docs
  demo token      {token}   (also in {token_file})

[bold]Try next[/] (in another terminal):
  export TOKEN=$(cat {token_file})
  curl -H "Authorization: Bearer $TOKEN" {base}/api/v1/cas
  .venv/bin/kyso cert issue --cn "Nguyễn Thị Hoa" --title "Công chức Tư pháp - Hộ tịch" --commune 00004 --id-number 001190000001
  .venv/bin/kyso cert list
  .venv/bin/kyso cert revoke SERIAL --ground officer_moved
  openssl crl -inform DER -noout -text -in <(curl -s {base}/crl/kyso-issuing.crl)
  .venv/bin/kyso audit verify

[bold]Sign a PDF[/] (specialist credential {demo_signing["specialist"]}, seal credential {demo_signing["seal"]}):
  A specialist's key signs only what the specialist approves. Submit the sample for approval:
  curl -s -H "Authorization: Bearer $(cat {demo_signing["token_file"]})" \\
    -F files=@{demo_signing["sample"]} \\
    -F 'metadata={{"defaults":{{"document_type":"dossier-result","commune_code":"00004","credential_id":"{demo_signing["specialist"]}","dossier_number":"HS-1"}}}}' \\
    {base}/api/v1/sign/requests
  then open {base}/me as the specialist: credential {demo_signing["specialist"]}, PIN {demo_signing["pin"]} (demo);
  scan the QR code with an authenticator app, type its code, and approve with the PIN and the next code.
  The software polls GET /api/v1/sign/requests/ID; or sign in process as the operator:
  .venv/bin/kyso sign {demo_signing["sample"]} -o signed.pdf -c {demo_signing["specialist"]} --commune 00004 --level B-LT
  already signed example: {container.settings.home.resolve() / "sample-signed.pdf"}
  its verification URL:   {container.settings.base_url}/v/{demo_signing["example"]}

[bold]Verify a PDF[/] (no token needed; the citizen page is the X-Verify-Url):
  curl -s -F file=@signed.pdf {base}/api/v1/verify
  curl -s -F file=@signed.pdf -H 'Accept: application/pdf' -o report.pdf {base}/api/v1/verify   (sealed report)
  .venv/bin/kyso verify signed.pdf
""")
    if not no_serve:
        # a person watches the demo: plain text logs unless KYSO_LOG_FORMAT says otherwise
        serve(host=host, port=port, workers=1, log_format=os.environ.get("KYSO_LOG_FORMAT", "text"))


@app.command("db-upgrade")
def db_upgrade() -> None:
    """Apply database migrations (Alembic) up to the latest schema."""
    from .container import prepare_database

    prepare_database(load_settings())
    out.print("database schema is up to date, catalogue seeded")


# -- CAs ------------------------------------------------------------------------------------
_DEFAULT_ROOT = CaSpec(name="kyso-root", common_name="kyso Root CA", organization="kyso")
_DEFAULT_ISSUING = CaSpec(name="kyso-issuing", common_name="kyso Issuing CA - Specialists", organization="kyso")


@ca_app.command("init")
def ca_init(
    root_name: Annotated[str, typer.Option(help="Short name of the root CA (used in URLs)")] = "kyso-root",
    root_cn: Annotated[str, typer.Option(help="Common name of the root CA")] = "kyso Root CA",
    issuing_name: Annotated[str, typer.Option(help="Short name of the issuing CA")] = "kyso-issuing",
    issuing_cn: Annotated[str, typer.Option(help="Common name of the issuing CA")] = "kyso Issuing CA - Specialists",
    organization: Annotated[str, typer.Option("--org", help="O of both CAs, e.g. Sở Khoa học và Công nghệ Hà Nội")] = "kyso",
    root_key_type: Annotated[Optional[KeyType], typer.Option(help="Root key type (default from the root-ca profile)")] = None,
    key_type: Annotated[Optional[KeyType], typer.Option(help="Issuing CA key type (default from its profile)")] = None,
    root_validity_days: Optional[int] = None,
    validity_days: Annotated[Optional[int], typer.Option(help="Issuing CA validity in days")] = None,
    keystore: Annotated[Optional[str], typer.Option(help="Keystore for the new CA keys (default: configured)")] = None,
    subordinate: Annotated[bool, typer.Option("--subordinate", help="Only make the issuing CA's key and a CSR for an external root")] = False,
    config: Annotated[Optional[Path], typer.Option(help="TOML file with [root] and [issuing] tables of the same fields")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a root CA and an issuing CA (idempotent; never overwrites an existing CA).

    With --subordinate, kyso creates the issuing CA's key in the keystore and prints a CSR for an
    external root (e.g. the government's specialized CA); install the answer with `kyso ca import`.
    """
    root = CaSpec(name=root_name, common_name=root_cn, organization=organization, key_type=root_key_type,
                  validity_days=root_validity_days)
    issuing = CaSpec(name=issuing_name, common_name=issuing_cn, organization=organization, key_type=key_type,
                     validity_days=validity_days)
    if config is not None:
        data = tomllib.loads(config.read_text("utf-8"))
        root = CaSpec(**{**root.__dict__, **_spec_fields(data.get("root", {}))})
        issuing = CaSpec(**{**issuing.__dict__, **_spec_fields(data.get("issuing", {}))})
    result = authorities.init_hierarchy(_container().pki, root=None if subordinate else root, issuing=issuing,
                                        actor=_actor(), keystore=keystore, subordinate=subordinate)
    if as_json:
        _print_json(result.__dict__)
        return
    for name in result.created:
        out.print(f"created CA [bold]{name}[/]")
    for name in result.existing:
        out.print(f"CA [bold]{name}[/] already exists; nothing changed")
    if result.csr_pem:
        out.print("Send this CSR to the external root CA, then run `kyso ca import "
                  f"{issuing.name} CERT.pem` with the returned certificate and its chain:")
        sys.stdout.write(result.csr_pem)


def _spec_fields(data: dict[str, Any]) -> dict[str, Any]:
    allowed = set(CaSpec.__dataclass_fields__)
    unknown = set(data) - allowed
    if unknown:
        raise typer.BadParameter(f"unknown CA fields in config: {sorted(unknown)}; allowed: {sorted(allowed)}")
    if "key_type" in data:
        data = {**data, "key_type": KeyType(data["key_type"])}
    return data


@ca_app.command("import")
def ca_import(name: str, certificate: Annotated[Path, typer.Argument(help="PEM with the CA certificate and its chain")]) -> None:
    """Install the certificate an external root issued for a pending subordinate CA."""
    ca = authorities.import_certificate(_container().pki, name, certificate.read_bytes(), _actor())
    out.print(f"CA [bold]{ca.name}[/] is active: {ca.subject}")


@ca_app.command("list")
def ca_list(as_json: JsonOpt = False) -> None:
    """List the CAs and where their certificate, CRL and OCSP are published."""
    container = _container()
    with transaction(container.sessions) as session:
        rows = [{"name": c.name, "role": c.role, "mode": c.mode, "status": c.status, "subject": c.subject,
                 "key_ref": c.key_ref} for c in store.list_cas(session)]
    if as_json:
        _print_json(rows)
        return
    table = Table("name", "role", "mode", "status", "subject")
    for r in rows:
        table.add_row(r["name"], r["role"], r["mode"], r["status"], r["subject"])
    out.print(table)


# -- certificates ---------------------------------------------------------------------------
@cert_app.command("issue")
def cert_issue(
    cn: Annotated[str, typer.Option("--cn", help="Full name, e.g. 'Nguyễn Thị Hoa'")],
    profile: Annotated[str, typer.Option(help="specialist, seal, tsa, ...")] = "specialist",
    commune: Annotated[Optional[str], typer.Option(help="5-digit commune/ward code; fills L, ST and O")] = None,
    title: Optional[str] = None,
    org: Annotated[Optional[str], typer.Option(help="O (default: Ủy ban nhân dân <commune>)")] = None,
    ou: Optional[str] = None,
    id_number: Annotated[Optional[str], typer.Option(help="12-digit CCCD or 9-digit CMND")] = None,
    email: Optional[str] = None,
    csr: Annotated[Optional[Path], typer.Option(help="PKCS#10 file; without it the key is generated in the keystore")] = None,
    key_type: Optional[KeyType] = None,
    keystore: Optional[str] = None,
    validity_days: Optional[int] = None,
    ca: Optional[str] = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Also write the certificate (PEM) here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a certificate from a CSR, or with a key generated inside the keystore."""
    try:
        subject = SubjectInfo(common_name=cn, title=title, organization=org, organizational_unit=ou,
                              id_number=id_number, email=email)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    result = issuance.issue(_container().pki, issuance.IssueRequest(
        profile=profile, subject=subject, commune_code=commune, csr=csr.read_bytes() if csr else None,
        key_type=key_type, keystore=keystore, validity_days=validity_days, ca=ca), _actor())
    row = result.certificate
    if out_file:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        out_file.write_bytes(x509.load_der_x509_certificate(row.der).public_bytes(Encoding.PEM))
    if as_json:
        _print_json({"serial": row.serial, "subject": row.subject, "not_after": row.not_after.isoformat(),
                     "credential_id": result.credential_id, "key_ref": result.key_ref})
        return
    out.print(f"issued [bold]{row.serial}[/]\n  subject     {row.subject}\n  valid until {row.not_after:%Y-%m-%d}")
    if result.credential_id:
        out.print(f"  credential  {result.credential_id} (key {result.key_ref}; name it in signing requests)")


@cert_app.command("list")
def cert_list(
    subject: Optional[str] = None, commune: Optional[str] = None, province: Optional[str] = None,
    status: Annotated[Optional[str], typer.Option(help="valid, revoked, on_hold or expired")] = None,
    profile: Optional[str] = None, ca: Optional[str] = None,
    expires_within_days: Annotated[Optional[int], typer.Option(help="Only those expiring within N days")] = None,
    limit: int = 100, as_json: JsonOpt = False,
) -> None:
    """List certificates, filtered by subject, commune, status, expiry."""
    container = _container()
    now = clock.now()
    expires = now + dt.timedelta(days=expires_within_days) if expires_within_days is not None else None
    with transaction(container.sessions) as session:
        rows, total = store.list_certificates(session, store.CertificateFilter(
            subject=subject, commune_code=commune, province_code=province, status=status, profile=profile,
            ca=ca, expires_before=expires, limit=limit), now)
        data = [_cert_dict(r) for r in rows]
    if as_json:
        _print_json({"total": total, "items": data})
        return
    table = Table("serial", "status", "profile", "commune", "subject", "not after", title=f"{total} certificate(s)")
    for r in data:
        table.add_row(r["serial"][:16] + "…", r["status"], r["profile"], r["commune_code"] or "", r["subject"][:70],
                      r["not_after"][:10])
    out.print(table)


@cert_app.command("show")
def cert_show(serial: str, as_json: JsonOpt = False) -> None:
    """Show one certificate."""
    container = _container()
    with transaction(container.sessions) as session:
        data = _cert_dict(store.get_certificate(session, serial))
    if as_json:
        _print_json(data)
    else:
        for key, value in data.items():
            out.print(f"{key:18} {value}")


@cert_app.command("export")
def cert_export(serial: str, format: Annotated[str, typer.Option(help="pem or der")] = "pem",
                out_file: Annotated[Optional[Path], typer.Option("--out", help="File (default: stdout, PEM only)")] = None) -> None:
    """Export a certificate as PEM or DER."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    container = _container()
    with transaction(container.sessions) as session:
        der = store.get_certificate(session, serial).der
    data = der if format == "der" else x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
    if out_file:
        out_file.write_bytes(data)
    elif format == "der":
        raise typer.BadParameter("DER is binary: give --out FILE")
    else:
        sys.stdout.write(data.decode())


@cert_app.command("revoke")
def cert_revoke(
    serial: str,
    reason: Annotated[Optional[Reason], typer.Option(help="RFC 5280 reason")] = None,
    ground: Annotated[Optional[Ground], typer.Option(help="Legal ground: officer_moved → affiliationChanged, "
                                                     "unit_merged → cessationOfOperation, key_replaced → superseded, "
                                                     "key_lost → keyCompromise, suspended → certificateHold")] = None,
    invalidity_date: Annotated[Optional[dt.datetime], typer.Option(
        "--invalidity-date", formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
        help="Since when the key is known or suspected compromised (RFC 5280 invalidityDate), e.g. "
             "2026-11-30T08:00:00+07:00; UTC if no offset. Goes on the CRL entry and the OCSP answer.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a certificate (CRL and OCSP are updated in the same transaction)."""
    resolved = resolve_reason(reason.value if reason else None, ground.value if ground else None)
    row = revocation.revoke(_container().pki, serial, resolved, _actor(), invalidity_date=invalidity_date)
    if as_json:
        _print_json({"serial": row.serial, "status": row.status, "reason": row.revocation_reason,
                     "invalidity_date": row.invalidity_date.isoformat() if row.invalidity_date else None})
    else:
        out.print(f"{row.serial} is now [bold]{row.status}[/] ({row.revocation_reason})")


@cert_app.command("release")
def cert_release(serial: str) -> None:
    """Release a certificate from certificateHold (the delta CRL says removeFromCRL)."""
    row = revocation.release(_container().pki, serial, _actor())
    out.print(f"{row.serial} is valid again")


@cert_app.command("renew")
def cert_renew(serial: str, new_key: Annotated[bool, typer.Option("--new-key", help="Generate a new key (old certificate superseded)")] = False,
               csr: Optional[Path] = None, as_json: JsonOpt = False) -> None:
    """Renew a certificate with the same key, or a new one."""
    result = issuance.renew(_container().pki, serial, _actor(), new_key=new_key or csr is not None,
                            csr=csr.read_bytes() if csr else None)
    if as_json:
        _print_json({"serial": result.certificate.serial, "credential_id": result.credential_id})
    else:
        out.print(f"renewed: new certificate [bold]{result.certificate.serial}[/]")


@cert_app.command("request")
def cert_request(
    cn: Annotated[str, typer.Option("--cn", help="Full name")],
    commune: Annotated[Optional[str], typer.Option(help="5-digit commune/ward code")] = None,
    title: Optional[str] = None, id_number: Optional[str] = None, profile: str = "specialist",
    key_type: Optional[KeyType] = None, keystore: Optional[str] = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write the CSR here (default: stdout)")] = None,
) -> None:
    """RA mode: generate a key in the keystore and a CSR for an external CA (e.g. the government CA)."""
    try:
        subject = SubjectInfo(common_name=cn, title=title, id_number=id_number)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    pending = registration.request(_container().pki, subject, _actor(), profile=profile, commune_code=commune,
                                   key_type=key_type, keystore=keystore)
    err.print(f"credential {pending.credential_id} waits for its certificate: send the CSR to the CA, then "
              f"`kyso cert import {pending.credential_id} CERT.pem`")
    if out_file:
        out_file.write_text(pending.csr_pem)
    else:
        sys.stdout.write(pending.csr_pem)


@cert_app.command("import")
def cert_import(credential_id: str, certificate: Annotated[Path, typer.Argument(help="PEM: the certificate, then its issuer")]) -> None:
    """RA mode: bind the certificate an external CA issued to the key waiting in kyso."""
    row = registration.import_certificate(_container().pki, credential_id, certificate.read_bytes(), _actor())
    out.print(f"imported {row.serial} for credential {credential_id}: {row.subject}")


@cert_app.command("check")
def cert_check(serial: str, as_json: JsonOpt = False) -> None:
    """RA mode: ask the external CA's OCSP responder for a certificate's status and record a revocation."""
    check = registration.check_status(_container().pki, serial, _actor())
    if as_json:
        _print_json(check.__dict__)
    else:
        out.print(f"{check.serial}: {check.status}{' (' + check.reason + ')' if check.reason else ''} from {check.source}")


# -- mergers --------------------------------------------------------------------------------
@app.command()
def merge(
    from_codes: Annotated[list[str], typer.Option("--from", help="Code of a unit merged away (repeat)")],
    into: Annotated[str, typer.Option("--into", help="Code of the unit they become")],
    effective: Annotated[Optional[dt.datetime], typer.Option(formats=["%Y-%m-%d"], help="Date the merger takes effect")] = None,
    reason: Annotated[Reason, typer.Option(help="affiliationChanged, superseded or cessationOfOperation")] = Reason.affiliationChanged,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show exactly what would change; change nothing")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Commune merger: re-issue the certificates of every specialist of the merged units under the
    new unit's name and code (same keys), and revoke the old ones, in one audited transaction."""
    with Progress(TextColumn("re-issuing"), BarColumn(), MofNCompleteColumn(), console=err, transient=True,
                  disable=as_json) as progress:
        task = progress.add_task("merge", total=None)
        report = merger.merge(_container().pki, from_codes, into, _actor(), reason=reason,
                              effective=effective.date() if effective else None, dry_run=dry_run,
                              progress=lambda done, total: progress.update(task, completed=done, total=total))
    if as_json:
        _print_json({**report.__dict__, "changes": [c.__dict__ for c in report.changes]})
        return
    verb = "would re-issue" if dry_run else "re-issued"
    out.print(f"{verb} {len(report.changes)} certificate(s) into {report.into_name} ({report.into_code}), "
              f"old ones {'would be ' if dry_run else ''}revoked as {report.reason}")
    table = Table("old serial", "new serial", "name", "from", "new subject")
    for c in report.changes:
        table.add_row(c.old_serial[:16] + "…", (c.new_serial or "-")[:16], c.common_name, c.old_commune, c.new_subject[:60])
    out.print(table)


# -- CRLs -----------------------------------------------------------------------------------
@crl_app.command("publish")
def crl_publish(ca: Annotated[Optional[str], typer.Argument(help="CA name (default: all due)")] = None) -> None:
    """Publish a new full and delta CRL for a CA now, or for every CA whose CRL is due."""
    from .scheduler import republish_once

    container = _container()
    if ca is None:
        out.print(republish_once(container))
        return
    full, delta = crl.publish_now(container.pki, ca, _actor())
    out.print(f"published CRL #{full.number} ({full.entries} entries) and delta #{delta.number}")


# -- tokens ---------------------------------------------------------------------------------
CommuneOpt = Annotated[Optional[list[str]], typer.Option(
    "--commune", help="Client scope: a 5-digit commune/ward code, a 2-digit province code (every commune of it) or "
                      "'*' (every commune, the default). Repeat for several.")]
OperationOpt = Annotated[Optional[list[tokens.Operation]], typer.Option(
    "--operation", help="Client scope: what it may do. Repeat for several. Default: all four.")]
DocTypeOpt = Annotated[Optional[list[str]], typer.Option(
    "--doc-type", help="Client scope: a document type it may sign and see, e.g. dossier-result (the names in "
                       "policies/documents/document-types.yaml, GET /api/v1/document-types). Repeat for several. "
                       "Default: every type.")]
ExpiresOpt = Annotated[Optional[int], typer.Option(
    "--expires-in-days", min=1, help="The token stops working after N days (default: never).")]


def _expiry(days: int | None) -> dt.datetime | None:
    return clock.now() + dt.timedelta(days=days) if days is not None else None


@token_app.command("create")
def token_create(name: Annotated[str, typer.Option(help="Who or what uses it, e.g. hotich-phuong-ba-dinh")],
                 role: Annotated[tokens.Role, typer.Option(help="ca-operator, policy-admin, auditor, read-only or client")],
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
    container = _container()
    with transaction(container.sessions) as session:
        scope = tokens.build_scope(session, units=commune, operations=operation, document_types=doc_type)
        value = tokens.create(session, name, role, _actor(), scope=scope, expires_at=_expiry(expires_in_days))
    if role is tokens.Role.client and scope.units is None:
        err.print("[yellow]note[/]: this client token may act for every commune; narrow it with --commune")
    sys.stdout.write(value + "\n")


@token_app.command("rotate")
def token_rotate(name: str,
                 grace_hours: Annotated[float, typer.Option(
                     min=0, help="Hours the current secret keeps working, so the software can switch (0: stops at once)")] = 24,
                 expires_in_days: Annotated[Optional[int], typer.Option(
                     "--expires-in-days", min=1, help="New expiry, N days from now (default: keep the current one)")] = None,
                 ) -> None:
    """Issue a new secret for the same token (name, role and scope) and print it alone on stdout.

    The old secret keeps working for --grace-hours (default 24), then stops; rotating again ends the
    grace of the previous secret at once.
    """
    container = _container()
    with transaction(container.sessions) as session:
        value = tokens.rotate(session, name, _actor(), grace=dt.timedelta(hours=grace_hours),
                              expires_at=_expiry(expires_in_days))
    err.print(f"token {name} rotated; the old secret works "
              + (f"until {clock.now() + dt.timedelta(hours=grace_hours):%Y-%m-%d %H:%M} UTC" if grace_hours else "no more"))
    sys.stdout.write(value + "\n")


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke a token by name; it (and a previous secret still in its grace period) stops working at once."""
    container = _container()
    with transaction(container.sessions) as session:
        tokens.revoke(session, name, _actor())
    out.print(f"token {name} revoked")


@token_app.command("list")
def token_list(as_json: JsonOpt = False) -> None:
    """List tokens: role, scope, created, expires, last used, revoked, rotation (never the token values)."""
    container = _container()
    with transaction(container.sessions) as session:
        rows = [v.as_dict() for v in tokens.views(session)]
    if as_json:
        _print_json(rows)
        return
    table = Table("name", "role", "state", "communes", "operations", "doc types", "created", "expires", "last used",
                  "old secret until")
    for r in rows:
        scope = r["scope"]
        table.add_row(r["name"], r["role"], r["state"], " ".join(scope["communes"]), " ".join(scope["operations"]),
                      " ".join(scope["document_types"]), r["created_at"][:10], (r["expires_at"] or "never")[:10],
                      (r["last_used_at"] or "")[:19], (r["previous_secret_valid_until"] or "")[:16])
    out.print(table)


@token_app.command("cert")
def token_cert(name: Annotated[str, typer.Argument(help="The client token the certificate stands for")],
               csr: Annotated[Path, typer.Option("--csr", help="PKCS#10 request (PEM or DER) made by the client: "
                                                 "its key never leaves the client; only the public key is used")],
               out_file: Annotated[Optional[Path], typer.Option("--out", help="Write the certificate (PEM) here "
                                                                "instead of stdout")] = None,
               validity_days: Annotated[Optional[int], typer.Option(min=1, help="Default: the api-client "
                                                                    "profile's (365)")] = None,
               ca: Annotated[Optional[str], typer.Option(help="Issuing CA (default: the only active one)")] = None,
               as_json: JsonOpt = False) -> None:
    """Issue a TLS client certificate (profile api-client) for a client token, for mTLS instead of its secret.

    The client makes the key and the CSR, e.g.

        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=x \\
            -keyout client.key -out client.csr

    The certificate's subject is CN=NAME, O=kyso (the CSR's subject is ignored). A request with it,
    through a proxy in KYSO_TRUSTED_PROXIES, acts with the token's role and scope. `kyso cert revoke
    SERIAL` or `kyso token revoke NAME` ends its use.
    """
    issued = mtls.issue_certificate(_container().pki, name, csr.read_bytes(), _actor(), ca=ca,
                                    validity_days=validity_days)
    if out_file:
        out_file.write_text(issued.pem)
    if as_json:
        _print_json(issued.as_dict())
    elif out_file:
        out.print(f"issued [bold]{issued.serial}[/] for token {name}, valid until {issued.not_after:%Y-%m-%d}; "
                  f"written to {out_file}")
    else:
        err.print(f"issued {issued.serial} for token {name}, valid until {issued.not_after:%Y-%m-%d}")
        sys.stdout.write(issued.pem)


# -- units ----------------------------------------------------------------------------------
@units_app.command("import")
def units_import(file: Path, effective: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="Date the catalogue takes effect")],
                 version: Annotated[Optional[str], typer.Option(help="Label (default: hash of the file)")] = None,
                 as_json: JsonOpt = False) -> None:
    """Load a newer catalogue: changed units get a new version from the effective date."""
    container = _container()
    with transaction(container.sessions) as session:
        report = units.import_catalogue(session, file.read_bytes(), effective.date(), version, actor=_actor())
    data = report.as_dict()
    if as_json:
        _print_json(data)
    else:
        out.print(f"catalogue {data['version']} from {data['effective']}: {data['added']} added, "
                  f"{data['changed']} changed, {data['closed']} closed, {data['unchanged']} unchanged")


@units_app.command("show")
def units_show(code: str, on: Annotated[Optional[dt.datetime], typer.Option(formats=["%Y-%m-%d"])] = None,
               as_json: JsonOpt = False) -> None:
    """Show the unit that had CODE on a date (default today)."""
    container = _container()
    with transaction(container.sessions) as session:
        view = units.view(session, code, (on or clock.now()).date())
    if as_json:
        _print_json(view.__dict__)
    else:
        out.print(f"{view.code}  {view.full_name} ({view.name_en}), {view.province_name or ''}  "
                  f"valid {view.valid_from} – {view.valid_to or 'now'}")


# -- audit ----------------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Check the audit log's hash chain; exits 1 and names the first broken entry if tampered."""
    container = _container()
    with transaction(container.sessions) as session:
        report = audit_log.verify(session)
    if as_json:
        _print_json(report.__dict__)
    elif report.ok:
        out.print(f"audit log intact: {report.entries} entries")
    else:
        err.print(f"[bold red]audit log broken[/] at entry {report.first_broken_seq}: {report.problem}")
    if not report.ok:
        raise typer.Exit(1)


from . import cli_activation, cli_approvals, cli_policy, cli_signing, cli_verify  # noqa: E402,F401 - registers `kyso sign`, `doc`, `verify`, `policy`, `activation`


def main() -> None:
    """Commands let domain errors rise; they are printed here once, in words, with exit status 2."""
    try:
        app()
    except KysoError as exc:
        err.print(f"[bold red]error[/] ({exc.code}): {exc.message}")
        sys.exit(2)


if __name__ == "__main__":
    # `python -m api.cli` runs this file as __main__; the signing commands attach themselves to the
    # importable `api.cli`, so run that module's app
    from api.cli import main as _main

    _main()
