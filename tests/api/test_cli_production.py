"""The CLI in production: each refusal is one clear message and exit status 2, never a traceback; in
development `kyso demo` (what `make run` starts) still sets everything up, with owner-only files."""
from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

STRONG = secrets.token_urlsafe(32)
PRODUCTION = {"KYSO_ENVIRONMENT": "production", "KYSO_BASE_URL": "https://kyso.example.vn",
              "KYSO_SOFT_MASTER_KEY": STRONG}


def kyso(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KYSO_")}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**base, "KYSO_HOME": str(home), "COLUMNS": "200", **env})


def refused(proc: subprocess.CompletedProcess[str], code: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert f"({code})" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_demo_in_development_then_refused_in_production(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    ready = kyso(home, "demo", "--no-serve")  # development, no master key given: as `make run`
    assert ready.returncode == 0, ready.stderr
    assert "kyso is ready" in ready.stdout and "/me/enrol" in ready.stdout  # her enrolment code, never a PIN
    assert "PIN 2" not in ready.stdout and "246813" not in ready.stdout
    assert mode(home / "kyso.db") == 0o600 and mode(home / "keystore") == 0o700
    assert all(mode(f) == 0o600 for f in (home / "keystore").iterdir())
    listing = json.loads(kyso(home, "cert", "list", "--json").stdout)["items"]
    assert any("Nguyễn Thị Hồng Nhung" in item["subject"] for item in listing)  # the demo specialist

    message = refused(kyso(home, "demo", "--no-serve", **PRODUCTION), "demo_in_production")
    assert "KYSO_ENVIRONMENT=production" in message and "kyso ca init" in message
    # the demo's data folder does not become production either
    message = refused(kyso(home, "cert", "list", **PRODUCTION), "demo_data_in_production")
    assert "demo-signing.json" in message and "new KYSO_HOME" in message
    refused(kyso(home, "serve", **PRODUCTION), "demo_data_in_production")

    fresh = tmp_path / "fresh"
    refused(kyso(fresh, "demo", "--no-serve", **PRODUCTION), "demo_in_production")
    assert not fresh.exists()  # refused before anything was made


def test_production_starts_on_private_files_and_refuses_loose_ones(tmp_path: Path) -> None:
    home = tmp_path / "prod"
    made = kyso(home, "ca", "init", "--org", "Sở KH&CN thử nghiệm", "--json", **PRODUCTION)
    assert made.returncode == 0, made.stderr
    assert sorted(json.loads(made.stdout)["created"]) == ["kyso-issuing", "kyso-root"]
    assert mode(home / "kyso.db") == 0o600
    (home / "kyso.db").chmod(0o644)
    message = refused(kyso(home, "cert", "list", **PRODUCTION), "files_not_private")
    assert f"chmod 600 {home / 'kyso.db'}" in message
    refused(kyso(home, "serve", "--port", "1", **PRODUCTION), "files_not_private")  # before any worker starts
    (home / "kyso.db").chmod(0o600)
    (home / "keystore").chmod(0o755)
    message = refused(kyso(home, "cert", "list", **PRODUCTION), "files_not_private")
    assert f"chmod 700 {home / 'keystore'}" in message
    (home / "keystore").chmod(0o700)
    assert kyso(home, "cert", "list", "--json", **PRODUCTION).returncode == 0


def test_weak_key_and_http_url_are_refused_on_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "prod"
    weak = refused(kyso(home, "cert", "list", **{**PRODUCTION, "KYSO_SOFT_MASTER_KEY": "a" * 16}),
                   "configuration_error")
    assert "KYSO_SOFT_MASTER_KEY" in weak and "128" in weak and "a" * 16 not in weak
    http = refused(kyso(home, "serve", **{**PRODUCTION, "KYSO_BASE_URL": "http://kyso.example.vn"}),
                   "configuration_error")
    assert "KYSO_BASE_URL" in http and "https://" in http
    assert not home.exists()  # refused when the settings are read, before anything is made
