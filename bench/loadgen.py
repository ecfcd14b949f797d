"""A closed-loop HTTP load generator: N asyncio tasks, each on its own keep-alive connection, each sending
its next OCSP request as soon as the previous answer arrived, for a fixed time."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx
from cryptography import x509
from cryptography.x509 import ocsp

from .common import HttpRun, percentile, process_tree_cpu, self_cpu

OCSP_REQUEST = "application/ocsp-request"


def get_path(request_der: bytes) -> str:
    """RFC 6960 A.1: /ocsp/{url-encoding of base-64 encoding of the DER request}."""
    return "/ocsp/" + quote(base64.b64encode(request_der).decode(), safe="")


async def _drive(base_url: str, method: str, requests: list[bytes], concurrency: int, warmup: float,
                 duration: float, server_pid: int, expect_pre_produced: bool, client_kind: str,
                 fixed_path: str | None, once: bool) -> HttpRun:
    if fixed_path:  # a reference route (no OCSP): only HTTP 200 is checked
        requests = [b""]
        paths = [fixed_path]
    else:
        paths = [get_path(r) for r in requests] if method == "GET" else []
    latencies: list[float] = []
    errors: list[str] = []
    counter = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    clock = time.perf_counter  # uvloop's loop.time() has only millisecond resolution
    start = clock()
    window_start, window_end = start + warmup, start + warmup + duration
    marks: dict[str, float] = {}
    order = iter(range(len(requests)))  # once: every request exactly once, from a shared queue
    if once:
        window_start, window_end = start, float("inf")
        marks["cpu_server0"], marks["cpu_self0"] = process_tree_cpu(server_pid), self_cpu()

    async def marker() -> None:
        if once:
            return
        await asyncio.sleep(max(0.0, window_start - clock()))
        marks["cpu_server0"], marks["cpu_self0"] = process_tree_cpu(server_pid), self_cpu()
        await asyncio.sleep(max(0.0, window_end - clock()))
        marks["cpu_server1"], marks["cpu_self1"] = process_tree_cpu(server_pid), self_cpu()

    split = urlsplit(base_url)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as client:
        async def send(conn: _Conn | None, i: int):  # type: ignore[no-untyped-def]
            if conn is not None:
                if method == "GET":
                    return await asyncio.wait_for(conn.request("GET", paths[i], None, None), 30)
                return await asyncio.wait_for(conn.request("POST", "/ocsp", requests[i], OCSP_REQUEST), 30)
            if method == "GET":
                return await client.get(paths[i])
            return await client.post("/ocsp", content=requests[i], headers={"Content-Type": OCSP_REQUEST})

        async def worker(offset: int) -> None:
            nonlocal counter
            conn = _Conn(split.hostname or "127.0.0.1", split.port or 80) if client_kind == "raw" else None
            i = offset
            # Connections opened one by one while requests already flow, so that with several server
            # workers an idle one gets the chance to accept (keep-alive pins each connection to one).
            await asyncio.sleep(offset * min(0.01, warmup / (2 * concurrency)))
            try:
                while True:
                    t0 = clock()
                    if t0 >= window_end:
                        return
                    if once:
                        i = next(order, -1)
                        if i < 0:
                            return
                    else:
                        i = (i + concurrency) % len(requests)
                    try:
                        resp = await send(conn, i)
                        t1 = clock()
                        problem = (None if resp.status_code == 200 else f"HTTP {resp.status_code}") if fixed_path \
                            else _check(resp, expect_pre_produced)
                    except (TimeoutError, httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                        t1, problem = clock(), f"{type(exc).__name__}: {exc}"
                        if conn is not None:
                            await conn.close()
                    if t0 >= window_start and t1 <= window_end:
                        if problem:
                            errors.append(problem)
                        else:
                            latencies.append(t1 - t0)
                            counter += 1
            finally:
                if conn is not None:
                    await conn.close()

        await asyncio.gather(marker(), *(worker(k) for k in range(concurrency)))
    if once:
        duration = clock() - start
        marks["cpu_server1"], marks["cpu_self1"] = process_tree_cpu(server_pid), self_cpu()
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


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes, bool]:
    """One HTTP/1.1 answer: status, lower-cased headers, body (Content-Length, chunked, or up to EOF), and
    whether the connection must be closed after it."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split(b" ", 2)[1])
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    closing = headers.get("connection", "").lower() == "close"
    if "content-length" in headers:
        content = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        content = b"".join(parts)
    else:
        content, closing = await reader.read(), True  # the body ends with the connection
    return status, headers, content, closing


class _Conn:
    """A minimal HTTP/1.1 keep-alive client connection (asyncio streams): a few microseconds of CPU
    per request, so that the load generator takes as little as possible of the shared cores."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None, content_type: str | None) -> _Response:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        assert self.reader is not None
        try:
            status, headers, content, closing = await read_response(self.reader)
        except ConnectionError:
            await self.close()
            raise
        if closing:
            await self.close()
        return _Response(status, headers, content, method)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


@dataclass
class _Response:
    status_code: int
    headers: dict[str, str]
    content: bytes
    method: str

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


def _check(resp, expect_pre_produced: bool) -> str | None:  # type: ignore[no-untyped-def]
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
    if getattr(resp, "method", None) == "GET" or (hasattr(resp, "request") and resp.request.method == "GET"):
        cacheable = "max-age" in resp.headers.get("cache-control", "")
        if cacheable != expect_pre_produced:
            return f"GET answered {'from the store' if cacheable else 'by signing'}, expected the other"
    return None


def run_load(base_url: str, method: str, requests: list[bytes], *, concurrency: int, warmup: float, duration: float,
             server_pid: int, expect_pre_produced: bool, client: str = "httpx",
             fixed_path: str | None = None, once: bool = False) -> HttpRun:
    """Closed-loop load for ``warmup`` + ``duration`` seconds (only the latter measured); with
    ``once``, every request exactly once instead (no warm-up; the time is what it takes)."""
    try:
        import uvloop  # the same loop uvicorn uses; the client then costs less of the shared CPU

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    run = runner(_drive(base_url, method, requests, concurrency, warmup, duration, server_pid, expect_pre_produced,
                        client, fixed_path, once))
    run.client = client
    return run


__all__ = ["get_path", "run_load", "time"]
