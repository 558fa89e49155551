"""A non-blocking, bounded Kafka producer for embedding in services.

``send`` never waits: librdkafka queues the record (bounded by ``max_queue`` records and
``max_queue_kb``); when the queue is full the record is dropped and counted, so a broker outage
can slow nothing in the service. A background thread serves delivery reports; ``close`` (also
run at interpreter exit and by the context manager) flushes and reports what was not delivered.
Whether the cluster is reachable is ``broker_up`` (also in ``stats()``); an outage is logged
once when it starts and once when it ends (``kafka.broker_down`` / ``kafka.broker_up``,
client ``sdk``), not per reconnect attempt.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

import orjson
from confluent_kafka import KafkaError, Producer

from playscope.config import KafkaConfig
from playscope.kafka import producer_config
from playscope.kafka_health import BrokerWatch


class PlayscopeProducer:
    def __init__(self, kafka: KafkaConfig | str = "localhost:9092", max_queue: int = 100_000,
                 max_queue_kb: int = 64 * 1024, **overrides: Any) -> None:
        cfg = KafkaConfig(bootstrap=kafka) if isinstance(kafka, str) else kafka
        self.watch = BrokerWatch("sdk")
        conf = producer_config(cfg, **{"queue.buffering.max.messages": max_queue,
                                       "queue.buffering.max.kbytes": max_queue_kb, **self.watch.config(),
                                       **overrides})
        self._producer = Producer(conf)
        self._lock = threading.Lock()
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="playscope-sdk-poll", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def send(self, topic: str, key: str | None, record: dict[str, Any]) -> bool:
        """Queue ``record``; False (and counted in ``dropped``) when full or closed."""
        if self._closed:
            with self._lock:
                self.dropped += 1
            return False
        try:
            value = orjson.dumps(record, default=str)
            self._producer.produce(topic, value, key.encode() if key else None, on_delivery=self._on_delivery)
        except (BufferError, TypeError, ValueError):
            with self._lock:
                self.dropped += 1
            return False
        with self._lock:
            self.sent += 1
        return True

    def close(self, timeout_s: float = 10.0) -> int:
        """Flush and stop; returns how many records were not delivered (failed, dropped, left)."""
        if not self._closed:
            self._closed = True
            left = self._producer.flush(timeout_s)
            self._stop.set()
            self._thread.join(timeout=2)
            atexit.unregister(self.close)
            with self._lock:
                self.failed += left
        return self.failed + self.dropped

    @property
    def broker_up(self) -> bool:
        return self.watch.up

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"sent": self.sent, "delivered": self.delivered, "failed": self.failed,
                    "dropped": self.dropped, "queued": len(self._producer), "broker_up": int(self.watch.up)}

    def __enter__(self) -> PlayscopeProducer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def _on_delivery(self, err: KafkaError | None, _msg: Any) -> None:
        with self._lock:
            if err is None:
                self.delivered += 1
            else:
                self.failed += 1
