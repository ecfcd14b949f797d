"""`make load LOAD_ARGS='--nodes 2'`: two kyso nodes on one PostgreSQL primary, a streaming replica for reads.

A private PostgreSQL primary on a free loopback port (as the fault tests start one) and a hot standby made
from it with ``pg_basebackup -R``; two `kyso serve --role api --workers 2` nodes writing to the primary and
reading from the standby (``KYSO_DATABASE_READ_URL``); one `kyso serve --role ocsp` worker of its own for
OCSP. The clients spread over the two API nodes (client k on node k mod 2) and send OCSP to the OCSP worker.

Then, on the same set-up:

- **CPU per operation**: one action at a time (agency-seal signature, specialist signature with SAD,
  verification) for a short window; the CPU seconds the kyso processes (the nodes' process trees, from
  /proc) and PostgreSQL (primary and standby) used in it, divided by the operations completed;
- **rate limit across nodes**: one client address on 8 connections (4 per node, so every worker of both
  nodes serves it) sending ``POST /api/v1/verify`` as fast as it can; the answers granted against what the
  configured rate allows (``KYSO_VERIFY_BURST`` + ``KYSO_VERIFY_RATE_PER_SECOND`` × seconds);
- **reads on the replica**: the nodes' ``kyso_replica_reads_total`` counters.

The soft keystore's files are shared by the two nodes (one data folder on one machine); a real second
node needs pkcs11 or vault (docs/operations.md §6.1).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx

from .common import fmt, percentile, say, workdir

NODE_WORKERS = 2
CALIBRATION_CLIENTS = 24  # distinct addresses: a verification client stays under the per-address rate limit
PROBE_ADDRESS = "198.51.100.7"  # the one client of the rate limit probe (TEST-NET-2)
PROBE_CONNECTIONS = 8
POOL = {"KYSO_DATABASE_POOL_SIZE": "5", "KYSO_DATABASE_MAX_OVERFLOW": "10"}  # 5 workers × 15 per server: < 100


def _renice(pid: int, nice: int) -> None:
    """Set the scheduling priority of every thread of ``pid`` and of its children (the OCSP worker's)."""
    pids = [pid] + [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == pid]
    for p in pids:
        for task in Path(f"/proc/{p}/task").iterdir():
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, int(task.name), nice)


