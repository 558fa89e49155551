"""Streams state figures: memory per open session, and the restore time of a partition.

Pure logic, no Kafka: ``n`` sessions of a realistic shape (start, playing, heartbeats every
10 s for ``heartbeats`` beats) are left open in one :class:`streams.qoe.QoePartition`; memory
is what tracemalloc sees allocated for them, and restore is decoding the per-session entries a
worker writes plus loading them, measured against the raw baseline of decoding the same bytes
(orjson alone), in the same run.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from typing import Any

import orjson

from streams.qoe import IngestStats, QoePartition

T0 = 1_767_225_600_000


def _partition() -> QoePartition:
    return QoePartition(window_ms=60_000, lateness_ms=10_000, idle_ms=120_000, tombstone_ms=3_600_000)


def _fill(part: QoePartition, n: int, heartbeats: int) -> None:
    stats = IngestStats()
    for i in range(n):
        sid = f"session-{i:08d}"
        base = T0 + (i % 5000)
        part.ingest({"event_id": f"{sid}-s", "session_id": sid, "ts": base, "type": "session_start",
                     "cdn": f"cdn-{i % 4}", "isp": f"isp-{i % 7}", "device": "tv", "country": "FR"}, stats)
        part.ingest({"event_id": f"{sid}-p", "session_id": sid, "ts": base + 800, "type": "playing",
                     "bitrate_kbps": 3000}, stats)
        for b in range(heartbeats):
            part.ingest({"event_id": f"{sid}-h{b}", "session_id": sid, "ts": base + 10_000 * (b + 1),
                         "type": "heartbeat", "bitrate_kbps": 3000}, stats)
    part.advance()


def run(n: int = 20_000, heartbeats: int = 30) -> dict[str, Any]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    part = _partition()
    _fill(part, n, heartbeats)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    entries = {sid.encode(): orjson.dumps(entry) for sid, entry in part.session_changes() if entry is not None}
    meta = part.meta_dict()
    started = time.perf_counter()
    decoded = {k: orjson.loads(v) for k, v in entries.items()}
    baseline_s = time.perf_counter() - started
    started = time.perf_counter()
    restored = _partition()
    restored.load({**meta, "sessions": {k.decode(): orjson.loads(v) for k, v in entries.items()}})
    restore_s = time.perf_counter() - started
    assert len(restored.sessions) == len(part.sessions) == n and len(decoded) == n
    return {
        "open_sessions": n,
        "events_per_session": heartbeats + 2,
        "bytes_per_open_session": round(used / n),
        "state_bytes_per_session": round(sum(len(v) for v in entries.values()) / n),
        "restore_s": round(restore_s, 3),
        "decode_baseline_s": round(baseline_s, 3),
        "restore_ratio_to_decode": round(restore_s / baseline_s, 2) if baseline_s else 0,
        "open_sessions_per_24_gib": int(24 * 2**30 / (used / n)),
    }


if __name__ == "__main__":
    print(orjson.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)).decode())
