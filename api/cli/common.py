"""What every ``kyso`` command group shares: the consoles, the --json option, the acting operator, the
container and JSON output.

Commands call ``common.container()`` through the module (not a name imported from it), so a test can
replace it in one place: ``monkeypatch.setattr("api.cli.common.container", ...)``.
"""
from __future__ import annotations

import getpass
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from core.settings import load_settings

from ..container import Container, build

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


def actor() -> str:
    """The operator recorded in the audit log: the OS user running the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001
        return "cli:unknown"


def container() -> Container:
    return build(load_settings())


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
