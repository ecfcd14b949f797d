"""ASGI middleware that refuses oversize bodies before any handler reads them."""
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
