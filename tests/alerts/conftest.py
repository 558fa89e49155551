"""Fixtures of the alert tests (helpers live in alerts_helpers.py).

``kafka_settings`` is the shared ``settings`` fixture without the search clusters: the
evaluator reads and writes only Kafka, so its tests do not wait for Elasticsearch.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from alerts_helpers import Receiver

from playscope.config import Settings, load_settings


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def kafka_settings(request: pytest.FixtureRequest) -> Settings:
    from playscope.stack.provision import ensure_topics

    request.node.add_marker(pytest.mark.integration)
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30]
    tag = f"t{uuid.uuid4().hex[:8]}-{slug}"
    base = load_settings(environ={})
    settings = base.model_copy(update={"topic_prefix": f"{tag}.", "index_prefix": f"{tag}-"})
    ensure_topics(settings, partitions=3)
    return settings
