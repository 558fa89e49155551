"""A local Kafka cluster: N KRaft nodes on loopback, each broker and controller (combined mode).

``playscope stack up --brokers 3`` runs one, so failures of a single broker (``playscope chaos
--brokers 3``) can be tried without leaving the machine. Ports derive from one base port: node i
(from 1) listens for clients on ``base + 2 * (i - 1)`` and for the controller quorum on the port
after it (9092/9093, 9094/9095, 9096/9097 for the default base). Every node's storage is formatted
with one cluster id, kept in ``<root>/cluster/cluster.id``; node i keeps its data in
``<root>/kafka-<i>``. A one-node "cluster" is the plain single broker of ``<root>/kafka``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from playscope.errors import StackError
from playscope.stack.ports import free_port
from playscope.stack.servers import KafkaServer, default_dist_cache, new_cluster_id, stop_all

if TYPE_CHECKING:
    from confluent_kafka.admin import ClusterMetadata

Progress = Callable[[str], None]

MULTI_NODE_HEAP = "512m"


def node_ports(base_port: int, brokers: int) -> list[tuple[int, int]]:
    """(client port, controller port) of each node: ``base + 2 * i`` and the port after it."""
    if brokers < 1:
        raise StackError(f"a Kafka cluster needs at least one broker, not {brokers}")
    ports = [(base_port + 2 * i, base_port + 2 * i + 1) for i in range(brokers)]
    if ports[-1][1] > 65535:
        raise StackError(f"{brokers} brokers from port {base_port} would need ports up to {ports[-1][1]}")
    return ports


def replication_for(brokers: int) -> tuple[int, int]:
    """(replication factor, min ISR) that topics of a cluster of ``brokers`` nodes get: 3 and 2
    from three nodes on (one node may be down and acks=all writes go on), else all nodes and 1."""
    rf = min(max(brokers, 1), 3)
    return rf, max(1, rf - 1)


class KafkaCluster:
    """The Kafka nodes of one stack, and what can be asked of them as a whole.

    ``nodes`` are ordinary ``KafkaServer`` objects: kill, start, wait for, or look up the pid of
    one node through them; ``start``/``wait_healthy``/``stop``/``kill`` here act on all nodes.
    """

    def __init__(self, nodes: Sequence[KafkaServer], state_dir: Path | None = None) -> None:
        if not nodes:
            raise StackError("a Kafka cluster needs at least one node")
        self.nodes = list(nodes)
        self.state_dir = state_dir  # holds cluster.id (multi-node only)

    # -- construction --------------------------------------------------------------------
    @classmethod
    def local(cls, root: Path, brokers: int = 1, base_port: int = 9092,
              dist_cache: Path | None = None) -> KafkaCluster:
        """The cluster of stack home ``root``: one broker in ``root/kafka``, or ``brokers`` nodes
        in ``root/kafka-<i>`` on ports derived from ``base_port``."""
        ports = node_ports(base_port, brokers)
        root = Path(root)
        if brokers == 1:
            return cls([KafkaServer(root / "kafka", ports[0][0], ports[0][1], dist_cache=dist_cache)])
        return cls.on_ports(root, ports, dist_cache)

    @classmethod
    def on_ports(cls, root: Path, ports: Sequence[tuple[int, int]],
                 dist_cache: Path | None = None) -> KafkaCluster:
        """Nodes 1..N in ``root/kafka-<i>`` with the given (client, controller) ports."""
        root = Path(root)
        voters = [(i + 1, controller) for i, (_client, controller) in enumerate(ports)]
        heap = MULTI_NODE_HEAP if len(ports) > 1 else None
        nodes = [KafkaServer(root / f"kafka-{i + 1}", client, controller, dist_cache=dist_cache,
                             node_id=i + 1, voters=voters, heap=heap)
                 for i, (client, controller) in enumerate(ports)]
        return cls(nodes, state_dir=root / "cluster")

    @classmethod
    def on_free_ports(cls, home: Path, n: int = 3, dist_cache: Path | None = None) -> KafkaCluster:
        """A cluster of ``n`` nodes on free ports under ``home`` (tests that kill brokers)."""
        ports = [(free_port(), free_port()) for _ in range(n)]
        return cls.on_ports(home, ports, dist_cache or default_dist_cache().resolve())

    # -- properties ----------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def bootstrap(self) -> str:
        """Every node's address: a client reaches the cluster through any node still up."""
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def replication_factor(self) -> int:
        return replication_for(self.size)[0]

    @property
    def min_insync_replicas(self) -> int:
        return replication_for(self.size)[1]

    def node(self, node_id: int) -> KafkaServer:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise StackError(f"no Kafka node {node_id} in this cluster (nodes {[n.node_id for n in self.nodes]})")

    def client_conf(self) -> dict[str, str]:
        """librdkafka settings that reach the whole cluster."""
        return {**self.nodes[0].client_conf(), "bootstrap.servers": self.bootstrap}

    # -- lifecycle -----------------------------------------------------------------------
    def cluster_id(self) -> str:
        """The one id every node is formatted with: what a formatted node already has, else the
        stored one, else a new one (stored before any node is formatted)."""
        assert self.state_dir is not None
        formatted = {cid for node in self.nodes if (cid := node.formatted_cluster_id())}
        if len(formatted) > 1:
            raise StackError(f"the Kafka nodes under {self.nodes[0].home.parent} were formatted with different "
                             f"cluster ids {sorted(formatted)}; stop them and delete their kafka-<i> folders")
        id_file = self.state_dir / "cluster.id"
        if formatted:
            cid = formatted.pop()
        elif id_file.is_file():
            cid = id_file.read_text().strip()
        else:
            cid = new_cluster_id()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        id_file.write_text(cid + "\n")
        return cid

    def prepare(self, progress: Progress | None = None) -> None:
        """Give every node the cluster's id and format the storage of those not formatted yet,
        all at once (each format is a JVM run of several seconds)."""
        if self.size == 1:
            return
        cid = self.cluster_id()
        for node in self.nodes:
            node.cluster_id = cid
        fresh = [node for node in self.nodes if not node.formatted and not node.is_running()]
        if not fresh:
            return
        if progress:
            progress(f"kafka: formatting the storage of {', '.join(n.name for n in fresh)} (cluster {cid})")
        with ThreadPoolExecutor(len(fresh)) as pool:
            for future in [pool.submit(node.prepare) for node in fresh]:
                future.result()

    def start(self, progress: Progress | None = None) -> None:
        """Start every node that is not running (no wait: a node becomes healthy only once a
        quorum of controllers is up, so all must be started before any is waited for)."""
        self.prepare(progress)
        for node in self.nodes:
            if not node.is_running():
                node.start()
                if progress:
                    progress(f"{node.name}: starting on :{node.port}")

    def wait_healthy(self, timeout_s: float = 180, progress: Progress | None = None) -> float:
        """Block until every node is healthy; return the seconds waited."""
        started = time.monotonic()
        for node in self.nodes:
            node.wait_healthy(max(1.0, timeout_s - (time.monotonic() - started)), progress)
        return time.monotonic() - started

    def healthy(self) -> bool:
        return all(node.healthy() for node in self.nodes)

    def is_running(self) -> bool:
        return any(node.is_running() for node in self.nodes)

    def stop(self, grace_s: float = 30) -> bool:
        """Stop all nodes at once, gracefully; True if any was running."""
        return bool(stop_all(list(self.nodes), grace_s))

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    # -- metadata ------------------------------------------------------------------------
    def _metadata(self, topic: str | None = None, timeout_s: float = 10) -> ClusterMetadata:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({**self.client_conf(), "socket.timeout.ms": 3000, "log_level": 0})
        try:
            return admin.list_topics(topic, timeout=timeout_s)
        except KafkaException as exc:
            raise StackError(f"Kafka cluster at {self.bootstrap} did not answer metadata: {exc}") from None

    def broker_ids(self, timeout_s: float = 10) -> set[int]:
        """The live (registered, not fenced) brokers, as the cluster's metadata says."""
        return set(self._metadata(timeout_s=timeout_s).brokers)

    def wait_brokers(self, count: int | None = None, timeout_s: float = 60) -> float:
        """Block until metadata shows ``count`` (default: all) live brokers; return the seconds."""
        want = self.size if count is None else count
        started = time.monotonic()
        seen: set[int] = set()
        while time.monotonic() - started < timeout_s:
            try:
                seen = self.broker_ids(timeout_s=5)
            except StackError:
                seen = set()
            if len(seen) == want:
                return time.monotonic() - started
            time.sleep(0.5)
        raise StackError(f"Kafka cluster at {self.bootstrap}: {len(seen)} live brokers {sorted(seen)} after "
                         f"{timeout_s:.0f} s, expected {want}")

    def leader_of(self, topic: str, partition: int = 0, timeout_s: float = 10) -> KafkaServer:
        """The node that leads ``topic``'s ``partition`` now (from the cluster's metadata)."""
        meta = self._metadata(topic, timeout_s)
        info = meta.topics.get(topic)
        if info is None or info.error is not None:
            why = info.error if info is not None else "not in the metadata"
            raise StackError(f"topic {topic} on {self.bootstrap}: {why}")
        part = info.partitions.get(partition)
        if part is None:
            raise StackError(f"topic {topic} has no partition {partition} (it has {len(info.partitions)})")
        if part.leader < 0:
            raise StackError(f"topic {topic} partition {partition} has no leader right now")
        return self.node(part.leader)
