"""Builds kyso's parts from settings, once, for the web app and the CLI alike."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core import production
from core.db import make_engine, make_session_factory, transaction, upgrade
from core.settings import Settings, load_settings
from hsm import KeyStoreRegistry
from pki.context import PkiContext
from pki.transparency.witness_client import WitnessPool
from policies import units
from policies.profiles import ProfileSet

if TYPE_CHECKING:
    from signing.create.preview import Previews
    from signing.create.service import SigningService
    from signing.material import MaterialCache
    from signing.verify.verifier import Verifier


@dataclass
class Container:
    """The parts of one process. Signing and verification are made on first use: they bring pyHanko
    and its speed-ups, which the PKI-only commands of the CLI (`kyso cert list`) do not need; the web
    app asks for them at start-up (``warm``), so no request pays for them."""

    settings: Settings
    engine: Engine
    pki: PkiContext
    read_engine: Engine | None = None  # the read replica's (KYSO_DATABASE_READ_URL), if any

    def dispose(self) -> None:
        """Close every pooled database connection (the primary's and the replica's)."""
        self.engine.dispose()
        if self.read_engine is not None:
            self.read_engine.dispose()

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.pki.sessions

    @cached_property
    def material(self) -> MaterialCache:
        """The signer material and revocation data shared by signing and verification."""
        from signing import speedups
        from signing.material import MaterialCache, revocation_watch

        speedups.install()
        return MaterialCache(self.pki, revocation_watch(self.pki))

    @cached_property
    def signing(self) -> SigningService:
        from signing.create.service import SigningService

        return SigningService(self.pki, material=self.material)

    @cached_property
    def previews(self) -> Previews:
        """Page images of the documents waiting for a specialist (``/me``), rendered once, cached here."""
        from signing.create.preview import Previews, preview_cache

        return Previews(self.signing, preview_cache())

    @cached_property
    def verifier(self) -> Verifier:
        from signing.verify.verifier import Verifier

        return Verifier(self.pki, self.material)

    @cached_property
    def witnesses(self) -> WitnessPool:
        """The witnesses kyso's log asks to cosign its checkpoints (``KYSO_LOG_WITNESSES``)."""
        return WitnessPool.from_settings(self.sessions, self.settings.log_witnesses,
                                         self.settings.log_witness_timeout_seconds)

    def warm(self) -> Container:
        """Make every part now (the web app calls this once, before it takes requests)."""
        _ = self.signing, self.verifier
        return self


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
    verification, and the library speed-ups (``signing.speedups``, idempotent) installed once, when the
    container first makes a signing part."""
    settings = settings or load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    production.check_start(settings)  # private files, no demo data (production only)
    if settings.migrate_on_start:
        prepare_database(settings)
    engine = make_engine(settings.resolved_database_url, pool_size=settings.database_pool_size,
                         max_overflow=settings.database_max_overflow)
    sessions = make_session_factory(engine)
    read_engine = None
    if settings.database_read_url:  # never migrated nor written: a streaming replica follows its primary
        read_engine = make_engine(settings.database_read_url, pool_size=settings.database_pool_size,
                                  max_overflow=settings.database_max_overflow)
    pki = PkiContext(settings=settings, sessions=sessions, keystores=KeyStoreRegistry.from_settings(settings),
                     profiles=ProfileSet.load(),
                     read_sessions=make_session_factory(read_engine) if read_engine is not None else None)
    return Container(settings, engine, pki, read_engine)
