"""Create the SPEC 3 topics and the SPEC 10 index templates; both idempotent."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from playscope.config import Settings
from playscope.errors import StackError
from playscope.indices import FAMILIES
from playscope.kafka import admin_config
from playscope.logs import log_event
from playscope.topics import TOPICS

log = logging.getLogger("playscope.stack")


def ensure_topics(settings: Settings, partitions: int | None = None, timeout_s: float = 30.0) -> list[str]:
    """Create every SPEC 3 topic that does not exist yet; return the names created.

    Replication is ``kafka.replication_factor`` capped at the number of live brokers (a config
    written for a three-node cluster still works on one broker), and ``min.insync.replicas`` is
    ``kafka.min_insync_replicas`` capped at that replication factor (more would refuse every
    acks=all write); at 1 the broker's default is left in place. Existing topics are left as
    they are."""
    admin = AdminClient(admin_config(settings.kafka))
    try:
        meta = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise StackError(f"Kafka at {settings.kafka.bootstrap} is not reachable: {exc}") from None
    existing = set(meta.topics)
    count = partitions or settings.kafka.partitions
    replication, min_isr = topic_replication(settings, len(meta.brokers))
    extra = {"min.insync.replicas": str(min_isr)} if min_isr > 1 else {}
    wanted = [
        NewTopic(
            settings.topic(spec.name),
            num_partitions=count,
            replication_factor=replication,
            config={**spec.config, **extra},
        )
        for spec in TOPICS
        if settings.topic(spec.name) not in existing
    ]
    created: list[str] = []
    if not wanted:
        return created
    if replication < settings.kafka.replication_factor:
        log_event(log, "topics.replication_capped", configured=settings.kafka.replication_factor,
                  brokers=len(meta.brokers), replication_factor=replication)
    for name, future in admin.create_topics(wanted, operation_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise StackError(f"could not create topic {name}: {exc}") from None
    log_event(log, "topics.created", topics=created, replication_factor=replication, min_insync_replicas=min_isr)
    return created


def topic_replication(settings: Settings, brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for new topics on a cluster of ``brokers``
    live brokers (0: unknown, no cap)."""
    replication = settings.kafka.replication_factor
    if brokers > 0:
        replication = min(replication, brokers)
    return replication, min(settings.kafka.min_insync_replicas, replication)


def ensure_templates(client: Any, prefix: str = "") -> list[str]:
    """Install the composable index templates of every family (``client`` is an
    elasticsearch.Elasticsearch or opensearchpy.OpenSearch); return their names."""
    names = []
    for family in FAMILIES.values():
        name = family.template_name(prefix)
        client.indices.put_index_template(name=name, body=family.template(prefix))
        names.append(name)
    return names


def delete_prefixed(settings: Settings, search_clients: tuple[Any, ...] = (), timeout_s: float = 30.0) -> int:
    """Delete every topic (internal ones included) and index of a prefixed deployment, and its
    templates: what a test or a benchmark run made. Returns the number of topics deleted.

    A broker keeps files open for every partition it hosts, and a search node has a shard limit,
    so runs that each make their own names must also take them away again."""
    deleted = 0
    if settings.topic_prefix:
        admin = AdminClient(admin_config(settings.kafka))
        names = [t for t in admin.list_topics(timeout=timeout_s).topics if t.startswith(settings.topic_prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=timeout_s).values():
                try:
                    future.result(timeout=timeout_s)
                    deleted += 1
                except KafkaException as exc:
                    log_event(log, "topics.delete_failed", error=str(exc))
    if settings.index_prefix:
        for client in search_clients:
            client.indices.delete(index=f"{settings.index_prefix}*", ignore_unavailable=True,
                                  allow_no_indices=True, expand_wildcards="all")
            for family in FAMILIES.values():
                name = family.template_name(settings.index_prefix)
                if client.indices.exists_index_template(name=name):
                    client.indices.delete_index_template(name=name)
    return deleted
