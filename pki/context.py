"""What every PKI operation needs, built once at start and passed down (no globals)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from cryptography import x509
from sqlalchemy.orm import Session, sessionmaker

from core.cache import Cache
from core.db import Reads
from core.settings import Settings
from hsm import KeyStoreRegistry, keystore_private_key
from hsm.private_key import KeyStoreECKey, KeyStoreRSAKey
from policies.profiles import ProfileSet

from .answer_cache import AnswerCache


@dataclass
class PkiContext:
    settings: Settings
    sessions: sessionmaker[Session]
    keystores: KeyStoreRegistry
    profiles: ProfileSet
    _signers: dict[str, KeyStoreECKey | KeyStoreRSAKey] = field(default_factory=dict)
    _certs: Cache[bytes, x509.Certificate] = field(
        default_factory=lambda: Cache("parsed_certificates", max_entries=10_000))
    ocsp_index: dict[tuple[str, bytes, bytes], int] = field(default_factory=dict)
    ocsp_cache: AnswerCache = field(init=False)
    read_sessions: sessionmaker[Session] | None = None  # the read replica's, when KYSO_DATABASE_READ_URL is set
    reads: Reads = field(init=False)  # read-only units: the replica, or the primary on a miss (see core.db.Reads)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.ocsp_cache = AnswerCache(self.settings.ocsp_cache_check_seconds)
        self.reads = Reads(self.sessions, self.read_sessions)

    def signer(self, key_ref: str) -> KeyStoreECKey | KeyStoreRSAKey:
        """A cached ``cryptography`` key adapter for a keystore key (its public half is read once)."""
        adapter = self._signers.get(key_ref)
        if adapter is None:
            adapter = keystore_private_key(self.keystores.for_ref(key_ref), key_ref)
            with self._lock:
                self._signers[key_ref] = adapter
        return adapter

    def forget_key(self, key_ref: str) -> None:
        with self._lock:
            self._signers.pop(key_ref, None)

    def certificate(self, der: bytes) -> x509.Certificate:
        """Parsed certificates by their DER bytes; CA and responder certificates are parsed once."""
        return self._certs.get_or_load(der, lambda: x509.load_der_x509_certificate(der))
