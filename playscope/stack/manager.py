"""``playscope stack``: bring the local stack up (idempotently), report on it, take it down."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from playscope.config import KafkaSecurity, Settings
from playscope.errors import PortInUse, StackError
from playscope.logs import log_event
from playscope.stack import fetch
from playscope.stack.ports import port_owner
from playscope.stack.provision import ensure_templates, ensure_topics
from playscope.stack.servers import (
    ElasticsearchServer,
    JavaServer,
    KafkaServer,
    OpenSearchServer,
    SecureKafkaServer,
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
    """The servers of one stack home, and what ``up`` last started there."""

    def __init__(self, home: Path, settings: Settings, secure: bool | None = None) -> None:
        self.home = Path(home)
        self.settings = settings
        dist = self.home / "dist"
        first_broker = settings.kafka.bootstrap.split(",")[0]
        self.secure = bool(self._state().get("secure", False)) if secure is None else secure
        self.kafka: KafkaServer
        if self.secure:  # SASL_SSL + SCRAM-SHA-512 with a generated CA (docs/security.md)
            secure_kafka = SecureKafkaServer(self.home / "kafka-secure", _port(first_broker, 9092), dist_cache=dist,
                                             tls_dir=self.home / "tls")
            self.kafka = secure_kafka
            security = KafkaSecurity.model_validate(secure_kafka.client_security())
            self.settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={
                "security": security, "bootstrap": self.kafka.bootstrap})})
        else:
            self.kafka = KafkaServer(self.home / "kafka", _port(first_broker, 9092), dist_cache=dist)
        self.elasticsearch = ElasticsearchServer(
            self.home / "elasticsearch", _port(settings.elasticsearch.url, 9200), dist_cache=dist
        )
        self.opensearch = OpenSearchServer(
            self.home / "opensearch", _port(settings.opensearch.url, 9201), dist_cache=dist
        )

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    def wanted(self, opensearch: bool | None = None) -> list[JavaServer]:
        if opensearch is None:
            opensearch = self._state().get("opensearch", False)
        servers: list[JavaServer] = [self.kafka, self.elasticsearch]
        return [*servers, self.opensearch] if opensearch else servers

    def _state(self) -> dict[str, bool]:
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
            if not fetch.is_cached(server.dist_cache, server.name):
                say(f"{server.name}: fetching {fetch.versions()[server.name]} with Maven (once)")
            started = time.monotonic()
            server.fetch()
            log_event(log, "stack.fetched", server=server.name, seconds=round(time.monotonic() - started, 1))
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
        self.state_file.write_text(json.dumps({"opensearch": opensearch, "secure": self.secure}))
        if isinstance(self.kafka, SecureKafkaServer):
            say(f"kafka: SASL_SSL (SCRAM-SHA-512); client config in {self.write_client_config()}")
        self.provision(opensearch, partitions, say)
        return bool(to_start)

    def write_client_config(self) -> Path:
        """``<home>/secure/playscope.yaml``: the ``kafka:`` section clients of the secure broker use
        (``playscope --config`` it, or copy it); the password stays in its own 0600 file."""
        import yaml

        assert isinstance(self.kafka, SecureKafkaServer)
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
                names = ensure_templates(es, self.settings.index_prefix)
            say(f"elasticsearch: {len(names)} index templates installed")
        if opensearch:
            client = make_client(self.settings.opensearch, "opensearch")
            try:
                names = ensure_templates(client, self.settings.index_prefix)
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
        """Stop the servers this stack started (pid files), gracefully; return their names."""
        say = progress or (lambda _msg: None)
        stopped = []
        for server in reversed([self.kafka, self.elasticsearch, self.opensearch]):
            if server.is_running():
                say(f"{server.name}: stopping")
                server.stop()
                stopped.append(server.name)
            elif server.healthy():
                owner = port_owner(server.port)
                say(f"{server.name}: running on :{server.port} but not started by this stack"
                    + (f" ({owner})" if owner else "") + "; left alone")
        return stopped


def require_healthy(manager: StackManager) -> None:
    bad = [s.name for s in manager.status() if not s.healthy]
    if bad:
        raise StackError(f"not healthy: {', '.join(bad)}")
