"""``kyso activation …``: enrolment codes for a specialist's PIN and authenticator app, her sign-in
name, the hard lock, the state.

The operator never types, sees or receives her PIN or authenticator secret: ``enroll`` prints a
one-time enrolment code that she redeems herself on her page (/me/enrol)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from . import common
from .common import JsonOpt, actor, err, lazy, out, print_json

if TYPE_CHECKING:
    from signing.activation import accounts, enrolment, factors
else:
    factors = lazy("signing.activation.factors")
    enrolment = lazy("signing.activation.enrolment")
    accounts = lazy("signing.activation.accounts")

app = typer.Typer(help="Signature activation: a specialist's PIN and authenticator app (TOTP), set up by "
                       "herself with a one-time enrolment code.", no_args_is_help=True)

CredArg = Annotated[str, typer.Argument(help="The credential id (cred_…) printed by `kyso cert issue`")]


@app.command("enroll")
def enroll(credential: CredArg, as_json: JsonOpt = False) -> None:
    """Issue a one-time enrolment code: first enrolment, lost phone or forgotten PIN (all the same).

    Hand the code to the specialist in person. She opens /me/enrol on her phone, types it, chooses
    her PIN and adds the key to her authenticator app; nobody else sees either. The code works once,
    for 72 hours (KYSO_ENROLMENT_CODE_HOURS); a new code voids the older one. Until she finishes,
    her current PIN and app keep working.

    Example: kyso activation enroll cred_…
    """
    issued = enrolment.issue(common.container().pki, credential, actor())
    if as_json:
        print_json({"credential_id": issued.credential_id, "code": issued.code, "purpose": issued.purpose,
                    "expires_at": issued.expires_at.isoformat(), "instructions": issued.instructions})
        return
    out.print(f"enrolment code: [bold]{issued.code}[/]  ({issued.purpose}, valid until "
              f"{issued.expires_at:%Y-%m-%d %H:%M} UTC, once)")
    out.print(issued.instructions, highlight=False)


@app.command("username")
def username(credential: CredArg,
             name: Annotated[str, typer.Argument(help="3-32 characters: a-z, digits, '.', '_', '-'")]) -> None:
    """Give the specialist a short sign-in name for /me (she may also sign in with her CCCD number)."""
    done = accounts.set_username(common.container().pki, credential, name, actor())
    out.print(f"credential {credential}: signs in as {done}")


@app.command("unlock")
def unlock(credential: CredArg) -> None:
    """Lift the hard lock set after many failed attempts (check first that it is the specialist asking)."""
    factors.unlock(common.container().pki, credential, actor())
    out.print(f"credential {credential}: unlocked")


@app.command("status")
def status(credential: CredArg, as_json: JsonOpt = False) -> None:
    """none, active or locked; failed attempts since the last success."""
    view = factors.status(common.container().pki, credential)
    if as_json:
        print_json(view.as_dict())
        return
    style = {"active": "green", "locked": "bold red", "pending": "yellow"}.get(view.state, "")
    out.print(f"{credential}: [{style}]{view.state}[/]" if style else f"{credential}: {view.state}")
    if view.state != "none":
        out.print(f"failed attempts: {view.failed_attempts}/{view.lock_after}")
    if view.locked_at:
        err.print(f"locked since {view.locked_at:%Y-%m-%d %H:%M} UTC; "
                  f"unlock with `kyso activation unlock {credential}`")
