"""Running kyso as `make run` does: without the test extras. ``without_test_extras`` gives the environment of
a Python in which importing pytest, Playwright, schemathesis, … fails, as in a virtual environment made by
`make install` (`pip install -e .`, no `[test]`)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# the top-level modules of the [test] extras (pyproject.toml) and their own dependencies that kyso might reach for
TEST_ONLY = ("pytest", "xdist", "pkilint", "playwright", "schemathesis", "hypothesis", "atheris", "ruff", "mypy",
             "importlinter")


def without_test_extras(folder: Path, **env: str) -> dict[str, str]:
    """os.environ without KYSO_* (an operator's shell), plus a sitecustomize in ``folder`` that refuses TEST_ONLY."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoTestExtras:\n"
        f"    names = {TEST_ONLY!r}\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in self.names:\n"
        "            raise ImportError(f'a test extra was imported while running kyso: {name}')\n"
        "sys.meta_path.insert(0, _NoTestExtras())\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("KYSO_")}
    return {**base, "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}", **env}
