"""``playscope stack``: bring the local stack up (idempotently), report on it, take it down."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from playscope.config import KafkaSecurity, Settings
from playscope.errors import PortInUse, StackError
from playscope.logs import log_event
from playscope.provision import ensure_templates, ensure_topics
from playscope.stack import fetch
from playscope.stack.cluster import KafkaCluster
from playscope.stack.ports import port_owner
from playscope.stack.servers import (
    ElasticsearchServer,
    JavaServer,
    KafkaServer,
    OpenSearchServer,
    SecureKafkaServer,
    stop_all,
)

log = logging.getLogger("playscope.stack")
Progress = Callable[[str], None]


@dataclass
class ServerStatus:
    name: str
    endpoint: str
    pid: int | None
    healthy: bool
    managed: bool  # started by this stack (pid file) rather than found running


def _port(url: str, default: int) -> int:
    parsed = urlparse(url if "://" in url else f"//{url}")
    return parsed.port or default


class StackManager:
    """The servers of one stack home, and what ``up`` last started there.

    Kafka is ``cluster`` (a ``KafkaCluster``): one broker in ``<home>/kafka`` by default, or
    ``brokers`` nodes in ``<home>/kafka-<i>``. ``kafka`` is its first node (the broker, when
    there is one) and ``kafka_nodes`` all of them. ``brokers`` and ``secure`` default to what the
    last ``up`` in this home used (``stack.json``), so ``status`` and ``down`` cover every node.
    """

    def __init__(self, home: Path, settings: Settings, secure: bool | None = None,
                 brokers: int | None = None) -> None:
        self.home = Path(home)
        self.settings = settings
        dist = self.home / "dist"
        first_broker = settings.kafka.bootstrap.split(",")[0]
        state = self._state()
        if brokers is not None and brokers < 1:
            raise StackError(f"--brokers must be at least 1, not {brokers}")
        if secure and brokers is not None and brokers > 1:
            raise StackError(f"--secure runs a single Kafka node; it cannot be combined with --brokers {brokers}")
        if secure is None:  # an explicit --brokers N > 1 asks for the plain cluster
            secure = False if brokers is not None and brokers > 1 else bool(state.get("secure", False))
        if brokers is None:
            brokers = 1 if secure else int(state.get("brokers", 1))
        self.secure = secure
        self.brokers = brokers
        self.kafka: KafkaServer
        if self.secure:  # SASL_SSL + SCRAM-SHA-512 with a generated CA (docs/security.md)
            secure_kafka = SecureKafkaServer(self.home / "kafka-secure", _port(first_broker, 9092), dist_cache=dist,
                                             tls_dir=self.home / "tls")
            self.kafka = secure_kafka
            self.cluster = KafkaCluster([secure_kafka])
            security = KafkaSecurity.model_validate(secure_kafka.client_security())
            self.settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={
                "security": security, "bootstrap": self.kafka.bootstrap})})
        else:
            self.cluster = KafkaCluster.local(self.home, brokers, _port(first_broker, 9092), dist_cache=dist)
            self.kafka = self.cluster.nodes[0]
            if brokers > 1:
                self.settings = settings.model_copy(update={"kafka": self._cluster_kafka_config(settings)})
        self.kafka_nodes: list[KafkaServer] = self.cluster.nodes
        self.elasticsearch = ElasticsearchServer(
            self.home / "elasticsearch", _port(settings.elasticsearch.url, 9200), dist_cache=dist
        )
        self.opensearch = OpenSearchServer(
            self.home / "opensearch", _port(settings.opensearch.url, 9201), dist_cache=dist
        )
        taken = {p: s.name for s in (self.elasticsearch, self.opensearch) for p in s.ports}
        for node in self.kafka_nodes:
            for port in node.ports:
                if port in taken:
                    raise StackError(f"{node.name} would use port {port}, which {taken[port]} uses; "
                                     "set kafka.bootstrap to another first port")

    def _cluster_kafka_config(self, settings: Settings) -> Any:
        """The ``kafka`` section for clients of the local cluster: every node's address, and
        replication 3 / min ISR 2 (fewer with fewer nodes) unless the configuration says otherwise."""
        kafka = settings.kafka
        update: dict[str, Any] = {"bootstrap": self.cluster.bootstrap}
        if "replication_factor" not in kafka.model_fields_set:
            update["replication_factor"] = self.cluster.replication_factor
        if "min_insync_replicas" not in kafka.model_fields_set:
            update["min_insync_replicas"] = self.cluster.min_insync_replicas
        return kafka.model_copy(update=update)

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    def wanted(self, opensearch: bool | None = None) -> list[JavaServer]:
        if opensearch is None:
            opensearch = self._state().get("opensearch", False)
        servers: list[JavaServer] = [*self.kafka_nodes, self.elasticsearch]
        return [*servers, self.opensearch] if opensearch else servers

    def _state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def up(self, opensearch: bool = False, progress: Progress | None = None,
           partitions: int | None = None) -> bool:
        """Fetch, start and health-check the servers, then create topics and templates.

        Returns True if this call started at least one server. A server already answering on
        its port (ours or not) is reused; a port held by something that is not a healthy
        server of that kind is an error naming the port and, when known, the process.
        """
        say = progress or (lambda _msg: None)
        opensearch = opensearch or self._state().get("opensearch", False)
        self._refuse_other_kafka()
        servers = self.wanted(opensearch)
        to_start = []
        for server in servers:
            if server.healthy():
                say(f"{server.name}: already running on :{server.port}")
                continue
            if server.is_running():
                to_start.append(server)  # ours, still starting
                continue
            to_start.append(server)
        for server in to_start:
            if not fetch.is_cached(server.dist_cache, server.product):
                say(f"{server.name}: fetching {fetch.versions()[server.product]} with Maven (once)")
            started = time.monotonic()
            server.fetch()
            log_event(log, "stack.fetched", server=server.product, seconds=round(time.monotonic() - started, 1))
        self.cluster.prepare(say)  # a new cluster's nodes formatted with one id, at once
        for server in to_start:
            if not server.is_running():
                try:
                    server.start()
                except PortInUse:
                    raise
                say(f"{server.name}: starting on :{server.port}")
        for server in to_start:
            waited = server.wait_healthy(timeout_s=240, progress=say)
            say(f"{server.name}: healthy after {waited:.0f} s")
            log_event(log, "stack.healthy", server=server.name, seconds=round(waited, 1))
        self.home.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({"opensearch": opensearch, "secure": self.secure,
                                               "brokers": self.brokers}))
        if isinstance(self.kafka, SecureKafkaServer):
            say(f"kafka: SASL_SSL (SCRAM-SHA-512); client config in {self.write_client_config()}")
        elif self.cluster.size > 1:
            kafka = self.settings.kafka
            say(f"kafka: {self.cluster.size} brokers, bootstrap {self.cluster.bootstrap}, topics with replication "
                f"factor {kafka.replication_factor} and min.insync.replicas {kafka.min_insync_replicas}; "
                f"client config in {self.write_client_config()}")
        self.provision(opensearch, partitions, say)
        return bool(to_start)

    def _refuse_other_kafka(self) -> None:
        """Kafka folders of this home that are running but are not the Kafka asked for (a single
        broker while ``--brokers 3`` is asked, or the reverse) would hold its ports or split the
        data: name them instead of starting half a stack."""
        others = self._other_kafka()
        if others:
            running = ", ".join(f"{k.name} (pid {k.pid()}, {k.home})" for k in others)
            wanted = "the secure broker" if self.secure else (
                f"{self.brokers} brokers" if self.brokers > 1 else "a single broker")
            raise StackError(f"Kafka of this stack is running as {running}, but this `up` asks for {wanted}; "
                             "run `playscope stack down` first")

    def _other_kafka(self) -> list[KafkaServer]:
        """Running Kafka servers of this home (by pid file) that are not among ``kafka_nodes``."""
        mine = {node.home for node in self.kafka_nodes}
        found = []
        if self.home.is_dir():
            for folder in sorted(self.home.iterdir()):
                if re.fullmatch(r"kafka(-secure|-\d+)?", folder.name) and folder.resolve() not in mine:
                    server = KafkaServer(folder, 0)
                    server.name = folder.name
                    if server.pid() is not None:
                        found.append(server)
        return found

    def write_client_config(self) -> Path:
        """The ``kafka:`` section clients of this stack's Kafka use (``playscope --config`` it, or
        copy it): ``<home>/secure/playscope.yaml`` for the secure broker (the password stays in its
        own 0600 file), ``<home>/cluster/playscope.yaml`` for a cluster (every node's address,
        replication factor and min ISR)."""
        import yaml

        if not isinstance(self.kafka, SecureKafkaServer):
            kafka = self.settings.kafka
            path = self.home / "cluster" / "playscope.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump({"kafka": {
                "bootstrap": kafka.bootstrap, "replication_factor": kafka.replication_factor,
                "min_insync_replicas": kafka.min_insync_replicas}}, sort_keys=False))
            return path
        sec = self.kafka.client_security()
        path = self.home / "secure" / "playscope.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        section = {"bootstrap": self.kafka.bootstrap, "security": {
            "protocol": sec["protocol"], "sasl_mechanism": sec["sasl_mechanism"], "username": sec["username"],
            "password_file": str((self.kafka.home / "client.password").resolve()), "ca_file": sec["ca_file"]}}
        path.write_text(yaml.safe_dump({"kafka": section}, sort_keys=False))
        return path

    def provision(self, opensearch: bool, partitions: int | None, say: Progress,
                  elasticsearch: bool = True) -> None:
        """Create topics and index templates on the configured servers (local or not)."""
        from playscope.search import make_client

        created = ensure_topics(self.settings, partitions)
        say(f"kafka: {len(created)} topics created" if created else "kafka: topics present")
        if elasticsearch:
            with make_client(self.settings.elasticsearch, "elasticsearch") as es:
                names = ensure_templates(es, self.settings.index_prefix, indices=self.settings.indices)
            say(f"elasticsearch: {len(names)} index templates installed")
        if opensearch:
            client = make_client(self.settings.opensearch, "opensearch")
            try:
                names = ensure_templates(client, self.settings.index_prefix, indices=self.settings.indices)
            finally:
                client.close()
            say(f"opensearch: {len(names)} index templates installed")

    def status(self) -> list[ServerStatus]:
        out = []
        for server in self.wanted():
            endpoint = str(getattr(server, "url", None) or getattr(server, "bootstrap", ""))
            out.append(ServerStatus(server.name, endpoint, server.pid(), server.healthy(),
                                    server.is_running()))
        return out

    def down(self, progress: Progress | None = None) -> list[str]:
        """Stop the servers this stack started (pid files), gracefully; return their names.

        Every Kafka folder of the home with a live pid file is stopped, all at once (a cluster's
        nodes need each other's quorum to shut down cleanly), even one of another topology."""
        say = progress or (lambda _msg: None)
        stopped = []
        for server in [self.opensearch, self.elasticsearch]:
            if server.is_running():
                say(f"{server.name}: stopping")
                server.stop()
                stopped.append(server.name)
            elif server.healthy():
                self._say_not_ours(server, say)
        kafka = [node for node in self.kafka_nodes if node.is_running()] + self._other_kafka()
        if kafka:
            say(f"{', '.join(k.name for k in kafka)}: stopping")
            stopped += [k.name for k in stop_all(list(kafka))]
        for node in self.kafka_nodes:
            if node not in kafka and node.healthy():
                self._say_not_ours(node, say)
        return stopped

    @staticmethod
    def _say_not_ours(server: JavaServer, say: Progress) -> None:
        owner = port_owner(server.port)
        say(f"{server.name}: running on :{server.port} but not started by this stack"
            + (f" ({owner})" if owner else "") + "; left alone")


def require_healthy(manager: StackManager) -> None:
    bad = [s.name for s in manager.status() if not s.healthy]
    if bad:
        raise StackError(f"not healthy: {', '.join(bad)}")
