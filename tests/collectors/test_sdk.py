"""The producer SDK: logging handler and playback client end to end, drops when unreachable."""

from __future__ import annotations

import logging
import time

import pytest
from collector_helpers import read_topic

from collectors.sdk import KafkaLogHandler, PlaybackClient, PlayscopeProducer
from playscope import topics
from playscope.config import Settings
from playscope.errors import ValidationError
from playscope.stack.ports import free_port


def test_logging_handler_ships_structured_records(kafka_settings: Settings) -> None:
    settings = kafka_settings
    logger = logging.getLogger(f"sdk-test-{settings.topic_prefix}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    with PlayscopeProducer(settings.kafka) as producer:
        handler = KafkaLogHandler(producer, service="checkout", topic=settings.topic(topics.SERVICE_LOGS),
                                  host="web-1")
        logger.addHandler(handler)
        for i in range(100):
            logger.info("order %d placed", i, extra={"route": "/orders", "status": 201, "latency_ms": 3.5})
        try:
            raise KeyError("sku")
        except KeyError:
            logger.exception("failed to price")
        logger.warning("slow")
        logger.removeHandler(handler)
    assert producer.stats()["delivered"] == 102 and producer.dropped == 0
    records = read_topic(settings, settings.topic(topics.SERVICE_LOGS), 102)
    assert len(records) == 102
    first = next(r for r in records if r["message"] == "order 0 placed")
    assert first["service"] == "checkout" and first["_key"] == "checkout" and first["host"] == "web-1"
    assert first["route"] == "/orders" and first["status"] == 201 and first["level"] == "INFO"
    err = next(r for r in records if r["message"] == "failed to price")
    assert err["level"] == "ERROR" and "KeyError: 'sku'" in err["exception"]
    assert any(r["level"] == "WARN" for r in records)


def test_playback_client_events(kafka_settings: Settings) -> None:
    settings = kafka_settings
    with PlayscopeProducer(settings.kafka) as producer:
        client = PlaybackClient(producer, topic=settings.topic(topics.PLAYBACK_EVENTS), device="tv", cdn="c1")
        assert client.event("s1", "session_start")
        assert client.event("s1", "bitrate_change", to_kbps=3000)
        with pytest.raises(ValidationError):
            client.event("s1", "bogus")
    events = read_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), 2)
    assert sorted(e["type"] for e in events) == ["bitrate_change", "session_start"]
    assert all(e["device"] == "tv" and e["_key"] == "s1" for e in events) and len(events) == 2


def test_unreachable_broker_never_blocks_and_counts_drops() -> None:
    producer = PlayscopeProducer(f"127.0.0.1:{free_port()}", max_queue=10, **{"message.timeout.ms": 1000})
    handler = KafkaLogHandler(producer, service="svc")
    started = time.monotonic()
    for i in range(1000):
        handler.emit(logging.makeLogRecord({"msg": f"m{i}", "levelname": "INFO", "levelno": 20}))
    assert time.monotonic() - started < 1.0
    assert producer.dropped == 990
    undelivered = producer.close(timeout_s=3)
    assert undelivered == 1000 and producer.delivered == 0
