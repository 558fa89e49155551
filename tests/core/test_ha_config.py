"""High availability as configuration: ``kafka.min_insync_replicas`` checked against the
replication factor and capped (with a log line) on fewer brokers, and ``indices:`` shards and
replicas per index family."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from playscope import topics
from playscope.config import IndexSettings, IndicesConfig, load_settings
from playscope.errors import ConfigError
from playscope.indices import FAMILIES
from playscope.kafka import admin_config
from playscope.provision import delete_prefixed, ensure_topics, explicit_settings, template_for


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "playscope.yaml"
    path.write_text(text)
    return path


def test_min_insync_replicas_above_the_replication_factor_is_an_error_naming_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "kafka: {replication_factor: 2, min_insync_replicas: 3}\n")
    with pytest.raises(ConfigError, match=r"playscope.yaml: kafka\.min_insync_replicas: 3 is larger than "
                                          r"kafka\.replication_factor \(2\)"):
        load_settings(path, environ={})
    with pytest.raises(ConfigError, match=r"kafka\.min_insync_replicas: 2 is larger than kafka\.replication_factor "
                                          r"\(1\).*\(from PLAYSCOPE__KAFKA__MIN_INSYNC_REPLICAS\)"):
        load_settings(environ={"PLAYSCOPE__KAFKA__MIN_INSYNC_REPLICAS": "2"})
    path = _write(tmp_path, "kafka: {replication_factor: 3, min_insync_replicas: 2}\n")
    kafka = load_settings(path, environ={}).kafka
    assert (kafka.replication_factor, kafka.min_insync_replicas) == (3, 2)


def test_indices_are_configured_per_family_or_for_all(tmp_path: Path) -> None:
    path = _write(tmp_path, "indices: {all: {replicas: 1}, playback: {shards: 3}, logs: {shards: 2, replicas: 2}}\n")
    indices = load_settings(path, environ={"PLAYSCOPE__INDICES__ALERTS__REPLICAS": "0"}).indices
    assert indices.for_family("playback") == IndexSettings(shards=3, replicas=1)
    assert indices.for_family("logs") == IndexSettings(shards=2, replicas=2)
    assert indices.for_family("alerts") == IndexSettings(shards=None, replicas=0)
    assert indices.for_family("qoe") == IndexSettings(shards=None, replicas=1)
    playback = template_for(FAMILIES["playback"], "p-", indices.for_family("playback"))["template"]["settings"]
    assert (playback["number_of_shards"], playback["number_of_replicas"]) == (3, 1)
    assert explicit_settings(indices.for_family("qoe")) == {"number_of_replicas"}


def test_unset_indices_give_todays_templates_and_set_nothing_explicitly() -> None:
    indices = load_settings(environ={}).indices
    for family in FAMILIES.values():
        assert template_for(family, "", indices.for_family(family.name)) == family.template()
        assert explicit_settings(indices.for_family(family.name)) == frozenset()
    assert family.template()["template"]["settings"]["number_of_replicas"] == 0


def test_every_family_has_an_indices_key() -> None:
    assert set(IndicesConfig.model_fields) == {"all", *FAMILIES}


def test_bad_indices_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"indices\.events: unknown key"):
        load_settings(_write(tmp_path, "indices: {events: {replicas: 1}}\n"), environ={})
    with pytest.raises(ConfigError, match=r"indices\.logs\.replicas: Input should be greater than or equal to 0"):
        load_settings(_write(tmp_path, "indices: {logs: {replicas: -1}}\n"), environ={})
    with pytest.raises(ConfigError, match=r"indices\.all\.shards: Input should be greater than or equal to 1"):
        load_settings(_write(tmp_path, "indices: {all: {shards: 0}}\n"), environ={})


def test_a_cluster_config_on_one_broker_is_capped_and_says_so(
        stack: object, caplog: pytest.LogCaptureFixture) -> None:
    """On the shared single broker, replication 3 / min ISR 2 become 1 / 1 with a warning."""
    base = load_settings(environ={"PLAYSCOPE__KAFKA__REPLICATION_FACTOR": "3",
                                  "PLAYSCOPE__KAFKA__MIN_INSYNC_REPLICAS": "2"})
    settings = base.model_copy(update={"topic_prefix": f"t{uuid.uuid4().hex[:8]}-ha."})
    admin = AdminClient(admin_config(settings.kafka))
    if len(admin.list_topics(timeout=10).brokers) != 1:
        pytest.skip("the shared stack has more than one broker")
    try:
        with caplog.at_level(logging.INFO, logger="playscope.stack"):
            assert len(ensure_topics(settings, partitions=1)) == len(topics.TOPICS)
        capped = [r for r in caplog.records if r.getMessage() == "topics.replication_capped"]
        assert len(capped) == 1 and capped[0].levelno == logging.WARNING
        fields = capped[0].__dict__
        assert (fields["configured_replication_factor"], fields["replication_factor"]) == (3, 1)
        assert (fields["configured_min_insync_replicas"], fields["min_insync_replicas"]) == (2, 1)
        name = settings.topic(topics.PLAYBACK_EVENTS)
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)
        configs = admin.describe_configs([resource])[resource].result(timeout=10)
        assert configs["min.insync.replicas"].value == "1"
        assert len(admin.list_topics(name, timeout=10).topics[name].partitions[0].replicas) == 1
    finally:
        delete_prefixed(settings)
