"""The results table on stdout and docs/benchmarks.md."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from .common import Results, fmt

TARGET_PRE_OVER_DEMAND = 10.0
TARGET_HTTP_RATE = 2000.0


def _ratio(fig) -> str:  # type: ignore[no-untyped-def]
    r = fig.ratio
    if r is None:
        return "—"
    text = f"{r:.2f}×" if r >= 0.1 else f"{r:.3f}×"
    return text if fig.higher_is_better else text + " (time)"


def targets(results: Results) -> list[tuple[str, str, str]]:
    """(target, figure in this run, verdict) for PERFORMANCE.md's OCSP targets."""
    p = results.params
    rows: list[tuple[str, str, str]] = []
    if "http_pre_get" in p:
        get_ratio = p["http_pre_get"] / p["http_demand_get"]
        post_ratio = p["http_pre_post"] / p["http_demand_post"]
        value = (f"1 worker: GET {get_ratio:.2f}×, POST {post_ratio:.2f}× (cache cold, GET: "
                 f"{p['http_cold_get'] / p['http_demand_get']:.2f}×; in process, database path: "
                 f"{p['inproc_pre_over_demand']:.2f}×)")
        if "second_workers" in p:
            value += f"; {p['second_workers']} workers: POST {p['http_pre_post_2'] / p['http_demand_post_2']:.2f}×"
        verdict = ("met" if min(get_ratio, post_ratio) >= TARGET_PRE_OVER_DEMAND else
                   "met for POST only" if post_ratio >= TARGET_PRE_OVER_DEMAND else
                   "met for GET only" if get_ratio >= TARGET_PRE_OVER_DEMAND else "NOT met")
        rows.append((f"pre-produced OCSP ≥ {TARGET_PRE_OVER_DEMAND:.0f}× the on-demand signing rate (over HTTP, "
                     "GET and POST, steady state)", value, verdict))
        configs = {p.get("workers", 1): (p["http_pre_get"], p["http_pre_post"])}
        if "second_workers" in p:
            configs[p["second_workers"]] = (p["http_pre_get_2"], p["http_pre_post_2"])
        runs = p.get("http_runs", {})
        value = "; ".join(f"{w} worker{'s' if w > 1 else ''}: GET {g:,.0f}/s, POST {q:,.0f}/s"
                          for w, (g, q) in configs.items())
        best_w = max(configs, key=lambda w: min(configs[w]))
        client_cpu = [r.client_cpu for (m, _, w, c), r in runs.items() if m == "pre-produced" and w == best_w]
        if client_cpu:
            value += (f" (the load generator itself used up to {max(client_cpu):.2f} of the 2 cores; "
                      f"cache cold, 1 worker, GET: {p['http_cold_get']:,.0f}/s)")
        best = min(configs[best_w])
        rows.append((f"≥ {TARGET_HTTP_RATE:,.0f} pre-produced OCSP responses/s per node over HTTP (GET and POST, "
                     "steady state, best worker count)", value, "met" if best >= TARGET_HTTP_RATE else "NOT met"))
    elif "inproc_pre_over_demand" in p:
        rows.append((f"pre-produced OCSP ≥ {TARGET_PRE_OVER_DEMAND:.0f}× on-demand",
                     f"in process only: {p['inproc_pre_over_demand']:.2f}×",
                     "met" if p["inproc_pre_over_demand"] >= TARGET_PRE_OVER_DEMAND else "NOT met"))
    return rows


def target_remarks(results: Results) -> list[str]:
    """Where a response's server time goes, computed from this run's numbers."""
    p = results.params
    runs = p.get("http_runs")
    if not runs or "raw_ocsp" not in p:
        return []
    w = p.get("workers", 1)
    def cost(mode: str, method: str) -> str:
        run = runs.get((mode, method, w, "raw"))
        return f"{run.server_ms_per_response:.2f} ms" if run else "?"
    return [
        f"Server CPU per response ({w} worker): pre-produced GET {cost('pre-produced', 'GET')}, POST "
        f"{cost('pre-produced', 'POST')}; cache cold GET {cost('pre-produced, cache cold', 'GET')}; signed on "
        f"demand GET {cost('signed on demand', 'GET')}, POST {cost('signed on demand', 'POST')}; `GET /healthz` "
        f"{cost('reference: GET /healthz', 'GET')}. The OCSP signature itself (build+sign+DER, P-256, in memory) "
        f"costs {1000 / p['raw_ocsp']:.2f} ms in this run: the pre-produced/on-demand ratio measures kyso's "
        "database and framework work around the signature more than the signature."
    ]


