"""Where the agent ships batches: Kafka directly, or the HTTP collector. Registered in SINKS.

A sink's ``send(runs, on_done)`` (records grouped by topic, ``collectors.delivery.Run``)
returns at once and calls ``on_done(ok)`` exactly once, from any thread, when the whole batch
is confirmed (``ok=True``) or failed (the agent re-sends it).
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
    def __init__(self, settings: Settings, config: SinkConfig) -> None:
        self.producer = DeliveryProducer(producer_config(settings.kafka))

    def send(self, runs: list[Run], on_done: Done) -> None:
        def done(result: BatchResult) -> None:
            if not result.ok:
                log_event(log, "agent.delivery_failed", level=logging.WARNING, failed=len(result.failed),
                          reason=result.failed[0])
            on_done(result.ok)

        self.producer.send_runs(runs, done)

    def poll(self, timeout_s: float) -> None:
        self.producer.poll(timeout_s)

    def close(self, timeout_s: float) -> None:
        self.producer.close(timeout_s)


class HttpSink:
    """POSTs NDJSON to the collector's /v1/logs; a 202 is the collector's word that Kafka has it."""

    def __init__(self, settings: Settings, config: SinkConfig) -> None:
        headers = {"Content-Type": "application/x-ndjson"}
        if config.api_key:
            headers["X-API-Key"] = config.api_key
        self.client = httpx.Client(base_url=config.url, headers=headers, timeout=config.timeout_s)
        self.deadletter_topic = settings.topic(topics.DEADLETTER)
        self.queue: queue.Queue[tuple[list[Run], Done] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="agent-http-sink", daemon=True)
        self.thread.start()

    def send(self, runs: list[Run], on_done: Done) -> None:
        self.queue.put((runs, on_done))

    def poll(self, timeout_s: float) -> None:
        time.sleep(timeout_s)  # confirmations arrive from the sender thread

    def close(self, timeout_s: float) -> None:
        self.queue.put(None)
        self.thread.join(timeout_s)
        self.client.close()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            runs, on_done = item
            body = b"\n".join(message["value"] for _topic, messages in runs for message in messages)
            try:
                response = self.client.post("/v1/logs", content=body)
                ok = response.status_code == 202
                if not ok:
                    log_event(log, "agent.collector_refused", level=logging.WARNING,
                              status=response.status_code, body=response.text[:200])
            except httpx.HTTPError as exc:
                log_event(log, "agent.collector_unreachable", level=logging.WARNING, reason=str(exc))
                ok = False
            on_done(ok)


SINKS: dict[str, Callable[[Settings, SinkConfig], KafkaSink | HttpSink]] = {
    "kafka": KafkaSink,
    "http": HttpSink,
}
