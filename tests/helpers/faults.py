"""Fault injection: a private PostgreSQL server to stop and start, a real multi-process `kyso serve`,
a deployment, and the consistency checks every fault test ends with (the fixtures are in tests/faults/conftest.py).

The system PostgreSQL (127.0.0.1:5432) is shared with tests running in parallel and is never
stopped: a test that needs an outage starts its own server from Debian's binaries (initdb refuses
to run as root, so it runs as the ``postgres`` OS user), on a free loopback port, with its data in a
temporary folder removed afterwards. In CI (``CI=true``) missing binaries fail the test; elsewhere
it is skipped and says why.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from api import tokens
from api.container import Container, build
from core import audit
from core.db import transaction
from core.settings import Settings
from pki.authorities import init_hierarchy
from pki.models import Certificate
from signing.registry.models import DocumentFile, SignedDocument
from tests.helpers.api import new_token
from tests.helpers.db import IN_CI, ISSUING, ROOT, make_settings
from tests.helpers.servers import free_port, stop_process, wait_healthy

PG_BIN = Path(os.environ.get("KYSO_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
REPO = Path(__file__).resolve().parents[2]
SEAL_DOC = "certified-copy"  # a copy certification: the organisation's seal signs it first, no specialist SAD
COMMUNE = "00004"


def _missing(why: str) -> None:
    if IN_CI:
        pytest.fail(f"{why} (required in CI)", pytrace=False)
    pytest.skip(why)


def _as_postgres(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool as the ``postgres`` user when we are root (initdb refuses root), else as us."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout, check=False)


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1:<port>, stopped and started at will."""

    def __init__(self) -> None:
        for tool in ("initdb", "pg_ctl", "postgres", "psql"):
            if not (PG_BIN / tool).is_file():
                _missing(f"PostgreSQL server binaries not found in {PG_BIN} (apt-get install postgresql-15)")
        self.root = Path(tempfile.mkdtemp(prefix="kyso-faults-pg-"))  # not under pytest's 0700 tmp: postgres reads it
        self.data, self.port, self.log = self.root / "data", free_port(), self.root / "postgres.log"
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                self.remove()
                _missing("running as root, and there is no `postgres` OS user to run initdb as")
            if shutil.which("runuser") is None:
                self.remove()
                _missing("running as root, and runuser (util-linux) is missing to run initdb as postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        done = _as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N",
                            "-E", "UTF8", "--locale=C.UTF-8")
        if done.returncode != 0:
            self.remove()
            raise RuntimeError(f"initdb failed: {done.stdout}\n{done.stderr}")
        self.start()
        created = _as_postgres(str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                               "-c", "CREATE DATABASE kyso")
        if created.returncode != 0:
            self.remove()
            raise RuntimeError(f"CREATE DATABASE failed: {created.stderr}")

    def url(self, connect_timeout: int = 2) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/kyso?connect_timeout={connect_timeout}"

    def _ctl(self, *args: str) -> None:
        done = _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", *args)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {done.stdout}{done.stderr}\n"
                               f"{self.log.read_text(errors='replace')[-2000:] if self.log.exists() else ''}")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c max_connections=100")  # fsync off is safe here: only PostgreSQL stops, not the OS
        self._ctl("-o", options, "-l", str(self.log), "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateStandby(PrivatePostgres):
    """A hot standby of ``primary``: ``pg_basebackup -R`` (streaming replication, trust on loopback as initdb
    wrote it), started on a free loopback port. Read-only, as any replica: a write there is refused."""

    def __init__(self, primary: PrivatePostgres) -> None:  # no initdb: the data is the primary's copy
        if not (PG_BIN / "pg_basebackup").is_file():
            _missing(f"pg_basebackup not found in {PG_BIN} (apt-get install postgresql-15)")
        self.root = Path(tempfile.mkdtemp(prefix="kyso-faults-standby-"))
        self.data, self.port, self.log = self.root / "data", free_port(), self.root / "postgres.log"
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")  # PrivatePostgres already checked it exists
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        done = _as_postgres(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U",
                            "postgres", "-D", str(self.data), "-R", "-X", "stream", "-c", "fast", timeout=120)
        if done.returncode != 0:
            self.remove()
            raise RuntimeError(f"pg_basebackup failed: {done.stdout}\n{done.stderr}")
        self.start()

    def sql(self, statement: str) -> str:
        """Run one statement on the standby as the superuser (replay pause and resume); its output."""
        done = _as_postgres(str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-d", "kyso", "-At", "-c", statement)
        if done.returncode != 0:
            raise RuntimeError(f"{statement} failed on the standby: {done.stderr}")
        return done.stdout.strip()


class KysoServer:
    """`kyso serve [--workers N]` as real processes, its output in a log file, stopped by its own pid."""

    def __init__(self, settings: Settings, port: int, workers: int = 1, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.port, self.url, self.workers = port, f"http://127.0.0.1:{port}", workers
        self.log_path = settings.home / f"serve-{port}.log"
        settings.home.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": settings.resolved_database_url,
                    "KYSO_BASE_URL": self.url, "KYSO_OCSP_CACHE_CHECK_SECONDS": "0",
                    "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value() if settings.soft_master_key else "",
                    **(env or {})}
        self._log = self.log_path.open("wb")
        cmd = [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--no-access-log"]
        if workers != 1:
            cmd += ["--workers", str(workers)]
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT)
        if not self.wait_ready(60):
            self.stop()
            raise RuntimeError(f"kyso serve did not start:\n{self.log_tail()}")

    def wait_ready(self, seconds: float) -> bool:
        return wait_healthy(self.url, self.proc, seconds)

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes: children of the master that are not multiprocessing helpers."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid and "resource_tracker" not in cmdline:
                pids.append(int(entry.name))
        return sorted(pids)

    def kill_workers(self) -> list[int]:
        pids = self.worker_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.proc, 15)
        if not self._log.closed:
            self._log.close()


@dataclass
class Deployment:
    """A kyso data folder and database with the test hierarchy, a seal credential and two tokens."""

    container: Container
    seal: str
    client: dict[str, str]
    operator: dict[str, str]


def deploy(home: Path, url: str, **extra: object) -> Deployment:
    from tests.helpers.signing import issue_credential

    settings = make_settings(home, url, **extra)
    container = build(settings)
    init_hierarchy(container.pki, root=ROOT, issuing=ISSUING, actor="test")
    seal = issue_credential(container, "seal", name="Ủy ban nhân dân Phường Ba Đình")
    return Deployment(container, seal, {"Authorization": f"Bearer {new_token(container, tokens.Role.client)}"},
                      {"Authorization": f"Bearer {new_token(container, tokens.Role.ca_operator)}"})


def seal_metadata(credential: str, dossier: str, **extra: object) -> dict[str, object]:
    return {"document_type": SEAL_DOC, "commune_code": COMMUNE, "credential_id": credential,
            "dossier_number": dossier, "level": "B-B", "appearance": {"visible": False}, **extra}


def sample_pdfs(settings: Settings, count: int, tag: str) -> list[bytes]:
    """``count`` distinct one-page PDFs."""
    from signing.create.sample import sample_document

    return [sample_document(settings.stamp_font, (f"Bản sao {tag}-{i}", "Tài liệu thử nghiệm")) for i in range(count)]


def assert_consistent(container: Container) -> dict[str, int]:
    """Every certificate and every signed document version has its audit entry, every document its file,
    and the audit chain verifies. Returns counts for the caller's own checks."""
    with transaction(container.sessions) as session:
        report = audit.verify(session)
        assert report.ok, report
        entries = session.execute(select(audit.AuditEntry.action, audit.AuditEntry.subject,
                                         audit.AuditEntry.details)).all()
        audited = {subject for _, subject, _ in entries} | {
            json.loads(details).get("serial") for _, _, details in entries}
        serials = session.execute(select(Certificate.serial)).scalars().all()
        missing = [s for s in serials if s not in audited]
        assert not missing, f"certificates without an audit entry: {missing}"
        signed = {(subject, json.loads(details)["version"]) for action, subject, details in entries
                  if action == "signing:document:sign"}
        files = set(session.execute(select(DocumentFile.document_id, DocumentFile.version)
                                    .where(DocumentFile.change == "signature")).all())
        assert files == signed, f"file versions without audit: {files - signed}; audit without file: {signed - files}"
        documents = session.execute(select(SignedDocument.id, SignedDocument.version)).all()
        with_files = {document_id for document_id, _ in files}
        assert all(document_id in with_files for document_id, _ in documents), "a document without its signed PDF"
        return {"certificates": len(serials), "documents": len(documents), "signatures": len(signed),
                "audit_entries": report.entries}
