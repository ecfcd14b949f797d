"""One long-lived asyncio loop per worker thread, for pyHanko's async API.

Creating signatures and verifying them both drive pyHanko's coroutines from worker threads; a new
loop per call costs more than small signatures do, and pyHanko's own sync wrappers call
``asyncio.run``, which must never run on the server's event loop (pyHanko trap).
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_loops = threading.local()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on this thread's own loop (made on first use, kept for the thread's life)."""
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _loops.loop = loop
    return loop.run_until_complete(coro)
