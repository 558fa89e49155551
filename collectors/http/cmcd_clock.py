"""How a CMCD v2 report reveals its client's clock, and the shift that corrects it (SPEC 4).

Players send each v2 event as it happens (``ps``, ``t``, ``bc``, ``e`` at their ``ts``, ``rr``
when the response ended, ``ts + ttlb``), so the latest event time among one session's lines in a
body is the device's clock at sending. ``received - that`` is the device's clock error plus the
transit time. Within ``clock_tolerance_s`` the clock is taken as right and nothing moves (a
report resent after a 429 is not moved forward by its delay); beyond it every line of that
session in the body is shifted by the measured offset, and then the SPEC 4 bounds apply. Lines
of other sessions in the same body get their own measure. A session keeps the shift of its first
report while later measures agree with it within the tolerance (``SessionClocks``), so transit
jitter does not stretch or shrink the times between its events.

A client that can say its clock outright does it as for JSON beacons: ``X-Playscope-Client-Time:
<epoch ms>`` (or ``?client_time=``) at send time; that offset (beyond 2 s) then applies to every
v2 line of the request instead of the derived one.
"""

from __future__ import annotations

from collections import OrderedDict
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


class SessionClocks:
    """The shift in force per session (bounded LRU), so every report of a session moves by the
    same amount and the intervals between its events stay as the player measured them; a
    new measure replaces it only when it differs by more than the tolerance (the device's
    clock was set, or the first measure was a delayed resend)."""

    def __init__(self, max_sessions: int, tolerance_ms: int) -> None:
        self.max_sessions = max_sessions
        self.tolerance_ms = tolerance_ms
        self._shifts: OrderedDict[str, int] = OrderedDict()

    def shift(self, sid: str, lines: list[dict[str, Any]], received_ms: int) -> int:
        sent = send_time(lines)
        kept = self._shifts.get(sid)
        if sent is None:
            return kept or 0
        measured = received_ms - sent
        if kept is not None and abs(measured - kept) <= self.tolerance_ms:
            self._shifts.move_to_end(sid)
            return kept
        shift = measured if abs(measured) > self.tolerance_ms else 0
        self._shifts[sid] = shift
        self._shifts.move_to_end(sid)
        while len(self._shifts) > self.max_sessions:
            self._shifts.popitem(last=False)
        return shift
