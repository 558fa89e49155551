"""How a CMCD v2 report reveals its client's clock, and the shift that corrects it (SPEC 4).

Players send each v2 event as it happens (``ps``, ``t``, ``bc``, ``e`` at their ``ts``, ``rr``
when the response ended, ``ts + ttlb``), so the latest event time among one session's lines in a
body is the device's clock at sending. ``received - that`` is the device's clock error plus the
transit time. Within ``clock_tolerance_s`` the clock is taken as right and nothing moves (a
report resent after a 429 is not moved forward by its delay); beyond it every line of that
session in the body is shifted by the measured offset, and then the SPEC 4 bounds apply. Lines
of other sessions in the same body get their own measure.

A client that can say its clock outright does it as for JSON beacons: ``X-Playscope-Client-Time:
<epoch ms>`` (or ``?client_time=``) at send time; that offset (beyond 2 s) then applies to every
v2 line of the request instead of the derived one.
"""

from __future__ import annotations

from typing import Any

from collectors.http.cmcd_events import event_time
from playscope.timeparse import MAX_TS_MS, MIN_TS_MS

CLIENT_TIME_HEADER = "x-playscope-client-time"
CLIENT_TIME_PARAM = "client_time"
EXPLICIT_TOLERANCE_MS = 2000  # the transit time of a request is no skew


def send_time(lines: list[dict[str, Any]]) -> int | None:
    """The client's clock when it sent these lines (one session's lines of one body)."""
    times = [t for t in (event_time(cmcd) for cmcd in lines) if t is not None]
    return max(times) if times else None


def clock_shift(lines: list[dict[str, Any]], received_ms: int, tolerance_ms: int) -> int:
    """Milliseconds to add to these lines' ``ts``: 0 when the client's clock is within tolerance."""
    sent = send_time(lines)
    if sent is None:
        return 0
    offset = received_ms - sent
    return offset if abs(offset) > tolerance_ms else 0


def explicit_shift(client_time: str | None, received_ms: int) -> int | None:
    """The shift from a client time the request states (ValueError when it is not epoch ms)."""
    if client_time is None:
        return None
    text = client_time.strip()
    if not text or len(text) > 16 or not text.isascii() or not text.isdigit():
        raise ValueError(f"{CLIENT_TIME_HEADER} must be epoch milliseconds, got {text[:20]!r}")
    value = int(text)
    if not MIN_TS_MS <= value < MAX_TS_MS:
        raise ValueError(f"{CLIENT_TIME_HEADER} {value} is out of range (epoch milliseconds)")
    offset = received_ms - value
    return offset if abs(offset) > EXPLICIT_TOLERANCE_MS else 0
