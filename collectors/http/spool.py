"""A bounded on-disk spool for the time Kafka is unreachable, replayed in order when it returns.

Records are appended (and fsync'ed before the client gets its 202) to numbered segment files of
JSON lines. Every change to the folder itself (a segment created, rewritten, deleted or moved)
is followed by an fsync of the folder: a file's own fsync does not make its name durable, so a
power cut could otherwise lose a new segment holding acknowledged records, or bring back a
replayed one. While anything is spooled, new requests are spooled too, so the replay keeps the
order in which the collector accepted them. The replay starts by itself once the producer sees
the broker again. A segment is deleted only after Kafka acknowledged every record in it; when
a replay fails part-way (the broker went away again), the segment is rewritten with only the
records Kafka did not acknowledge, so the next attempt repeats none that it did. A crash during
replay re-sends at most that segment (event ids make the repeat harmless downstream).

Nothing can wedge it: records Kafka refuses for good (too large, not authorised, an invalid
topic) are moved to ``quarantine/`` (with the reason) instead of being retried forever, and a
segment that cannot be read is quarantined whole; both are counted and logged. At start-up a
segment whose last line is torn (a crash or a full disk in the middle of a write) is cut back
to its last complete line. A write that fails (disk full) is rolled back, so the segment never
keeps half a request, and the caller answers 503.
"""

from __future__ import annotations

import asyncio
import errno
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
QUARANTINE = "quarantine"


class SpoolWriteError(Exception):
    """The spool could not write a batch (disk full, I/O error); nothing of it was kept."""


