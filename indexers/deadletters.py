"""Producing dead-letter records and waiting until Kafka has every one of them.

Offsets are committed only after this returns, so a record refused by the search backend is
either in the dead-letter topic or read again after a restart: never neither.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from indexers.bulk import Abandoned, Backoff
from playscope.config import Settings
from playscope.kafka import producer_config
from playscope.logs import log_event
from playscope.topics import DEADLETTER

log = logging.getLogger("playscope.indexer.deadletter")


class DeadLetterWriter:
    def __init__(self, settings: Settings, cancel: threading.Event, retry_initial_s: float = 0.2,
                 retry_max_s: float = 10.0) -> None:
        self.topic = settings.topic(DEADLETTER)
        self.producer = Producer(producer_config(settings.kafka, **{"linger.ms": 1}))
        self.cancel = cancel
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s

    def send_all(self, records: list[dict[str, Any]]) -> None:
        """Produce ``records`` and return once each is acknowledged (retrying failures)."""
        pending = [orjson.dumps(r, option=orjson.OPT_NON_STR_KEYS) for r in records]
        backoff = Backoff(self.retry_initial_s, self.retry_max_s, self.cancel)
        while pending:
            failed: list[bytes] = []
            on_delivery = self._collect_failures(failed)
            for value in pending:
                self._produce(value, on_delivery)
            while self.producer.flush(1.0) > 0:
                if self.cancel.is_set():
                    raise Abandoned("shutdown while dead-letter records were in flight")
            if failed:
                log_event(log, "deadletter.retry", logging.WARNING, records=len(failed))
                backoff.wait()
            pending = failed

    @staticmethod
    def _collect_failures(failed: list[bytes]) -> Any:
        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            value = msg.value()
            if err is not None and value is not None:
                failed.append(value)

        return on_delivery

    def _produce(self, value: bytes, on_delivery: Any) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value=value, on_delivery=on_delivery)
                return
            except BufferError:  # local queue full: let deliveries drain
                self.producer.poll(0.5)

    def close(self) -> None:
        self.producer.flush(10.0)
