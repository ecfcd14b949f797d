"""The keystore contract suite runs once per backend; each backend brings its own fixture module."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hsm import KeyStore
from hsm.soft import SoftKeyStore
from hsm.vault import VaultKeyStore
from tests.hsm.pkcs11_fixtures import pkcs11_keystore, pkcs11_token, reopen_pkcs11  # noqa: F401
from tests.hsm.vault_fixtures import bao_server, vault_keystore, vault_mount  # noqa: F401

BACKENDS = ["soft", "pkcs11", "vault"]
SOFT_MASTER_KEY = b"contract-test-master-key"


@pytest.fixture
def soft_keystore(tmp_path: Path) -> SoftKeyStore:
    return SoftKeyStore(tmp_path / "keystore", SOFT_MASTER_KEY)


@pytest.fixture(params=BACKENDS)
def keystore(request: pytest.FixtureRequest):
    return request.getfixturevalue(f"{request.param}_keystore")


def _reopen_vault(request: pytest.FixtureRequest) -> VaultKeyStore:
    server = request.getfixturevalue("bao_server")
    return VaultKeyStore(server.addr, mount=request.getfixturevalue("vault_mount"), token=server.root_token, timeout=5)


_REOPEN: dict[str, Callable[[pytest.FixtureRequest], KeyStore]] = {
    "soft": lambda request: SoftKeyStore(request.getfixturevalue("tmp_path") / "keystore", SOFT_MASTER_KEY),
    "pkcs11": reopen_pkcs11,
    "vault": _reopen_vault,
}


@pytest.fixture
def reopen_keystore(keystore: KeyStore, request: pytest.FixtureRequest) -> Callable[[], KeyStore]:
    """A new instance of ``keystore``'s backend over the same keys, with nothing cached: a restart."""
    return lambda: _REOPEN[keystore.scheme](request)
