"""The keystore contract suite runs once per backend; each backend brings its own fixture module."""
from __future__ import annotations

from pathlib import Path

import pytest

from hsm.soft import SoftKeyStore
from tests.hsm.pkcs11_fixtures import pkcs11_keystore  # noqa: F401
from tests.hsm.vault_fixtures import bao_server, vault_keystore, vault_mount  # noqa: F401

BACKENDS = ["soft", "pkcs11", "vault"]


@pytest.fixture
def soft_keystore(tmp_path: Path) -> SoftKeyStore:
    return SoftKeyStore(tmp_path / "keystore", b"contract-test-master-key")


@pytest.fixture(params=BACKENDS)
def keystore(request: pytest.FixtureRequest):
    return request.getfixturevalue(f"{request.param}_keystore")
