"""The attack of issue 15 item 10 against real processes: `kyso serve --workers 2` on the embedded SQLite
database, 4 clients × 40 wrong activation codes at once. Every answer is a clean refusal (never a 500 for
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
from signing.activation import factors
from tests.helpers.faults import KysoServer, deploy
from tests.helpers.servers import free_port
from tests.helpers.signing import issue_credential

CLIENTS, EACH = 4, 40


def test_refusals_from_two_worker_processes_are_each_audited_once(tmp_path: Path) -> None:
    dep = deploy(tmp_path / "home", f"sqlite:///{tmp_path / 'kyso.db'}")
    credential = issue_credential(dep.container)
    factors.enroll(dep.container.pki, credential, "271828", "token:operator")
    server = KysoServer(dep.container.settings, free_port(), workers=2)
    answers: Counter[tuple[int, str]] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def attack() -> None:
        with httpx.Client(base_url=server.url, headers=dep.operator, timeout=60) as http:
            start.wait()
            for _ in range(EACH):
                r = http.post(f"/api/v1/credentials/{credential}/activation/confirm", json={"code": "000000"})
                code = r.json()["error"]["code"] if r.status_code >= 400 else "accepted"
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
    # wrong code, then (after five) locked; "000000" may even be today's code once: then only one is accepted
    assert set(answers) <= {(403, "invalid_activation_data"), (403, "credential_locked"), (200, "accepted")}, answers
    assert answers[(200, "accepted")] <= 1, answers  # a code is accepted once at most, never replayed
    with transaction(dep.container.sessions) as session:
        denied = session.execute(select(func.count()).select_from(audit.AuditEntry)
                                 .where(audit.AuditEntry.action == "activation:enroll:deny")).scalar_one()
        report = audit.verify(session)
    refused = sum(n for (status, _), n in answers.items() if status == 403)
    assert denied == refused, (denied, answers)
    assert report.ok, report
    dep.container.engine.dispose()
