"""A bounded on-disk spool for the time Kafka is unreachable, replayed in order when it returns.

Records are appended (and fsync'ed before the client gets its 202) to numbered segment files of
JSON lines. While anything is spooled, new requests are spooled too, so the replay keeps the
order in which the collector accepted them. The replay starts by itself once the producer sees
the broker again. A segment is deleted only after Kafka acknowledged every record in it; when
a replay fails part-way (the broker went away again), the segment is rewritten with only the
records Kafka did not acknowledge, so the next attempt repeats none that it did. A crash during
replay re-sends at most that segment (event ids make the repeat harmless downstream).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson

from collectors.delivery import BrokerUnavailable, DeliveryProducer, Record
from playscope.logs import log_event

log = logging.getLogger("playscope.collector.spool")

SEGMENT_BYTES = 16 * 1024 * 1024
REPLAY_CHUNK = 5000


class Spool:
    def __init__(self, directory: Path, max_bytes: int, producer: DeliveryProducer,
                 on_replayed: Callable[[int], None] | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.producer = producer
        self.on_replayed = on_replayed  # records Kafka acknowledged from the spool (a counter)
        self._failing = False  # the last replay attempt failed (logged once, until one succeeds)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._replay_loop, name="spool-replay", daemon=True)
        segments = self._segments()
        self._next = (int(segments[-1].stem.split("-")[1]) + 1) if segments else 0
        self._bytes = sum(s.stat().st_size for s in segments)
        self._current: Path | None = None

    @property
    def pending(self) -> bool:
        return self._bytes > 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    async def append(self, batch: list[Record]) -> bool:
        """Durably append ``batch``; False when the spool is full."""
        return await asyncio.to_thread(self.append_sync, batch)

    def append_sync(self, batch: list[Record]) -> bool:
        lines = _encode(batch)
        with self._lock:
            if self._bytes + len(lines) > self.max_bytes:
                return False
            if self._current is None or self._current.stat().st_size > SEGMENT_BYTES:
                self._current = self.directory / f"spool-{self._next:012d}.ndjson"
                self._next += 1
            with open(self._current, "ab") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
            self._bytes += len(lines)
        self._wake.set()
        return True

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob("spool-*.ndjson"))

    def _replay_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            while not self._stop.is_set() and self.producer.broker_up:
                with self._lock:
                    segments = self._segments()
                    if not segments:
                        break
                    segment = segments[0]
                    if segment == self._current:
                        self._current = None  # seal it; new appends go to a new segment
                if not self._replay(segment):
                    self._stop.wait(1.0)
                    break

    def _replay(self, segment: Path) -> bool:
        """Send ``segment`` a chunk at a time; False (segment kept, minus what Kafka
        acknowledged) when a chunk is not fully acknowledged."""
        records = _decode(segment.read_bytes())
        for start in range(0, len(records), REPLAY_CHUNK):
            chunk = records[start : start + REPLAY_CHUNK]
            try:
                result = self.producer.deliver_sync(chunk, timeout_s=30)
            except BrokerUnavailable as exc:
                left, reason = chunk, str(exc)  # no word on some records: keep the whole chunk
            else:
                left = _unacknowledged(chunk, result.failed_records) if not result.ok else []
                reason = result.failed[0] if result.failed else ""
                if not result.ok and not left:
                    left = chunk
            if self.on_replayed is not None:
                self.on_replayed(len(chunk) - len(left))
            if left:
                self._keep(segment, left + records[start + REPLAY_CHUNK :])
                if not self._failing:
                    self._failing = True
                    log_event(log, "spool.replay_failed", level=logging.WARNING, segment=segment.name,
                              unacknowledged=len(left), reason=reason[:300])
                return False
        with self._lock:
            size = segment.stat().st_size
            segment.unlink()
            self._bytes = max(0, self._bytes - size)
        log_event(log, "spool.replayed", segment=segment.name, records=len(records),
                  **({"resumed": True} if self._failing else {}))
        self._failing = False
        return True

    def _keep(self, segment: Path, records: list[Record]) -> None:
        """Replace ``segment`` by ``records`` (atomically: a crash leaves the old or the new)."""
        data = _encode(records)
        tmp = segment.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with self._lock:
            before = segment.stat().st_size
            os.replace(tmp, segment)
            self._bytes = max(0, self._bytes - before + len(data))


def _encode(batch: list[Record]) -> bytes:
    return b"".join(orjson.dumps([topic, key.decode() if key else None, value.decode()]) + b"\n"
                    for topic, key, value in batch)


def _decode(data: bytes) -> list[Record]:
    records: list[Record] = []
    for line in data.splitlines():
        if line.strip():
            topic, key, value = orjson.loads(line)
            records.append((topic, key.encode() if key else None, value.encode()))
    return records


def _unacknowledged(chunk: list[Record], failed: list[Record]) -> list[Record]:
    """The records of ``chunk`` that failed, in the chunk's order (a repeated record counts as
    often as it failed)."""
    pending = Counter(failed)
    left: list[Record] = []
    for record in chunk:
        if pending[record] > 0:
            pending[record] -= 1
            left.append(record)
    return left


def worker_directory(base: Path, index: int) -> Path:
    """The spool of collector worker ``index``: the base folder for the first (so one worker and
    several share it), ``worker-N`` inside it for the others."""
    return Path(base) if index == 0 else Path(base) / f"worker-{index}"


def adopt_orphans(base: Path, workers: int) -> int:
    """Hand the segments of workers that no longer exist (the count went down) to the worker
    with the same index modulo ``workers``, after its own, so nothing spooled is left behind.
    Runs before the workers start; returns the number of segments moved."""
    moved = 0
    base = Path(base)
    for folder in sorted(base.glob("worker-*")):
        suffix = folder.name.removeprefix("worker-")
        if not suffix.isdigit() or int(suffix) < workers:
            continue
        target = worker_directory(base, int(suffix) % workers)
        target.mkdir(parents=True, exist_ok=True)
        existing = sorted(target.glob("spool-*.ndjson"))
        number = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
        for segment in sorted(folder.glob("spool-*.ndjson")):
            segment.rename(target / f"spool-{number:012d}.ndjson")
            number += 1
            moved += 1
        if not any(folder.iterdir()):
            folder.rmdir()
    if moved:
        log_event(log, "spool.adopted", segments=moved, workers=workers)
    return moved

