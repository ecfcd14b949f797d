"""The code gates: ruff, mypy and import-linter, configured in pyproject.toml, run as part of the suite.

Each runs as a subprocess from the virtual environment running the tests (the tools are pinned in the
``test`` extra) at the repository's root, and a finding fails the test with the tool's own output.
``make lint`` runs the same three.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(tool: str, *args: str) -> None:
    exe = BIN / tool
    if not exe.exists():
        pytest.fail(f"{exe} is missing: install the test extra (pip install -e '.[test]')", pytrace=False)
    done = subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"{' '.join((tool, *args))} exited {done.returncode}:\n{done.stdout}{done.stderr}", pytrace=False)


def test_ruff() -> None:
    _run("ruff", "check", "--no-cache", "--output-format", "concise")


def test_mypy() -> None:
    _run("mypy")


def test_import_contracts() -> None:
    _run("lint-imports", "--no-cache")
