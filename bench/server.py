"""A real `kyso serve` subprocess, as tests/helpers/servers.py's LiveServer starts it, but with its output
going to a log file: uvicorn logs every request, and an unread pipe would stall the server under load."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.servers import free_port, stop_process, wait_healthy

from .common import ROOT_DIR, python_env


class BenchServer:
    def __init__(self, settings, port: int, log_path: Path, workers: int = 1,  # type: ignore[no-untyped-def]
                 env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.port, self.url, self.log_path = port, f"http://127.0.0.1:{port}", log_path
        env = {**python_env(), "KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": settings.resolved_database_url,
               "KYSO_BASE_URL": self.url,
               "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value() if settings.soft_master_key else "",
               **(env or {})}
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
        if workers != 1:
            cmd += ["--workers", str(workers)]
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT_DIR, stdout=self._log, stderr=subprocess.STDOUT)
        if wait_healthy(self.url, self.proc, 60):
            return
        self.stop()
        raise RuntimeError(f"kyso serve did not start:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def count_in_log(self, needle: str) -> int:
        try:
            return self.log_path.read_text(errors="replace").count(needle)
        except OSError:
            return 0

    def stop(self) -> None:
        stop_process(self.proc, 15)
        if not self._log.closed:
            self._log.close()


__all__ = ["BenchServer", "free_port", "os"]
