"""Which roots verification trusts, and which intermediates kyso supplies itself.

Three sources, in this order: kyso's own roots (every root CA in its database, plus the external
roots above a subordinate CA), Vietnam's government and national roots bundled in
``policies/trust/`` (pinned by fingerprint; ``KYSO_TRUST_VIETNAM_ROOTS=false`` turns them off),
and the files or folders named in ``KYSO_TRUST_ANCHORS`` (another province's CA, a throw-away test
CA). A self-signed certificate becomes an anchor; any other certificate found there is offered as
an intermediate, never trusted by itself.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from asn1crypto import pem, x509 as asn1_x509
from sqlalchemy import select

from core.db import transaction
from core.errors import ConfigurationError
from pki.context import PkiContext
from pki.models import CertificateAuthority
from signing.shared_asn1 import shareable

TRUST_DIR = Path(__file__).resolve().parents[2] / "policies" / "trust"
TTL_SECONDS = 60.0  # a new kyso root (rare) is trusted within a minute in every worker


@dataclass(frozen=True)
class TrustStore:
    anchors: tuple[asn1_x509.Certificate, ...]
    intermediates: tuple[asn1_x509.Certificate, ...]
    labels: dict[bytes, str]  # SHA-256 of an anchor → where it comes from
    fingerprint: str  # changes whenever the set changes (cache keys)

    def label(self, cert: asn1_x509.Certificate) -> str:
        return self.labels.get(cert.sha256) or cert.subject.human_friendly


def read_certificates(data: bytes) -> list[asn1_x509.Certificate]:
    """Every certificate in a PEM bundle or a single DER certificate."""
    if pem.detect(data):
        return [shareable(asn1_x509.Certificate.load(der)) for _, _, der in pem.unarmor(data, multiple=True)]
    return [shareable(asn1_x509.Certificate.load(data))]


def _bundled() -> tuple[list[tuple[asn1_x509.Certificate, str]], list[asn1_x509.Certificate]]:
    spec = yaml.safe_load((TRUST_DIR / "trust-list.yaml").read_text())
    anchors, intermediates = [], []
    for entry in spec["certificates"]:
        cert = read_certificates((TRUST_DIR / entry["file"]).read_bytes())[0]
        if cert.sha256.hex().upper() != entry["sha256"].upper():
            raise ConfigurationError(f"policies/trust/{entry['file']} does not match its pinned SHA-256; "
                                     "the bundled trust list was altered")
        if entry["role"] == "anchor":
            anchors.append((cert, entry["label"]))
        else:
            intermediates.append(cert)
    return anchors, intermediates


def _configured(paths: list[Path]) -> tuple[list[asn1_x509.Certificate], list[asn1_x509.Certificate]]:
    anchors: list[asn1_x509.Certificate] = []
    intermediates: list[asn1_x509.Certificate] = []
    for path in paths:
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for file in files:
            try:
                certs = read_certificates(file.read_bytes())
            except (OSError, ValueError, TypeError) as exc:
                raise ConfigurationError(f"KYSO_TRUST_ANCHORS: {file} is not a readable certificate ({exc})") from None
            for cert in certs:
                (anchors if cert.self_signed != "no" else intermediates).append(cert)
    return anchors, intermediates


def _kyso_roots(ctx: PkiContext) -> tuple[list[asn1_x509.Certificate], list[asn1_x509.Certificate]]:
    anchors: list[asn1_x509.Certificate] = []
    intermediates: list[asn1_x509.Certificate] = []
    with transaction(ctx.sessions, read_only=True) as session:
        for ca in session.execute(select(CertificateAuthority)).scalars():
            if ca.cert_der:
                cert = shareable(asn1_x509.Certificate.load(ca.cert_der))
                (anchors if cert.self_signed != "no" else intermediates).append(cert)
            if ca.chain_pem:
                for cert in read_certificates(ca.chain_pem.encode()):
                    (anchors if cert.self_signed != "no" else intermediates).append(cert)
    return anchors, intermediates


class TrustProvider:
    """Builds the trust store and keeps it for a minute (the database may gain a root)."""

    def __init__(self, ctx: PkiContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._store: tuple[float, TrustStore] | None = None
        self._static: tuple[list[tuple[asn1_x509.Certificate, str]], list[asn1_x509.Certificate]] | None = None

    def _static_part(self) -> tuple[list[tuple[asn1_x509.Certificate, str]], list[asn1_x509.Certificate]]:
        if self._static is None:
            settings = self._ctx.settings
            anchors: list[tuple[asn1_x509.Certificate, str]] = []
            intermediates: list[asn1_x509.Certificate] = []
            if settings.trust_vietnam_roots:
                bundled, extra = _bundled()
                anchors += bundled
                intermediates += extra
            configured, extra = _configured(list(settings.trust_anchors))
            anchors += [(cert, f"configured: {cert.subject.human_friendly}") for cert in configured]
            intermediates += extra
            self._static = (anchors, intermediates)
        return self._static

    def store(self) -> TrustStore:
        now = time.monotonic()
        cached = self._store
        if cached is not None and now - cached[0] < TTL_SECONDS:
            return cached[1]
        with self._lock:
            anchors, intermediates = self._static_part()
            own, own_intermediates = _kyso_roots(self._ctx)
            labelled = [(cert, f"kyso: {cert.subject.human_friendly}") for cert in own] + anchors
            unique = {cert.sha256: (cert, label) for cert, label in labelled}
            inter = {cert.sha256: cert for cert in [*own_intermediates, *intermediates] if cert.sha256 not in unique}
            fingerprint = hashlib.sha256(b"".join(sorted(unique)) + b"|" + b"".join(sorted(inter))).hexdigest()[:16]
            store = TrustStore(anchors=tuple(c for c, _ in unique.values()), intermediates=tuple(inter.values()),
                               labels={k: label for k, (_, label) in unique.items()}, fingerprint=fingerprint)
            self._store = (now, store)
            return store

    def clear(self) -> None:
        with self._lock:
            self._store = None
