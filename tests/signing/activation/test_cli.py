"""``kyso activation``, run as a subprocess the way an operator runs it: an enrolment code (never a PIN
prompt or a secret), the sign-in name, status, unlock."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from api.container import Container
from core.settings import Settings
from signing.activation import crypto as sec, enrolment
from tests.helpers.activation import PIN, Phone


def test_enrol_code_username_status_unlock(pki: Container, settings: Settings, specialist: str) -> None:
    env = {**os.environ, "KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": settings.resolved_database_url,
           "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value(), "COLUMNS": "200"}  # type: ignore[union-attr]

    def kyso(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api.cli", "activation", *args], env=env, input=stdin, check=False,
                              capture_output=True, text=True, timeout=120)

    issued = kyso("enroll", specialist, "--json")
    assert issued.returncode == 0, issued.stderr
    out = json.loads(issued.stdout)
    assert "otpauth" not in issued.stdout and "PIN (6-12" not in issued.stdout + issued.stderr
    assert re.fullmatch(r"[2-9A-Z]{4}(-[2-9A-Z]{4}){3}", out["code"]) and "/me/enrol" in out["instructions"]
    assert json.loads(kyso("status", specialist, "--json").stdout)["state"] == "none"
    # she redeems it (her page, here in-process): the operator's terminal never saw the PIN or the key
    started = enrolment.redeem(pki.pki, out["code"], PIN, PIN)
    phone = Phone(sec.secret_from_uri(started.uri))
    assert started.text_key.replace(" ", "") not in issued.stdout
    enrolment.finish(pki.pki, out["code"], phone.code())
    assert json.loads(kyso("status", specialist, "--json").stdout)["state"] == "active"
    named = kyso("username", specialist, "Hoa.Nguyen")
    assert named.returncode == 0 and "hoa.nguyen" in named.stdout
    assert kyso("username", specialist, "x").returncode != 0
    assert kyso("unlock", specialist).returncode == 0
    assert "Issue a one-time enrolment code" in kyso("enroll", "--help").stdout
