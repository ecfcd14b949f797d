"""Activation fixtures: an enrolled specialist (the clock, PIN and phone are in tests/helpers)."""
from __future__ import annotations

import pytest

from api.container import Container
from tests.helpers.activation import Phone, enroll
from tests.helpers.clock import FrozenClock


@pytest.fixture
def enrolled(pki: Container, specialist: str, frozen: FrozenClock) -> tuple[str, Phone]:
    return specialist, enroll(pki, specialist, frozen)
