"""Shared helpers of the benchmark: timing, statistics, machine facts, fresh kyso instances."""
from __future__ import annotations

import contextlib
import cProfile
import datetime as dt
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from tests.helpers.db import PG_URL, postgres_problem  # noqa: F401 (the tests' PostgreSQL and its probe, re-exported)

ROOT_DIR = Path(__file__).resolve().parents[1]


# -- output ------------------------------------------------------------------------------------
def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass
class Figure:
    """One line of the results table: kyso's figure beside the raw library's, as a ratio."""

    section: str
    name: str
    value: float
    unit: str
    raw_name: str = ""
    raw_value: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.raw_value in (None, 0) or self.value == 0:
            return None
        return self.value / self.raw_value


@dataclass
class HttpRun:
    mode: str
    method: str
    concurrency: int
    duration: float
    responses: int
    errors: int
    rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_cpu: float  # cores used by the server process tree during the window
    client_cpu: float  # cores used by the load generator
    error_samples: list[str] = field(default_factory=list)
    client: str = "httpx"
    workers: int = 1

    @property
    def server_ms_per_response(self) -> float:
        return 1000 * self.server_cpu / self.rate if self.rate else float("nan")


@dataclass
class Results:
    quick: bool
    started: dt.datetime
    figures: list[Figure] = field(default_factory=list)
    http: list[HttpRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    loadavg: list[tuple[str, tuple[float, float, float]]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, fig: Figure) -> Figure:
        self.figures.append(fig)
        ratio = f"  ratio {fig.ratio:.3f}" if fig.ratio is not None else ""
        raw = f"  (raw {fmt(fig.raw_value)} {fig.unit})" if fig.raw_value is not None else ""
        say(f"  {fig.section} / {fig.name}: {fmt(fig.value)} {fig.unit}{raw}{ratio}")
        return fig

    def mark_load(self, label: str) -> None:
        self.loadavg.append((label, os.getloadavg()))


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


# -- timing ------------------------------------------------------------------------------------
def rate_of(fn: Callable[[int], Any], n: int) -> float:
    """Operations per second of ``fn(i)`` called for i in range(n)."""
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t0)


def interleaved_rates(candidates: dict[str, tuple[Callable[[int], Any], int]], repeats: int) -> dict[str, float]:
    """Median ops/s of each candidate over ``repeats`` interleaved rounds (noise hits all alike)."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, (fn, n) in candidates.items():
            samples[name].append(rate_of(fn, n))
    return {name: statistics.median(values) for name, values in samples.items()}


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


class Profiler:
    """Optional cProfile dumps (``--profile DIR``) around kyso's measured code."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        if directory:
            directory.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        if not self.directory:
            yield
            return
        prof = cProfile.Profile()
        prof.enable()
        try:
            yield
        finally:
            prof.disable()
            path = self.directory / f"{name}.pstats"
            prof.dump_stats(str(path))
            say(f"  profile written to {path}")


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user+system) used so far by ``pid`` and its descendants (Linux /proc), those that have
    exited included (their time is in their parent's cutime/cstime once reaped: PostgreSQL's backends come and go)."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rindex(")") + 2:].split()
        ppid, utime, stime, cutime, cstime = int(rest[1]), int(rest[11]), int(rest[12]), int(rest[13]), int(rest[14])
        children.setdefault(ppid, []).append(int(entry))
        stats[int(entry)] = (utime + cutime, stime + cstime)
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += sum(stats[p])
        todo.extend(children.get(p, []))
    return total / ticks


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


# -- machine -----------------------------------------------------------------------------------
def machine_info() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) // 1024:,} MiB"
    libs = []
    for dist in ("cryptography", "SQLAlchemy", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "httpx",
                 "asn1crypto", "psycopg", "pydantic"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            libs.append(f"{dist} {metadata.version(dist)}")
    commit = "unknown"
    with contextlib.suppress(Exception):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT_DIR, capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT_DIR,
                               capture_output=True, text=True, timeout=5).stdout.split("\n")
        changed = sorted(line[3:] for line in dirty if line.strip() and not line[3:].startswith("tests/"))
        if changed:
            commit += f" + uncommitted changes to {', '.join(changed[:12])}" + (" …" if len(changed) > 12 else "")
    return {
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "cpu": model,
        "memory": mem,
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "libraries": ", ".join(libs),
        "commit": commit,
    }


def postgres_version() -> str:
    engine = create_engine(PG_URL)
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar_one()
    engine.dispose()
    return str(version)


# -- kyso instances ----------------------------------------------------------------------------
@dataclass
class Instance:
    """A fresh kyso (data folder, database, keystore, test hierarchy) for one measurement."""

    backend: str
    home: Path
    url: str
    container: Any
    settings: Any
    _cleanup: list[Callable[[], None]]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.container.engine.dispose()
        for fn in reversed(self._cleanup):
            with contextlib.suppress(Exception):
                fn()


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    base = Path(os.environ.get("KYSO_BENCH_TMP", tempfile.gettempdir()))
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def new_instance(folder: Path, backend: str = "sqlite", *, base_url: str | None = None,
                 database_url: str | None = None) -> Instance:
    """Settings as tests/helpers/db.py builds them, migrated database, root + issuing CA. ``database_url``: an
    empty PostgreSQL database to use as it is (a private cluster) instead of a new schema on the shared one."""
    from api.container import build
    from pki.authorities import init_hierarchy
    from tests.helpers.db import ISSUING, ROOT, make_settings

    cleanup: list[Callable[[], None]] = []
    if database_url is not None:
        url = database_url
    elif backend == "sqlite":
        url = f"sqlite:///{folder / 'kyso.db'}"
    else:
        schema = "bench_" + secrets.token_hex(6)
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

        cleanup.append(drop)
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    extra = {"base_url": base_url} if base_url else {}
    settings = make_settings(folder / "home", url, **extra)
    container = build(settings)
    init_hierarchy(container.pki, root=ROOT, issuing=ISSUING, actor="bench")
    return Instance(backend, folder / "home", url, container, settings, cleanup)


def issuing_ca(instance: Instance):  # type: ignore[no-untyped-def]
    from core.db import transaction
    from pki.store import get_ca
    from tests.helpers.db import ISSUING

    with transaction(instance.container.sessions) as session:
        ca = get_ca(session, ISSUING.name)
        session.expunge(ca)
    return ca


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT_DIR) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def python_exe() -> str:
    return sys.executable
