"""The real stack: topics, templates, a round trip through Kafka, indexing on both clusters."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from playscope import topics
from playscope.config import Settings
from playscope.indices import FAMILIES
from playscope.kafka import admin_config, consumer_config, producer_config
from playscope.stack.manager import StackManager


def test_up_on_a_running_stack_is_quick_and_healthy(stack: StackManager) -> None:
    started = time.monotonic()
    assert stack.up(opensearch=True) is False  # nothing needed starting
    assert time.monotonic() - started < 30
    assert all(s.healthy for s in stack.status())
    assert {s.name for s in stack.status()} == {"kafka", "elasticsearch", "opensearch"}


def test_spec_topics_exist_with_their_settings(settings: Settings) -> None:
    admin = AdminClient(admin_config(settings.kafka))
    meta = admin.list_topics(timeout=10)
    for spec in topics.TOPICS:
        name = settings.topic(spec.name)
        assert name in meta.topics, name
        assert len(meta.topics[name].partitions) == 3
    resource = ConfigResource(ConfigResource.Type.TOPIC, settings.topic(topics.ALERT_STATE))
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["cleanup.policy"].value == "compact"


def test_round_trip_through_the_real_broker(settings: Settings) -> None:
    topic = settings.topic(topics.PLAYBACK_EVENTS)
    producer = Producer(producer_config(settings.kafka))
    sent = [{"event_id": f"e{i}", "session_id": f"s{i % 4}", "ts": 1_700_000_000_000 + i, "type": "heartbeat"}
            for i in range(200)]
    for record in sent:
        producer.produce(topic, orjson.dumps(record), key=record["session_id"])
    assert producer.flush(30) == 0
    consumer = Consumer(consumer_config(settings.kafka, settings.group(f"rt-{uuid.uuid4().hex[:6]}")))
    consumer.subscribe([topic])
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while len(received) < len(sent) and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and msg.error() is None:
            received.append(orjson.loads(msg.value()))
    consumer.close()
    assert sorted(r["event_id"] for r in received) == sorted(r["event_id"] for r in sent)


def _index_and_search(client: Any, settings: Settings) -> None:
    family = FAMILIES["playback"]
    doc = {"event_id": "e-1", "session_id": "s-1", "ts": 1_700_000_000_000, "type": "playing",
           "cdn": "oca-7", "noisy_field": {"deep": 1}}
    index = family.index_for(doc, settings.index_prefix)
    client.index(index=index, id=doc["event_id"], body=doc, refresh=True)
    mapping = client.indices.get_mapping(index=index)[index]["mappings"]
    assert mapping["dynamic"] in (False, "false")
    assert mapping["properties"]["cdn"]["type"] == "keyword"
    assert mapping["properties"]["ts"]["type"] == "date"
    assert "noisy_field" not in mapping["properties"]  # kept in _source, not indexed
    hits = client.search(index=index, body={"query": {"term": {"cdn": "oca-7"}}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["e-1"]
    assert hits[0]["_source"]["noisy_field"] == {"deep": 1}


def test_index_and_search_elasticsearch(settings: Settings, es: Any) -> None:
    _index_and_search(es, settings)


def test_index_and_search_opensearch(settings: Settings, opensearch: Any) -> None:
    _index_and_search(opensearch, settings)
