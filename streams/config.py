"""The ``streams:`` config section: timers and batching, validated once at start-up."""

from __future__ import annotations

from pydantic import Field

from playscope.config import Strict


class StreamsConfig(Strict):
    # SPEC 6: a session closes after this much event time without a new event.
    idle_timeout_s: float = Field(default=120.0, gt=0)
    # How often a worker checks for quiet partitions and advances their clocks by wall time.
    tick_interval_s: float = Field(default=1.0, gt=0)
    # After a broker outage, no ticks (and no clock credit) for this long: the producers' retried
    # backlog lands first instead of arriving behind clocks a tick has moved on (all of it late).
    reconnect_grace_s: float = Field(default=15.0, ge=0)
    # A tick read later than this after it was sent is dropped (at least 3 tick intervals): it
    # was held back by an outage or a lagging worker, and its time was not quiet, caught-up time.
    tick_max_delay_s: float = Field(default=5.0, gt=0)
    # Batching: at most this many records per batch, waiting at most batch_wait_s for them.
    batch_size: int = Field(default=10_000, ge=1, le=100_000)
    batch_wait_s: float = Field(default=0.5, gt=0)
    # Closed sessions are remembered this long (event time) so late events are not re-summarised.
    tombstone_s: float = Field(default=3600.0, ge=0)
    # Event ids are kept this long behind their session's newest event (duplicates are dropped);
    # an event further behind its session than this is dead-lettered, as it cannot be checked.
    dedup_window_s: float = Field(default=600.0, gt=0)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # Largest state snapshot (one per partition) the changelog accepts.
    max_state_bytes: int = Field(default=32 * 1024 * 1024, ge=1024 * 1024)
