"""Real servers for tests: a free loopback port, ``kyso serve`` in a subprocess, a live test PKI."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.container import Container
from core.settings import Settings
from pki.authorities import init_hierarchy
from tests.helpers.db import ISSUING, ROOT, build_for_test, make_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """True once ``url``'s /healthz answers 200; False when the process exits first or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Terminate, wait ``grace`` seconds, then kill (and reap) a server that did not stop."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class LiveServer:
    """A real `kyso serve` subprocess on a free loopback port, sharing the test's data folder."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        env = {**os.environ, "KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": settings.resolved_database_url,
               "KYSO_BASE_URL": self.url,
               # tests change statuses from another process and ask at once: check before every answer
               "KYSO_OCSP_CACHE_CHECK_SECONDS": os.environ.get("KYSO_OCSP_CACHE_CHECK_SECONDS", "0"),
               "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value() if settings.soft_master_key else ""}
        # the log goes to a file: a pipe nobody reads fills up under load and blocks the server
        self.log_path = settings.home / f"serve-{port}.log"
        settings.home.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port)], env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        if wait_healthy(self.url, self.proc, 30):
            return
        self.stop()
        output = self.log_path.read_text(errors="replace")
        raise RuntimeError(f"kyso serve did not start: {output}")

    def stop(self) -> None:
        stop_process(self.proc, 10)
        self._log.close()


@pytest.fixture
def live_pki(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Container, LiveServer]]:
    """The test hierarchy with KYSO_BASE_URL pointing at a running `kyso serve` (its own data folder)."""
    port = free_port()
    home = tmp_path / "live"
    settings = make_settings(home, f"sqlite:///{home / 'kyso.db'}", base_url=f"http://127.0.0.1:{port}")
    c = build_for_test(request, settings)
    init_hierarchy(c.pki, root=ROOT, issuing=ISSUING, actor="test")
    server = LiveServer(settings, port)
    try:
        yield c, server
    finally:
        server.stop()
        c.engine.dispose()
