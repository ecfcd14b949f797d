"""``kyso cert …``: issue, list, show, export, renew, revoke and release certificates; RA mode: request, import,
check."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core import clock
from hsm import KeyType
from pki.reasons import Ground, Reason, resolve_reason

from . import common
from .common import JsonOpt, actor, err, lazy, out, print_json

if TYPE_CHECKING:
    from core import db
    from pki import issuance, names, registration, revocation, store
else:
    db = lazy("core.db")
    issuance = lazy("pki.issuance")
    names = lazy("pki.names")
    registration = lazy("pki.registration")
    revocation = lazy("pki.revocation")
    store = lazy("pki.store")

app = typer.Typer(help="Certificates: issue, list, show, export, renew, revoke, release; RA mode: request, import, "
                       "check.", no_args_is_help=True)


def _cert_dict(row: Any, credential_id: str | None) -> dict[str, Any]:
    return {"serial": row.serial, "credential_id": credential_id, "ca": row.ca.name, "profile": row.profile,
            "subject": row.subject,
            "commune_code": row.commune_code, "status": row.status, "not_before": row.not_before.isoformat(),
            "not_after": row.not_after.isoformat(), "revocation_reason": row.revocation_reason,
            "key_ref": row.key_ref, "sha256": row.sha256}


# attribute types RFC 4514 prints as dotted numbers, by their names (the JSON keeps the stored text)
_ATTRIBUTE_NAMES = {"2.5.4.5": "serialNumber", "2.5.4.12": "title", "2.5.4.4": "SN", "2.5.4.42": "GN",
                    "0.9.2342.19200300.100.1.1": "UID", "1.2.840.113549.1.9.1": "emailAddress"}


def _subject_parts(subject: str) -> list[str]:
    """An RFC 4514 subject's attributes, with names instead of dotted numbers (escaped commas stay inside)."""
    import re

    parts = [part.strip() for part in re.split(r"(?<!\\),", subject) if part.strip()]
    return [_ATTRIBUTE_NAMES.get(kind, kind) + "=" + value for kind, _, value in (p.partition("=") for p in parts)]


def _wrap_subject(subject: str, width: int, indent: str = "    ") -> list[str]:
    """The subject on lines of at most ``width``, broken between attributes, never inside a name (unless one
    attribute alone is longer than a line)."""
    lines: list[str] = []
    current = ""
    for part in _subject_parts(subject):
        candidate = f"{current}, {part}" if current else part
        if current and len(indent) + len(candidate) + 1 > width:
            lines.append(indent + current + ",")
            current = part
        else:
            current = candidate
    return [*lines, indent + current] if current else lines


def _full_serial(serial: str, *, prefix_ok: bool) -> str:
    """The stored serial ``serial`` names: itself, or (``prefix_ok``) the one serial it begins. Otherwise
    refused, naming the candidates: a few serials beginning with it, or the closest ones (a mistyped digit)."""
    import difflib

    from sqlalchemy import select

    from pki.errors import UnknownCertificate
    from pki.models import Certificate

    wanted = store.normalize_serial(serial.rstrip("…."))  # a serial copied from a truncated listing
    container = common.container()
    with db.transaction(container.sessions) as session:
        if session.execute(select(Certificate.id).where(Certificate.serial == wanted).limit(1)).first():
            return wanted
        starting: list[tuple[str, str]] = [(row[0], row[1]) for row in session.execute(
            select(Certificate.serial, Certificate.subject).where(Certificate.serial.like(wanted + "%"))
            .order_by(Certificate.serial).limit(11))]
        if prefix_ok and len({found for found, _ in starting}) == 1:
            return starting[0][0]
        if starting:
            shown = starting[:10]
        else:
            every = {row[0]: row[1] for row in session.execute(select(Certificate.serial, Certificate.subject))}
            shown = [(near, every[near]) for near in difflib.get_close_matches(wanted, list(every), n=5, cutoff=0.6)]
    options = "\n".join(f"  {found}  {subject}" for found, subject in shown)
    if starting and prefix_ok:
        more = " (and more)" if len(starting) > 10 else ""
        raise UnknownCertificate(f"serial prefix {serial} matches several certificates{more}; did you mean one of "
                                 f"these? Give more digits or the whole serial:\n{options}", code="ambiguous_serial")
    if starting:
        raise UnknownCertificate(f"no certificate with serial {serial}; this command needs the whole serial. Did you "
                                 f"mean one of these?\n{options}")
    hint = f" Did you mean one of these?\n{options}" if shown else " `kyso cert list` shows the serials."
    raise UnknownCertificate(f"no certificate with serial {serial}.{hint}")


