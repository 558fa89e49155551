"""Durations in rules files: ``90s``, ``15m``, ``1h``, ``2d`` or a number of seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration_s(value: object) -> float:
    """Seconds in ``value``; raise ValueError with a readable reason otherwise."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 30s, 15m, 1h or a number of seconds")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("must be a duration like 30s, 15m, 1h or a number of seconds")
    text = value.strip().replace(" ", "")
    if not text or not _PART.sub("", text) == "":
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 15m, 1h30m, 2d)")
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
