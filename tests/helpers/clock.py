"""One frozen clock for every test that moves time: ``core.clock`` held at a moment the test sets by hand."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from core import clock
from signing.activation import crypto as sec


class FrozenClock:
    """``core.clock`` held at one moment; the test moves it explicitly (never the wall clock).

    Without ``start`` it starts now, at the start of the current TOTP step, so moving a few seconds stays
    in the same step (else a test that expects "same code" fails whenever it starts in a step's last
    seconds). Creating one sets the clock; the ``frozen`` fixture puts the real clock back afterwards."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        if start is None:
            now = int(dt.datetime.now(dt.UTC).timestamp())
            start = dt.datetime.fromtimestamp(now - now % sec.TOTP_PERIOD, dt.UTC)
        self.moment = start.replace(microsecond=0)
        clock.set_clock(lambda: self.moment)

    @property
    def now(self) -> dt.datetime:
        return self.moment

    def set(self, moment: dt.datetime) -> dt.datetime:
        self.moment = moment.replace(microsecond=0)
        return self.moment

    def advance(self, seconds: float = 0, **delta: float) -> dt.datetime:
        """Move forward by ``seconds`` and/or ``timedelta`` keywords (``days=1``); the new moment."""
        return self.set(self.moment + dt.timedelta(seconds=seconds, **delta))

    def next_step(self) -> dt.datetime:
        """Move into the next TOTP time step (a fresh code)."""
        return self.advance(sec.TOTP_PERIOD)


@pytest.fixture
def frozen() -> Iterator[FrozenClock]:
    held = FrozenClock()
    try:
        yield held
    finally:
        clock.set_clock(None)
