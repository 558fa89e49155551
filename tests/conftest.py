"""Shared fixtures: the real local stack, started once per test run, and per-test names.

* ``stack``      (session) the running stack; started by this run or reused when already up.
* ``settings``   (function) a Settings whose topics, consumer groups and indices carry a prefix
                 unique to the test; its topics (3 partitions) and index templates exist.
* ``kafka_settings``  (function) the same for tests that use only Kafka (no index templates).
* ``es`` / ``opensearch``   clients for the two clusters.
* ``private_kafka``  (function) a factory for a throw-away Kafka broker on its own ports, for
                 tests that stop or kill a broker without disturbing everyone else.

Every test that uses the stack is marked ``integration`` automatically.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from playscope.config import Settings, load_settings

INTEGRATION_FIXTURES = {"stack", "settings", "kafka_settings", "es", "opensearch", "private_kafka"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Bring the local stack up once (or reuse a running one) and leave it as found."""
    from playscope.stack.manager import StackManager

    home = Path(os.environ.get("PLAYSCOPE_HOME", ".playscope"))
    manager = StackManager(home=home, settings=load_settings(environ={}))
    started = manager.up(opensearch=True, progress=False)
    yield manager
    if started and not os.environ.get("PLAYSCOPE_KEEP_STACK"):
        manager.down()


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:30]


@pytest.fixture
def settings(stack: object, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings for one test: its own topics, groups and indices, already provisioned, and
    deleted afterwards (a broker holds files open per partition, a node has a shard limit)."""
    from elasticsearch import Elasticsearch
    from opensearchpy import OpenSearch

    from playscope.provision import delete_prefixed, ensure_templates, ensure_topics

    tag = f"t{uuid.uuid4().hex[:8]}-{_slug(request.node.name)}"
    base = load_settings(environ={})
    settings = base.model_copy(update={"topic_prefix": f"{tag}.", "index_prefix": f"{tag}-"})
    es = Elasticsearch(settings.elasticsearch.url, request_timeout=30)
    opensearch = OpenSearch(settings.opensearch.url, timeout=30)
    ensure_topics(settings, partitions=3)
    ensure_templates(es, settings.index_prefix)
    ensure_templates(opensearch, settings.index_prefix)
    yield settings
    try:
        delete_prefixed(settings, (es, opensearch))
    finally:
        es.close()
        opensearch.close()


@pytest.fixture
def kafka_settings(stack: object, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Per-test topics and groups on the shared broker (3 partitions), deleted afterwards."""
    from playscope.provision import delete_prefixed, ensure_topics

    tag = f"t{uuid.uuid4().hex[:8]}-{_slug(request.node.name)}"
    settings = load_settings(environ={}).model_copy(update={"topic_prefix": f"{tag}.", "index_prefix": f"{tag}-"})
    ensure_topics(settings, partitions=3)
    yield settings
    delete_prefixed(settings)


@pytest.fixture
def es(stack: object) -> Iterator[object]:
    from elasticsearch import Elasticsearch

    client = Elasticsearch(load_settings(environ={}).elasticsearch.url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def opensearch(stack: object) -> Iterator[object]:
    from opensearchpy import OpenSearch

    client = OpenSearch(load_settings(environ={}).opensearch.url, timeout=30)
    yield client
    client.close()


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[Callable[[], object]]:
    """Factory for a broker of this test's own (started on free ports; stopped at teardown)."""
    from playscope.stack.servers import KafkaServer

    servers: list[KafkaServer] = []

    def make() -> KafkaServer:
        server = KafkaServer.on_free_ports(tmp_path / f"kafka{len(servers)}")
        server.start()
        server.wait_healthy(timeout_s=90)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
