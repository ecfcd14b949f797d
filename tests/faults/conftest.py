"""Fault-injection fixtures: a private PostgreSQL server to stop and start, a real multi-process
`kyso serve`, and the consistency checks every fault test ends with.

The system PostgreSQL (127.0.0.1:5432) is shared with tests running in parallel and is never
stopped: a test that needs an outage starts its own server from Debian's binaries (initdb refuses
to run as root, so it runs as the ``postgres`` OS user), on a free loopback port, with its data in a
temporary folder removed afterwards. In CI (``CI=true``) missing binaries fail the test; elsewhere
it is skipped and says why.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.db import private_schema
from tests.helpers.faults import PrivatePostgres


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_schema_url(postgres_available: bool) -> Iterator[str]:
    """A private schema on the shared PostgreSQL (for faults that leave the database running)."""
    if not postgres_available:
        pytest.skip("PostgreSQL not reachable (set KYSO_TEST_POSTGRES_URL)")
    with private_schema() as url:
        yield f"{url}&connect_timeout=5"
