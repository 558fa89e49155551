"""Create the SPEC 3 topics and the SPEC 10 index templates; both idempotent."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from playscope.config import IndexSettings, IndicesConfig, Settings
from playscope.errors import StackError
from playscope.indices import DEFAULT_REPLICAS, DEFAULT_SHARDS, FAMILIES, IndexFamily, merge_template
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
    if replication < settings.kafka.replication_factor or min_isr < settings.kafka.min_insync_replicas:
        log_event(log, "topics.replication_capped", logging.WARNING, brokers=len(meta.brokers),
                  configured_replication_factor=settings.kafka.replication_factor, replication_factor=replication,
                  configured_min_insync_replicas=settings.kafka.min_insync_replicas, min_insync_replicas=min_isr)
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


def ensure_templates(client: Any, prefix: str = "", indices: IndicesConfig | None = None) -> list[str]:
    """Install or update the composable index templates of every family (``client`` is an
    elasticsearch.Elasticsearch or opensearchpy.OpenSearch); return their names.

    A template already there is merged into, not replaced (:func:`playscope.indices.merge_template`):
    shards and replicas an operator changed stay unless ``indices`` sets them, new mapping fields
    are added. Templates shape indices created later; existing indices keep their settings."""
    config = indices or IndicesConfig()
    names = []
    for family in FAMILIES.values():
        name = family.template_name(prefix)
        wanted = template_for(family, prefix, config.for_family(family.name))
        client.indices.put_index_template(name=name, body=merge_template(
            installed_template(client, name), wanted, explicit_settings(config.for_family(family.name))))
        names.append(name)
    return names


def template_for(family: IndexFamily, prefix: str, configured: IndexSettings) -> dict[str, Any]:
    """``family``'s template with the configured shards and replicas (playscope's defaults for
    the keys left unset)."""
    return family.template(
        prefix,
        shards=DEFAULT_SHARDS if configured.shards is None else configured.shards,
        replicas=DEFAULT_REPLICAS if configured.replicas is None else configured.replicas,
    )


def explicit_settings(configured: IndexSettings) -> frozenset[str]:
    """The template settings the configuration sets, which win over what is installed."""
    keys = {"number_of_shards": configured.shards, "number_of_replicas": configured.replicas}
    return frozenset(k for k, v in keys.items() if v is not None)


def installed_template(client: Any, name: str) -> dict[str, Any] | None:
    """The stored body of index template ``name``, or None when there is none."""
    if not client.indices.exists_index_template(name=name):
        return None
    resp = client.indices.get_index_template(name=name)
    found = getattr(resp, "body", resp).get("index_templates") or []
    return dict(found[0]["index_template"]) if found else None


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
