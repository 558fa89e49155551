"""DeliveryProducer against the real broker: a batch finishes once, after every record's
delivery report, also when the local queue is full and across topics."""

from __future__ import annotations

import threading
from collections import Counter

import orjson
from collector_helpers import read_topic

from collectors.delivery import BatchResult, DeliveryProducer, encode
from playscope import topics
from playscope.config import Settings
from playscope.kafka import producer_config


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
