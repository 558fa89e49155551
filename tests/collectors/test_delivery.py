"""DeliveryProducer against the real broker: a batch finishes once, after every record's
delivery report, also when the local queue is full and across topics."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
from collector_helpers import read_topic
from helpers import wait_for

from collectors.delivery import BatchResult, DeliveryProducer, encode
from playscope import topics
from playscope.config import KafkaConfig, Settings
from playscope.kafka import producer_config
from playscope.stack.servers import KafkaServer


def test_batch_waits_out_a_full_local_queue_and_loses_nothing(kafka_settings: Settings) -> None:
    settings = kafka_settings
    events, dead = settings.topic(topics.PLAYBACK_EVENTS), settings.topic(topics.DEADLETTER)
    # a queue of 50 messages: produce_batch refuses most of a 400-record batch at first
    producer = DeliveryProducer(producer_config(settings.kafka, **{"queue.buffering.max.messages": 50}))
    try:
        records = [(events, f"s{i % 7}".encode(), encode({"seq": i})) for i in range(300)]
        records += [(dead, None, encode({"seq": 1000 + i})) for i in range(100)]
        results: list[BatchResult] = []
        finished = threading.Event()

        def done(result: BatchResult) -> None:
            results.append(result)
            finished.set()

        producer.send(records, done)
        while not finished.wait(0.01):
            producer.poll(0.05)
        producer.poll(0.2)  # a second on_done would show up here
        assert len(results) == 1 and results[0].ok and results[0].size == 400
    finally:
        producer.close(10)
    seen = read_topic(settings, events, 300) + read_topic(settings, dead, 100)
    counts = Counter(r["seq"] for r in seen)
    assert set(counts) == set(range(300)) | set(range(1000, 1100)) and max(counts.values()) == 1
    keyed = [r for r in seen if r["seq"] < 300]
    assert all(r["_key"] == f"s{r['seq'] % 7}" for r in keyed)


def test_deliver_sync_reports_records_kafka_refused(kafka_settings: Settings) -> None:
    settings = kafka_settings
    producer = DeliveryProducer(producer_config(settings.kafka, **{"message.max.bytes": 2000}))
    try:
        topic = settings.topic(topics.PLAYBACK_EVENTS)
        big = orjson.dumps({"pad": "x" * 5000})
        result = producer.deliver_sync([(topic, b"k", b"{}"), (topic, b"k", big), (topic, b"k", b"{}")], 10)
        assert result.size == 3 and len(result.failed) == 1 and not result.ok
        assert "size" in result.failed[0].lower() or "large" in result.failed[0].lower()
    finally:
        producer.close(10)


def test_encode_is_orjson_dumps() -> None:
    for value in ({"a": 1, "b": [1.5, None, "é"]}, "x" * 3000, [{"k": "v" * 600}], 0):
        assert encode(value) == orjson.dumps(value)


class _IdleClosingKafka(KafkaServer):
    """A private broker that closes connections idle for 2 s (ten minutes by default)."""

    def _properties(self) -> str:
        return super()._properties() + "connections.max.idle.ms=2000\n"


class _Disconnects(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "Disconnected" in record.getMessage()


@pytest.mark.integration
@pytest.mark.slow
def test_an_idle_connection_closed_by_the_broker_is_not_an_outage(tmp_path: Path) -> None:
    """librdkafka reports all brokers down when the broker closes an idle connection; the
    producer checks with a metadata request before it believes it (a quiet collector would
    otherwise answer 503 for seconds every ten minutes)."""
    server = _IdleClosingKafka.on_free_ports(tmp_path / "kafka")
    server.start()
    try:
        server.wait_healthy(timeout_s=90)
        client_log = logging.getLogger(f"test.rdkafka.{uuid.uuid4().hex[:6]}")
        client_log.propagate = False
        client_log.setLevel(logging.DEBUG)
        disconnects = _Disconnects()
        client_log.addHandler(disconnects)
        changes: list[bool] = []
        conf = producer_config(KafkaConfig(bootstrap=server.bootstrap),
                               **{"logger": client_log, "log.connection.close": True})
        producer = DeliveryProducer(conf, client="idle", on_broker_change=changes.append)
        try:
            assert producer.deliver_sync([("idle", None, b"x")], 30).ok
            downs: list[bool] = []

            def idle_closed_twice() -> bool:
                producer.poll(0.1)
                downs.append(not producer.broker_up)
                return disconnects.count >= 2

            wait_for(idle_closed_twice, 30, "two idle connections closed by the broker")
            assert producer.deliver_sync([("idle", None, b"y")], 30).ok
        finally:
            producer.close(10)
        assert changes == [] and not any(downs), "an idle close was taken for an outage"
    finally:
        server.stop()
