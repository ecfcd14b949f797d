"""A bounded number of public verifications at once, per worker process.

Verification is CPU work an anonymous caller chooses the cost of. Without a bound, six hostile files
running side by side made an honest verification wait minutes. The gate lets ``verify_max_concurrent``
verifications run at once; a request that finds every slot taken waits in line (first come, first
served) up to ``verify_queue_wait_seconds`` and is then answered ``VerificationBusy`` (HTTP 503 +
Retry-After) instead of queueing without end. Together with the verifier's own limits (signatures,
revisions, time budget) this bounds how long a hostile file can delay an honest one.

Waiting never blocks the event loop nor a thread-pool thread: an async request waits on a future the
releasing thread resolves. Threads (tests, a CLI) can hold slots too, through ``slot()``.
"""
from __future__ import annotations

import asyncio
import functools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from core.settings import Settings
from signing.errors import VerificationBusy
from signing.verify import pdf_facts

T = TypeVar("T")


class _Waiter:
    """One request in line; ``grant`` hands it a slot from whichever thread releases one."""

    def __init__(self, grant: Callable[[], None]) -> None:
        self.grant, self.granted = grant, False


class VerifyGate:
    """At most ``slots`` holders at once; others wait up to ``wait_seconds`` in FIFO order."""

    def __init__(self, slots: int, wait_seconds: float, retry_after: float) -> None:
        if slots < 1:
            raise ValueError("a verification gate needs at least one slot")
        self.slots, self.wait_seconds, self.retry_after = slots, wait_seconds, retry_after
        self._free = slots
        self._line: deque[_Waiter] = deque()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> VerifyGate:
        # a slot turns over within one verification's time budget: retrying sooner would likely meet a full gate
        return cls(settings.verify_max_concurrent, settings.verify_queue_wait_seconds,
                   retry_after=settings.verify_time_budget_seconds)

    @property
    def busy(self) -> int:
        """Slots held now (for metrics and tests)."""
        with self._lock:
            return self.slots - self._free

    @property
    def waiting(self) -> int:
        """Requests in line now (tests watch it to line their threads up)."""
        with self._lock:
            return len(self._line)

    def _take_or_join(self, waiter: _Waiter) -> bool:
        """Take a free slot at once (True) or join the line (False)."""
        with self._lock:
            if self._free > 0 and not self._line:
                self._free -= 1
                return True
            self._line.append(waiter)
            return False

    def _leave(self, waiter: _Waiter) -> bool:
        """Leave the line after a timeout or a cancellation; True when a slot was granted meanwhile (the
        caller then holds it and must release it)."""
        with self._lock:
            if waiter.granted:
                return True
            self._line.remove(waiter)
            return False

    def release(self) -> None:
        with self._lock:
            while self._line:
                waiter = self._line.popleft()
                waiter.granted = True  # the slot passes straight to it: never free in between
                try:
                    waiter.grant()
                    return
                except RuntimeError:  # its event loop is gone (shut down): the next in line gets the slot
                    waiter.granted = False
            if self._free >= self.slots:
                raise RuntimeError("verification gate released more often than taken")
            self._free += 1

    def _busy(self) -> VerificationBusy:
        return VerificationBusy(
            f"the verifier is busy with other files; try again in {self.retry_after:.0f} s "
            "(hệ thống đang bận, vui lòng thử lại sau)", retry_after=self.retry_after)

    async def acquire(self) -> None:
        """Wait for a slot without blocking the event loop; ``VerificationBusy`` after ``wait_seconds``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not future.done():
                future.set_result(None)

        def grant() -> None:
            loop.call_soon_threadsafe(settle)

        waiter = _Waiter(grant)
        if self._take_or_join(waiter):
            return
        try:
            await asyncio.wait_for(asyncio.shield(future), self.wait_seconds)
        except TimeoutError:
            if not self._leave(waiter):
                raise self._busy() from None
        except BaseException:  # cancelled (the client went away): give back a slot granted meanwhile
            if self._leave(waiter):
                self.release()
            raise

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot from a thread (blocking wait, same line and same limit as requests)."""
        event = threading.Event()
        waiter = _Waiter(event.set)
        if not self._take_or_join(waiter) and not event.wait(self.wait_seconds) and not self._leave(waiter):
            raise self._busy()
        try:
            yield
        finally:
            self.release()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` in the thread pool once a slot is free; the slot is held until it returns."""
        await self.acquire()
        try:
            return await run_in_threadpool(fn, *args)
        finally:
            self.release()


def verify_gate(request: Request) -> VerifyGate:
    """The app's gate (one per worker process, made by ``create_app`` from the settings)."""
    gate: VerifyGate = request.app.state.verify_gate
    return gate


def extract_signed_revision(settings: Settings) -> Callable[[bytes], tuple[bytes, str, int]]:
    """``pdf_facts.signed_revision`` under the verifier's limits (public callers choose the file; run it
    through the gate like a verification)."""
    return functools.partial(pdf_facts.signed_revision, max_signatures=settings.verify_max_signatures,
                             max_revisions=settings.verify_max_revisions)
