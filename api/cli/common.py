"""What every ``kyso`` command group shares: the consoles, the --json option, the acting operator, the
container and JSON output.

Who is recorded as the operator:

- commands one operator may run alone record the OS user, ``cli:<user>`` (``actor()``);
- commands under four eyes (``kyso key destroy``, ``kyso ca revoke``, ``kyso approval approve/reject``)
  need the operator's own ``ca-operator`` token, from ``KYSO_OPERATOR_TOKEN`` or ``--token-file``, and
  record its name as ``token:<name>``: exactly what the REST API records for the same token, so alice
  on the CLI and alice on the API are one person, and two OS logins are not two people
  (``operator()``). Without a token they refuse and say how to get one.

Commands call ``common.container()`` through the module (not a name imported from it), so a test can
replace it in one place: ``monkeypatch.setattr("api.cli.common.container", ...)``.
"""
from __future__ import annotations

import getpass
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from ..container import Container

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
OPERATOR_TOKEN_ENV = "KYSO_OPERATOR_TOKEN"
TokenFileOpt = Annotated[Path | None, typer.Option(
    "--token-file", show_default=False,
    help=f"File holding your own ca-operator token (or set {OPERATOR_TOKEN_ENV}); four eyes are two people, "
         "each with a token of their own. Never give the token itself as an argument (shell history).")]


def actor() -> str:
    """The operator recorded in the audit log: the OS user running the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001
        return "cli:unknown"


def operator(container: Container, command: str, token_file: Path | None) -> str:
    """The person running a four-eyes command: the name of their ``ca-operator`` token, as ``token:<name>``.

    The token comes from ``--token-file`` or else ``KYSO_OPERATOR_TOKEN``; it is checked like a bearer
    token on the API (unknown, revoked and expired tokens are refused alike) and must be a ca-operator's.
    Refused without one: the OS user names nobody in particular (anyone can run under two logins).
    """
    from core import db
    from core.errors import InvalidInput, PermissionDenied, Unauthenticated

    from .. import tokens

    if token_file is not None:
        try:
            value = token_file.read_text().strip()
        except OSError as exc:
            raise InvalidInput(f"cannot read the operator token file {token_file}: {exc.strerror}",
                               code="operator_token_required") from None
        if token_file.stat().st_mode & 0o077:
            err.print(f"[yellow]note[/]: others may read your operator token in {token_file}; chmod 600 {token_file}")
    else:
        value = os.environ.get(OPERATOR_TOKEN_ENV, "").strip()
    if not value:
        raise Unauthenticated(
            f"`kyso {command}` is under four eyes and needs your own operator token, not your login name: "
            f"set {OPERATOR_TOKEN_ENV} or pass --token-file FILE. An operator gets one (once, for themselves) with "
            "`kyso token create --name THEIR-NAME --role ca-operator`; the second operator uses a token of their own",
            code="operator_token_required")
    with db.transaction(container.sessions) as session:
        principal = tokens.authenticate(session, value)
    if principal.role is not tokens.Role.ca_operator:
        raise PermissionDenied(f"token {principal.name!r} has role {principal.role.value}; `kyso {command}` needs a "
                               "ca-operator token (`kyso token create --name THEIR-NAME --role ca-operator`)",
                               code="operator_token_required")
    return principal.actor


def container() -> Container:
    from core.settings import load_settings

    from ..container import build

    return build(load_settings())


def lazy(name: str) -> ModuleType:
    """The module ``name``, run the first time one of its attributes is used.

    Why: a command group imports what its commands need (pyHanko, FastAPI, SQLAlchemy, the container),
    and the root imports every group, so without this `kyso --help` and every command paid for all of it
    (1.6 s a call). Group modules write ``factors = lazy("signing.activation.factors")`` at the top and
    import the module under ``TYPE_CHECKING`` too, so the type checker still sees the real module.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
