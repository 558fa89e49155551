"""The multi-broker stack without servers: ports, node config, cluster id, what the manager
derives from ``--brokers`` and the configuration, and the replication topics are created with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from playscope.config import Settings, load_settings
from playscope.errors import ConfigError, StackError
from playscope.provision import topic_replication
from playscope.stack.cluster import KafkaCluster, node_ports, replication_for
from playscope.stack.manager import StackManager


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_node_ports_derive_from_the_base() -> None:
    assert node_ports(9092, 3) == [(9092, 9093), (9094, 9095), (9096, 9097)]
    assert node_ports(19092, 1) == [(19092, 19093)]
    with pytest.raises(StackError, match="at least one broker, not 0"):
        node_ports(9092, 0)
    with pytest.raises(StackError, match="ports up to 65537"):
        node_ports(65530, 4)


def test_replication_grows_with_the_cluster_up_to_3_and_2() -> None:
    assert [replication_for(n) for n in (1, 2, 3, 5)] == [(1, 1), (2, 1), (3, 2), (3, 2)]


def test_a_three_node_cluster_is_three_combined_nodes_with_one_voter_list(tmp_path: Path) -> None:
    cluster = KafkaCluster.local(tmp_path, 3, 9092)
    assert cluster.bootstrap == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    assert (cluster.replication_factor, cluster.min_insync_replicas) == (3, 2)
    assert [n.name for n in cluster.nodes] == ["kafka-1", "kafka-2", "kafka-3"]
    assert [n.home for n in cluster.nodes] == [(tmp_path / f"kafka-{i}").resolve() for i in (1, 2, 3)]
    assert cluster.node(2) is cluster.nodes[1]
    for node in cluster.nodes:
        props = _props(node._properties())
        assert node.heap == "512m"
        assert props["process.roles"] == "broker,controller"
        assert props["node.id"] == str(node.node_id)
        assert props["controller.quorum.voters"] == "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
        assert props["listeners"] == (f"PLAINTEXT://127.0.0.1:{node.port},"
                                      f"CONTROLLER://127.0.0.1:{node.controller_port}")
        assert props["log.dirs"] == str(node.home / "data")
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["transaction.state.log.replication.factor"] == "3"
        assert props["transaction.state.log.min.isr"] == "2"
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
    with pytest.raises(StackError, match="no Kafka node 4"):
        cluster.node(4)


def test_a_single_broker_keeps_its_folder_and_config(tmp_path: Path) -> None:
    cluster = KafkaCluster.local(tmp_path, 1, 9092)
    (node,) = cluster.nodes
    assert (node.name, node.home, node.port, node.controller_port) == ("kafka", (tmp_path / "kafka").resolve(),
                                                                       9092, 9093)
    props = _props(node._properties())
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["offsets.topic.replication.factor"] == "1"
    assert "default.replication.factor" not in props and "min.insync.replicas" not in props
    assert node.heap == "1g"
    assert cluster.bootstrap == "127.0.0.1:9092"


def test_every_node_gets_one_cluster_id_which_is_kept(tmp_path: Path) -> None:
    cluster = KafkaCluster.local(tmp_path, 3, 9092)
    cid = cluster.cluster_id()
    assert len(cid) == 22
    assert KafkaCluster.local(tmp_path, 3, 9092).cluster_id() == cid  # stored in cluster/cluster.id
    assert (tmp_path / "cluster" / "cluster.id").read_text().strip() == cid
    # A formatted node's id wins over the stored one; two different ones are an error.
    data = cluster.nodes[0].home / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=1\n")
    assert cluster.cluster_id() == "AAAAAAAAAAAAAAAAAAAAAA"
    other = cluster.nodes[1].home / "data"
    other.mkdir(parents=True)
    (other / "meta.properties").write_text("cluster.id=BBBBBBBBBBBBBBBBBBBBBB\n")
    with pytest.raises(StackError, match="different cluster ids"):
        cluster.cluster_id()


def test_a_cluster_node_is_not_formatted_without_the_cluster_id(tmp_path: Path) -> None:
    node = KafkaCluster.local(tmp_path, 3, 9092).nodes[1]
    node.home.mkdir(parents=True)
    with pytest.raises(StackError, match="kafka-2 is a node of a cluster and has no cluster id"):
        node._prepare(tmp_path)


def _settings(tmp_path: Path, **kafka: object) -> Settings:
    return Settings.model_validate({"home": str(tmp_path), "kafka": {"bootstrap": "localhost:19092", **kafka}})


def test_the_manager_derives_the_cluster_from_the_first_bootstrap_port(tmp_path: Path) -> None:
    manager = StackManager(tmp_path, _settings(tmp_path), brokers=3)
    assert [n.port for n in manager.kafka_nodes] == [19092, 19094, 19096]
    assert manager.kafka is manager.kafka_nodes[0] and manager.cluster.nodes == manager.kafka_nodes
    kafka = manager.settings.kafka
    assert kafka.bootstrap == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
    assert (kafka.replication_factor, kafka.min_insync_replicas) == (3, 2)
    assert [s.name for s in manager.wanted(opensearch=False)] == ["kafka-1", "kafka-2", "kafka-3", "elasticsearch"]
    path = manager.write_client_config()
    assert path == tmp_path / "cluster" / "playscope.yaml"
    assert yaml.safe_load(path.read_text()) == {"kafka": {
        "bootstrap": "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096",
        "replication_factor": 3, "min_insync_replicas": 2}}
    assert load_settings(path, environ={}).kafka.min_insync_replicas == 2  # loads as a --config file


def test_replication_set_in_the_configuration_is_kept(tmp_path: Path) -> None:
    manager = StackManager(tmp_path, _settings(tmp_path, replication_factor=2), brokers=3)
    assert (manager.settings.kafka.replication_factor, manager.settings.kafka.min_insync_replicas) == (2, 2)


def test_a_single_broker_stack_is_as_before(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    manager = StackManager(tmp_path, settings)
    assert manager.brokers == 1 and manager.kafka_nodes == [manager.kafka]
    assert manager.kafka.home == (tmp_path / "kafka").resolve() and manager.kafka.name == "kafka"
    assert manager.settings.kafka == settings.kafka


def test_the_broker_count_is_remembered(tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(json.dumps({"opensearch": False, "secure": False, "brokers": 3}))
    manager = StackManager(tmp_path, _settings(tmp_path))
    assert manager.brokers == 3 and len(manager.kafka_nodes) == 3
    assert StackManager(tmp_path, _settings(tmp_path), brokers=1).brokers == 1


def test_bad_broker_counts_and_secure_clusters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="--secure runs a single Kafka node; it cannot be combined with --brokers 3"):
        StackManager(tmp_path, _settings(tmp_path), secure=True, brokers=3)
    with pytest.raises(StackError, match="--brokers must be at least 1, not 0"):
        StackManager(tmp_path, _settings(tmp_path), brokers=0)
    (tmp_path / "stack.json").write_text(json.dumps({"secure": True}))  # last up was --secure
    assert StackManager(tmp_path, _settings(tmp_path), brokers=3).secure is False  # explicit --brokers wins


def test_cluster_ports_colliding_with_the_search_servers_are_named(tmp_path: Path) -> None:
    settings = Settings.model_validate({"home": str(tmp_path), "kafka": {"bootstrap": "localhost:9196"}})
    with pytest.raises(StackError, match="kafka-3 would use port 9200, which elasticsearch uses"):
        StackManager(tmp_path, settings, brokers=3)


def test_topic_replication_is_capped_by_the_live_brokers(tmp_path: Path) -> None:
    cluster = _settings(tmp_path, replication_factor=3, min_insync_replicas=2)
    assert topic_replication(cluster, 3) == (3, 2)
    assert topic_replication(cluster, 1) == (1, 1)  # a cluster's config on one broker still works
    assert topic_replication(cluster, 0) == (3, 2)  # broker count unknown: as configured
    with pytest.raises(ValueError, match=r"5 is larger than kafka\.replication_factor"):  # refused, not capped
        _settings(tmp_path, replication_factor=3, min_insync_replicas=5)
    assert topic_replication(_settings(tmp_path), 3) == (1, 1)


def test_min_insync_replicas_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"kafka\.min_insync_replicas: Input should be greater than or equal to 1"):
        load_settings(environ={"PLAYSCOPE__KAFKA__MIN_INSYNC_REPLICAS": "0"})


def test_cluster_ids_never_look_like_an_option() -> None:
    from playscope.stack.servers import new_cluster_id

    ids = [new_cluster_id() for _ in range(5000)]  # a leading "-" would come up ~78 times
    assert all(len(cid) == 22 and not cid.startswith("-") for cid in ids)
