"""``kyso activation …``: enrol a specialist's PIN and authenticator app, confirm, change the PIN, unlock.

The PIN is always asked with a hidden prompt (never an option: it would land in shell history)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.errors import InvalidInput

from . import common
from .common import JsonOpt, actor, err, lazy, out, print_json

if TYPE_CHECKING:
    from signing.activation import factors
else:
    factors = lazy("signing.activation.factors")

app = typer.Typer(help="Signature activation: a specialist's PIN and authenticator app (TOTP) for "
                       "remote signing (CSC API).", no_args_is_help=True)

CredArg = Annotated[str, typer.Argument(help="The credential id (cred_…) printed by `kyso cert issue`")]


def _new_pin() -> str:
    pin: str = typer.prompt("New PIN (6-12 digits)", hide_input=True)
    if typer.prompt("Repeat the PIN", hide_input=True) != pin:
        raise InvalidInput("the two PINs differ; nothing was changed")
    return pin


def _terminal_qr(uri: str) -> str:
    import qrcode

    qr = qrcode.QRCode(border=2)
    qr.add_data(uri)
    buffer = io.StringIO()
    qr.print_ascii(out=buffer, invert=True)
    return buffer.getvalue()


@app.command("enroll")
def enroll(
    credential: CredArg,
    png: Annotated[Path | None, typer.Option("--png", help="Also write the QR code to this PNG file")] = None,
    replace: Annotated[bool, typer.Option("--replace",
                                          help="Replace a confirmed enrolment (lost phone, forgotten PIN)")] = False,
) -> None:
    """The specialist types a PIN, then scans the QR code with any authenticator app; confirm with
    `kyso activation confirm` and the first code the app shows.

    Example: kyso activation enroll cred_… --png enrol.png
    """
    start = factors.enroll(common.container().pki, credential, _new_pin(), actor(), replace=replace)
    if png:
        png.write_bytes(start.png)
        png.chmod(0o600)
    out.print(_terminal_qr(start.uri), highlight=False)
    out.print(f"otpauth URI (shown once): {start.uri}", highlight=False)
    out.print(f"next: kyso activation confirm {credential}  (with the code the app shows)")


@app.command("confirm")
def confirm(credential: CredArg) -> None:
    """Finish an enrolment with the first code of the authenticator app."""
    code = typer.prompt("Code shown by the authenticator app", hide_input=False)
    factors.confirm(common.container().pki, credential, code.strip(), actor=actor())
    out.print(f"credential {credential}: activation confirmed")


@app.command("change-pin")
def change_pin(credential: CredArg) -> None:
    """Replace the PIN; the current PIN is required (a wrong one counts toward the lockout)."""
    old = typer.prompt("Current PIN", hide_input=True)
    factors.change_pin(common.container().pki, credential, old, _new_pin(), actor=actor())
    out.print(f"credential {credential}: PIN changed")


@app.command("unlock")
def unlock(credential: CredArg) -> None:
    """Lift the lockout that five failed attempts set (check first that it is the specialist asking)."""
    factors.unlock(common.container().pki, credential, actor())
    out.print(f"credential {credential}: unlocked")


@app.command("status")
def status(credential: CredArg, as_json: JsonOpt = False) -> None:
    """none, pending (not confirmed), active or locked; failed attempts since the last success."""
    view = factors.status(common.container().pki, credential)
    if as_json:
        print_json(view.as_dict())
        return
    style = {"active": "green", "locked": "bold red", "pending": "yellow"}.get(view.state, "")
    out.print(f"{credential}: [{style}]{view.state}[/]" if style else f"{credential}: {view.state}")
    if view.state != "none":
        out.print(f"failed attempts: {view.failed_attempts}/{factors.MAX_FAILED_ATTEMPTS}")
    if view.locked_at:
        err.print(f"locked since {view.locked_at:%Y-%m-%d %H:%M} UTC; "
                  f"unlock with `kyso activation unlock {credential}`")
