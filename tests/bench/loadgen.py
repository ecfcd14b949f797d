"""A closed-loop HTTP load generator: N asyncio tasks on one httpx client (keep-alive), each sending
its next OCSP request as soon as the previous answer arrived, for a fixed time."""
from __future__ import annotations

import asyncio
import base64
import time
from urllib.parse import quote

import httpx
from cryptography import x509
from cryptography.x509 import ocsp

from .common import HttpRun, percentile, process_tree_cpu, self_cpu


def get_path(request_der: bytes) -> str:
    """RFC 6960 A.1: /ocsp/{url-encoding of base-64 encoding of the DER request}."""
    return "/ocsp/" + quote(base64.b64encode(request_der).decode(), safe="")


async def _drive(base_url: str, method: str, requests: list[bytes], concurrency: int, warmup: float,
                 duration: float, server_pid: int, expect_pre_produced: bool) -> HttpRun:
    paths = [get_path(r) for r in requests] if method == "GET" else []
    latencies: list[float] = []
    errors: list[str] = []
    counter = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    loop = asyncio.get_running_loop()
    start = loop.time()
    window_start, window_end = start + warmup, start + warmup + duration
    marks: dict[str, float] = {}

    async def marker() -> None:
        await asyncio.sleep(max(0.0, window_start - loop.time()))
        marks["cpu_server0"], marks["cpu_self0"] = process_tree_cpu(server_pid), self_cpu()
        await asyncio.sleep(max(0.0, window_end - loop.time()))
        marks["cpu_server1"], marks["cpu_self1"] = process_tree_cpu(server_pid), self_cpu()

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as client:
        async def worker(offset: int) -> None:
            nonlocal counter
            i = offset
            while True:
                t0 = loop.time()
                if t0 >= window_end:
                    return
                i = (i + concurrency) % len(requests)
                try:
                    if method == "GET":
                        resp = await client.get(paths[i])
                    else:
                        resp = await client.post("/ocsp", content=requests[i],
                                                 headers={"Content-Type": "application/ocsp-request"})
                    t1 = loop.time()
                    problem = _check(resp, expect_pre_produced)
                except httpx.HTTPError as exc:
                    t1, problem = loop.time(), f"{type(exc).__name__}: {exc}"
                if t0 >= window_start and t1 <= window_end:
                    if problem:
                        errors.append(problem)
                    else:
                        latencies.append(t1 - t0)
                        counter += 1

        await asyncio.gather(marker(), *(worker(k) for k in range(concurrency)))
    latencies.sort()
    return HttpRun(
        mode="pre-produced" if expect_pre_produced else "signed on demand", method=method, concurrency=concurrency,
        duration=duration, responses=counter, errors=len(errors), rate=counter / duration,
        p50_ms=percentile(latencies, 50) * 1000, p95_ms=percentile(latencies, 95) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        server_cpu=(marks["cpu_server1"] - marks["cpu_server0"]) / duration,
        client_cpu=(marks["cpu_self1"] - marks["cpu_self0"]) / duration,
        error_samples=sorted(set(errors))[:5],
    )


def _check(resp: httpx.Response, expect_pre_produced: bool) -> str | None:
    if resp.status_code != 200:
        return f"HTTP {resp.status_code}: {resp.text[:120]}"
    try:
        parsed = ocsp.load_der_ocsp_response(resp.content)
    except ValueError as exc:
        return f"unparseable OCSP response: {exc}"
    if parsed.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return f"OCSP status {parsed.response_status.name}"
    try:
        parsed.extensions.get_extension_for_class(x509.OCSPNonce)
        has_nonce = True
    except x509.ExtensionNotFound:
        has_nonce = False
    if has_nonce == expect_pre_produced:  # a nonce is echoed only by an on-demand signature
        return "nonce echoed in a pre-produced answer" if has_nonce else "nonce not echoed"
    # A pre-produced answer to a GET is cacheable; a signed-on-demand one is not (api/routes/protocol.py).
    if resp.request.method == "GET":
        cacheable = "max-age" in resp.headers.get("cache-control", "")
        if cacheable != expect_pre_produced:
            return f"GET answered {'from the store' if cacheable else 'by signing'}, expected the other"
    return None


def run_load(base_url: str, method: str, requests: list[bytes], *, concurrency: int, warmup: float, duration: float,
             server_pid: int, expect_pre_produced: bool) -> HttpRun:
    try:
        import uvloop  # the same loop uvicorn uses; the client then costs less of the shared CPU

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    return runner(_drive(base_url, method, requests, concurrency, warmup, duration, server_pid, expect_pre_produced))


__all__ = ["run_load", "get_path", "time"]
