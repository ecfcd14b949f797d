"""ASGI middleware: refuse oversize bodies before any handler reads them; keep a node to its role."""
from __future__ import annotations

import json
from typing import Any

from .errors import error_body


class BodyLimit:
    def __init__(self, app: Any, max_bytes: int, per_path: dict[str, int] | None = None) -> None:
        """``per_path``: larger limits for paths that take documents (signing and verification uploads);
        a key ending in ``*`` is a prefix (``/v/*`` for the citizen page's uploads)."""
        self.app, self.max_bytes = app, max_bytes
        self.per_path = {k: v for k, v in (per_path or {}).items() if not k.endswith("*")}
        self.prefixes = [(k[:-1], v) for k, v in (per_path or {}).items() if k.endswith("*")]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.per_path.get(path) or next((v for p, v in self.prefixes if path.startswith(p)), self.max_bytes)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(send, limit)
            return
        received = 0
        refused = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, refused
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._refuse(send, limit)

    async def _refuse(self, send: Any, limit: int) -> None:
        body = json.dumps(error_body(
            "request_too_large", f"the request body is larger than this server accepts ({limit:,} bytes)"
        ), ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class RoleFilter:
    """``kyso serve --role ocsp``: answer 404 for every path outside the role, before any route runs (the
    probes' router also holds API routes)."""

    def __init__(self, app: Any, role: str) -> None:
        self.app, self.role = app, role

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or serves(self.role, scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        body = json.dumps(error_body("http_404", f"no such endpoint on this node (role {self.role})"),
                          ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# the protocol lane: what relying parties and PDF readers fetch, answered from pre-produced data (OCSP, CRLs, CA
# certificates) or cheap to make (time-stamps), all on api/routes/protocol.py; and what a load balancer or
# Prometheus asks of every node
_PROTOCOL_PREFIXES = ("/ocsp/", "/crl/", "/ca/")
_PROTOCOL_PATHS = ("/ocsp", "/tsa")
_PROBES = ("/healthz", "/readyz", "/metrics")


def serves(role: str, path: str) -> bool:
    """Whether a node of ``role`` (``kyso serve --role``) serves ``path``: ``ocsp`` only the protocol lane and the
    probes; ``api`` everything else, so signing and verification never share a worker (and its GIL) with OCSP;
    ``all`` everything."""
    protocol = path in _PROTOCOL_PATHS or path.startswith(_PROTOCOL_PREFIXES)
    if role == "ocsp":
        return protocol or path in _PROBES
    if role == "api":
        return not protocol
    return True
