"""Second stage: merge per-partition window partials into one record per window and group.

Every source partition reports, for each window it closes, its partial aggregates (in chunks)
and then a mark with its frontier (all windows ending at or before it are closed there). A
window is emitted once every source partition has reported and the lowest frontier among the
partitions that have data has passed its end. A partition with no data at all reports ``None``
on every tick; it lets a window through only once it has reported ``None`` again after the
others passed that window's end, so a partition that just received its first records (and so
stopped reporting ``None``) is never overtaken. Partials are stored per (partition, chunk), so a partial re-sent after a
restart replaces itself instead of adding twice.

Revisions (SPEC 7): a partition reports a closed window again when time reaching back into it
became known. Emitted windows keep their partials for ``retention_ms``; a revised partial
replaces that partition's part, and at the next mark every record of the window whose numbers
changed is emitted again with ``revision`` one higher (same key, same document id). A record
whose numbers did not change (a partial re-sent after a restart) is not emitted again.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from streams.windows import RECORD_BUILDERS, decode_agg, encode_agg, merge_agg


def _digest(record: dict[str, Any]) -> str:
    return hashlib.blake2b(orjson.dumps(record, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()


class WindowMerger:
    def __init__(self, kind: str, window_ms: int, retention_ms: int = 0) -> None:
        self.kind = kind
        self.window_ms = window_ms
        self.retention_ms = retention_ms
        self.parts = 0
        self.frontiers: dict[str, int | None] = {}
        self.empty_seen: dict[str, int] = {}  # partition -> watermark of the others at its last None
        self.partials: dict[str, dict[str, dict[str, Any]]] = {}  # ws -> "p/chunk" -> {key: agg}
        # emitted windows still open to revisions: ws -> {"parts": {...}, "records": {key: [rev, digest]}}
        self.emitted: dict[str, dict[str, Any]] = {}
        self.revised: set[str] = set()
        self.emitted_upto = 0
        self.offset = -1
        self.late_partials = 0
        self.revisions = 0

    def add_partial(self, partition: int, chunk: int, ws: int, aggs: dict[str, Any]) -> None:
        key = str(ws)
        done = self.emitted.get(key)
        if done is not None:
            done["parts"][f"{partition}/{chunk}"] = aggs
            self.revised.add(key)
            return
        if ws + self.window_ms <= self.emitted_upto:
            self.late_partials += 1
            return
        self.partials.setdefault(key, {})[f"{partition}/{chunk}"] = aggs

    def _records(self, ws: int, parts: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
        merged: dict[str, dict[str, Any]] = {}
        for aggs in parts.values():
            for key, raw in aggs.items():
                agg = decode_agg(raw)
                if key in merged:
                    merge_agg(merged[key], agg)
                else:
                    merged[key] = agg
        build = RECORD_BUILDERS[self.kind]
        return [(key, build(ws, self.window_ms, key, agg)) for key, agg in sorted(merged.items())]

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
            pieces = self.partials.pop(str(ws))
            seen: dict[str, list[Any]] = {}
            for key, record in self._records(ws, pieces):
                record["revision"] = 0
                seen[key] = [0, _digest(record)]
                records.append(record)
            self.emitted[str(ws)] = {"parts": pieces, "records": seen}
        records.extend(self._revise())
        self.emitted_upto = max(self.emitted_upto, watermark - watermark % self.window_ms)
        horizon = watermark - self.retention_ms
        for key in [k for k in self.emitted if int(k) + self.window_ms <= horizon]:
            del self.emitted[key]
        return records

    def _revise(self) -> list[dict[str, Any]]:
        """Records of emitted windows whose numbers changed, each with its next revision."""
        out: list[dict[str, Any]] = []
        for key in sorted(self.revised, key=int):
            done = self.emitted.get(key)
            if done is None:
                continue
            seen = done["records"]
            for group, record in self._records(int(key), done["parts"]):
                rev, digest = seen.get(group, [-1, ""])
                record["revision"] = max(rev, 0)
                new = _digest(record)
                if new == digest:
                    continue
                record["revision"] = rev + 1
                seen[group] = [rev + 1, _digest(record)]
                out.append(record)
        self.revisions += len(out)
        self.revised.clear()
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "parts": self.parts,
            "frontiers": self.frontiers,
            "empty_seen": self.empty_seen,
            "partials": self.partials,
            "emitted": self.emitted,
            "revised": sorted(self.revised),
            "emitted_upto": self.emitted_upto,
            "offset": self.offset,
            "late_partials": self.late_partials,
            "revisions": self.revisions,
        }

    def load(self, raw: dict[str, Any]) -> None:
        self.parts = raw["parts"]
        self.frontiers = dict(raw["frontiers"])
        self.empty_seen = dict(raw["empty_seen"])
        self.partials = raw["partials"]
        self.emitted = raw.get("emitted", {})
        self.revised = set(raw.get("revised", ()))
        self.emitted_upto = raw["emitted_upto"]
        self.offset = raw["offset"]
        self.late_partials = raw["late_partials"]
        self.revisions = raw.get("revisions", 0)


def chunk_partial(groups: dict[str, dict[str, Any]], size: int = 200) -> list[dict[str, Any]]:
    """Encode a closed window's groups as chunks small enough for one Kafka record each."""
    items = sorted(groups.items())
    return [{key: encode_agg(agg) for key, agg in items[i : i + size]} for i in range(0, max(len(items), 1), size)]
