"""Where the agent ships batches: Kafka directly, or the HTTP collector. Registered in SINKS.

A sink's ``send(runs, on_done)`` (records grouped by topic, ``collectors.delivery.Run``)
returns at once and calls ``on_done(ok)`` exactly once, from any thread, when the whole batch
is confirmed (``ok=True``) or failed (the agent re-sends it). ``broker_up`` says whether the
sink currently reaches its destination (the agent's ``playscope_agent_broker_up``). Failures
are logged once per change of state, not once per batch or retry.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collectors.agent.config import SinkConfig
from collectors.agent.metrics import DEADLETTER_FILE, DISCARDED, ERRORS
from collectors.delivery import BatchResult, DeliveryProducer, Message, Run, encode
from playscope import topics
from playscope.config import Settings
from playscope.deadletter import deadletter_record
from playscope.kafka import producer_config
from playscope.logs import log_event

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("playscope.agent.sink")
Done = Callable[[bool], None]
DEADLETTER_ORIGINAL_MAX = 64 * 1024  # what a dead letter keeps of its record (as the collector)


class KafkaSink:
    """Straight to Kafka. Records never time out locally (``message.timeout.ms`` 0): through a
    broker outage of any length librdkafka keeps them and retries them idempotently, so the
    outage neither fails a batch nor duplicates one. A record Kafka refuses for good (too large
    for the topic, not authorised: ``PERMANENT_ERRORS``) becomes a dead letter with Kafka's
    reason and the batch counts as delivered: sending it again would fail the same way for ever
    and repeat the records Kafka did take."""

    def __init__(self, settings: Settings, config: SinkConfig) -> None:
        self.producer = DeliveryProducer(producer_config(settings.kafka, **{"message.timeout.ms": 0}),
                                         client="agent")
        self.deadletter_topic = settings.topic(topics.DEADLETTER)
        self._failing = False
        self._refused: deque[tuple[BatchResult, Done]] = deque()  # taken care of in poll()

    @property
    def broker_up(self) -> bool:
        return self.producer.broker_up

    def send(self, runs: list[Run], on_done: Done) -> None:
        def done(result: BatchResult) -> None:
            if not result.ok and not result.transient:
                self._refused.append((result, on_done))  # not from inside a delivery report
                return
            if result.ok and self._failing:
                self._failing = False
                log_event(log, "agent.delivery_resumed")
            elif not result.ok and not self._failing:
                self._failing = True
                log_event(log, "agent.delivery_failed", level=logging.WARNING, failed=len(result.failed),
                          reason=result.failed[0])
            on_done(result.ok)

        self.producer.send_runs(runs, done)

    def poll(self, timeout_s: float) -> None:
        self.producer.poll(timeout_s)
        while self._refused:
            self._dead_letter(*self._refused.popleft())

    def _dead_letter(self, result: BatchResult, on_done: Done) -> None:
        """Dead letters for the records Kafka refused for good; the batch is done once they are
        delivered (dead letters Kafka refuses too are logged and counted: nowhere else to go)."""
        letters: list[Message] = []
        for (topic, _key, value), reason in result.refused:
            if topic == self.deadletter_topic:
                ERRORS.labels("deadletter_refused").inc()
                log_event(log, "agent.deadletter_refused", level=logging.ERROR, reason=reason[:300])
            else:
                letters.append(refused_letter(value, f"Kafka refused it for good: {reason}"))
        ERRORS.labels("refused").inc(len(letters))
        DISCARDED.inc(len(letters))
        log_event(log, "agent.records_refused", level=logging.WARNING, records=len(letters),
                  reason=result.refused[0][1][:300])

        def sent(letter_result: BatchResult) -> None:
            if not letter_result.ok:
                ERRORS.labels("deadletter_refused").inc(len(letter_result.failed))
                log_event(log, "agent.deadletter_refused", level=logging.ERROR, records=len(letter_result.failed),
                          reason=letter_result.failed[0][:300])
            on_done(True)

        self.producer.send_runs([(self.deadletter_topic, letters)], sent)

    def close(self, timeout_s: float) -> None:
        self.producer.close(timeout_s)


def refused_letter(value: bytes, reason: str) -> Message:
    """A dead letter for a record a sink could not deliver (its encoded JSON, cut to 64 KiB)."""
    extra: dict[str, Any] = {}
    if len(value) > DEADLETTER_ORIGINAL_MAX:
        extra = {"original_truncated": True, "original_size": len(value)}
        value = value[:DEADLETTER_ORIGINAL_MAX].decode("utf-8", errors="ignore").encode()
    return {"value": encode(deadletter_record(value, reason, "agent", **extra)), "key": None}


class HttpSink:
    """POSTs NDJSON to the collector's /v1/logs; a 202 is the collector's word that Kafka has it.

    * Bodies stay within ``max_body_bytes`` and ``max_items_per_request`` (the collector's
      limits); a 413 all the same splits the body in halves, down to one record, and a record
      the collector still refuses as too large (or larger than a body may be) becomes a dead
      letter with that reason instead of being sent for ever.
    * The agent's own dead letters are never posted as if they were logs (the collector would
      refuse them as logs and the reason would be lost): the collector takes no dead letters,
      so they go to ``deadletter_file`` (NDJSON, one older generation kept beside it).
    * What the collector accepted or the file took is removed from the batch, so the agent's
      re-send of a failed batch carries only the rest.
    * A refusal or an unreachable collector is waited out (its ``Retry-After``, else a second,
      at most ``MAX_BACKOFF_S``) before the batch is reported failed, so the agent's re-send
      does not hammer a collector that is waiting for its broker."""

    MAX_BACKOFF_S = 10.0

    def __init__(self, settings: Settings, config: SinkConfig) -> None:
        self._up = True
        self._down_since = 0.0
        self._stop = threading.Event()
        self.config = config
        headers = {"Content-Type": "application/x-ndjson"}
        if config.api_key:
            headers["X-API-Key"] = config.api_key
        import httpx  # here: a tenth of the agent's start-up, and only this sink needs it

        self.client = httpx.Client(base_url=config.url, headers=headers, timeout=config.timeout_s)
        self.deadletter_topic = settings.topic(topics.DEADLETTER)
        self.letters = DeadLetterFile(config.deadletter_file, config.deadletter_max_bytes)
        self.queue: queue.Queue[tuple[list[Run], Done] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="agent-http-sink", daemon=True)
        self.thread.start()

    @property
    def broker_up(self) -> bool:
        return self._up

    def send(self, runs: list[Run], on_done: Done) -> None:
        self.queue.put((runs, on_done))

    def poll(self, timeout_s: float) -> None:
        time.sleep(timeout_s)  # confirmations arrive from the sender thread

    def close(self, timeout_s: float) -> None:
        self._stop.set()
        self.queue.put(None)
        self.thread.join(timeout_s)
        self.client.close()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            runs, on_done = item
            try:
                backoff = self._deliver(runs)
            except Exception as exc:  # the sender thread must outlive any one batch
                log_event(log, "agent.http_sink_failed", level=logging.ERROR, error=f"{type(exc).__name__}: {exc}")
                backoff = 1.0
            if backoff:
                self._stop.wait(backoff)
            on_done(not backoff)

    def _deliver(self, runs: list[Run]) -> float:
        """Deliver a batch: 0 when all of it is taken, else the seconds to wait before the
        agent sends again what is left in ``runs``."""
        for topic, messages in runs:
            if topic == self.deadletter_topic and messages:
                if not self._keep(messages):
                    return 1.0
                messages.clear()
        for topic, messages in runs:
            if topic == self.deadletter_topic:
                continue
            done = 0
            try:
                parts = deque(self._bodies(messages))
                while parts:
                    part = parts[0]
                    if len(part) == 1 and len(part[0]["value"]) >= self.config.max_body_bytes:
                        status, wait = 413, 0.0  # larger than any body may be: not even tried
                        reason = (f"{len(part[0]['value'])} bytes; a request body to the collector is "
                                  f"smaller than {self.config.max_body_bytes} (sink.max_body_bytes)")
                    else:
                        status, wait, detail = self._post(b"\n".join(m["value"] for m in part))
                        reason = f"the collector refused it as too large (413: {detail})"
                    if status == 202:
                        done += len(part)
                        parts.popleft()
                    elif status == 413 and len(part) > 1:  # the collector's limits are lower
                        half = len(part) // 2
                        parts.popleft()
                        parts.extendleft([part[half:], part[:half]])
                    elif status == 413:
                        ERRORS.labels("collector_too_large").inc()
                        DISCARDED.inc()
                        if not self._keep([refused_letter(part[0]["value"], reason)]):
                            return 1.0
                        done += 1
                        parts.popleft()
                    else:
                        return wait
            finally:
                del messages[:done]
        return 0.0

    def _bodies(self, messages: list[Message]) -> Iterator[list[Message]]:
        """The records in order, in bodies within ``max_body_bytes`` and
        ``max_items_per_request`` (a record too large for any body alone in its own)."""
        limit, most = self.config.max_body_bytes, self.config.max_items_per_request
        part: list[Message] = []
        size = 0
        for message in messages:
            length = len(message["value"]) + 1
            if part and (size + length > limit or len(part) >= most):
                yield part
                part, size = [], 0
            part.append(message)
            size += length
        if part:
            yield part

    def _keep(self, letters: list[Message]) -> bool:
        """Write dead letters to the local file; False (logged) when it cannot be written."""
        try:
            self.letters.write(m["value"] for m in letters)
        except OSError as exc:
            ERRORS.labels("deadletter_file").inc()
            log_event(log, "agent.deadletter_file_failed", level=logging.ERROR, file=str(self.letters.path),
                      error=str(exc)[:200])
            return False
        DEADLETTER_FILE.inc(len(letters))
        return True

    def _post(self, body: bytes) -> tuple[int, float, str]:
        """POST one body: (status, seconds to wait when it was not taken, what it said)."""
        import httpx

        try:
            response = self.client.post("/v1/logs", content=body)
        except httpx.HTTPError as exc:
            self._set(False, "agent.collector_unreachable", reason=str(exc))
            return 0, 1.0, str(exc)[:200]
        if response.status_code == 202:
            self._set(True)
            self._count_rejected(response)
            return 202, 0.0, ""
        if response.status_code == 413:
            log_event(log, "agent.collector_too_large", level=logging.WARNING, bytes=len(body),
                      body=response.text[:200])
            return 413, 0.0, response.text[:200]
        self._set(False, "agent.collector_refused", status=response.status_code, body=response.text[:200])
        try:
            wait = float(response.headers.get("retry-after", "1"))
        except ValueError:
            wait = 1.0
        return response.status_code, min(max(wait, 0.1), self.MAX_BACKOFF_S), response.text[:200]

    @staticmethod
    def _count_rejected(response: httpx.Response) -> None:
        """Records the collector refused in a 202 are dead-lettered there, with its reason."""
        try:
            rejected = int(response.json().get("rejected", 0))
        except (ValueError, AttributeError, TypeError):
            return
        if rejected > 0:
            ERRORS.labels("collector_rejected").inc(rejected)

    def _set(self, up: bool, event: str = "", **fields: object) -> None:
        """Log only changes: the first refusal of a run, and the first acceptance after it."""
        if up and not self._up:
            log_event(log, "agent.collector_up", down_s=round(time.monotonic() - self._down_since, 1))
        elif not up and self._up:
            self._down_since = time.monotonic()
            log_event(log, event, level=logging.WARNING, **fields)
        self._up = up


class DeadLetterFile:
    """Dead letters as NDJSON lines in a local file, fsynced per write; past ``max_bytes`` the
    file becomes ``<name>.1`` (the one before is dropped) and a new one is begun."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes

    def write(self, values: Iterable[bytes]) -> None:
        data = b"".join(value + b"\n" for value in values)
        if not data:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.path.stat().st_size + len(data) > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except FileNotFoundError:
            pass
        with open(self.path, "ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


SINKS: dict[str, Callable[[Settings, SinkConfig], KafkaSink | HttpSink]] = {
    "kafka": KafkaSink,
    "http": HttpSink,
}
