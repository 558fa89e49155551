"""The collector's spool replay against the real broker: a replay that Kafka acknowledges only
in part keeps only the rest, so later attempts repeat nothing Kafka already has."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import orjson
import pytest
from collector_helpers import read_topic
from helpers import wait_for

from collectors.delivery import DeliveryProducer, Record, encode
from collectors.http.spool import Spool
from playscope import topics
from playscope.config import Settings
from playscope.kafka import producer_config


def test_a_partly_failed_replay_keeps_only_what_kafka_did_not_acknowledge(
        kafka_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = kafka_settings
    topic = settings.topic(topics.PLAYBACK_EVENTS)
    # records over message.max.bytes fail every time; the others are acknowledged
    producer = DeliveryProducer(producer_config(settings.kafka, **{"message.max.bytes": 2000}), client="test")
    big = {7, 31}
    records: list[Record] = [(topic, b"k", encode({"seq": i, "pad": "x" * (5000 if i in big else 0)}))
                             for i in range(60)]
    attempts: list[int] = []
    spool = Spool(tmp_path, 16 * 1024 * 1024, producer, on_replayed=attempts.append)
    caplog.set_level(logging.INFO, logger="playscope.collector.spool")
    try:
        assert spool.append_sync(records)
        spool.start()
        wait_for(lambda: len(attempts) >= 3, 30, "three replay attempts")
    finally:
        spool.stop()
        producer.close(10)
    assert attempts[0] == 58 and set(attempts[1:]) == {0}, attempts
    (segment,) = tmp_path.glob("spool-*.ndjson")
    left = [orjson.loads(orjson.loads(line)[2])["seq"] for line in segment.read_bytes().splitlines()]
    assert left == sorted(big)
    seqs = Counter(r["seq"] for r in read_topic(settings, topic, 58, settle_s=2))
    assert seqs == Counter(set(range(60)) - big), "a record was lost or sent twice"
    failed = [r for r in caplog.records if r.getMessage() == "spool.replay_failed"]
    assert len(failed) == 1, "a failing replay is logged once, not per attempt"
