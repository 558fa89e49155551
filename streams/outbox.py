"""Outputs kept in a processor's state until Kafka has acknowledged them.

A batch's outputs (summaries, window partials, window records, dead letters) and the state that
records its input offsets are separate sends: after a kill -9 or a leader change the state can
land and an output not, and the restored state then skips the records that produced it. So the
outputs of a batch are written into the state first, in the same value as its offsets, and
leave it only once every one of them is acknowledged; a restored state re-sends what it still
holds. Every output is idempotent by key (session id; window and group; partition and chunk),
so a re-send overwrites rather than adds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Send = Callable[[str, bytes | None, bytes, int | None, Callable[[Any], None]], None]


class Outbox:
    """Pending outputs per batch: ``[role, key, value, partition]`` each, JSON-safe."""

    def __init__(self) -> None:
        self.batches: dict[int, list[list[Any]]] = {}
        self.seq = 0
        self._left: dict[int, int] = {}  # batch -> outputs not acknowledged yet (this process)

    def __len__(self) -> int:
        return sum(len(b) for b in self.batches.values())

    def add(self, outputs: list[tuple[str, bytes | None, bytes, int | None]]) -> int | None:
        """Keep one batch's outputs; returns its number (None when there are none)."""
        if not outputs:
            return None
        self.seq += 1
        self.batches[self.seq] = [
            [role, None if key is None else key.decode(), value.decode(), partition]
            for role, key, value, partition in outputs
        ]
        return self.seq

    def send(self, batch: int | None, send: Send) -> None:
        """Send one kept batch; it leaves the outbox when all of it is acknowledged."""
        if batch is None or batch not in self.batches:
            return
        items = self.batches[batch]
        self._left[batch] = len(items)
        for role, key, value, partition in items:
            send(role, None if key is None else key.encode(), value.encode(), partition, self._done(batch))

    def resend_all(self, send: Send) -> None:
        """After a restore: everything a crash may have left undelivered, oldest first."""
        for batch in sorted(self.batches):
            self.send(batch, send)

    def _done(self, batch: int) -> Callable[[Any], None]:
        def done(fut: Any) -> None:
            if fut.cancelled() or fut.exception() is not None:
                return  # stays kept: re-sent after the next restore
            left = self._left.get(batch, 0) - 1
            if left <= 0:
                self._left.pop(batch, None)
                self.batches.pop(batch, None)
            else:
                self._left[batch] = left

        return done

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "batches": {str(k): v for k, v in self.batches.items()}}

    def load(self, raw: dict[str, Any] | None) -> None:
        raw = raw or {}
        self.seq = int(raw.get("seq", 0))
        self.batches = {int(k): v for k, v in (raw.get("batches") or {}).items()}
        self._left = {}
