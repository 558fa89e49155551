"""Delivery: each channel is told each status change once, retried with backoff until it is.

One task per (rule|group, channel). A newer status supersedes a delivery still being retried
(a resolve replaces an undelivered firing). A channel is "told" only when its notifier returned
without error; the evaluator persists that (``GroupState.delivered``), so after a restart what
was not delivered is delivered, and what was is not repeated. A failure is counted and logged
and never reaches the evaluator.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from alerts import metrics
from alerts.notifiers import DeliveryError, Notification, Notifier
from alerts.rule_types import Rule
from alerts.state import FIRING, OK, GroupState
from playscope.logs import log_event

log = logging.getLogger("playscope.alerts.dispatch")

Delivered = Callable[[str, str, str, int], None]  # state key, channel, status, wall ms


@dataclass
class _Job:
    status: str
    task: asyncio.Task[None] | None = None
    attempted: bool = False

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


class Dispatcher:
    def __init__(
        self,
        notifiers: dict[str, Notifier],
        on_delivered: Delivered,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 300.0,
    ) -> None:
        self.notifiers = notifiers
        self.on_delivered = on_delivered
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.jobs: dict[tuple[str, str], _Job] = {}

    def reconcile(self, rule: Rule, state: GroupState, doc: dict[str, object], repeat: bool = False) -> None:
        """Make every channel of ``rule`` learn ``state``'s status (again, when ``repeat``)."""
        for channel in rule.notify:
            job_key = (state.key, channel)
            job = self.jobs.get(job_key)
            told = state.delivered_status(channel)
            if job is not None:
                if job.status == state.status and job.running:
                    continue  # already on its way
                if job.task is not None:
                    job.task.cancel()
                # a firing that may have reached the channel must still be resolved
                if job.status == FIRING and job.attempted and told == OK:
                    told = FIRING
            if told == state.status and not repeat:
                self.jobs.pop(job_key, None)
                continue
            if told == OK and state.status == OK:
                continue
            note = Notification(doc=dict(doc), dedup_key=state.key, repeat=repeat)
            new = _Job(status=state.status)
            new.task = asyncio.create_task(self._deliver(state.key, channel, note, new))
            self.jobs[job_key] = new
        metrics.PENDING.set(self.pending())

    def busy(self, key: str, channel: str) -> bool:
        job = self.jobs.get((key, channel))
        return job is not None and job.running

    def pending(self) -> int:
        return sum(1 for j in self.jobs.values() if j.running)

    async def _deliver(self, key: str, channel: str, note: Notification, job: _Job) -> None:
        notifier = self.notifiers[channel]
        delay = self.retry_initial_s
        attempt = 0
        status = FIRING if note.firing else OK
        while True:
            attempt += 1
            job.attempted = True
            try:
                await notifier.send(note)
            except DeliveryError as exc:
                metrics.NOTIFICATION_FAILURES.labels(notifier.kind).inc()
                log_event(log, "alerts.delivery_failed", logging.WARNING, key=key, channel=channel,
                          attempt=attempt, retry_in_s=round(delay, 2), error=str(exc))  # fmt: skip
            except Exception as exc:  # a notifier bug must not stop alerting
                metrics.NOTIFICATION_FAILURES.labels(notifier.kind).inc()
                metrics.ERRORS.labels("notifier").inc()
                log_event(log, "alerts.delivery_error", logging.ERROR, key=key, channel=channel,
                          attempt=attempt, error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            else:
                metrics.NOTIFICATIONS.labels(notifier.kind, note.doc["status"]).inc()
                log_event(log, "alerts.delivered", key=key, channel=channel, status=note.doc["status"],
                          attempt=attempt, repeat=note.repeat)  # fmt: skip
                self.on_delivered(key, channel, status, int(time.time() * 1000))
                return
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, self.retry_max_s)

    async def drain(self, timeout_s: float) -> None:
        """Give deliveries in flight up to ``timeout_s`` to finish, then stop retrying."""
        tasks = [j.task for j in self.jobs.values() if j.task is not None]
        running = [t for t in tasks if not t.done()]
        if running:
            await asyncio.wait(running, timeout=timeout_s)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
