"""The transparency log's outside verifier: a small Go program over golang.org/x/mod/sumdb/{note,tlog}.

``tlogcheck`` (session-scoped) builds tests/helpers/tlogcheck/main.go once per test session, offline, in
GOPATH mode against Debian's golang-golang-x-mod-dev sources; ``run_tlogcheck`` runs it and returns
(ok, output). Without Go the tests that need it skip locally and fail in CI (``CI=true``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent / "tlogcheck" / "main.go"
GOPATH = Path("/usr/share/gocode")  # golang-golang-x-mod-dev
XMOD = GOPATH / "src" / "golang.org" / "x" / "mod" / "sumdb" / "tlog"


@pytest.fixture(scope="session")
def tlogcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    missing = ("the go toolchain (apt golang-go)" if go is None
               else None if XMOD.is_dir() else f"x/mod sources in {XMOD} (apt golang-golang-x-mod-dev)")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Go log checker needs {missing}; scripts/install-system-deps.sh --test installs it")
        pytest.skip(f"needs {missing}")
    assert go is not None
    work = tmp_path_factory.mktemp("tlogcheck")
    binary = work / "tlogcheck"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "GO111MODULE": "off", "GOPATH": str(GOPATH),
           "GOCACHE": str(work / "cache"), "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0"}
    done = subprocess.run([go, "build", "-o", str(binary), str(SOURCE)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, f"go build failed:\n{done.stderr}"
    return binary


def run_tlogcheck(binary: Path, *args: str) -> tuple[bool, str]:
    done = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120, check=False)
    return done.returncode == 0, done.stdout + done.stderr
