"""`make run` installs what running needs and nothing more; `make test` adds the test tools; `make run PORT=N`
reaches `kyso demo --port N`. And running kyso imports none of the test extras."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers.runtime import ROOT, without_test_extras


def _dry_run(target: str, tmp_path: Path, *extra: str) -> str:
    """What `make TARGET` would run on a fresh clone (no virtual environment yet), without running it."""
    proc = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}", *extra], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    return proc.stdout


def test_make_run_installs_only_what_running_needs(tmp_path: Path) -> None:
    run = _dry_run("run", tmp_path, "PORT=8001")
    assert "pip install -q -e .\n" in run and ".[test]" not in run
    assert "install-system-deps.sh\n" in run and "--test" not in run
    assert f"{tmp_path / 'venv'}/bin/kyso demo --host 127.0.0.1 --port 8001" in run
    test = _dry_run("test", tmp_path)
    assert "pip install -q -e '.[test]'" in test and "install-system-deps.sh --test" in test
    assert test.index("pip install -q -e .\n") < test.index("'.[test]'") < test.index("bin/pytest -q")


def test_test_packages_are_listed_only_for_tests() -> None:
    script = (ROOT / "scripts" / "install-system-deps.sh").read_text()
    runtime, _, testing = script.partition('if [ "${1:-}" = "--test" ]')
    assert "chromium" not in runtime.split("packages=(", 1)[1].split(")", 1)[0] and "chromium" in testing
    assert "systemd" in testing and "jq" in runtime  # jq: the documented examples use it


def test_running_kyso_imports_no_test_extra(tmp_path: Path) -> None:
    """`kyso demo --no-serve` and the app's creation, with the test extras made unimportable."""
    env = without_test_extras(tmp_path / "block", KYSO_HOME=str(tmp_path / "home"))
    probe = subprocess.run([sys.executable, "-c", "import pytest"], env=env, capture_output=True, text=True,
                           timeout=60, cwd=ROOT)
    assert probe.returncode != 0 and "a test extra was imported" in probe.stderr  # the block works
    demo = subprocess.run([sys.executable, "-m", "api.cli", "demo", "--no-serve"], env=env, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert demo.returncode == 0 and "kyso is ready" in demo.stdout, demo.stderr[-3000:]
    app = subprocess.run([sys.executable, "-c", "from api.asgi import app; print(type(app).__name__)"], env=env,
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert app.returncode == 0 and app.stdout.strip(), app.stderr[-3000:]
