"""A non-blocking, bounded Kafka producer for embedding in services.

``send`` never waits and never raises into the service: librdkafka queues the record (bounded
by ``max_queue`` records and ``max_queue_kb``); a record that cannot be queued is dropped and
counted by reason instead, in ``drops()`` and in ``playscope_sdk_discarded_events_total{reason}``
(reasons: :data:`DROP_REASONS`). Records get the same ``privacy:`` treatment as at the collector
and the agent (playscope/privacy.py): IP fields at any depth pseudonymised, or dropped when no
secret is set, and the caller's dicts are left as they were. A background thread serves
delivery reports; ``close`` (also run at interpreter exit and by the context manager) flushes
and reports what was not delivered. Whether the cluster is reachable is ``broker_up`` (also in
``stats()``); an outage is logged once when it starts and once when it ends
(``kafka.broker_down`` / ``kafka.broker_up``, client ``sdk``), not per reconnect attempt.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

import orjson
from confluent_kafka import KafkaError, KafkaException, Producer
from prometheus_client import Counter

from playscope.config import KafkaConfig, PrivacyConfig, Settings
from playscope.kafka import producer_config
from playscope.kafka_health import BrokerWatch
from playscope.privacy import Pseudonymizer, privacy_of

# Why a record was dropped: a fixed set, so the metric has a fixed number of series.
DROP_REASONS = (
    "closed",  # sent after close()
    "queue_full",  # the bounded local queue is full (a broker outage, a burst)
    "too_large",  # above max_record_bytes, or Kafka's message size
    "not_serialisable",  # cannot be encoded as JSON (a failing __str__, a huge int, a cycle)
    "kafka_error",  # any other error the client raised for the record
    "not_delivered",  # failed delivery, or still queued when close() gave up
    "handler_error",  # the logging handler could not turn a LogRecord into a record
)
DISCARDED = Counter("playscope_sdk_discarded_events_total",
                    "Records the SDK dropped instead of raising into the service, by reason", ["reason"])
for _reason in DROP_REASONS:
    DISCARDED.labels(_reason)

_TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_MSG_SIZE})


class PlayscopeProducer:
    def __init__(self, kafka: KafkaConfig | str = "localhost:9092", max_queue: int = 100_000,
                 max_queue_kb: int = 64 * 1024, privacy: PrivacyConfig | None = None,
                 max_record_bytes: int = 900_000, **overrides: Any) -> None:
        """``privacy``: the ``privacy:`` section (``settings.privacy``; :meth:`from_settings`
        reads it); without one, IP fields are dropped. ``max_record_bytes``: larger records are
        dropped (``too_large``) before Kafka would refuse them."""
        cfg = KafkaConfig(bootstrap=kafka) if isinstance(kafka, str) else kafka
        self.watch = BrokerWatch("sdk")
        conf = producer_config(cfg, **{"queue.buffering.max.messages": max_queue,
                                       "queue.buffering.max.kbytes": max_queue_kb, **self.watch.config(),
                                       **overrides})
        self._producer = Producer(conf)
        self.privacy = Pseudonymizer(privacy or PrivacyConfig())
        self.max_record_bytes = max_record_bytes
        self._lock = threading.Lock()
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.dropped = 0  # dropped at send (every reason but not_delivered)
        self._drops = dict.fromkeys(DROP_REASONS, 0)
        self.last_error = ""  # the last reason a record was dropped, with the error's text
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="playscope-sdk-poll", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> PlayscopeProducer:
        """A producer with the deployment's Kafka and ``privacy:`` sections."""
        return cls(settings.kafka, privacy=privacy_of(settings), **kwargs)

    def send(self, topic: str, key: str | None, record: dict[str, Any]) -> bool:
        """Queue ``record``; False (and counted in ``drops()``) when it cannot be."""
        return self.try_send(topic, key, record) is None

    def try_send(self, topic: str, key: str | bytes | None, record: dict[str, Any]) -> str | None:
        """Queue ``record``: None when queued, else the reason it was dropped (counted)."""
        if self._closed:
            return self.discard("closed", "producer closed")
        try:
            value = orjson.dumps(self.privacy.apply_copy(record), default=str)
        except Exception as exc:  # anything a caller's object does while being encoded
            return self.discard("not_serialisable", f"{type(exc).__name__}: {exc}")
        if len(value) > self.max_record_bytes:
            return self.discard("too_large", f"{len(value)} bytes (max_record_bytes {self.max_record_bytes})")
        try:
            raw_key = key.encode() if isinstance(key, str) else key if isinstance(key, bytes) or key is None \
                else str(key).encode()
            self._producer.produce(topic, value, raw_key or None, on_delivery=self._on_delivery)
        except BufferError:
            return self.discard("queue_full", "local queue full")
        except KafkaException as exc:
            err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            reason = "too_large" if err is not None and err.code() in _TOO_LARGE else "kafka_error"
            return self.discard(reason, str(exc))
        except Exception as exc:  # a topic or key the client refuses
            return self.discard("kafka_error", f"{type(exc).__name__}: {exc}")
        with self._lock:
            self.sent += 1
        return None

    def drops(self) -> dict[str, int]:
        """Records dropped so far by this producer, by reason (every reason, zeros included)."""
        with self._lock:
            return dict(self._drops)

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
                self._drops["not_delivered"] += left
            if left:
                DISCARDED.labels("not_delivered").inc(left)
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

    def discard(self, reason: str, detail: str) -> str:
        """Count a record dropped for ``reason`` (one of :data:`DROP_REASONS`); returns it."""
        DISCARDED.labels(reason).inc()
        with self._lock:
            self.dropped += 1
            self._drops[reason] += 1
            self.last_error = f"{reason}: {detail[:200]}"
        return reason

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def _on_delivery(self, err: KafkaError | None, _msg: Any) -> None:
        with self._lock:
            if err is None:
                self.delivered += 1
                return
            self.failed += 1
            self._drops["not_delivered"] += 1
            self.last_error = f"not_delivered: {err.str()[:200]}"
        DISCARDED.labels("not_delivered").inc()
