"""``kyso activation``, run as a subprocess the way an operator runs it: hidden PIN prompts, QR, confirm, unlock."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from api.container import Container
from core.settings import Settings
from signing.activation import crypto as sec, factors
from tests.helpers.activation import PIN, Phone


def test_enrol_confirm_status_unlock(pki: Container, settings: Settings, specialist: str, tmp_path: Path) -> None:
    env = {**os.environ, "KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": settings.resolved_database_url,
           "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value(), "COLUMNS": "200"}  # type: ignore[union-attr]

    def kyso(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api.cli", "activation", *args], env=env, input=stdin, check=False,
                              capture_output=True, text=True, timeout=120)

    png = tmp_path / "enrol.png"
    mismatch = kyso("enroll", specialist, stdin=f"{PIN}\n{PIN[::-1]}\n")
    assert mismatch.returncode == 2 and "differ" in mismatch.stderr
    enrolled = kyso("enroll", specialist, "--png", str(png), stdin=f"{PIN}\n{PIN}\n")
    assert enrolled.returncode == 0, enrolled.stderr
    assert PIN not in enrolled.stdout and png.read_bytes().startswith(b"\x89PNG") and png.stat().st_mode & 0o077 == 0
    uri = re.search(r"otpauth://\S+", enrolled.stdout).group(0)  # type: ignore[union-attr]
    phone = Phone(sec.secret_from_uri(uri))
    assert json.loads(kyso("status", specialist, "--json").stdout)["state"] == "pending"
    confirmed = kyso("confirm", specialist, stdin=phone.code() + "\n")
    assert confirmed.returncode == 0, confirmed.stderr
    for _ in range(factors.MAX_FAILED_ATTEMPTS):
        changed = kyso("change-pin", specialist, stdin="999999\n314159\n314159\n")
        assert changed.returncode == 2
    assert "locked" in changed.stderr
    assert json.loads(kyso("status", specialist, "--json").stdout)["state"] == "locked"
    assert kyso("unlock", specialist).returncode == 0
    assert kyso("change-pin", specialist, stdin=f"{PIN}\n314159\n314159\n").returncode == 0
    assert json.loads(kyso("status", specialist, "--json").stdout)["state"] == "active"
