"""Builds kyso's parts from settings, once, for the web app and the CLI alike."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from core.db import make_engine, make_session_factory, transaction, upgrade
from core.settings import Settings, load_settings
from hsm import KeyStoreRegistry
from pki.context import PkiContext
from policies import units
from policies.profiles import ProfileSet


@dataclass
class Container:
    settings: Settings
    engine: Engine
    pki: PkiContext

    @property
    def sessions(self):  # type: ignore[no-untyped-def]
        return self.pki.sessions


def build(settings: Settings | None = None, *, migrate: bool = True) -> Container:
    """Settings → database (migrated, catalogue seeded) → keystores → profiles → PKI context."""
    settings = settings or load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    if migrate:
        upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    if migrate:
        with transaction(sessions) as session:
            units.ensure_seeded(session)
    pki = PkiContext(settings=settings, sessions=sessions, keystores=KeyStoreRegistry.from_settings(settings),
                     profiles=ProfileSet.load())
    return Container(settings, engine, pki)
