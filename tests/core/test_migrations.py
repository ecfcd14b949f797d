"""The Alembic migrations create exactly the tables the models describe, on both databases."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import api.tokens  # noqa: F401 - register every table on Base.metadata
import core.audit  # noqa: F401
import pki.models  # noqa: F401
import pki.approvals  # noqa: F401
import signing.models  # noqa: F401
import policies.units  # noqa: F401
import policies.history  # noqa: F401
import signing.activation  # noqa: F401
import signing.requests  # noqa: F401
from core.db import Base, upgrade


def test_models_match_migrations(db_url):
    upgrade(db_url)
    upgrade(db_url)  # idempotent
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations disagree; generate a migration: {diff}"

