"""Fixtures of the alert tests (helpers live in alerts_helpers.py; ``kafka_settings`` is in
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alerts_helpers import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()
