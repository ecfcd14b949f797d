"""One kyso per test module for hostile-input tests: SQLite, the test hierarchy, a token per role, a
specialist and a seal credential. Module-scoped because hypothesis and schemathesis run many examples
against one app, and rebuilding a PKI per example would cost seconds each.

Hostile input is about parsing, not storage: these tests run on SQLite only (the PostgreSQL half of
the suite covers the same routes with valid input).
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api import tokens
from api.app import create_app
from core.db import transaction
from pki.authorities import init_hierarchy
from policies.documents import DOCUMENTS_FILE
from tests.helpers.api import new_token
from tests.helpers.db import ISSUING, ROOT, build_for_test, make_settings
from tests.helpers.hostile import Kyso
from tests.helpers.signing import SpecialistPhone, issue_credential


@pytest.fixture(scope="module")
def kyso(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kyso]:
    home = tmp_path_factory.mktemp("hostile")
    # the open routes' per-address rate limit would answer most generated requests with 429 (tested elsewhere)
    policy_file = home / "document-types.yaml"  # a copy the policy tests may break and restore
    policy_file.write_bytes(DOCUMENTS_FILE.read_bytes())
    container = build_for_test(request, make_settings(home / "home", f"sqlite:///{home / 'kyso.db'}",
                                                      verify_rate_per_second=10_000.0, verify_burst=100_000,
                                                      policy_file=policy_file))
    init_hierarchy(container.pki, root=ROOT, issuing=ISSUING, actor="test")
    specialist = issue_credential(container)
    seal = issue_credential(container, "seal", name="Ủy ban nhân dân Phường Ba Đình")
    container.settings.report_seal_credential = seal  # PDF verification reports are sealed (as `kyso demo` does)
    headers = {role.value: {"Authorization": f"Bearer {new_token(container, role)}"} for role in tokens.Role}
    with transaction(container.sessions) as session:  # another commune, reading only: most things are hidden
        scope = tokens.build_scope(session, units=["00008"], operations=["read"], document_types=["dossier-result"])
        headers["scoped-client"] = {"Authorization": "Bearer " + tokens.create(
            session, "scoped-client", tokens.Role.client, "test", scope=scope)}
    with TestClient(create_app(container, scheduler=False), raise_server_exceptions=False) as client:
        yield Kyso(container, client, headers, specialist, seal, SpecialistPhone(container, specialist))
    container.engine.dispose()
