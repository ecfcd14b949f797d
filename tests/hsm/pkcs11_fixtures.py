"""SoftHSM2 for the keystore tests: one token directory per test process, a fresh token per test.

A PKCS#11 library is loaded once per process and SoftHSM2 reads ``SOFTHSM2_CONF`` and scans its
tokens only at ``C_Initialize``. So each test points ``SOFTHSM2_CONF`` (via monkeypatch) at this
process's own configuration, creates a token with a unique label with ``softhsm2-util``, then
re-initializes the library so it sees the new token. The system-wide SoftHSM2 configuration and
tokens are never touched. SoftHSM2 is installed by ``scripts/install-system-deps.sh``; when it is
missing these tests fail (in CI and elsewhere), they never skip.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hsm.pkcs11 import Pkcs11KeyStore, load_module

USER_PIN = "user-pin-5173"
SO_PIN = "so-pin-8421-7731"
MODULE_PATHS = [
    "/usr/lib/softhsm/libsofthsm2.so",  # Debian, Ubuntu
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",  # Fedora
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
]


@dataclass
class SoftHsm:
    module: Path
    util: str
    conf: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf)}

    def new_token(self, monkeypatch: pytest.MonkeyPatch, pin: str = USER_PIN) -> str:
        """Initialize a token with a unique label and make the loaded library see it."""
        monkeypatch.setenv("SOFTHSM2_CONF", str(self.conf))  # read by C_Initialize below
        label = f"kyso-{secrets.token_hex(4)}"
        subprocess.run([self.util, "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", pin],
                       env=self.env(), check=True, capture_output=True, timeout=60)
        load_module(str(self.module), reload=True)
        return label

    def delete_token(self, label: str) -> None:
        subprocess.run([self.util, "--delete-token", "--token", label],
                       env=self.env(), check=False, capture_output=True, timeout=60)

    def keystore(self, label: str, pin: str = USER_PIN, pool_size: int = 8) -> Pkcs11KeyStore:
        from pydantic import SecretStr

        return Pkcs11KeyStore(self.module, label, SecretStr(pin), pool_size=pool_size)


_softhsm: SoftHsm | None = None


def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    """This process's SoftHSM2 configuration; fails loudly when SoftHSM2 is not installed."""
    global _softhsm
    if _softhsm is None:
        util = shutil.which("softhsm2-util")
        module = os.environ.get("KYSO_TEST_PKCS11_MODULE") or next(
            (p for p in MODULE_PATHS if Path(p).is_file()), None)
        if util is None or module is None or not Path(module).is_file():
            where = "the CI image" if os.environ.get("CI") == "true" else "this machine"
            pytest.fail(f"SoftHSM2 is missing on {where} (softhsm2-util: {util}, module: {module}); the project "
                        "installs it: run `bash scripts/install-system-deps.sh --test` (or `make install-test`), or set "
                        "KYSO_TEST_PKCS11_MODULE to the libsofthsm2.so path", pytrace=False)
        root = tmp_path_factory.mktemp("softhsm")
        (root / "tokens").mkdir()
        conf = root / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
                        "log.level = ERROR\nslots.removable = false\n")
        _softhsm = SoftHsm(Path(module), util, conf)
    return _softhsm


@pytest.fixture
def pkcs11_token(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh token's label, deleted afterwards."""
    hsm = softhsm(tmp_path_factory)
    label = hsm.new_token(monkeypatch)
    yield label
    hsm.delete_token(label)


@pytest.fixture
def pkcs11_keystore(tmp_path_factory: pytest.TempPathFactory, pkcs11_token: str) -> Pkcs11KeyStore:
    return softhsm(tmp_path_factory).keystore(pkcs11_token)


def reopen_pkcs11(request: pytest.FixtureRequest) -> Pkcs11KeyStore:
    """A new store on the same token after the module is initialized again (its sessions and logins end),
    as a restarted process sees it."""
    hsm = softhsm(request.getfixturevalue("tmp_path_factory"))
    load_module(str(hsm.module), reload=True)
    return hsm.keystore(request.getfixturevalue("pkcs11_token"))