@app.command("issue")
def cert_issue(
    cn: Annotated[str, typer.Option("--cn", help="Full name, e.g. 'Nguyễn Thị Hoa'")],
    profile: Annotated[str, typer.Option(help="specialist, seal, tsa, ...")] = "specialist",
    commune: Annotated[str | None, typer.Option(help="5-digit commune/ward code; fills L, ST and O")] = None,
    title: str | None = None,
    org: Annotated[str | None, typer.Option(help="O (default: Ủy ban nhân dân <commune>)")] = None,
    ou: str | None = None,
    id_number: Annotated[str | None, typer.Option(help="12-digit CCCD or 9-digit CMND")] = None,
    email: str | None = None,
    csr: Annotated[Path | None,
                   typer.Option(help="PKCS#10 file; without it the key is generated in the keystore")] = None,
    key_type: KeyType | None = None,
    keystore: str | None = None,
    validity_days: int | None = None,
    ca: str | None = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Also write the certificate (PEM) here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a certificate from a CSR, or with a key generated inside the keystore."""
    try:
        subject = names.SubjectInfo(common_name=cn, title=title, organization=org, organizational_unit=ou,
                              id_number=id_number, email=email)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    result = issuance.issue(common.container().pki, issuance.IssueRequest(
        profile=profile, subject=subject, commune_code=commune, csr=csr.read_bytes() if csr else None,
        key_type=key_type, keystore=keystore, validity_days=validity_days, ca=ca), actor())
    row = result.certificate
    if out_file:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        out_file.write_bytes(x509.load_der_x509_certificate(row.der).public_bytes(Encoding.PEM))
    if as_json:
        print_json({"serial": row.serial, "subject": row.subject, "not_after": row.not_after.isoformat(),
                     "credential_id": result.credential_id, "key_ref": result.key_ref})
        return
    out.print(f"issued [bold]{row.serial}[/]\n  subject     {row.subject}\n  valid until {row.not_after:%Y-%m-%d}")
    if result.credential_id:
        out.print(f"  credential  {result.credential_id} (key {result.key_ref}; name it in signing requests)")


@app.command("list")
def cert_list(
    subject: str | None = None, commune: str | None = None, province: str | None = None,
    status: Annotated[str | None, typer.Option(help="valid, revoked, on_hold or expired")] = None,
    profile: str | None = None, ca: str | None = None,
    expires_within_days: Annotated[int | None, typer.Option(help="Only those expiring within N days")] = None,
    limit: int = 100, as_json: JsonOpt = False,
    wide: Annotated[bool, typer.Option("--wide", help="One line per certificate, subject included, nothing "
                                                     "wrapped (for wide terminals and grep)")] = False,
) -> None:
    """List certificates, filtered by subject, commune, status, expiry. Serials are printed whole (copy one into
    `kyso cert show`, which also takes a unique beginning); the subject follows on its own lines, wrapped between
    attributes, or on the same line with --wide."""
    container = common.container()
    now = clock.now()
    expires = now + dt.timedelta(days=expires_within_days) if expires_within_days is not None else None
    with db.transaction(container.sessions) as session:
        rows, total = store.list_certificates(session, store.CertificateFilter(
            subject=subject, commune_code=commune, province_code=province, status=status, profile=profile,
            ca=ca, expires_before=expires, limit=limit), now)
        credentials = store.credential_ids(session, rows)
        data = [_cert_dict(r, credentials.get(r.id)) for r in rows]
    if as_json:
        print_json({"total": total, "items": data})
        return
    shown = f"{total} certificate(s)" + (f", the first {len(data)} (--limit)" if total > len(data) else "")
    out.print(shown, markup=False, highlight=False)
    serial_width = max((len(r["serial"]) for r in data), default=0)
    for r in data:
        # the serial whole, first on its line (what one copies into `kyso cert show`), then the facts
        facts = [r["serial"].ljust(serial_width), r["status"], r["profile"]]
        facts += [f"commune {r['commune_code']}"] if r["commune_code"] else []
        facts += [f"until {r['not_after'][:10]}"] + ([f"credential {r['credential_id']}"] if r["credential_id"] else [])
        if wide:  # one line, nothing wrapped: for grep, and for terminals wide enough
            line = "  ".join([*facts, ", ".join(_subject_parts(r["subject"]))])
            out.print(line, markup=False, highlight=False, crop=False, soft_wrap=True)
            continue
        out.print("  ".join(facts), markup=False, highlight=False, soft_wrap=True)
        for line in _wrap_subject(r["subject"], max(40, out.width)):
            out.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command("show")
def cert_show(serial: Annotated[str, typer.Argument(help="The serial, or a unique beginning of it")],
              as_json: JsonOpt = False) -> None:
    """Show one certificate."""
    serial = _full_serial(serial, prefix_ok=True)
    container = common.container()
    with db.transaction(container.sessions) as session:
        row = store.get_certificate(session, serial)
        data = _cert_dict(row, store.credential_ids(session, [row]).get(row.id))
    if as_json:
        print_json(data)
    else:
        for key, value in data.items():
            out.print(f"{key:18} {value}")


@app.command("export")
def cert_export(serial: str, format: Annotated[str, typer.Option(help="pem or der")] = "pem",  # noqa: A002 - --format
                out_file: Annotated[Path | None,
                                    typer.Option("--out", help="File (default: stdout, PEM only)")] = None) -> None:
    """Export a certificate as PEM or DER (the serial, or a unique beginning of it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    serial = _full_serial(serial, prefix_ok=True)
    container = common.container()
    with db.transaction(container.sessions) as session:
        der = store.get_certificate(session, serial).der
    data = der if format == "der" else x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
    if out_file:
        out_file.write_bytes(data)
    elif format == "der":
        raise typer.BadParameter("DER is binary: give --out FILE")
    else:
        sys.stdout.write(data.decode())


@app.command("revoke")
def cert_revoke(
    serial: str,
    reason: Annotated[Reason | None, typer.Option(help="RFC 5280 reason")] = None,
    ground: Annotated[Ground | None, typer.Option(help="Legal ground: officer_moved → affiliationChanged, "
                                                     "unit_merged → cessationOfOperation, key_replaced → superseded, "
                                                     "key_lost → keyCompromise, suspended → certificateHold")] = None,
    invalidity_date: Annotated[dt.datetime | None, typer.Option(
        "--invalidity-date", formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
        help="Since when the key is known or suspected compromised (RFC 5280 invalidityDate), e.g. "
             "2026-11-30T08:00:00+07:00; UTC if no offset. Goes on the CRL entry and the OCSP answer.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a certificate (CRL and OCSP are updated in the same transaction)."""
    resolved = resolve_reason(reason.value if reason else None, ground.value if ground else None)
    serial = _full_serial(serial, prefix_ok=False)  # revoking takes the whole serial; a near miss is named
    row = revocation.revoke(common.container().pki, serial, resolved, actor(), invalidity_date=invalidity_date)
    if as_json:
        print_json({"serial": row.serial, "status": row.status, "reason": row.revocation_reason,
                     "invalidity_date": row.invalidity_date.isoformat() if row.invalidity_date else None})
    else:
        out.print(f"{row.serial} is now [bold]{row.status}[/] ({row.revocation_reason})")


@app.command("release")
def cert_release(serial: str) -> None:
    """Release a certificate from certificateHold (the delta CRL says removeFromCRL)."""
    serial = _full_serial(serial, prefix_ok=False)
    row = revocation.release(common.container().pki, serial, actor())
    out.print(f"{row.serial} is valid again")


@app.command("renew")
def cert_renew(serial: str,
               new_key: Annotated[bool, typer.Option("--new-key",
                                                     help="Generate a new key (old certificate superseded)")] = False,
               csr: Path | None = None, as_json: JsonOpt = False) -> None:
    """Renew a certificate with the same key, or a new one."""
    serial = _full_serial(serial, prefix_ok=False)
    result = issuance.renew(common.container().pki, serial, actor(), new_key=new_key or csr is not None,
                            csr=csr.read_bytes() if csr else None)
    if as_json:
        print_json({"serial": result.certificate.serial, "credential_id": result.credential_id})
    else:
        out.print(f"renewed: new certificate [bold]{result.certificate.serial}[/]")


@app.command("request")
def cert_request(
    cn: Annotated[str, typer.Option("--cn", help="Full name")],
    commune: Annotated[str | None, typer.Option(help="5-digit commune/ward code")] = None,
    title: str | None = None, id_number: str | None = None, profile: str = "specialist",
    key_type: KeyType | None = None, keystore: str | None = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the CSR here (default: stdout)")] = None,
) -> None:
    """RA mode: generate a key in the keystore and a CSR for an external CA (e.g. the government CA)."""
    try:
        subject = names.SubjectInfo(common_name=cn, title=title, id_number=id_number)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    pending = registration.request(common.container().pki, subject, actor(), profile=profile, commune_code=commune,
                                   key_type=key_type, keystore=keystore)
    err.print(f"credential {pending.credential_id} waits for its certificate: send the CSR to the CA, then "
              f"`kyso cert import {pending.credential_id} CERT.pem`")
    if out_file:
        out_file.write_text(pending.csr_pem)
    else:
        sys.stdout.write(pending.csr_pem)


@app.command("import")
def cert_import(credential_id: str,
                certificate: Annotated[Path, typer.Argument(help="PEM: the certificate, then its issuer")]) -> None:
    """RA mode: bind the certificate an external CA issued to the key waiting in kyso."""
    row = registration.import_certificate(common.container().pki, credential_id, certificate.read_bytes(), actor())
    out.print(f"imported {row.serial} for credential {credential_id}: {row.subject}")


@app.command("check")
def cert_check(serial: str, as_json: JsonOpt = False) -> None:
    """RA mode: ask the external CA's OCSP responder for a certificate's status and record a revocation."""
    check = registration.check_status(common.container().pki, serial, actor())
    if as_json:
        print_json(check.__dict__)
    else:
        reason = f" ({check.reason})" if check.reason else ""
        out.print(f"{check.serial}: {check.status}{reason} from {check.source}")
