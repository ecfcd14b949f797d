"""Issue 19 item 4 against real processes: `kyso serve --workers 2` on the embedded SQLite database, 4 clients
hammering the open verification route from one address at once. The rate limit lives in the database, so
the two workers together let through the configured burst, not twice it (the old per-process buckets did)."""
from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from api.ratelimit import RateLimited, RateLimiter
from core.db import make_engine, make_session_factory, upgrade
from tests.helpers.faults import KysoServer, PrivatePostgres, deploy
from tests.helpers.servers import free_port

CLIENTS, EACH, BURST = 4, 15, 10


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kyso.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


def test_two_workers_share_one_verification_limit(tmp_path: Path, url: str) -> None:
    dep = deploy(tmp_path / "home", url)
    server = KysoServer(dep.container.settings, free_port(), workers=2,
                        env={"KYSO_VERIFY_RATE_PER_SECOND": "0.001", "KYSO_VERIFY_BURST": str(BURST)})
    answers: Counter[tuple[int, str]] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:  # a new connection each: both workers accept
            start.wait()
            for _ in range(EACH):
                r = http.post("/api/v1/verify", content=b"not a pdf", headers={"Content-Type": "application/pdf",
                                                                               "Connection": "close"})
                with lock:
                    answers[(r.status_code, r.json()["error"]["code"])] += 1

    try:
        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert len(server.worker_pids()) == 2, server.log_tail()
    finally:
        server.stop()
    # the limiter runs before the file is read: BURST are let through (and refused as unreadable), the rest wait
    assert answers == {(422, "unreadable_pdf"): BURST, (429, "rate_limited"): CLIENTS * EACH - BURST}, answers
    dep.container.engine.dispose()


def test_the_limit_lets_requests_through_while_the_database_is_down(private_pg: PrivatePostgres) -> None:
    """Verification answers without the registry during an outage; the limit must not turn that into a 503."""
    url = private_pg.url(connect_timeout=2)
    upgrade(url)
    engine = make_engine(url)
    limiter = RateLimiter(make_session_factory(engine), rate=0.001, burst=1)
    try:
        limiter.take("203.0.113.7")
        with pytest.raises(RateLimited):
            limiter.take("203.0.113.7")
        private_pg.stop()
        engine.dispose()  # the pool's connections died with the server
        limiter.take("203.0.113.7")  # let through, not Unavailable
        private_pg.start()
        with pytest.raises(RateLimited):  # the bucket is where it was
            limiter.take("203.0.113.7")
    finally:
        engine.dispose()


def test_serve_role_ocsp_reaches_every_worker(tmp_path: Path) -> None:
    """`kyso serve --role ocsp --workers 2`: the option reaches the workers (through their settings)."""
    dep = deploy(tmp_path / "home", f"sqlite:///{tmp_path / 'kyso.db'}")
    server = KysoServer(dep.container.settings, free_port(), workers=2, args=("--role", "ocsp"))
    try:
        for _ in range(6):  # new connections: both workers answer some
            with httpx.Client(base_url=server.url, timeout=30) as http:
                assert http.get("/healthz").status_code == 200
                assert http.get("/ca/test-issuing.crt").headers["content-type"] == "application/pkix-cert"
                assert http.get("/api/v1/units").status_code == 404
                assert http.post("/api/v1/verify", content=b"x",
                                 headers={"Content-Type": "application/pdf"}).status_code == 404
        assert len(server.worker_pids()) == 2, server.log_tail()
    finally:
        server.stop()
    dep.container.engine.dispose()
