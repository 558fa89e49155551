"""Storing one batch with the bulk API, reading every item of the answer.

HTTP 200 does not mean every document was stored: each item carries its own status. Items
answered 2xx are stored; 429, 5xx (and auth not ready) are retried with backoff until they are
stored or the indexer gives up on shutdown; any other status (a mapping conflict, a malformed
document) is permanent and the item is handed back as rejected, with the backend's reason,
for the dead-letter topic. Request-level failures (connection refused, timeouts, 429, 5xx)
retry the whole remainder with the same backoff.

The one expected refusal: a version conflict on a versioned action (a window revision older
than the one the index holds, re-sent by a replay). The index already holds the newer record,
so the item is done: counted as stale, neither an error nor a dead-letter.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from indexers.backends import RETRYABLE_STATUS, BackendUnavailable, RequestTooLarge, SearchBackend
from indexers.documents import Action
from indexers.metrics import IndexerMetrics
from playscope.logs import log_event

log = logging.getLogger("playscope.indexer.bulk")


class Abandoned(Exception):
    """Shutdown gave up on a batch before it was stored; it is not committed and is read again."""


@dataclass
class BulkOutcome:
    stored: Counter[str] = field(default_factory=Counter)  # family -> documents stored
    rejected: list[tuple[Action, str, str]] = field(default_factory=list)  # action, error_type, reason
    stale: Counter[str] = field(default_factory=Counter)  # family -> older revisions refused
    attempts: int = 0


def item_error(result: dict[str, Any]) -> tuple[str, str]:
    """(error type, readable reason) of one failed bulk item."""
    error = result.get("error")
    if isinstance(error, dict):
        etype = str(error.get("type", "unknown"))
        reason = f"{etype}: {error.get('reason', '')}"
        caused = error.get("caused_by")
        if isinstance(caused, dict):
            reason += f" (caused by {caused.get('type', '')}: {caused.get('reason', '')})"
        return etype, reason
    return f"http_{result.get('status')}", f"HTTP {result.get('status')}: {error}"


def _is_version_conflict(result: dict[str, Any]) -> bool:
    error = result.get("error")
    return isinstance(error, dict) and error.get("type") == "version_conflict_engine_exception"


class Backoff:
    """Exponential backoff with full jitter, interruptible by an event."""

    def __init__(self, initial_s: float, max_s: float, cancel: threading.Event) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.cancel = cancel
        self.failures = 0

    def wait(self) -> None:
        delay = min(self.max_s, self.initial_s * 2 ** min(self.failures, 30))
        self.failures += 1
        if self.cancel.wait(random.uniform(delay / 2, delay)):
            raise Abandoned("shutdown while waiting to retry")

    def reset(self) -> None:
        self.failures = 0


class BulkWriter:
    """Sends batches to one backend; thread-confined (one writer per sender thread)."""

    def __init__(
        self,
        backend: SearchBackend,
        metrics: IndexerMetrics,
        cancel: threading.Event,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 10.0,
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        self.cancel = cancel
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s

    def store(self, actions: Sequence[Action]) -> BulkOutcome:
        """Store ``actions``; returns what was stored and what was refused for good."""
        outcome = BulkOutcome()
        backoff = Backoff(self.retry_initial_s, self.retry_max_s, self.cancel)
        queue: list[list[Action]] = [list(actions)] if actions else []
        while queue:
            pending = queue.pop()
            if self.cancel.is_set():
                raise Abandoned("shutdown before the batch was stored")
            outcome.attempts += 1
            started = time.perf_counter()
            try:
                answer = self.backend.bulk(b"".join(a.ndjson() for a in pending))
                self.metrics.bulk_seconds.observe(time.perf_counter() - started)
            except BackendUnavailable as exc:
                self.metrics.bulk_seconds.observe(time.perf_counter() - started)
                self._retry_later(queue, pending, backoff, "unavailable", exc.reason)
                continue
            except RequestTooLarge as exc:
                if len(pending) == 1:
                    outcome.rejected.append((pending[0], "request_too_large", str(exc)))
                    self.metrics.errors.labels("request_too_large").inc()
                else:
                    half = len(pending) // 2
                    queue += [pending[half:], pending[:half]]
                continue
            retry = self._read_items(pending, answer, outcome)
            if retry:
                self._retry_later(queue, retry, backoff, "item_retry", f"{len(retry)} items retried")
            else:
                backoff.reset()
        return outcome

    def _retry_later(
        self, queue: list[list[Action]], pending: list[Action], backoff: Backoff, etype: str, reason: str
    ) -> None:
        self.metrics.errors.labels(etype).inc()
        level = logging.WARNING if backoff.failures < 3 else logging.ERROR
        log_event(log, "bulk.retry", level, error_type=etype, reason=reason[:500],
                  documents=len(pending), failures=backoff.failures + 1)
        queue.append(pending)
        backoff.wait()

    def _read_items(
        self, pending: list[Action], answer: dict[str, Any], outcome: BulkOutcome
    ) -> list[Action]:
        if not answer.get("errors"):
            for action in pending:
                outcome.stored[action.family] += 1
            return []
        items = answer.get("items") or []
        if len(items) != len(pending):  # cannot tell which were stored: send all again (ids make it safe)
            self.metrics.errors.labels("bulk_answer_mismatch").inc()
            return pending
        retry: list[Action] = []
        for action, item in zip(pending, items, strict=True):
            result = next(iter(item.values()))
            status = int(result.get("status", 0))
            if 200 <= status < 300:
                outcome.stored[action.family] += 1
            elif status in RETRYABLE_STATUS:
                retry.append(action)
            elif status == 409 and action.version is not None and _is_version_conflict(result):
                outcome.stale[action.family] += 1
            else:
                etype, reason = item_error(result)
                outcome.rejected.append((action, etype, reason))
        return retry
