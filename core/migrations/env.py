"""Alembic environment. Migrations are explicit files; no model import is needed to run them."""
from alembic import context
from sqlalchemy import engine_from_config, pool, text

config = context.config
target_metadata = config.attributes.get("target_metadata")


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                         prefix="sqlalchemy.", poolclass=pool.NullPool)
        with connectable.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # several nodes starting at once: one migrates, the others wait and then find nothing to do
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('kyso-migrations:' || current_schema()))"))
        context.run_migrations()


run_migrations_online()
