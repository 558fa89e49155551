"""The client-log repeat filter and the broker watch: said once per change, not per retry."""

from __future__ import annotations

import logging

import orjson
import pytest

from playscope.kafka_health import BrokerWatch, RepeatFilter


def _record(msg: str, name: str = "playscope.kafka.client") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, None)


def test_the_same_failure_passes_once_per_window() -> None:
    f = RepeatFilter(window_s=60)
    first = ("FAIL [rdkafka#consumer-2]: Connect to ipv4#127.0.0.1:19092 failed: Connection refused "
             "(after 0ms in state CONNECT)")
    later = ("FAIL [rdkafka#consumer-2]: Connect to ipv4#127.0.0.1:19092 failed: Connection refused "
             "(after 3ms in state CONNECT, 1 identical error(s) suppressed)")
    assert f.filter(_record(first))
    assert not any(f.filter(_record(later)) for _ in range(50))
    assert f.filter(_record("something else entirely"))


def test_the_line_after_the_window_says_how_many_were_held_back() -> None:
    f = RepeatFilter(window_s=0.0)
    assert f.filter(_record("retry 1"))
    f.window_s = 60
    assert not f.filter(_record("retry 2"))
    f.window_s = 0.0
    last = _record("retry 3")
    assert f.filter(last)
    assert getattr(last, "suppressed", None) == 1


def test_broker_watch_logs_each_change_once(caplog: pytest.LogCaptureFixture) -> None:
    watch = BrokerWatch("test")
    down = orjson.dumps({"brokers": {"b/1": {"state": "DOWN", "nodeid": 1}}}).decode()
    up = orjson.dumps({"brokers": {"b/1": {"state": "UP", "nodeid": 1}, "boot/-1": {"state": "UP", "nodeid": -1}}})
    with caplog.at_level(logging.INFO, logger="playscope.kafka"):
        for _ in range(5):
            watch.on_stats(down)
        assert not watch.up
        for _ in range(5):
            watch.on_stats(up.decode())
        assert watch.up
    events = [r.getMessage() for r in caplog.records]
    assert events.count("kafka.broker_down") == 1 and events.count("kafka.broker_up") == 1
    assert watch.downs == 1
