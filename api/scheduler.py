"""Scheduled republication: full and delta CRLs before half their validity has passed, OCSP before expiry;
OCSP responder, TSA and offline QR seal certificates renewed 30 days before they expire."""
from __future__ import annotations

import asyncio
import logging

from core import audit, clock
from core.db import transaction
from pki import crl, ocsp, store
from pki.authorities import renew_qr_seal_if_due, renew_responder_if_due, renew_tsa_if_due
from pki.models import CaStatus
from pki.transparency import service as transparency
from signing.create.upgrade import upgrade_due

from .container import Container

log = logging.getLogger("kyso.scheduler")


def republish_once(container: Container) -> dict[str, int]:
    """One pass (also `kyso crl publish --due`); safe to run from several workers at once."""
    ctx = container.pki
    done = {"crls": 0, "ocsp": 0}
    with transaction(ctx.sessions) as session:
        now = clock.now()
        for ca in store.list_cas(session):
            if ca.status == CaStatus.ACTIVE and renew_responder_if_due(ctx, session, ca, "system:scheduler", now):
                done["responders"] = done.get("responders", 0) + 1
            if ca.status == CaStatus.ACTIVE and renew_tsa_if_due(ctx, session, ca, "system:scheduler", now):
                done["tsa"] = done.get("tsa", 0) + 1
            if ca.status == CaStatus.ACTIVE and renew_qr_seal_if_due(ctx, session, ca, "system:scheduler", now):
                done["qr_seal"] = done.get("qr_seal", 0) + 1
            if (ca.status == CaStatus.ACTIVE and ca.key_ref
                    and crl.due(session, ca, now, ctx.settings.crl_validity_hours)):
                full, delta = crl.publish_both(ctx, session, ca, now)
                audit.record(session, actor="system:scheduler", action="pki:crl:publish", subject=ca.name,
                             number=full.number, delta_number=delta.number)
                done["crls"] += 2
            elif (ca.status == CaStatus.ACTIVE and ca.key_ref
                    and crl.due(session, ca, now, ctx.settings.delta_crl_validity_hours, delta=True)):
                delta = crl.publish(ctx, session, ca, delta=True, now=now)  # on top of the current full CRL
                audit.record(session, actor="system:scheduler", action="pki:crl:publish", subject=ca.name,
                             delta_number=delta.number)
                done["crls"] += 1
        done["ocsp"] = ocsp.refresh_due(ctx, session)
    return done


async def republish_loop(container: Container) -> None:
    interval = container.settings.republish_interval_seconds
    while True:
        try:
            result = await asyncio.to_thread(republish_once, container)
            if any(result.values()):
                log.info("republished %s", result)
        except Exception:  # the loop must survive a database outage
            log.exception("scheduled republication failed; retrying in %ss", interval)
        await asyncio.sleep(interval)


async def upgrade_loop(container: Container) -> None:
    """Finish documents signed while the TSA was unreachable (B-B now, B-T/B-LT/B-LTA later)."""
    interval = min(30.0, container.settings.upgrade_backoff_seconds)
    while True:
        try:
            result = await asyncio.to_thread(upgrade_due, container.signing)
            if any(result.values()):
                log.info("document upgrades %s", result)
        except Exception:  # the loop must survive a database or TSA outage
            log.exception("document upgrade pass failed; retrying in %ss", interval)
        await asyncio.sleep(interval)


LOG_SEQUENCE_SECONDS = 1.0


def sequence_once(container: Container) -> int:
    """One sequencer batch (also `kyso log sequence`): pending log entries → a signed checkpoint; then the
    current checkpoint goes to the witnesses (in the background: a witness that is down never holds this up)."""
    appended = transparency.sequence(container.pki).appended
    if container.witnesses.endpoints:
        with transaction(container.sessions, read_only=True) as session:
            note = transparency.current_checkpoint(session)
        container.witnesses.submit(note, lambda old, new: _log_consistency(container, old, new))
    return appended


def _log_consistency(container: Container, old: int, new: int) -> list[bytes]:
    with transaction(container.sessions, read_only=True) as session:
        return transparency.consistency(session, old, new)


async def sequence_loop(container: Container) -> None:
    """The transparency log's sequencer, every second: one batch, one checkpoint, whatever signed meanwhile.

    Several workers or nodes may run it at once: the log row's lock serialises them (see
    pki.transparency.service), and a lost race rolls back without writing anything."""
    while True:
        try:
            appended = await asyncio.to_thread(sequence_once, container)
            if appended:
                log.debug("log: %s entries sequenced", appended)
        except Exception:  # the loop must survive a database or keystore outage
            log.exception("log sequencing failed; retrying in %ss", LOG_SEQUENCE_SECONDS)
        await asyncio.sleep(LOG_SEQUENCE_SECONDS)
