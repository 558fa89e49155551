"""The ``indexer:`` config section, validated once at start-up (defaults in code)."""

from __future__ import annotations

from pydantic import Field, model_validator

from playscope.config import Strict
from playscope.indices import FAMILIES


class IndexerConfig(Strict):
    """Batching, retry, backpressure and retention settings of the indexer."""

    # Which index families (SPEC 10) to index; every topic of SPEC 3 by default.
    families: tuple[str, ...] = tuple(FAMILIES)
    # A batch is sent when any of these three limits is reached.
    batch_max_docs: int = Field(default=5000, ge=1, le=100_000)
    batch_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=90 * 1024 * 1024)
    batch_max_wait_s: float = Field(default=0.5, gt=0, le=60)
    # Concurrent bulk requests (batches sharing a document id are still written in order).
    senders: int = Field(default=3, ge=1, le=16)
    # Batches built but not yet stored; when reached the consumer is paused (backpressure).
    max_pending_batches: int = Field(default=4, ge=1, le=64)
    # Backoff for 429, 5xx and connection errors: exponential from initial to max, with jitter.
    retry_initial_s: float = Field(default=0.2, gt=0)
    retry_max_s: float = Field(default=10.0, gt=0)
    # On SIGTERM: how long to keep trying to store what was read before giving up on it
    # (it is then not committed, so it is read again on the next start).
    shutdown_timeout_s: float = Field(default=30.0, ge=0)
    install_templates: bool = True
    # Retention is opt-in: deleting indices is never a side effect of starting an indexer.
    retention_enabled: bool = False
    retention_interval_s: float = Field(default=3600.0, gt=0)
    # How often the lag gauge is updated (and commits a broker outage made fail are retried).
    lag_interval_s: float = Field(default=5.0, gt=0)
    # At start-up a broker is waited for as long as it takes; a topic without leaders this long
    # (missing, not just created a moment ago) is a configuration error.
    topic_wait_s: float = Field(default=60.0, gt=0)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)

    @model_validator(mode="after")
    def _known_families(self) -> IndexerConfig:
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown families {unknown}; known: {sorted(FAMILIES)}")
        if not self.families:
            raise ValueError("at least one family is needed")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be >= retry_initial_s")
        return self
