"""Fixtures for verification tests: a frozen clock the test moves, restored afterwards."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from core import clock

from .helpers import FrozenClock


@pytest.fixture
def frozen() -> Iterator[FrozenClock]:
    held = FrozenClock(clock.now())
    try:
        yield held
    finally:
        clock.set_clock(None)
