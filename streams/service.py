"""One partition of service logs: SPEC 8 window partials. Pure logic, no Kafka."""

from __future__ import annotations

from typing import Any

from playscope.events import UNKNOWN, is_error_log
from streams.windows import ServiceWindows, window_start


class ServicePartition:
    def __init__(self, window_ms: int, lateness_ms: int) -> None:
        self.window_ms = window_ms
        self.lateness_ms = lateness_ms
        self.clock: int | None = None
        self.frontier: int | None = None
        self.offsets: dict[str, int] = {}
        self.windows = ServiceWindows(window_ms)

    def ingest(self, record: dict[str, Any]) -> bool:
        """Count one validated log record; returns True when it was late (its window had closed)."""
        ts = int(record["ts"])
        late = self.frontier is not None and ts < self.frontier
        ws = window_start(self.frontier if late and self.frontier is not None else ts, self.window_ms)
        route = record.get("route")
        dims = {"service": record["service"], "route": route if isinstance(route, str) and route else UNKNOWN}
        status = record.get("status")
        latency = record.get("latency_ms")
        self.windows.add(ws, dims, is_error_log(record), status, None if latency is None else float(latency), late)
        if self.clock is None or ts > self.clock:
            self.clock = ts
        return late

    def tick(self, advance_ms: int) -> None:
        if self.clock is not None and advance_ms > 0:
            self.clock += advance_ms

    def advance(self) -> list[tuple[int, dict[str, dict[str, Any]]]]:
        if self.clock is None:
            return []
        watermark = self.clock - self.lateness_ms
        if self.frontier is None:
            earliest = min(self.windows.windows, default=watermark)
            self.frontier = window_start(min(watermark, earliest), self.window_ms)
        closed: list[tuple[int, dict[str, dict[str, Any]]]] = []
        while self.frontier + self.window_ms <= watermark:
            closed.extend(self.windows.pop_closed(self.frontier + self.window_ms))
            self.frontier += self.window_ms
        return closed

    def to_dict(self) -> dict[str, Any]:
        return {
            "clock": self.clock,
            "frontier": self.frontier,
            "offsets": self.offsets,
            "windows": self.windows.to_dict(),
        }

    def load(self, raw: dict[str, Any]) -> None:
        self.clock = raw["clock"]
        self.frontier = raw["frontier"]
        self.offsets = dict(raw["offsets"])
        self.windows.load(raw["windows"])
