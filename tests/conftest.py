"""The root of the test suite: the shared fixtures (tests/helpers, registered here) and a marker per room.

Fixtures for every test live in ``tests/helpers/`` by topic (databases, servers, signing, the API, the
clock); pytest loads them through ``pytest_plugins`` below, which only the root conftest may declare.
Test modules import plain helpers from ``tests.helpers`` too, never from another test module or a
conftest. Each test gets the markers of the folders it lives in (``pytest -m verify``, ``-m hsm``).
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.helpers")  # their asserts explain themselves too, wherever imported from
pytest_plugins = [  # modules that hold fixtures; the other helpers are plain imports
    "tests.helpers.clock",  # frozen
    "tests.helpers.db",  # postgres_available, the templates, db_url, sqlite_url, settings, container, pki
    "tests.helpers.servers",  # live_pki
    "tests.helpers.signing",  # specialist, seal, phone, sample_pdf
    "tests.helpers.api",  # client, operator_headers, client_headers, other_specialist
    "tests.helpers.tlog",  # tlogcheck: the Go verifier of the transparency log
    "tests.helpers.witness",  # go_cosigcheck
]

TESTS = Path(__file__).resolve().parent
ROOMS = {"signing", "create", "verify", "activation", "registry", "pki", "hsm", "policies", "core", "api", "web",
         "attacks", "interop", "faults", "ops", "hostile"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its rooms: tests/signing/verify/test_x.py gets ``signing`` and ``verify``."""
    for item in items:
        try:
            parts = item.path.resolve().relative_to(TESTS).parts[:-1]
        except ValueError:
            continue
        for room in parts:
            if room in ROOMS:
                item.add_marker(room)
