"""The Alembic migrations create exactly the tables the models describe, on both databases."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import api.models  # noqa: F401 - register every table on Base.metadata
import core.audit  # noqa: F401
import pki.models
import pki.transparency.models
import pki.transparency.witness_models  # noqa: F401
import policies.history
import policies.units  # noqa: F401
import signing.activation.models
import signing.registry.models  # noqa: F401
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



@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite: kyso serve migrates before forking
def test_nodes_starting_together_migrate_once(db_url):
    """Several nodes (or `kyso serve` on several hosts) may start at the same moment: on PostgreSQL an
    advisory lock lets one migrate while the others wait, and every one of them ends at head."""
    import subprocess
    import sys

    from alembic.runtime.migration import MigrationContext as Context
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from core.db import alembic_config

    code = "import sys; from core.db import upgrade; upgrade(sys.argv[1])"
    nodes = [subprocess.Popen([sys.executable, "-c", code, db_url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(3)]  # processes: Alembic's context is process-global
    outputs = [node.communicate(timeout=120)[0].decode() for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0, 0], outputs
    engine = create_engine(db_url)
    with engine.connect() as conn:
        current = Context.configure(conn).get_current_revision()
    engine.dispose()
    assert current == ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()


def test_the_head_kyso_knows_is_alembics_head(tmp_path):
    """``core.db.upgrade`` skips Alembic for a database at ``HEAD_REVISION``: a new migration must move it."""
    from alembic.script import ScriptDirectory

    from core.db import HEAD_REVISION, alembic_config, at_head, upgrade

    url = f"sqlite:///{tmp_path / 'kyso.db'}"
    assert ScriptDirectory.from_config(alembic_config(url)).get_current_head() == HEAD_REVISION
    assert not at_head(url) and not (tmp_path / "kyso.db").exists()  # asking creates nothing
    upgrade(url, "0011")
    assert not at_head(url)
    upgrade(url)
    assert at_head(url)
