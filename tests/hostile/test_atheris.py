"""A short coverage-guided run of every atheris target (tests/hostile/fuzz_atheris.py); atheris is a test
dependency (pyproject.toml), so a missing one fails here instead of skipping."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import atheris  # noqa: F401 - a test dependency: its absence is an error, not a skip
import pytest

HARNESS = Path(__file__).with_name("fuzz_atheris.py")
ROOT = HARNESS.parents[2]


@pytest.mark.parametrize("target", ["pdf", "tsa", "ocsp", "csr", "policy"])
def test_atheris_target_survives_a_short_run(target: str, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(HARNESS), target, "-runs=1500", "-seed=1", "-max_len=4096",
                          f"-artifact_prefix={tmp_path}/"], cwd=ROOT, capture_output=True, text=True, timeout=240,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-3000:]
