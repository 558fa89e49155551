"""Helpers for the security tests: raw topic reads (the collector on a free port, plain or HTTPS,
is :func:`helpers.running_collector`)."""

from __future__ import annotations

from helpers import read_messages

from playscope.config import Settings


def read_raw_topic(settings: Settings, topic: str, expected: int, timeout_s: float = 20.0) -> list[bytes]:
    """The raw values of a topic, read from the beginning until ``expected`` (plus a second)."""
    return [msg.value() for msg in read_messages(settings, topic, expected, timeout_s)]
