"""One clock for the whole service, so tests can freeze time instead of sleeping."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

UTC = dt.UTC


def _system_now() -> dt.datetime:
    return dt.datetime.now(UTC)


_now: Callable[[], dt.datetime] = _system_now


def now() -> dt.datetime:
    """Timezone-aware UTC now, truncated to whole seconds (X.509 times have no fractions)."""
    return _now().replace(microsecond=0)


def set_clock(func: Callable[[], dt.datetime] | None) -> None:
    """Replace the clock (tests); ``None`` restores the system clock."""
    global _now
    _now = func or _system_now


def get_clock() -> Callable[[], dt.datetime]:
    """The clock in force, so a test that moves time for one call can put it back."""
    return _now


def aware(value: dt.datetime) -> dt.datetime:
    """Databases (SQLite) may hand back naive datetimes; kyso stores UTC, so tag them."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
