"""Second stage: merge per-partition window partials into one record per window and group.

Every source partition reports, for each window it closes, its partial aggregates (in chunks)
and then a mark with its frontier (all windows ending at or before it are closed there). A
window is emitted once every source partition has reported and the lowest frontier among the
partitions that have data has passed its end. A partition with no data at all reports ``None``
on every tick; it lets a window through only once it has reported ``None`` again after the
others passed that window's end, so a partition that just received its first records (and so
stopped reporting ``None``) is never overtaken. Partials are stored per (partition, chunk), so a partial re-sent after a
restart replaces itself instead of adding twice.
"""

from __future__ import annotations

from typing import Any

from streams.windows import RECORD_BUILDERS, decode_agg, encode_agg, merge_agg


class WindowMerger:
    def __init__(self, kind: str, window_ms: int) -> None:
        self.kind = kind
        self.window_ms = window_ms
        self.parts = 0
        self.frontiers: dict[str, int | None] = {}
        self.empty_seen: dict[str, int] = {}  # partition -> watermark of the others at its last None
        self.partials: dict[str, dict[str, dict[str, Any]]] = {}  # ws -> "p/chunk" -> {key: agg}
        self.emitted_upto = 0
        self.offset = -1
        self.late_partials = 0

    def add_partial(self, partition: int, chunk: int, ws: int, aggs: dict[str, Any]) -> None:
        if ws + self.window_ms <= self.emitted_upto:
            self.late_partials += 1
            return
        self.partials.setdefault(str(ws), {})[f"{partition}/{chunk}"] = aggs

    def mark(self, partition: int, parts: int, frontier: int | None) -> list[dict[str, Any]]:
        """Record a partition's frontier; return the window records that became complete."""
        self.parts = max(self.parts, parts)
        key = str(partition)
        self.frontiers[key] = frontier
        known = [f for f in self.frontiers.values() if f is not None]
        if frontier is None and known:
            self.empty_seen[key] = min(known)
        if len(self.frontiers) < self.parts or not known:
            return []
        watermark = min(f if f is not None else self.empty_seen.get(p, -1) for p, f in self.frontiers.items())
        records: list[dict[str, Any]] = []
        for ws in sorted(int(w) for w in self.partials):
            if ws + self.window_ms > watermark:
                break
            merged: dict[str, dict[str, Any]] = {}
            for aggs in self.partials.pop(str(ws)).values():
                for key, raw in aggs.items():
                    agg = decode_agg(raw)
                    if key in merged:
                        merge_agg(merged[key], agg)
                    else:
                        merged[key] = agg
            build = RECORD_BUILDERS[self.kind]
            records.extend(build(ws, self.window_ms, key, agg) for key, agg in sorted(merged.items()))
        self.emitted_upto = max(self.emitted_upto, watermark - watermark % self.window_ms)
        return records

    def to_dict(self) -> dict[str, Any]:
        return {
            "parts": self.parts,
            "frontiers": self.frontiers,
            "empty_seen": self.empty_seen,
            "partials": self.partials,
            "emitted_upto": self.emitted_upto,
            "offset": self.offset,
            "late_partials": self.late_partials,
        }

    def load(self, raw: dict[str, Any]) -> None:
        self.parts = raw["parts"]
        self.frontiers = dict(raw["frontiers"])
        self.empty_seen = dict(raw["empty_seen"])
        self.partials = raw["partials"]
        self.emitted_upto = raw["emitted_upto"]
        self.offset = raw["offset"]
        self.late_partials = raw["late_partials"]


def chunk_partial(groups: dict[str, dict[str, Any]], size: int = 200) -> list[dict[str, Any]]:
    """Encode a closed window's groups as chunks small enough for one Kafka record each."""
    items = sorted(groups.items())
    return [{key: encode_agg(agg) for key, agg in items[i : i + size]} for i in range(0, max(len(items), 1), size)]
