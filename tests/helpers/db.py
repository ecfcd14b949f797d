"""Databases for tests: both backends, the per-session templates, settings, a container, the test PKI.

Database-touching tests run twice, on SQLite and on PostgreSQL (the server at
``KYSO_TEST_POSTGRES_URL``, default 127.0.0.1:5432/test). In CI (``CI=true``) an unreachable
PostgreSQL fails those tests; elsewhere they are skipped and the run says so.

Migrating is the slow part of a fresh database (about a second), so each session (each xdist
worker) migrates and seeds one template per backend, and a test built through the ``container``
fixture gets a copy of it: the SQLite template file copied to the test's own path, or on
PostgreSQL a database of its own made with ``CREATE DATABASE … TEMPLATE`` (dropped afterwards).
The copy is what ``build()`` would have made of an empty database, so ``build()`` is told not to
migrate it again. Making the test hierarchy (keys, certificates, CRLs) is the next slow step, so a
test that asks for ``pki`` starts from a second template per backend, made once per session: the
database after ``init_hierarchy`` and the soft keystore (the home folder) it wrote, copied together.
Only the ``pki`` fixture uses it, so a test that makes a hierarchy of its own (another kyso, a foreign
CA) still gets new keys. A fixture that makes its own settings (a live server, a module-wide instance) gets
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


def postgres_problem() -> str | None:
    """None when PostgreSQL answers at PG_URL, else the first line of the error (the tests and the bench ask)."""
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    problem = postgres_problem()
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
    template = "postgres_template"
    if from_template is None:
        from_template = "container" in request.fixturenames
        if _wants_pki(request):
            template = "postgres_pki_template"  # the ``container`` fixture copies its keys (see there)
    if from_template:
        made = request.getfixturevalue(template)
        with postgres_copy(made if isinstance(made, str) else made[0]) as url:
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


def _wants_pki(request: pytest.FixtureRequest) -> bool:
    return "pki" in request.fixturenames


def _hierarchy_template(home: Path, url: str) -> None:
    """Make the test hierarchy in a migrated database, as the ``pki`` fixture would, then release it."""
    made = build_migrated(make_settings(home, url))
    try:
        init_hierarchy(made.pki, root=ROOT, issuing=ISSUING, actor="test")
    finally:
        made.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_pki_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """This session's SQLite database with the test hierarchy in it, and the home folder holding its keys."""
    path = tmp_path_factory.mktemp("kyso-pki-template") / "kyso.db"
    shutil.copyfile(sqlite_template, path)
    _hierarchy_template(path.parent / "home", f"sqlite:///{path}")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path, path.parent / "home"


@pytest.fixture(scope="session")
def postgres_pki_template(postgres_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """This session's PostgreSQL template with the test hierarchy in it (its name), and the home with its keys."""
    home = tmp_path_factory.mktemp("kyso-pki-template-pg") / "home"
    name = _copy_database(postgres_template)
    try:
        _hierarchy_template(home, _pg_url(name))
        _vacuum(name)
        yield name, home
    finally:
        _drop_database(name)


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
        _vacuum(name)
        yield name
    finally:
        admin.dispose()
        _drop_database(name)


def _vacuum(name: str) -> None:
    """Leave autovacuum nothing to do in a template (its connection would block the copies)."""
    vacuum = create_engine(_pg_url(name), isolation_level="AUTOCOMMIT")
    with vacuum.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))
    vacuum.dispose()


def _copy_database(template: str) -> str:
    """A new database on the shared PostgreSQL made with ``CREATE DATABASE … TEMPLATE``; its name."""
    name = "t_" + secrets.token_hex(6)
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        for attempt in range(50):
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
                return name
            except OperationalError as exc:  # "source database is being accessed by other users" (autovacuum)
                if "being accessed by other users" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)
    finally:
        admin.dispose()
    raise AssertionError("unreachable")


def _drop_database(name: str) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextlib.contextmanager
def postgres_copy(template: str) -> Iterator[str]:
    """A database of its own on the shared PostgreSQL, copied from ``template``; its URL. Dropped afterwards."""
    name = _copy_database(template)
    url = _pg_url(name)
    _from_template.add(url)
    try:
        yield url
    finally:
        _from_template.discard(url)
        _drop_database(name)


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


MASTER_KEY = "test-master-key-" + "x" * 16


def make_settings(home: Path, url: str, **extra: object) -> Settings:
    return Settings(home=home, database_url=url, soft_master_key=MASTER_KEY, **extra)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path / "home", db_url)


@pytest.fixture
def container(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Container]:
    c = _with_hierarchy(request, settings) if _wants_pki(request) else build_for_test(request, settings)
    yield c
    c.engine.dispose()


def _with_hierarchy(request: pytest.FixtureRequest, settings: Settings) -> Container:
    """The ``container`` of a test that asks for ``pki``: a copy of the session's hierarchy template (the
    database, and the home folder with the keys the database names), when the settings keep keys in the
    soft keystore under the test's own home as the template's do; else ``build_for_test`` as usual."""
    url = settings.resolved_database_url
    master = settings.soft_master_key.get_secret_value() if settings.soft_master_key else None
    if settings.keystore != "soft" or master != MASTER_KEY or settings.home.exists():
        return build_for_test(request, settings)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if path.exists() or Path(f"{path}-wal").exists():
            return build_for_test(request, settings)
        database, home = request.getfixturevalue("sqlite_pki_template")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(database, path)
    elif url in _from_template:
        _, home = request.getfixturevalue("postgres_pki_template")
    else:
        return build_for_test(request, settings)
    shutil.copytree(home, settings.home)
    return build_migrated(settings)


@pytest.fixture
def pki(container: Container) -> Container:
    """A container with the test hierarchy (root + issuing CA, each with an OCSP responder).

    The hierarchy usually comes made, from the session's template (``_with_hierarchy``); making it again
    is then a no-op that only confirms it is there."""
    init_hierarchy(container.pki, root=ROOT, issuing=ISSUING, actor="test")
    return container


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """Say loudly when PostgreSQL was missing (checked here too: xdist workers keep their own state)."""
    problem = _pg_skipped[0] if _pg_skipped else (None if IN_CI else postgres_problem())
    if problem:
        terminalreporter.write_sep("!", "PostgreSQL was NOT reachable: database tests ran on SQLite only", red=True)
        terminalreporter.write_line(f"  {PG_URL}: {problem}")
