"""``kyso serve``, ``kyso demo`` and ``kyso db-upgrade``: running the server, and the demo's set-up."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core import clock, production
from core.errors import ConfigurationError, KysoError
from core.settings import load_settings

from . import common
from .common import actor, lazy, out

if TYPE_CHECKING:
    from core import db
    from core.settings import Settings
    from pki import authorities
    from signing.create import service
    from signing.registry import lifecycle

    from .. import tokens
else:
    db = lazy("core.db")
    authorities = lazy("pki.authorities")
    service = lazy("signing.create.service")
    lifecycle = lazy("signing.registry.lifecycle")
    tokens = lazy("api.tokens")

app = typer.Typer()  # added to the root without a name: these are top-level commands

ASSETS = Path(__file__).resolve().parents[2] / "signing" / "create" / "assets"


def _warn_connection_budget(settings: Settings, workers: int) -> None:
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


def _no_demo_in_production(settings: Settings) -> None:
    if settings.environment == "production":
        raise ConfigurationError(
            "`kyso demo` is refused with KYSO_ENVIRONMENT=production: it creates a specialist whose PIN is printed "
            "for anyone to read, and operator and client tokens lying in files. For production run `kyso ca init`, "
            "issue real credentials and let each specialist choose her own PIN; to try kyso, run the demo with "
            "KYSO_ENVIRONMENT=development and a KYSO_HOME of its own", code="demo_in_production")


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on, before anything says "ready" (uvicorn would say it only after
    setting up, then fail). Binds as uvicorn will (SO_REUSEADDR: a port in TIME_WAIT is free, a listener is not)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host!r}: {exc.strerror or exc}", code="bad_host") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigurationError(
                f"port {port} on {host} is already in use ({exc.strerror}): another kyso or another program is "
                f"listening there. Stop it, or choose another port: `make run PORT={port + 1}`, "
                f"`kyso demo --port {port + 1}` or `kyso serve --port {port + 1}` "
                f"(`ss -ltnp 'sport = :{port}'` shows who holds it)", code="port_in_use") from None


def _local_base_url(settings: Settings, host: str, port: int) -> str:
    """Outside production, without an explicit KYSO_BASE_URL, the URL kyso is served at: the one QR codes,
    AIA/CDP and the printed instructions carry (a demo on --port 8001 must not encode :8000). Set in the
    environment, so the server's workers read the same."""
    if settings.environment == "production" or "base_url" in settings.model_fields_set:
        return settings.base_url
    os.environ["KYSO_BASE_URL"] = _local_url(host, port)
    return os.environ["KYSO_BASE_URL"]


