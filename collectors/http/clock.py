"""Client clocks on JSON beacons: the offset a device reports, and the SPEC 4 bounds after it.

Device clocks are often wrong by hours or years (TVs, set-top boxes). A client may send its own
clock at send time, ``X-Playscope-Client-Time: <epoch ms>`` (or ``?client_time=<epoch ms>``
where it cannot set headers, as with ``sendBeacon``). The collector measures
``offset = receive time - client time`` and, when it is larger than ``SKEW_TOLERANCE_MS`` (the
transit time of a request is no skew), adds it to the ``ts`` of every event or log record of
the request, which keeps their order and spacing; the record carries ``clock_offset_ms``.
Then the bounds apply: ``ts`` at most ``max_ts_ahead_s`` ahead of the receive time and
``max_ts_age_s`` behind it, else the item is refused and dead-lettered with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playscope.events import check_clock
from playscope.timeparse import MAX_TS_MS, MIN_TS_MS

CLIENT_TIME_HEADER = "x-playscope-client-time"
CLIENT_TIME_PARAM = "client_time"
SKEW_TOLERANCE_MS = 2000


class BadClientTime(ValueError):
    """The client time given is not epoch milliseconds (400)."""


def client_offset(header: str | None, received_ms: int) -> int:
    """The offset to add to the request's timestamps (0 for none or a skew within tolerance)."""
    if header is None:
        return 0
    text = header.strip()
    if not text or len(text) > 16 or not text.isascii() or not text.isdigit():
        raise BadClientTime(f"{CLIENT_TIME_HEADER} must be epoch milliseconds, got {text[:20]!r}")
    client_ms = int(text)
    if not MIN_TS_MS <= client_ms < MAX_TS_MS:
        raise BadClientTime(f"{CLIENT_TIME_HEADER} {client_ms} is out of range (epoch milliseconds)")
    offset = received_ms - client_ms
    return offset if abs(offset) > SKEW_TOLERANCE_MS else 0


@dataclass(frozen=True, slots=True)
class Clock:
    """One request's receive time, the client's offset and the bounds; ``apply`` per record."""

    received_ms: int
    offset_ms: int
    ahead_ms: int
    behind_ms: int

    def apply(self, record: dict[str, Any]) -> None:
        """Shift ``record['ts']`` (already epoch ms) by the offset, then check the bounds
        (ValidationError on ``ts``)."""
        if self.offset_ms:
            record["ts"] = record["ts"] + self.offset_ms
            record["clock_offset_ms"] = self.offset_ms
        check_clock(record, self.received_ms, self.ahead_ms, self.behind_ms)
