"""The attack of issue 15 item 10 against real processes: `kyso serve --workers 2` on the embedded SQLite
database, 4 clients × 40 wrong PINs on CSC credentials/authorize at once. Every answer is a clean refusal (never a 500 for
a duplicate audit ``seq``), every refusal is in the audit log exactly once, and the chain verifies.
"""
from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import func, select

from core import audit
from core.db import transaction
from signing.activation import crypto as sec, enrolment
from tests.helpers.activation import Phone
from tests.helpers.faults import KysoServer, deploy
from tests.helpers.servers import free_port
from tests.helpers.signing import issue_credential

CLIENTS, EACH = 4, 40


def test_refusals_from_two_worker_processes_are_each_audited_once(tmp_path: Path) -> None:
    dep = deploy(tmp_path / "home", f"sqlite:///{tmp_path / 'kyso.db'}")
    credential = issue_credential(dep.container)
    code = enrolment.issue(dep.container.pki, credential, "token:operator").code
    phone = Phone(sec.secret_from_uri(enrolment.redeem(dep.container.pki, code, "271828", "271828").uri))
    enrolment.finish(dep.container.pki, code, phone.code())
    server = KysoServer(dep.container.settings, free_port(), workers=2)
    answers: Counter[tuple[int, str]] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def attack() -> None:
        with httpx.Client(base_url=server.url, headers=dep.operator, timeout=60) as http:
            start.wait()
            for _ in range(EACH):
                r = http.post("/csc/v2/credentials/authorize", json={
                    "credentialID": credential, "numSignatures": 1, "hash": ["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="],
                    "PIN": "999999", "OTP": "000000"})
                code = r.json()["error"] if r.status_code >= 400 else "accepted"
                with lock:
                    answers[(r.status_code, code)] += 1

    try:
        clients = [threading.Thread(target=attack) for _ in range(CLIENTS)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(300)
        assert len(server.worker_pids()) == 2, server.log_tail()
    finally:
        server.stop()
    assert sum(answers.values()) == CLIENTS * EACH
    # wrong PIN, then (after five) throttled: every one refused, none accepted
    assert set(answers) <= {(403, "invalid_activation_data"), (429, "rate_limited")}, answers
    with transaction(dep.container.sessions) as session:
        denied = session.execute(select(func.count()).select_from(audit.AuditEntry)
                                 .where(audit.AuditEntry.action == "activation:authorize:deny")).scalar_one()
        report = audit.verify(session)
    refused = sum(n for (status, _), n in answers.items() if status in (403, 429))
    assert denied == refused, (denied, answers)
    assert report.ok, report
    dep.container.engine.dispose()