def _local_url(host: str, port: int) -> str:
    """Where this machine reaches the server (a listen-everywhere address is reached on 127.0.0.1)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          workers: Annotated[int, typer.Option(help="Worker processes (share the database and keystore)")] = 1,
          role: Annotated[str | None, typer.Option(
              help="all, ocsp (OCSP, CRLs, time-stamps, CA certificates and the probes only: a lane of its own) "
                   "or api (everything but those); default KYSO_SERVE_ROLE, all")] = None,
          access_log: Annotated[bool | None, typer.Option(
              help="Log every request (default KYSO_ACCESS_LOG, on; off gains ~20% on busy OCSP nodes)")] = None,
          log_format: Annotated[str | None, typer.Option(
              help="json (one object per line) or text; default KYSO_LOG_FORMAT, json")] = None) -> None:
    """Serve the REST API, OCSP, CRLs and CA certificates over HTTP (metrics at /metrics)."""
    import shutil
    import tempfile

    import uvicorn

    from core import metrics

    from ..container import prepare_database
    from ..observability import log_config

    settings = load_settings()
    production.check_start(settings)  # here too, so a refusal is one message, not a traceback per worker
    _check_port_free(host, port)
    _local_base_url(settings, host, port)
    fmt = log_format or settings.log_format
    if fmt not in ("json", "text"):
        raise typer.BadParameter(f"--log-format is json or text, not {fmt!r}")
    if settings.migrate_on_start:  # once, here: workers starting together must not race on migrations
        prepare_database(settings)
    _warn_connection_budget(settings, workers)
    os.environ["KYSO_MIGRATE_ON_START"] = "false"
    if role is not None:
        if role not in ("all", "ocsp", "api"):
            raise typer.BadParameter(f"--role is all, ocsp or api, not {role!r}")
        os.environ["KYSO_SERVE_ROLE"] = role  # the workers read it from their settings
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
         no_serve: Annotated[bool, typer.Option("--no-serve",
                                                help="Set up and print, but do not start the server")] = False) -> None:
    """Set up an embedded demo PKI (idempotent), print where everything is, then serve.

    Development only: refused with KYSO_ENVIRONMENT=production (its specialist's PIN is printed here)."""
    settings = load_settings()
    _no_demo_in_production(settings)
    if not no_serve:
        _check_port_free(host, port)  # before setting up and printing "ready"
    _local_base_url(settings, host, port)
    container = common.container()
    root = authorities.CaSpec(name="kyso-root", common_name="kyso Root CA", organization="kyso")
    issuing = authorities.CaSpec(name="kyso-issuing", common_name="kyso Issuing CA - Specialists", organization="kyso")
    result = authorities.init_hierarchy(container.pki, root=root, issuing=issuing, actor=actor())
    token_file = container.settings.home / "demo-operator.token"
    token = token_file.read_text().strip() if token_file.exists() else None
    with db.transaction(container.sessions) as session:
        if token is not None:
            try:
                tokens.authenticate(session, token)
            except KysoError:
                token = None
        if token is None:
            name = f"demo-operator-{clock.now():%Y%m%d%H%M%S}"
            token = tokens.create(session, name, tokens.Role.ca_operator, actor())
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    base = _local_url(host, port)
    demo_signing = prepare_signing_demo(container, actor())
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
  then, as the specialist, open {base}/me/enrol, type the enrolment code {demo_signing["enrolment_code"]},
  choose a PIN, add the key to an authenticator app and type its code; sign in at {base}/me with
  CCCD 001190000001, the PIN and a code, and approve with the PIN and the next code.
  The software polls GET /api/v1/sign/requests/ID. At the command line the specialist signs herself
  (it asks for her PIN and current code); the organisation seal signs as the operator, e.g. a certified copy:
  .venv/bin/kyso sign {demo_signing["sample"]} -o copy.pdf -c {demo_signing["seal"]} --commune 00004 --type certified-copy --copy-form "SAO Y"
  already signed example (the seal's certified copy): {container.settings.home.resolve() / "sample-signed.pdf"}
  its verification URL:   {container.settings.base_url}/v/{demo_signing["example"]}

[bold]Verify a PDF[/] (no token needed; the citizen page is the X-Verify-Url):
  curl -s -F file=@signed.pdf {base}/api/v1/verify
  curl -s -F file=@signed.pdf -H 'Accept: application/pdf' -o report.pdf {base}/api/v1/verify   (sealed report)
  .venv/bin/kyso verify signed.pdf
""")  # noqa: E501 - the demo's commands are printed whole, to copy and paste
    if not no_serve:
        # a person watches the demo: plain text logs unless KYSO_LOG_FORMAT says otherwise
        serve(host=host, port=port, workers=1, log_format=os.environ.get("KYSO_LOG_FORMAT", "text"))


@app.command("db-upgrade")
def db_upgrade() -> None:
    """Apply database migrations (Alembic) up to the latest schema."""
    from ..container import prepare_database

    prepare_database(load_settings())
    out.print("database schema is up to date, catalogue seeded")


# -- the demo's set-up ---------------------------------------------------------------------
def prepare_signing_demo(container: Any, actor: str) -> dict[str, str]:
    """Idempotent demo set-up: a specialist and a seal credential with sample images, a client token,
    a sample PDF, and one signed example (ids kept in KYSO_HOME/demo-signing.json)."""
    import json

    from pki import issuance
    from pki.names import SubjectInfo
    from signing.create.sample import sample_document

    _no_demo_in_production(container.settings)
    home = container.settings.home
    state_file = home / production.DEMO_STATE_FILE
    state: dict[str, str] = json.loads(state_file.read_text("utf-8")) if state_file.exists() else {}
    if "specialist" not in state:
        state["specialist"] = issuance.issue(container.pki, issuance.IssueRequest(
            profile="specialist", commune_code="00004", subject=SubjectInfo(
                common_name="Nguyễn Thị Hồng Nhung", title="Công chức Tư pháp - Hộ tịch", id_number="001190000001")),
            actor).credential_id or ""
        state["seal"] = issuance.issue(container.pki, issuance.IssueRequest(
            profile="seal", commune_code="00004", subject=SubjectInfo(common_name="Ủy ban nhân dân phường Ba Đình")),
            actor).credential_id or ""
        for credential, kind, name in ((state["specialist"], "signature", "sample-signature.png"),
                                       (state["seal"], "seal", "sample-seal.png")):
            if (ASSETS / name).exists():
                lifecycle.enroll_image(container.pki, credential, kind, (ASSETS / name).read_bytes(), actor)
    if "enrolment_code" not in state:
        # the demo specialist's enrolment code, issued as an operator would: she redeems it on /me/enrol,
        # choosing her own PIN (the operator, and this demo, never know it)
        from signing.activation import enrolment, factors

        if factors.status(container.pki, state["specialist"]).state == "none":
            state["enrolment_code"] = enrolment.issue(container.pki, state["specialist"], actor).code
        else:
            state["enrolment_code"] = "(already used: `kyso activation enroll` issues a new one)"
    if "report_seal" not in state:
        # kyso's organisation seal: signs the PDF verification reports (KYSO_REPORT_SEAL_CREDENTIAL)
        state["report_seal"] = issuance.issue(container.pki, issuance.IssueRequest(
            profile="seal", commune_code="00004", subject=SubjectInfo(common_name="kyso - Dịch vụ xác thực văn bản")),
            actor).credential_id or ""
    if not container.settings.report_seal_credential:
        container.settings.report_seal_credential = state["report_seal"]
    token_file = home / "demo-client.token"
    if not token_file.exists():
        with db.transaction(container.sessions) as session:
            scope = tokens.build_scope(session, units=["00004"])  # the demo commune's software: its documents only
            token_file.write_text(tokens.create(session, f"demo-client-{state['specialist'][-6:]}",
                                                tokens.Role.client, actor, scope=scope) + "\n")
        token_file.chmod(0o600)
    sample = home / "sample.pdf"
    if not sample.exists():
        sample.write_bytes(sample_document(container.settings.stamp_font))
    if "example" not in state:
        # signed by the organisation seal (a certified copy, which the seal signs alone): the specialist's
        # key signs only what she approves, so the demo signs nothing in her name
        from signing.activation.sole_control import Required

        result = container.signing.sign(service.SignRequest(
            pdf=sample.read_bytes(), document_type="certified-copy", commune_code="00004",
            credential_id=state["seal"], dossier_number="HS-2026-000123",
            appearance=service.AppearanceOptions(copy_form="SAO Y")), actor=actor,
            activation=Required(container.pki, actor))
        (home / "sample-signed.pdf").write_bytes(result.pdf)
        state["example"] = result.document_id
    state_file.write_text(json.dumps(state, indent=2, ensure_ascii=False), encoding="utf-8")
    state["token_file"] = str(token_file)
    state["sample"] = str(sample)
    return state
