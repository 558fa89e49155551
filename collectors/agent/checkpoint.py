"""File offsets that Kafka (or the collector) confirmed, keyed by file fingerprint.

Written atomically (temp file + rename) so a kill -9 leaves either the old or the new state.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import orjson

MAX_ENTRIES = 10_000


class Checkpoints:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offsets: OrderedDict[str, int] = OrderedDict()
        if self.path.is_file():
            data = orjson.loads(self.path.read_bytes() or b"{}")
            self.offsets.update({str(k): int(v) for k, v in data.get("offsets", {}).items()})
        self.dirty = False

    def get(self, fingerprint: str) -> int | None:
        return self.offsets.get(fingerprint)

    def advance(self, fingerprint: str, offset: int) -> None:
        if offset > self.offsets.get(fingerprint, -1):
            self.offsets[fingerprint] = offset
            self.offsets.move_to_end(fingerprint)
            while len(self.offsets) > MAX_ENTRIES:
                self.offsets.popitem(last=False)
            self.dirty = True

    def save(self, sync: bool = False) -> None:
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            handle.write(orjson.dumps({"offsets": self.offsets}))
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self.dirty = False
