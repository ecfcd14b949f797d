"""The attack suite runs on SQLite: every attack is about the file, not the database, and the
matrix is large. ``test_smoke.py`` puts back both databases for a few cases."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kyso.db'}"
