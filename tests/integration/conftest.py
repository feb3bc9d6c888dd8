"""Integration fixtures: a whole hub per test, on the session's broker (tests/conftest.py)."""

from __future__ import annotations

import pytest
from hubkit import RunningHub


@pytest.fixture
def hub(settings):
    running = RunningHub(settings)
    yield running
    running.stop()
