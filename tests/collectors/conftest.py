"""Collector tests need only Kafka: ``kafka_settings`` uses the shared broker when it is already
reachable (without waiting on the search clusters) and falls back to the ``stack`` fixture."""

from __future__ import annotations

import re
import uuid

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from playscope.config import Settings, load_settings
from playscope.kafka import admin_config


def _kafka_reachable(settings: Settings) -> bool:
    try:
        AdminClient(admin_config(settings.kafka)).list_topics(timeout=3)
        return True
    except KafkaException:
        return False


@pytest.fixture
def kafka_settings(request: pytest.FixtureRequest) -> Settings:
    """Settings with per-test topic names (3 partitions) on the shared broker."""
    from playscope.stack.provision import ensure_topics

    base = load_settings(environ={})
    if not _kafka_reachable(base):
        request.getfixturevalue("stack")
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30]
    tag = f"t{uuid.uuid4().hex[:8]}-{slug}"
    settings = base.model_copy(update={"topic_prefix": f"{tag}.", "index_prefix": f"{tag}-"})
    ensure_topics(settings, partitions=3)
    return settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "kafka_settings" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
