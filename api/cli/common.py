"""What every ``kyso`` command group shares: the consoles, the --json option, the acting operator, the
container and JSON output.

Commands call ``common.container()`` through the module (not a name imported from it), so a test can
replace it in one place: ``monkeypatch.setattr("api.cli.common.container", ...)``.
"""
from __future__ import annotations

import getpass
import importlib.util
import json
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from ..container import Container

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
