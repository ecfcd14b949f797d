"""The systemd unit printed in docs/operations.md, checked by systemd itself: `systemd-analyze verify` on the
unit as printed (only ExecStart's path points at this checkout's kyso, which systemd checks is executable)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.db import IN_CI

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def documented_unit() -> str:
    section = DOC.read_text("utf-8").split("### 1.6 systemd", 1)[1]
    match = re.search(r"```ini\n(.*?)```", section, re.S)
    assert match, "docs/operations.md §1.6 has no ```ini block"
    return match.group(1)


def test_documented_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if IN_CI:
            pytest.fail("systemd-analyze is missing (Debian package systemd; scripts/install-system-deps.sh --test)")
        pytest.skip("systemd-analyze is missing (apt-get install systemd)")
    unit = documented_unit()
    assert "ExecStart=/opt/kyso/.venv/bin/kyso serve" in unit
    kyso = Path(sys.executable).parent / "kyso"
    assert kyso.exists(), kyso
    (tmp_path / "kyso.service").write_text(unit.replace("/opt/kyso/.venv/bin/kyso", str(kyso)), "utf-8")
    proc = subprocess.run([analyze, "verify", str(tmp_path / "kyso.service")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stderr.strip() == "" and proc.stdout.strip() == "", proc.stderr


def test_no_trailing_comments() -> None:
    """systemd takes `Key=value  # note` as the value `value  # note` (a non-boolean PrivateTmp is ignored)."""
    for number, line in enumerate(documented_unit().splitlines(), 1):
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            assert "#" not in line.split("=", 1)[1], (number, line)


def test_verify_catches_a_trailing_comment(tmp_path: Path) -> None:
    """The check above is not blind: the unit as it was (a comment after PrivateTmp=yes) fails."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is missing")
    kyso = Path(sys.executable).parent / "kyso"
    broken = documented_unit().replace("/opt/kyso/.venv/bin/kyso", str(kyso)).replace(
        "PrivateTmp=yes", "PrivateTmp=yes   # the metrics directory")
    (tmp_path / "kyso.service").write_text(broken, "utf-8")
    proc = subprocess.run([analyze, "verify", str(tmp_path / "kyso.service")], capture_output=True, text=True,
                          timeout=120)
    assert "Failed to parse boolean value" in proc.stderr
