"""Wait for a condition instead of sleeping for a guessed time: a loaded CI machine makes any guess wrong."""
from __future__ import annotations

import time
from collections.abc import Callable


def until(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``check`` every 20 ms; fail naming ``what`` once ``seconds`` have passed without it holding."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
