"""The SDK inside a host service, on the shared broker: nothing it is given makes it raise into
the service; what it drops is counted by reason (``drops()`` and the Prometheus counter); and
records get the same ``privacy:`` treatment as at the collector and the agent."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from collector_helpers import read_topic
from prometheus_client import REGISTRY

from collectors.sdk import KafkaLogHandler, PlayscopeProducer
from collectors.sdk.producer import DROP_REASONS
from playscope import topics
from playscope.config import PrivacyConfig, Settings
from playscope.privacy import Pseudonymizer
from playscope.stack.ports import free_port

SECRET = "a-test-secret-of-32-characters!!"


class BrokenStr:
    def __str__(self) -> str:
        raise RuntimeError("__str__ of a caller's object failed")


def _metric(reason: str) -> float:
    return REGISTRY.get_sample_value("playscope_sdk_discarded_events_total", {"reason": reason}) or 0.0


def _logger(settings: Settings, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"sdk-hostile-{settings.topic_prefix}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger


def test_oversized_unencodable_and_kafka_refused_records_are_counted_not_raised(
        kafka_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    settings = kafka_settings
    topic = settings.topic(topics.SERVICE_LOGS)
    before = {reason: _metric(reason) for reason in DROP_REASONS}
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    # max_record_bytes above Kafka's message size: librdkafka's own refusal (a KafkaException
    # raised by produce) is what the service must be kept from
    with PlayscopeProducer(settings.kafka, max_record_bytes=4_000_000) as producer:
        assert producer.try_send(topic, "svc", {"ts": 1, "message": "x" * 2_000_000}) == "too_large"
        assert "MSG_SIZE_TOO_LARGE" in producer.last_error
        assert producer.try_send(topic, "svc", {"ts": 1, "obj": BrokenStr()}) == "not_serialisable"
        assert producer.try_send(topic, "svc", {"ts": 1, "big": 2 ** 70}) == "not_serialisable"
        assert producer.try_send(topic, "svc", cycle) == "not_serialisable"
        assert producer.send(topic, "svc", {"ts": 1, "service": "svc", "message": "fine"})
        handler = KafkaLogHandler(producer, service="svc", topic=topic)
        logger = _logger(settings, handler)
        logger.info("a %d that gets a string", "x")  # shipped unformatted
        logger.info("an extra that cannot be written", extra={"obj": BrokenStr()})
        logger.info("x" * 2_000_000)
        logger.info("fine too")
        logger.removeHandler(handler)
        assert handler.drops()["not_serialisable"] == 1 and handler.drops()["too_large"] == 1
        assert handler.dropped == 2
    assert producer.drops()["too_large"] == 2 and producer.drops()["not_serialisable"] == 4
    assert producer.dropped == 6 and producer.stats()["delivered"] == 3
    assert _metric("too_large") - before["too_large"] == 2
    assert _metric("not_serialisable") - before["not_serialisable"] == 4
    assert "Traceback" not in capsys.readouterr().err, "dropped records print no traceback (handleError)"
    with PlayscopeProducer(settings.kafka) as producer:  # the default bound: refused before Kafka
        assert producer.try_send(topic, "svc", {"ts": 1, "message": "y" * 950_000}) == "too_large"
        assert "max_record_bytes" in producer.last_error
    records = read_topic(settings, topic, 3)
    messages = sorted(r.get("message", "") for r in records)
    assert messages == ["a %d that gets a string (arguments not formatted: ('x',))", "fine", "fine too"]


def test_full_queue_and_closed_producer_are_counted_by_reason() -> None:
    overrides: dict[str, Any] = {"message.timeout.ms": 1000}
    producer = PlayscopeProducer(f"127.0.0.1:{free_port()}", max_queue=10, **overrides)
    handler = KafkaLogHandler(producer, service="svc")
    before = _metric("queue_full")
    for i in range(100):
        handler.emit(logging.makeLogRecord({"msg": f"m{i}", "levelname": "INFO", "levelno": 20}))
    assert handler.drops()["queue_full"] == 90 and producer.drops()["queue_full"] == 90
    assert _metric("queue_full") - before == 90
    assert producer.close(timeout_s=2) == 100
    assert producer.drops()["not_delivered"] == 10
    assert producer.try_send("t", "k", {"m": 1}) == "closed" and not producer.send("t", "k", {"m": 1})
    assert producer.drops()["closed"] == 2


def test_sdk_applies_the_privacy_section(kafka_settings: Settings) -> None:
    settings = kafka_settings.model_copy(update={"privacy": PrivacyConfig(secret=SECRET)})
    topic = settings.topic(topics.SERVICE_LOGS)
    hasher = Pseudonymizer(settings.privacy)
    mine = {"ts": 1, "service": "svc", "message": "login from 203.0.113.5", "client_ip": "203.0.113.5",
            "request": {"http.client_ip": "2001:db8::5"}, "profile_id": "viewer-1"}
    with PlayscopeProducer.from_settings(settings) as producer:
        assert producer.send(topic, "svc", mine)
        handler = KafkaLogHandler(producer, service="web", topic=topic)
        logger = _logger(settings, handler)
        logger.info("served 198.51.100.7", extra={"client.address": "198.51.100.7"})
        logger.removeHandler(handler)
    assert mine["client_ip"] == "203.0.113.5" and mine["request"] == {"http.client_ip": "2001:db8::5"}, \
        "the caller's dict is left as it was"
    with PlayscopeProducer(settings.kafka) as producer:  # no privacy section: IP fields dropped
        assert producer.send(topic, "svc", {"ts": 2, "service": "plain", "message": "from 192.0.2.9",
                                            "remote_addr": "192.0.2.9"})
    records = {r["service"]: r for r in read_topic(settings, topic, 3)}
    svc, web, plain = records["svc"], records["web"], records["plain"]
    assert svc["client_ip"] == hasher.ip_pseudonym("203.0.113.5")
    assert svc["message"] == f"login from {hasher.ip_pseudonym('203.0.113.5')}"
    assert svc["request"]["http.client_ip"] == hasher.ip_pseudonym("2001:db8::5")
    assert svc["profile_id"] == hasher.pseudonym("viewer-1")
    assert web["client.address"] == hasher.ip_pseudonym("198.51.100.7") and "198.51.100.7" not in web["message"]
    assert "remote_addr" not in plain and plain["message"] == "from redacted"
