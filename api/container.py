"""Builds kyso's parts from settings, once, for the web app and the CLI alike."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_session_factory, transaction, upgrade
from core.settings import Settings, load_settings
from hsm import KeyStoreRegistry
from pki.context import PkiContext
from policies import units
from policies.profiles import ProfileSet
from signing import speedups
from signing.create.service import SigningService
from signing.material import MaterialCache, revocation_watch
from signing.verify.verifier import Verifier


@dataclass
class Container:
    settings: Settings
    engine: Engine
    pki: PkiContext
    signing: SigningService
    verifier: Verifier

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.pki.sessions


def prepare_database(settings: Settings) -> None:
    """Migrate the schema and seed the unit catalogue (once per deployment step, not per worker)."""
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            units.ensure_seeded(session)
    finally:
        engine.dispose()


def build(settings: Settings | None = None) -> Container:
    """Settings → database (migrated and seeded unless told not to) → keystores → profiles → PKI context.

    Per-process state is made here (or by the object that owns it) and passed in: one revocation-epoch
    watch shared by every cache a revocation invalidates, the material cache shared by signing and
    verification, and the library speed-ups (``signing.speedups``, idempotent) installed once."""
    speedups.install()
    settings = settings or load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    if settings.migrate_on_start:
        prepare_database(settings)
    engine = make_engine(settings.resolved_database_url, pool_size=settings.database_pool_size,
                         max_overflow=settings.database_max_overflow)
    sessions = make_session_factory(engine)
    pki = PkiContext(settings=settings, sessions=sessions, keystores=KeyStoreRegistry.from_settings(settings),
                     profiles=ProfileSet.load())
    material = MaterialCache(pki, revocation_watch(pki))
    signing = SigningService(pki, material=material)
    return Container(settings, engine, pki, signing, Verifier(pki, material))