def print_table(results: Results) -> None:
    print()
    print("=" * 118)
    print(f"kyso benchmark {'(--quick) ' if results.quick else ''}— kyso/base = kyso's figure divided by the baseline "
          "measured in this run\n(rates: below 1 = kyso slower; times, marked (time): above 1 = kyso slower)")
    print("=" * 118)
    section = None
    for fig in results.figures:
        if fig.section != section:
            section = fig.section
            print(f"\n{section}")
            print(f"  {'figure':<64} {'kyso':>10} {'baseline':>10} {'kyso/base':>15}  unit")
        print(f"  {fig.name:<64} {fmt(fig.value):>10} {fmt(fig.raw_value):>10} {_ratio(fig):>15}  {fig.unit}")
        if fig.raw_name:
            print(f"  {'':<6}baseline: {fig.raw_name}")
    if results.http:
        print("\nOCSP over HTTP (load generator and server share the machine's 2 cores)")
        print(f"  {'mode':<26}{'method':<7}{'client':<7}{'workers':>7}{'conns':>6}{'resp/s':>8}{'p50 ms':>8}{'p95 ms':>8}"
              f"{'p99 ms':>8}{'errors':>7}{'server CPU':>11}{'ms/resp':>8}{'client CPU':>11}")
        for r in results.http:
            print(f"  {r.mode:<26}{r.method:<7}{r.client:<7}{r.workers:>7}{r.concurrency:>6}{r.rate:>8,.0f}{r.p50_ms:>8.1f}"
                  f"{r.p95_ms:>8.1f}{r.p99_ms:>8.1f}{r.errors:>7}{r.server_cpu:>10.2f}c{r.server_ms_per_response:>8.2f}"
                  f"{r.client_cpu:>10.2f}c")
    rows = targets(results)
    if rows:
        print("\nTargets (the team's PERFORMANCE.md brief)")
        for target, value, verdict in rows:
            print(f"  {verdict:<8} {target}: {value}")
        for remark in target_remarks(results):
            print(f"  remark: {remark}")
    if "keystores" in results.params:
        from .keystores import print_table as print_keystores

        print_keystores(results.params["keystores"])
    for note in results.notes:
        print(f"\nnote: {note}")
    print()


def results_table(results: Results) -> list[str]:
    """The figures as a markdown table, one bold row per section."""
    lines = ["| figure | kyso | raw baseline (same run) | kyso / raw | notes |", "|---|---:|---|---:|---|"]
    section = None
    for fig in results.figures:
        if fig.section != section:
            section = fig.section
            lines.append(f"| **{section}** | | | | |")
        raw = f"{fmt(fig.raw_value)} {fig.unit} — {fig.raw_name}" if fig.raw_value is not None else "—"
        lines.append(f"| {fig.name} | {fmt(fig.value)} {fig.unit} | {raw} | {_ratio(fig)} | {fig.note} |")
    return lines


