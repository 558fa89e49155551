"""Where the agent ships batches: Kafka directly, or the HTTP collector. Registered in SINKS.

A sink's ``send(runs, on_done)`` (records grouped by topic, ``collectors.delivery.Run``)
returns at once and calls ``on_done(ok)`` exactly once, from any thread, when the whole batch
is confirmed (``ok=True``) or failed (the agent re-sends it). ``broker_up`` says whether the
sink currently reaches its destination (the agent's ``playscope_agent_broker_up``). Failures
are logged once per change of state, not once per batch or retry.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import httpx

from collectors.agent.config import SinkConfig
from collectors.delivery import BatchResult, DeliveryProducer, Run
from playscope import topics
from playscope.config import Settings
from playscope.kafka import producer_config
from playscope.logs import log_event

log = logging.getLogger("playscope.agent.sink")
Done = Callable[[bool], None]


class KafkaSink:
    """Straight to Kafka. Records never time out locally (``message.timeout.ms`` 0): through a
    broker outage of any length librdkafka keeps them and retries them idempotently, so the
    outage neither fails a batch nor duplicates one; only an error Kafka gives for the record
    itself (too large, not authorised) fails it."""

    def __init__(self, settings: Settings, config: SinkConfig) -> None:
        self.producer = DeliveryProducer(producer_config(settings.kafka, **{"message.timeout.ms": 0}),
                                         client="agent")
        self._failing = False

    @property
    def broker_up(self) -> bool:
        return self.producer.broker_up

    def send(self, runs: list[Run], on_done: Done) -> None:
        def done(result: BatchResult) -> None:
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

    def close(self, timeout_s: float) -> None:
        self.producer.close(timeout_s)


class HttpSink:
    """POSTs NDJSON to the collector's /v1/logs; a 202 is the collector's word that Kafka has it.

    A refusal or an unreachable collector is waited out (its ``Retry-After``, else a second, at
    most ``MAX_BACKOFF_S``) before the batch is reported failed, so the agent's re-send does not
    hammer a collector that is waiting for its broker."""

    MAX_BACKOFF_S = 10.0

    def __init__(self, settings: Settings, config: SinkConfig) -> None:
        self._up = True
        self._down_since = 0.0
        self._stop = threading.Event()
        headers = {"Content-Type": "application/x-ndjson"}
        if config.api_key:
            headers["X-API-Key"] = config.api_key
        self.client = httpx.Client(base_url=config.url, headers=headers, timeout=config.timeout_s)
        self.deadletter_topic = settings.topic(topics.DEADLETTER)
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
            body = b"\n".join(message["value"] for _topic, messages in runs for message in messages)
            backoff = self._post(body)
            if backoff:
                self._stop.wait(backoff)
            on_done(not backoff)

    def _post(self, body: bytes) -> float:
        """POST one batch: 0 when the collector accepted it, else the seconds to wait."""
        try:
            response = self.client.post("/v1/logs", content=body)
        except httpx.HTTPError as exc:
            self._set(False, "agent.collector_unreachable", reason=str(exc))
            return 1.0
        if response.status_code == 202:
            self._set(True)
            return 0.0
        self._set(False, "agent.collector_refused", status=response.status_code, body=response.text[:200])
        try:
            wait = float(response.headers.get("retry-after", "1"))
        except ValueError:
            wait = 1.0
        return min(max(wait, 0.1), self.MAX_BACKOFF_S)

    def _set(self, up: bool, event: str = "", **fields: object) -> None:
        """Log only changes: the first refusal of a run, and the first acceptance after it."""
        if up and not self._up:
            log_event(log, "agent.collector_up", down_s=round(time.monotonic() - self._down_since, 1))
        elif not up and self._up:
            self._down_since = time.monotonic()
            log_event(log, event, level=logging.WARNING, **fields)
        self._up = up


SINKS: dict[str, Callable[[Settings, SinkConfig], KafkaSink | HttpSink]] = {
    "kafka": KafkaSink,
    "http": HttpSink,
}