def _ppid(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _server_side(log: Path, prefix: str) -> dict[str, float]:
    """p50/p95/p99 of the server's own duration (access log) for the paths starting with ``prefix``."""
    durations = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            entry = json.loads(line)
            if str(entry.get("path", "")).startswith(prefix) and "duration_ms" in entry:
                durations.append(float(entry["duration_ms"]))
    durations.sort()
    if not durations:
        return {}
    return {"requests": len(durations), **{f"p{q}_ms": percentile(durations, q) for q in (50, 95, 99)}}


def _postmaster_pid(data: Path) -> int:
    return int((data / "postmaster.pid").read_text().splitlines()[0])


def _replica_reads(url: str) -> dict[str, float]:
    """``kyso_replica_reads_total`` by outcome, from a node's /metrics (every worker's, added up)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'^kyso_replica_reads_total\{outcome="(\w+)"\} ([0-9.e+]+)$', text, re.MULTILINE)}


def _drive(load: Any, pids: tuple[int, ...]) -> None:
    try:
        import uvloop

        uvloop.run(load.run(*pids))
    except ImportError:  # pragma: no cover
        asyncio.run(load.run(*pids))


def run(args: argparse.Namespace, actions: list[Any]) -> tuple[Any, dict[str, Any], str, int, list[Any]]:
    """Set up, drive the mixed load and the three measurements, tear down; what ``bench.load`` reports."""
    from tests.helpers.faults import PG_BIN, PrivatePostgres, PrivateStandby

    from . import load as L
    from .server import BenchServer, free_port

    missing = [t for t in ("initdb", "pg_ctl", "pg_basebackup", "postgres") if not (PG_BIN / t).is_file()]
    if missing:
        raise SystemExit(f"the two-node mode starts private PostgreSQL clusters; missing in {PG_BIN}: {missing}")
    primary = PrivatePostgres()
    standby = None
    servers: list[BenchServer] = []
    world = inst = None
    try:
        with workdir("kyso-load2-") as folder:
            port_a, port_b, port_o = free_port(), free_port(), free_port()
            say(f"setting up on a private PostgreSQL primary (127.0.0.1:{primary.port})")
            inst, world, demo = L.setup(folder, port_a, args.certs, args.batch, args.sads,
                                        database_url=primary.url(connect_timeout=5))
            say("making the streaming replica (pg_basebackup -R) and starting it")
            standby = PrivateStandby(primary)
            L.sample_url = primary.url(connect_timeout=5)
            common = {**POOL, "KYSO_TRUSTED_PROXIES": '["127.0.0.1"]', "KYSO_METRICS_PUBLIC": "true",
                      "KYSO_REPORT_SEAL_CREDENTIAL": demo["report_seal"], "KYSO_BASE_URL": world.url,
                      "KYSO_DATABASE_READ_URL": standby.url(connect_timeout=5)}
            second = {**common, "KYSO_RUN_SCHEDULER": "false", "KYSO_MIGRATE_ON_START": "false"}
            say(f"starting node A and node B (`kyso serve --role api --workers {NODE_WORKERS}`) and the OCSP worker "
                "(`kyso serve --role ocsp`)")
            servers.append(BenchServer(inst.settings, port_a, folder / "node-a.log", workers=NODE_WORKERS,
                                       env=common, args=("--role", "api")))
            servers.append(BenchServer(inst.settings, port_b, folder / "node-b.log", workers=NODE_WORKERS,
                                       env=second, args=("--role", "api")))
            servers.append(BenchServer(inst.settings, port_o, folder / "ocsp.log", workers=1, env=second,
                                       args=("--role", "ocsp")))
            node_a, node_b, ocsp = servers
            if args.ocsp_nice:
                say(f"the OCSP worker runs at nice {args.ocsp_nice} (a core of its own, as a node of its own would have)")
                _renice(ocsp.pid, args.ocsp_nice)
            apis = [node_a.url, node_b.url]
            nodes = (node_a.pid, node_b.pid, ocsp.pid)
            databases = (_postmaster_pid(primary.data), _postmaster_pid(standby.data))

            say(f"mixed load: {args.clients} clients over 2 nodes, OCSP on its own worker")
            mixed = L.Load(world, actions, args.clients, args.warmup, args.duration, args.timeout, args.seed,
                           api_urls=apis, ocsp_url=ocsp.url)
            _drive(mixed, nodes + databases)
            cores = {name: mixed.cpu_each[pid] / args.duration
                     for name, pid in zip(("node A", "node B", "OCSP worker", "PostgreSQL primary",
                                           "PostgreSQL standby"), nodes + databases, strict=True)}

            per_op: dict[str, dict[str, float]] = {}
            by_name = {a.name: a for a in L.ACTIONS}
            for name in ("sign_seal", "sign_sad", "verify"):
                say(f"CPU per operation: {name} alone, {CALIBRATION_CLIENTS} clients, {args.calibrate:.0f} s")
                one = L.Load(world, [L.Action(name, by_name[name].label, 1)], CALIBRATION_CLIENTS, 3,
                             args.calibrate, args.timeout, args.seed + 1, api_urls=apis, ocsp_url=ocsp.url)
                _drive(one, nodes + databases)
                stats = one.stats[name]
                done = stats.docs if name.startswith("sign") else len(stats.latencies)
                kyso = sum(one.cpu_each[pid] for pid in nodes)
                pg = sum(one.cpu_each[pid] for pid in databases)
                per_op[name] = {"operations": done, "per_s": done / args.calibrate, "errors": stats.errors,
                                "kyso_cpu_ms": 1000 * kyso / done if done else float("nan"),
                                "postgres_cpu_ms": 1000 * pg / done if done else float("nan")}

            settings = inst.settings
            seconds = args.calibrate
            say(f"rate limit across nodes: one address on {PROBE_CONNECTIONS} connections, {seconds:.0f} s")
            probe = L.Load(world, [L.Action("verify", by_name["verify"].label, 1)], PROBE_CONNECTIONS, 0, seconds,
                           args.timeout, args.seed + 2, api_urls=apis, address=PROBE_ADDRESS, accept=frozenset({429}))
            _drive(probe, nodes)
            allowed = settings.verify_burst + settings.verify_rate_per_second * seconds
            limit = {"granted": probe.answered.get(200, 0), "refused_429": probe.answered.get(429, 0),
                     "seconds": seconds, "rate_per_s": settings.verify_rate_per_second, "burst": settings.verify_burst,
                     "allowed": allowed, "per_worker_would_allow": allowed * NODE_WORKERS * 2,
                     "errors": probe.stats["verify"].errors}

            replica = {"node A": _replica_reads(node_a.url), "node B": _replica_reads(node_b.url)}
            ocsp_server_side = _server_side(ocsp.log_path, "/ocsp/")  # GET: pre-produced answers only
            tracebacks = sum(s.count_in_log("Traceback") for s in servers)
            log_tail = "\n".join(s.log_tail(15) for s in servers) if tracebacks else ""
            problems = [p for s in servers for p in L.server_problems(s.log_path)]
            extra = {"nodes": 2, "node_workers": NODE_WORKERS, "cores": cores, "cpu_per_operation": per_op,
                     "rate_limit": limit, "replica_reads": replica, "ocsp_server_side": ocsp_server_side,
                     "ocsp_nice": args.ocsp_nice}
            return mixed, extra, log_tail, tracebacks, problems
    finally:
        if world is not None:
            world.sads.close()
        for server in servers:
            server.stop()
        if inst is not None:
            with contextlib.suppress(Exception):
                inst.container.dispose()
        if L._pg_engine is not None:
            L._pg_engine.dispose()
        if standby is not None:
            standby.remove()
        primary.remove()


def print_two_node(extra: dict[str, Any]) -> None:
    say("cores used during the mixed window: " + ", ".join(f"{k} {v:.2f}" for k, v in extra["cores"].items()))
    for name, op in extra["cpu_per_operation"].items():
        say(f"{name}: {op['operations']} in the window ({fmt(op['per_s'])}/s, {op['errors']} errors): kyso "
            f"{op['kyso_cpu_ms']:.1f} CPU-ms, PostgreSQL {op['postgres_cpu_ms']:.1f} CPU-ms per operation")
    r = extra["rate_limit"]
    say(f"rate limit: one address got {r['granted']} verifications in {r['seconds']:.0f} s ({r['refused_429']} refused 429); "
        f"the configured limit allows {r['allowed']:.0f}, per-worker limits would allow {r['per_worker_would_allow']:.0f}")
    o = extra["ocsp_server_side"]
    if o:
        say(f"OCSP GET as the OCSP worker itself timed it (access log, warm-up included): {o['requests']} requests, p50 "
            f"{o['p50_ms']:.1f} ms, p95 {o['p95_ms']:.1f} ms, p99 {o['p99_ms']:.1f} ms (nice {extra['ocsp_nice']})")
    say("replica reads: " + "; ".join(f"{node}: {counts}" for node, counts in extra["replica_reads"].items()))


def markdown_lines(extra: dict[str, Any]) -> list[str]:
    lines = ["", "## Two nodes, one primary, one replica", "",
             f"Two `kyso serve --role api --workers {extra['node_workers']}` nodes write to one private PostgreSQL "
             "primary and read from its streaming replica (`KYSO_DATABASE_READ_URL`); OCSP goes to a `kyso serve "
             "--role ocsp` worker of its own. Everything, the load generator included, shares the machine's cores.",
             "", "| process | cores used in the mixed window |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in extra["cores"].items()]
    lines += ["", "CPU per operation (one action at a time, CPU of the process trees over the operations done):", "",
              "| operation | done | per s | kyso CPU-ms | PostgreSQL CPU-ms | errors |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {k} | {v['operations']} | {fmt(v['per_s'])} | {v['kyso_cpu_ms']:.1f} | {v['postgres_cpu_ms']:.1f} | "
              f"{v['errors']} |" for k, v in extra["cpu_per_operation"].items()]
    r = extra["rate_limit"]
    lines += ["", f"Rate limit across 2 nodes × {extra['node_workers']} workers: one address on "
                  f"{PROBE_CONNECTIONS} connections got **{r['granted']}** verifications in {r['seconds']:.0f} s "
                  f"({r['refused_429']} answered 429); the configured limit ({r['burst']} burst + "
                  f"{r['rate_per_s']:g}/s) allows {r['allowed']:.0f}; limits per worker would have allowed "
                  f"{r['per_worker_would_allow']:.0f}.", "",
              "OCSP GET (pre-produced) as the `--role ocsp` worker timed it itself (access log, warm-up included): "
              + (f"p50 {extra['ocsp_server_side']['p50_ms']:.1f} ms, p95 {extra['ocsp_server_side']['p95_ms']:.1f} ms, "
                 f"p99 {extra['ocsp_server_side']['p99_ms']:.1f} ms" if extra["ocsp_server_side"] else "no log")
              + (f"; the worker ran at nice {extra['ocsp_nice']}" if extra["ocsp_nice"] else "") + ".", "",
              "Reads answered by the replica (`kyso_replica_reads_total`): " + "; ".join(
                  f"{node}: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(c.items()))
                  for node, c in extra["replica_reads"].items()) + "."]
    return lines


__all__ = ["markdown_lines", "print_two_node", "run"]