class Spool:
    def __init__(self, directory: Path, max_bytes: int, producer: DeliveryProducer,
                 on_replayed: Callable[[int], None] | None = None,
                 on_quarantined: Callable[[int], None] | None = None) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            _fsync_dir(self.directory.parent)
        self.max_bytes = max_bytes
        self.producer = producer
        self.on_replayed = on_replayed  # records Kafka acknowledged from the spool (a counter)
        self.on_quarantined = on_quarantined  # records moved to quarantine/ (a counter)
        self._failing = False  # the last replay attempt failed (logged once, until one succeeds)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._replay_loop, name="spool-replay", daemon=True)
        segments = self._segments()
        for segment in segments:
            _repair(segment)
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
        """Durably append ``batch``; False when the spool is full, SpoolWriteError when the
        write failed (rolled back)."""
        return await asyncio.to_thread(self.append_sync, batch)

    def append_sync(self, batch: list[Record]) -> bool:
        lines = _encode(batch)
        with self._lock:
            if self._bytes + len(lines) > self.max_bytes:
                return False
            new = self._current is None or not self._current.exists() or self._current.stat().st_size > SEGMENT_BYTES
            if new:
                self._current = self.directory / f"spool-{self._next:012d}.ndjson"
                self._next += 1
            assert self._current is not None
            fd = os.open(self._current, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                before = os.fstat(fd).st_size
                try:
                    _write_all(fd, lines)
                    os.fsync(fd)
                except OSError as exc:
                    self._roll_back(fd, before, exc)
                    raise SpoolWriteError(f"spool write failed: {exc.strerror or exc}") from None
            finally:
                os.close(fd)
            if new:
                _fsync_dir(self.directory)  # the new segment's name is durable too
            self._bytes += len(lines)
        self._wake.set()
        return True

    def _roll_back(self, fd: int, size: int, exc: OSError) -> None:
        """Cut the segment back to ``size`` so no part of the failed write stays (a torn line
        would stop the replay; a half-kept request would be acknowledged by nobody)."""
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
            rolled = True
        except OSError:
            rolled = False  # the torn tail is cut at the next start-up (_repair)
        log_event(log, "spool.write_failed", level=logging.ERROR, segment=str(self._current),
                  error=exc.strerror or str(exc), errno=errno.errorcode.get(exc.errno or 0, ""),
                  rolled_back=rolled)

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
        acknowledged or refused for good) when a chunk is not fully acknowledged."""
        try:
            records = _decode(segment.read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            self._quarantine_segment(segment, f"cannot be read: {exc}")
            return True
        for start in range(0, len(records), REPLAY_CHUNK):
            chunk = records[start : start + REPLAY_CHUNK]
            refused: list[tuple[Record, str]] = []
            try:
                result = self.producer.deliver_sync(chunk, timeout_s=30)
            except BrokerUnavailable as exc:
                left, reason = chunk, str(exc)  # no word on some records: keep the whole chunk
            else:
                refused = result.refused
                if refused:
                    self._quarantine_records(segment, refused)
                left = _unacknowledged(chunk, result.transient) if not result.ok else []
                reason = result.failed[0] if result.failed else ""
                if not result.ok and not left and not refused:
                    left = chunk
            if self.on_replayed is not None:
                self.on_replayed(len(chunk) - len(left) - len(refused))
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
        _fsync_dir(self.directory)  # a replayed segment must not come back after a power cut
        log_event(log, "spool.replayed", segment=segment.name, records=len(records),
                  **({"resumed": True} if self._failing else {}))
        self._failing = False
        return True

    def _quarantine_records(self, segment: Path, refused: list[tuple[Record, str]]) -> None:
        """Keep records Kafka refused for good in ``quarantine/<segment>`` (each line the spool
        line plus the reason), durably, before the segment is rewritten without them."""
        folder = self._quarantine_folder()
        data = b"".join(orjson.dumps([topic, key.decode(errors="replace") if key else None,
                                      value.decode(errors="replace"), reason]) + b"\n"
                        for (topic, key, value), reason in refused)
        with open(folder / segment.name, "ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_dir(folder)
        if self.on_quarantined is not None:
            self.on_quarantined(len(refused))
        log_event(log, "spool.quarantined", level=logging.ERROR, segment=segment.name, records=len(refused),
                  reason=refused[0][1][:300], folder=str(folder))

    def _quarantine_segment(self, segment: Path, reason: str) -> None:
        """Move a segment that cannot be read to ``quarantine/`` (kept for inspection)."""
        folder = self._quarantine_folder()
        with self._lock:
            try:
                size = segment.stat().st_size
                lines = segment.read_bytes().count(b"\n")
            except OSError:
                size, lines = 0, 0
            os.replace(segment, folder / segment.name)
            _fsync_dir(folder)
            _fsync_dir(self.directory)
            self._bytes = max(0, self._bytes - size)
        if self.on_quarantined is not None:
            self.on_quarantined(lines)
        log_event(log, "spool.quarantined", level=logging.ERROR, segment=segment.name, records=lines,
                  reason=reason[:300], folder=str(folder))

    def _quarantine_folder(self) -> Path:
        folder = self.directory / QUARANTINE
        if not folder.is_dir():
            folder.mkdir(exist_ok=True)
            _fsync_dir(self.directory)
        return folder

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
        _fsync_dir(self.directory)  # else a power cut may bring back records Kafka already has


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    """Make a created or renamed entry of ``directory`` durable (the file's fsync is not enough)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _repair(segment: Path) -> None:
    """Cut a segment back to its last complete line (a torn write from a crash or a full disk),
    so the replay meets only whole lines."""
    try:
        size = segment.stat().st_size
        if size == 0:
            return
        with open(segment, "rb+") as handle:
            handle.seek(max(0, size - 1))
            if handle.read(1) == b"\n":
                return
            handle.seek(0)
            data = handle.read()
            keep = data.rfind(b"\n") + 1
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        log_event(log, "spool.repair_failed", level=logging.ERROR, segment=segment.name, error=str(exc))
        return
    log_event(log, "spool.torn_line_cut", level=logging.WARNING, segment=segment.name,
              cut_bytes=size - keep)


def _encode(batch: list[Record]) -> bytes:
    return b"".join(orjson.dumps([topic, key.decode() if key else None, value.decode()]) + b"\n"
                    for topic, key, value in batch)


def _decode(data: bytes) -> list[Record]:
    records: list[Record] = []
    for line in data.splitlines():
        if line.strip():
            topic, key, value = orjson.loads(line)
            if not isinstance(topic, str) or not isinstance(value, str) or not isinstance(key, str | None):
                raise ValueError(f"not a spool line: {line[:80]!r}")
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
        if not target.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            _fsync_dir(target.parent)
        existing = sorted(target.glob("spool-*.ndjson"))
        number = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
        for segment in sorted(folder.glob("spool-*.ndjson")):
            segment.rename(target / f"spool-{number:012d}.ndjson")
            number += 1
            moved += 1
        _fsync_dir(target)  # the new names first: a segment must never be in neither folder
        _fsync_dir(folder)
        if not any(folder.iterdir()):
            folder.rmdir()
            _fsync_dir(base)
    if moved:
        log_event(log, "spool.adopted", segments=moved, workers=workers)
    return moved