def write_markdown(results: Results, machine: dict[str, str], path: Path, method_notes: list[str]) -> None:
    finished = dt.datetime.now().astimezone()
    lines = [
        "# kyso benchmarks",
        "",
        "Generated by `make bench` (`.venv/bin/python -m bench.run"
        + (" --quick" if results.quick else "") + "`). Do not edit by hand: rerun it.",
        "Every kyso figure stands beside the raw library doing comparable work **in the same run**, as a ratio",
        "(absolute numbers drift between machines and with load; see the targets section below).",
        "",
        "Under load (many endpoints at once, hundreds of clients, several workers on PostgreSQL): see "
        "[benchmarks-load.md](benchmarks-load.md), written by `make load`.",
        "",
        f"- **Date**: {results.started:%Y-%m-%d %H:%M %Z} → {finished:%H:%M %Z}"
        + (" — **quick run (reduced sizes)**" if results.quick else ""),
        f"- **Machine**: {machine['nproc']} CPUs, {machine['cpu']}, {machine['memory']} RAM, Linux {machine['kernel']}",
        f"- **Software**: {machine['python']}, SQLite {machine['sqlite']}"
        + (f", PostgreSQL {machine['postgres']}" if machine.get("postgres") else "")
        + f"; {machine['libraries']}",
        f"- **kyso**: commit {machine['commit']}",
        "- **Load average** (1/5/15 min): "
        + "; ".join(f"{label} {a:.2f}/{b:.2f}/{c:.2f}" for label, (a, b, c) in results.loadavg),
        "",
        "## Results",
        "",
    ]
    lines += results_table(results)
    if results.http:
        lines += [
            "",
            "### OCSP over HTTP in detail",
            "",
            "The load generator (asyncio, keep-alive, closed loop) runs on the **same 2 cores** as the server;",
            "its CPU use is shown, and it takes capacity the server would otherwise have. CPU columns are cores",
            "used during the measured window (1.00 = one core fully busy).",
            "",
            "| mode | method | client | workers | connections | responses/s | p50 ms | p95 ms | p99 ms | errors | server CPU (cores) | server CPU per response (ms) | load generator CPU (cores) |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results.http:
            lines.append(f"| {r.mode} | {r.method} | {r.client} | {r.workers} | {r.concurrency} | {r.rate:,.0f} | {r.p50_ms:.1f} | {r.p95_ms:.1f} "
                         f"| {r.p99_ms:.1f} | {r.errors} | {r.server_cpu:.2f} | {r.server_ms_per_response:.2f} | {r.client_cpu:.2f} |")
    rows = targets(results)
    if rows:
        lines += ["", "## Targets (from PERFORMANCE.md)", "", "| target | this run | verdict |", "|---|---|---|"]
        lines += [f"| {t} | {v} | **{verdict}** |" for t, v, verdict in rows]
        lines += [""] + [f"{remark}" for remark in target_remarks(results)]
    keystores = _keystore_block(results, machine, path)
    if keystores:
        lines += ["", keystores]
    lines += ["", "## Method", ""] + [f"- {n}" for n in method_notes]
    if results.notes:
        lines += ["", "## Notes from this run", ""]
        for note in results.notes:
            lines.append("- " + note.replace("\n", "\n  "))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _keystore_block(results: Results, machine: dict[str, str], path: Path) -> str | None:
    """This run's keystore block, else the one already in the report (it carries its own date)."""
    from .keystores import existing_block, markdown_block

    if "keystores" in results.params:
        return markdown_block(results.params["keystores"], machine)
    return existing_block(path.read_text("utf-8")) if path.exists() else None


def splice_keystores(results: Results, machine: dict[str, str], path: Path) -> None:
    """``--only keystores``: replace the keystore block of an existing report, leaving the rest as it is."""
    from .keystores import markdown_block, splice

    block = markdown_block(results.params["keystores"], machine)
    path.write_text(splice(path.read_text("utf-8"), block), encoding="utf-8")


BLOCK_TITLES = {"signing": "6. Signing", "verify": "7. Verification"}


def splice_section(results: Results, machine: dict[str, str], path: Path, name: str, method: list[str]) -> None:
    """``--only signing`` / ``--only verify``: replace that section's block of an existing report (between
    ``<!-- NAME-block -->`` and the next block marker or the end), leaving the rest as it is."""
    finished = dt.datetime.now().astimezone()
    lines = [
        f"<!-- {name}-block -->", "",
        f"## {BLOCK_TITLES[name]} (`make bench` section `{name}`, this block from `--only {name}`)", "",
        f"- **Date**: {results.started:%Y-%m-%d %H:%M %Z} → {finished:%H:%M %Z}"
        + (" — **quick run (reduced sizes)**" if results.quick else ""),
        f"- **Machine**: {machine['nproc']} CPUs, {machine['cpu']}, {machine['memory']} RAM, Linux {machine['kernel']}",
        f"- **Software**: {machine['python']}, SQLite {machine['sqlite']}; {machine['libraries']}",
        f"- **kyso**: commit {machine['commit']}",
        "- **Load average** (1/5/15 min): "
        + "; ".join(f"{label} {a:.2f}/{b:.2f}/{c:.2f}" for label, (a, b, c) in results.loadavg),
        "", "### Results", "",
    ]
    lines += results_table(results)
    lines += ["", "### Method", ""] + [f"- {n}" for n in method]
    if results.notes:
        lines += ["", "### Notes from this run", ""] + ["- " + n.replace("\n", "\n  ") for n in results.notes]
    block = "\n".join(lines) + "\n"
    text = path.read_text("utf-8")
    marker = f"<!-- {name}-block -->"
    start = text.find(marker)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + block
    else:
        end = text.find("<!-- ", start + len(marker))
        text = text[:start] + block + ("\n" + text[end:] if end >= 0 else "")
    path.write_text(text, encoding="utf-8")
