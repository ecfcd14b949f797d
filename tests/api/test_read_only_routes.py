"""Authenticated reads never wait for SQLite's write lock: the token check and the request's session are
read-only units (the once-a-minute record of a token's use is the only write, in a unit of its own)."""
from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import tokens
from api.container import Container
from core.db import transaction
from tests.helpers.api import new_token


@contextlib.contextmanager
def _write_lock_held(container: Container):  # type: ignore[no-untyped-def]
    """Another process's writer, holding the database's write lock (BEGIN IMMEDIATE) until the block ends."""
    path = Path(container.settings.resolved_database_url.removeprefix("sqlite:///"))
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_reads_do_not_wait_for_the_write_lock(pki: Container, client: TestClient) -> None:
    token = new_token(pki, tokens.Role.read_only)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/documents", headers=headers).status_code == 200  # records the token's use
    with _write_lock_held(pki):
        # a read that asked for the write lock would wait for it (30 s), then answer 503 "database is locked"
        for path in ("/api/v1/documents", "/api/v1/cas", "/api/v1/certificates"):
            r = client.get(path, headers=headers)
            assert r.status_code == 200, (path, r.text)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_token_use_is_still_recorded(pki: Container, client: TestClient) -> None:
    token = new_token(pki, tokens.Role.read_only, name="reader")
    assert client.get("/api/v1/documents", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with transaction(pki.sessions, read_only=True) as session:
        [row] = [t for t in tokens.list_tokens(session) if t.name == "reader"]
        assert row.last_used_at is not None
