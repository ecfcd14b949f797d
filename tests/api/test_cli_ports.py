"""The operator's first minutes: `kyso demo --port N` (what `make run PORT=N` runs) serves on N and encodes N in
everything it prints and signs; a busy port is one clear error before anything says "ready"."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers.qr import scan
from tests.helpers.servers import free_port, stop_process, wait_healthy


def _env(home: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KYSO_")}  # as an operator's shell: no base URL
    return {**base, "KYSO_HOME": str(home), "COLUMNS": "200", "KYSO_RUN_SCHEDULER": "false"}


@pytest.mark.parametrize("command", ["demo", "serve"])
def test_busy_port_is_a_clear_error_before_ready(tmp_path: Path, command: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "api.cli", command, "--port", str(port)], capture_output=True,
                              text=True, timeout=120, env=_env(tmp_path / "home"))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "(port_in_use)" in proc.stderr and f"port {port}" in proc.stderr and "Traceback" not in proc.stderr
    assert f"--port {port + 1}" in proc.stderr  # says what to do
    assert "ready" not in proc.stdout


def test_demo_serves_and_encodes_the_chosen_port(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    log = tmp_path / "demo.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "demo", "--port", str(port)], env=_env(home),
                                stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_healthy(base, proc, 120), log.read_text(errors="replace")
        printed = log.read_text("utf-8", errors="replace")
        assert "kyso is ready" in printed and f"URL             {base}" in printed
        assert ":8000" not in printed  # no instruction points at the default port
        [verify_url] = re.findall(r"its verification URL:\s+(\S+)", printed)
        assert verify_url.startswith(f"{base}/v/")
        assert httpx.get(verify_url, timeout=30).status_code == 200  # the URL the QR encodes answers here
        # the signed example's QR code carries the chosen port too, and the CRL is published there
        subprocess.run(["pdftoppm", "-r", "150", "-png", str(home / "sample-signed.pdf"), str(tmp_path / "page")],
                       check=True, timeout=120)
        codes = scan(*sorted(tmp_path.glob("page*.png")))
        assert codes and all(code.startswith(verify_url) for code in codes), (codes, verify_url)
        crl = httpx.get(f"{base}/crl/kyso-issuing.crl", timeout=30)
        assert crl.status_code == 200
    finally:
        stop_process(proc, 10)


def test_an_explicit_base_url_is_kept(tmp_path: Path) -> None:
    """KYSO_BASE_URL set by the operator (a proxy's public name) wins: the port only changes where kyso listens."""
    env = {**_env(tmp_path / "home"), "KYSO_BASE_URL": "https://kyso.example.vn"}
    proc = subprocess.run([sys.executable, "-m", "api.cli", "demo", "--no-serve", "--port", "8001"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "URL             http://127.0.0.1:8001" in proc.stdout
    [verify_url] = re.findall(r"its verification URL:\s+(\S+)", proc.stdout)
    assert verify_url.startswith("https://kyso.example.vn/v/")
