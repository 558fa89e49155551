"""A real three-node KRaft cluster on free ports in a private home: health, replication, a
leader killed under acks=all writes, and ``stack down`` over all nodes.

The tests share one cluster (module fixture) and run in file order: the failover test leaves
the cluster whole again, the ``down`` test is last. Runs in about a minute on two cores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from playscope import topics
from playscope.config import KafkaConfig, Settings
from playscope.kafka import admin_config, producer_config
from playscope.provision import ensure_topics
from playscope.stack.cluster import KafkaCluster
from playscope.stack.manager import StackManager
from playscope.stack.ports import free_port, free_port_range
from playscope.stack.servers import default_dist_cache, tcp_open

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cluster")
    (home / "dist").symlink_to(default_dist_cache().resolve())
    return home


@pytest.fixture(scope="module")
def stack_settings(home: Path) -> Settings:
    """Settings whose first bootstrap port is the base of six consecutive free ports, as
    ``stack up --brokers 3`` derives the nodes' ports from it; search servers on free ports."""
    base = free_port_range(6)
    return Settings.model_validate({
        "home": str(home), "kafka": {"bootstrap": f"127.0.0.1:{base}"},
        "elasticsearch": {"url": f"http://127.0.0.1:{free_port()}"},
        "opensearch": {"url": f"http://127.0.0.1:{free_port()}"},
    })


@pytest.fixture(scope="module")
def cluster(home: Path, stack_settings: Settings) -> Iterator[KafkaCluster]:
    """The Kafka of ``StackManager(home, settings, brokers=3)``, started (not its search servers)."""
    manager = StackManager(home, stack_settings, brokers=3)
    started = time.monotonic()
    manager.cluster.start()
    manager.cluster.wait_healthy(timeout_s=180)
    print(f"3-node cluster healthy after {time.monotonic() - started:.1f} s")
    yield manager.cluster
    manager.cluster.stop()


def test_three_nodes_healthy_in_one_cluster(cluster: KafkaCluster, stack_settings: Settings) -> None:
    base = int(stack_settings.kafka.bootstrap.rsplit(":", 1)[1])
    assert [n.port for n in cluster.nodes] == [base, base + 2, base + 4]
    assert [n.controller_port for n in cluster.nodes] == [base + 1, base + 3, base + 5]
    assert all(node.healthy() for node in cluster.nodes)
    assert cluster.broker_ids() == {1, 2, 3}
    ids = {node.formatted_cluster_id() for node in cluster.nodes}
    assert len(ids) == 1 and None not in ids
    assert (cluster.state_dir / "cluster.id").read_text().strip() in ids  # type: ignore[operator]
    assert len({node.pid() for node in cluster.nodes}) == 3


def _cluster_settings(home: Path, stack_settings: Settings, tag: str) -> Settings:
    manager = StackManager(home, stack_settings, brokers=3)
    return manager.settings.model_copy(update={"topic_prefix": f"{tag}."})


def test_provisioned_topics_have_rf_3_and_min_isr_2(cluster: KafkaCluster, home: Path,
                                                    stack_settings: Settings) -> None:
    settings = _cluster_settings(home, stack_settings, "rf")
    assert settings.kafka.bootstrap == cluster.bootstrap
    assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (3, 2)
    created = ensure_topics(settings, partitions=3)
    assert len(created) == len(topics.TOPICS)
    admin = AdminClient(admin_config(settings.kafka))
    name = settings.topic(topics.PLAYBACK_EVENTS)
    meta = admin.list_topics(name, timeout=10)
    assert {p: len(info.replicas) for p, info in meta.topics[name].partitions.items()} == {0: 3, 1: 3, 2: 3}
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["min.insync.replicas"].value == "2"


def test_acks_all_writes_go_on_when_the_leader_is_killed(cluster: KafkaCluster, home: Path,
                                                         stack_settings: Settings) -> None:
    settings = _cluster_settings(home, stack_settings, "failover")
    ensure_topics(settings, partitions=3)
    topic = settings.topic(topics.PLAYBACK_EVENTS)
    producer = Producer(producer_config(KafkaConfig(bootstrap=cluster.bootstrap), **{"linger.ms": 2, "log_level": 0}))
    acked: list[tuple[float, float]] = []  # (produced at, acknowledged at) of each record
    errors: list[KafkaError] = []
    produced = 0

    def produce_until(condition: Callable[[], bool], timeout_s: float) -> None:
        nonlocal produced
        deadline = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < deadline:
            def on_delivery(err: KafkaError | None, _msg: Message, at: float = time.monotonic()) -> None:
                if err is not None:
                    errors.append(err)
                else:
                    acked.append((at, time.monotonic()))

            producer.produce(topic, b"x" * 100, key=str(produced).encode(), partition=0, on_delivery=on_delivery)
            produced += 1
            producer.poll(0.01)

    def acked_after_kill() -> list[tuple[float, float]]:
        return [(sent, ack) for sent, ack in acked if sent > killed_at]

    killed_at = float("inf")
    produce_until(lambda: len(acked) >= 200, 60)
    leader = cluster.leader_of(topic, 0)
    killed_at = time.monotonic()
    leader.kill()
    assert leader.pid() is None and not tcp_open("127.0.0.1", leader.port)
    produce_until(lambda: len(acked_after_kill()) >= 300, 90)
    assert producer.flush(60) == 0
    after = acked_after_kill()
    print(f"leader kafka-{leader.node_id} killed; writes produced after it waited up to "
          f"{max(ack - sent for sent, ack in after):.1f} s; {len(after)} of them acknowledged, {produced} in all")
    assert errors == []
    assert len(acked) == produced
    assert len(after) >= 300
    new_leader = cluster.leader_of(topic, 0)
    assert new_leader.node_id != leader.node_id
    # Every acknowledged record is in the log, once (idempotent producer, acks=all, min ISR 2).
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "watermarks", "log_level": 0})
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.close()
    assert high - low == produced

    restarted = time.monotonic()
    leader.start()
    leader.wait_healthy(timeout_s=120)
    cluster.wait_brokers(3, timeout_s=60)
    print(f"kafka-{leader.node_id} back after {time.monotonic() - restarted:.1f} s")
    assert cluster.broker_ids() == {1, 2, 3}


def test_down_stops_every_node(cluster: KafkaCluster, home: Path, stack_settings: Settings) -> None:
    pids = [node.pid() for node in cluster.nodes]
    assert None not in pids
    manager = StackManager(home, stack_settings, brokers=3)
    assert [n.home for n in manager.kafka_nodes] == [n.home for n in cluster.nodes]
    assert all(s.healthy for s in manager.status() if s.name.startswith("kafka"))
    stopped = manager.down()
    assert stopped == ["kafka-1", "kafka-2", "kafka-3"]
    assert all(node.pid() is None for node in cluster.nodes)
    assert not any(tcp_open("127.0.0.1", port) for node in cluster.nodes for port in node.ports)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()
