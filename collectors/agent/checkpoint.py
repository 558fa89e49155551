"""File offsets that Kafka (or the collector) confirmed, keyed by file identity (tailer.py), each
with a digest of the bytes just before it: a checkpoint is taken up again only by a file that
holds those same bytes there.

Written atomically and durably (temp file fsynced, renamed, folder fsynced) so a kill -9 or a
power cut leaves either the old or the new state, never an empty file; at most once per
``interval_s`` (the agent's loop confirms many batches a second) and at shutdown. A write that
fails (a full disk) is logged once and tried again at the next save; the agent goes on. A file that
cannot be read is set aside (``.corrupt``) and logged, and the agent starts without it (it
re-reads files, which repeats lines, rather than refusing to start).
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from pathlib import Path

import orjson

from collectors.agent.tailer import tail_digest
from playscope.logs import log_event

log = logging.getLogger("playscope.agent.checkpoint")

MAX_ENTRIES = 10_000


class Checkpoints:
    def __init__(self, path: Path, interval_s: float = 1.0) -> None:
        self.path = Path(path)
        self.interval_s = interval_s
        self._saved_at = 0.0
        self._failing = False  # the last write failed (logged once)
        self.offsets: OrderedDict[str, int] = OrderedDict()
        self.tails: dict[str, str] = {}
        if self.path.is_file():
            try:
                data = orjson.loads(self.path.read_bytes() or b"{}")
                self.offsets.update({str(k): int(v) for k, v in data.get("offsets", {}).items()})
                self.tails.update({str(k): str(v) for k, v in data.get("tails", {}).items() if k in self.offsets})
            except (ValueError, TypeError, AttributeError) as exc:
                self.offsets.clear()
                self.tails.clear()
                aside = self.path.with_suffix(".corrupt")
                os.replace(self.path, aside)
                log_event(log, "agent.checkpoints_unreadable", level=logging.ERROR, file=str(self.path),
                          moved_to=str(aside), error=str(exc)[:200])
        self.dirty = False

    def get(self, fingerprint: str) -> int | None:
        return self.offsets.get(fingerprint)

    def advance(self, fingerprint: str, offset: int, tail: bytes) -> None:
        """Move a file's checkpoint forward to ``offset``; ``tail``: the bytes just before it."""
        if offset > self.offsets.get(fingerprint, -1):
            self.offsets[fingerprint] = offset
            self.offsets.move_to_end(fingerprint)
            self.tails[fingerprint] = tail_digest(tail)
            while len(self.offsets) > MAX_ENTRIES:
                old, _offset = self.offsets.popitem(last=False)
                self.tails.pop(old, None)
            self.dirty = True

    def save(self, sync: bool = False) -> None:
        """Write the offsets durably; without ``sync`` (the loop's calls) at most once per
        ``interval_s``, with it (shutdown) at once."""
        if not self.dirty:
            return
        now = time.monotonic()
        if not sync and now - self._saved_at < self.interval_s:
            return
        self._saved_at = now
        try:
            self._write()
        except OSError as exc:  # a full disk must not stop the agent: the next save tries again
            if not self._failing:
                log_event(log, "agent.checkpoints_not_saved", level=logging.ERROR, file=str(self.path),
                          error=str(exc)[:200])
            self._failing = True
            return
        if self._failing:
            log_event(log, "agent.checkpoints_saved_again", file=str(self.path))
        self._failing = False
        self.dirty = False

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            handle.write(orjson.dumps({"offsets": self.offsets, "tails": self.tails}))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
