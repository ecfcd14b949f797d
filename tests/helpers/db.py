"""Databases for tests: both backends, the per-session templates, settings, a container, the test PKI.

Database-touching tests run twice, on SQLite and on PostgreSQL (the server at
``KYSO_TEST_POSTGRES_URL``, default 127.0.0.1:5432/test). In CI (``CI=true``) an unreachable
PostgreSQL fails those tests; elsewhere they are skipped and the run says so.

Migrating is the slow part of a fresh database (about a second), so each session (each xdist
worker) migrates and seeds one template per backend, and a test built through the ``container``
fixture gets a copy of it: the SQLite template file copied to the test's own path, or on
PostgreSQL a database of its own made with ``CREATE DATABASE … TEMPLATE`` (dropped afterwards).
The copy is what ``build()`` would have made of an empty database, so ``build()`` is told not to
migrate it again. A fixture that makes its own settings (a live server, a module-wide instance) gets
the same by calling ``build_for_test`` (or ``fresh_instance``) instead of ``build``. A test that asks
for ``db_url`` without ``container`` (the migration tests, the CLI) still gets an empty database: a
fresh SQLite path, or a private PostgreSQL schema.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from api.container import Container, build, prepare_database
from core.settings import Settings
from pki.authorities import CaSpec, init_hierarchy

PG_URL = os.environ.get("KYSO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROOT = CaSpec(name="test-root", common_name="kyso Test Root CA", organization="kyso thử nghiệm")
ISSUING = CaSpec(name="test-issuing", common_name="kyso Test Issuing CA", organization="kyso thử nghiệm")
_pg_skipped: list[str] = []


def _postgres_reachable() -> str | None:
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    problem = _postgres_reachable()
    if problem is None:
        return True
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_URL}: {problem}")
    _pg_skipped.append(problem)
    return False


@contextlib.contextmanager
def database_url(request: pytest.FixtureRequest, directory: Path, *,
                 from_template: bool | None = None) -> Iterator[str]:
    """SQLite in ``directory``, or PostgreSQL, by ``request.param`` (dropped afterwards).

    On PostgreSQL, a test built through the ``container`` fixture (or any caller that says ``from_template``
    and builds with ``build_for_test``) gets a copy of the session's migrated template (a database of its
    own); any other gets an empty private schema. On SQLite ``build_for_test`` copies the template itself."""
    if request.param == "sqlite":
        yield f"sqlite:///{directory / 'kyso.db'}"
        return
    if not request.getfixturevalue("postgres_available"):
        pytest.skip("PostgreSQL not reachable (set KYSO_TEST_POSTGRES_URL); ran on SQLite only")
    if from_template is None:
        from_template = "container" in request.fixturenames
    if from_template:
        with postgres_copy(request.getfixturevalue("postgres_template")) as url:
            yield url
        return
    with private_schema() as url:
        yield url


@contextlib.contextmanager
def private_schema() -> Iterator[str]:
    """A fresh schema on the shared PostgreSQL, its URL (search_path set), dropped afterwards."""
    schema = "t_" + secrets.token_hex(6)
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# -- templates: migrate once per session, copy per test -------------------------------------------
_from_template: set[str] = set()  # URLs of the live PostgreSQL copies: migrated and seeded already


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This session's SQLite database, migrated and seeded; tests get byte copies of the file."""
    path = tmp_path_factory.mktemp("kyso-template") / "kyso.db"
    prepare_database(make_settings(path.parent / "home", f"sqlite:///{path}"))
    with contextlib.closing(sqlite3.connect(path)) as conn:  # everything in the main file, nothing left in -wal
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _pg_url(database: str) -> str:
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_template(postgres_available: bool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This session's PostgreSQL template database (per xdist worker, and per run: several runs may share
    the server), migrated and seeded; its name. Dropped at the end of the session."""
    name = f"kyso_tmpl_{_worker()}_{secrets.token_hex(4)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        prepare_database(make_settings(tmp_path_factory.mktemp("kyso-template-pg"), _pg_url(name)))
        vacuum = create_engine(_pg_url(name), isolation_level="AUTOCOMMIT")
        with vacuum.connect() as conn:  # leaves autovacuum nothing to do there (its connection would block copies)
            conn.execute(text("VACUUM ANALYZE"))
        vacuum.dispose()
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def postgres_copy(template: str) -> Iterator[str]:
    """A database of its own on the shared PostgreSQL, copied from ``template``; its URL. Dropped afterwards."""
    name = "t_" + secrets.token_hex(6)
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        for attempt in range(50):
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
                break
            except OperationalError as exc:  # "source database is being accessed by other users" (autovacuum)
                if "being accessed by other users" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)
        url = _pg_url(name)
        _from_template.add(url)
        try:
            yield url
        finally:
            _from_template.discard(url)
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def build_for_test(request: pytest.FixtureRequest, settings: Settings) -> Container:
    """``build(settings)``, starting from the session's template when the database is still empty: a SQLite
    file that does not exist yet gets a copy of the template; a PostgreSQL copy is already one. Either way
    the database is what ``build()`` would have made of it, so it is not migrated again."""
    url = settings.resolved_database_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists() and not Path(f"{path}-wal").exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
            return build_migrated(settings)
    elif url in _from_template:
        return build_migrated(settings)
    return build(settings)


def build_migrated(settings: Settings) -> Container:
    """``build`` on a database that is migrated and seeded already (a template copy, or another container's
    database: a second worker's view of it); the same ``settings`` object, as given."""
    migrate = settings.migrate_on_start
    settings.migrate_on_start = False
    try:
        return build(settings)
    finally:
        settings.migrate_on_start = migrate


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request, tmp_path) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """For tests that exercise one process-level behaviour and need no second backend."""
    return f"sqlite:///{tmp_path / 'kyso.db'}"


def make_settings(home: Path, url: str, **extra: object) -> Settings:
    return Settings(home=home, database_url=url, soft_master_key="test-master-key-" + "x" * 16,  # type: ignore[arg-type]
                    **extra)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path / "home", db_url)


@pytest.fixture
def container(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Container]:
    c = build_for_test(request, settings)
    yield c
    c.engine.dispose()


@pytest.fixture
def pki(container: Container) -> Container:
    """A container with the test hierarchy (root + issuing CA, each with an OCSP responder)."""
    init_hierarchy(container.pki, root=ROOT, issuing=ISSUING, actor="test")
    return container


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """Say loudly when PostgreSQL was missing (checked here too: xdist workers keep their own state)."""
    problem = _pg_skipped[0] if _pg_skipped else (None if IN_CI else _postgres_reachable())
    if problem:
        terminalreporter.write_sep("!", "PostgreSQL was NOT reachable: database tests ran on SQLite only", red=True)
        terminalreporter.write_line(f"  {PG_URL}: {problem}")
