"""The keystore contract suite runs once per backend; each backend brings its own fixture module."""
from __future__ import annotations

from pathlib import Path

import pytest

from hsm.soft import SoftKeyStore

BACKENDS = ["soft"]  # pkcs11 and vault join here when their fixture modules land


@pytest.fixture
def soft_keystore(tmp_path: Path) -> SoftKeyStore:
    return SoftKeyStore(tmp_path / "keystore", b"contract-test-master-key")


@pytest.fixture(params=BACKENDS)
def keystore(request: pytest.FixtureRequest):
    return request.getfixturevalue(f"{request.param}_keystore")
