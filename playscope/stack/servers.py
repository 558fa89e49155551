"""The three servers of the local stack, each a small class over one Java process.

A server owns a folder (config, data, logs, pid file) and knows how to start itself, tell
whether it is healthy, and stop gracefully (SIGTERM, then SIGKILL after a grace period). Only
processes recorded in its pid file (and the process group they were started in) are ever
signalled, so ``down`` never touches a server someone else started on the same port.

The pid file holds the server JVM itself, not the launcher: Elasticsearch's launcher is a small
CLI JVM that spawns the server JVM as its child, so the pid Popen returns is rewritten once the
server JVM shows up in the process group (see ``JavaServer.main_class``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from playscope.errors import PortInUse, StackError
from playscope.stack import fetch, plugins
from playscope.stack.jdk import find_jdk
from playscope.stack.ports import free_port, port_owner, port_taken

Progress = Callable[[str], None]


class JavaServer(ABC):
    """A server process of the stack. Subclasses say how to prepare, launch and probe it."""

    product: str = "server"  # the distribution fetched and the JDK looked for
    min_java: int = 17
    heap: str = "1g"
    # The Java main class of the server JVM when the launcher is not that JVM itself (None: it is).
    main_class: str | None = None

    def __init__(self, home: Path, port: int, dist_cache: Path | None = None) -> None:
        self.home = Path(home).resolve()
        self.port = port
        self.dist_cache = (dist_cache or self.home.parent / "dist").resolve()
        self.name = self.product  # what messages and the status table call it ("kafka-2" in a cluster)

    # -- paths -----------------------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.home / "server.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port,)

    # -- subclass hooks --------------------------------------------------------------------
    @abstractmethod
    def _command(self, dist: Path, java_home: Path) -> tuple[list[str], dict[str, str]]:
        """The command line and extra environment that start the server."""

    @abstractmethod
    def healthy(self) -> bool:
        """True when the server answers as a working single node."""

    def _prepare(self, dist: Path) -> None:  # noqa: B027 - optional hook
        """Write config and initialise storage before the first start."""

    # -- lifecycle -------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The pid of our server process if it is alive, else None (a stale pid file is removed).

        The pid file holds the pid and the process start time, so a pid reused by an unrelated
        process after a crash is never mistaken for ours. While it still names the launcher, the
        server JVM is looked for in the launcher's process group and, once found, written in."""
        try:
            pid_text, _, started = self.pid_file.read_text().strip().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        if not _alive(pid) or (started and _start_time(pid) != started):
            # The launcher may be gone while the server JVM it spawned still runs in its group.
            server = self._find_server_jvm(pid) if self.main_class else None
            if server is None:
                self.pid_file.unlink(missing_ok=True)
                return None
            pid = server
            self._write_pid(pid)
        elif self.main_class and self.main_class not in _cmdline(pid):
            server = self._find_server_jvm(pid)
            if server is not None:
                pid = server
                self._write_pid(pid)
        return pid

    def _find_server_jvm(self, launcher: int) -> int | None:
        """The live process of the launcher's group (it leads a session of its own) whose
        command line runs ``main_class``."""
        assert self.main_class
        for pid in _group_members(launcher):
            if self.main_class in _cmdline(pid):
                return pid
        return None

    def _write_pid(self, pid: int) -> None:
        self.pid_file.write_text(f"{pid} {_start_time(pid)}")

    def is_running(self) -> bool:
        return self.pid() is not None

    def fetch(self) -> Path:
        return fetch.ensure_distribution(self.dist_cache, self.product)

    def prepare(self) -> Path:
        """Fetch the distribution, write the config and initialise storage (what ``start`` does
        before launching); return the distribution's folder."""
        dist = self.fetch()
        self.home.mkdir(parents=True, exist_ok=True)
        self._prepare(dist)
        return dist

    def start(self) -> None:
        """Start the process in the background (no wait); a no-op if ours is already running."""
        if self.is_running():
            return
        for port in self.ports:
            if port_taken(port):
                owner = port_owner(port)
                who = f" by {owner}" if owner else ""
                raise PortInUse(f"{self.name}: port {port} is already in use{who}")
        dist = self.prepare()
        jdk = find_jdk(self.min_java, self.product)
        cmd, env = self._command(dist, jdk.home)
        with open(self.log_file, "ab") as log:
            log.write(f"\n==== starting {self.name} with Java {jdk.major} at {time.ctime()}\n".encode())
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                env={**os.environ, **env, "JAVA_HOME": str(jdk.home)},
                start_new_session=True,  # survives the CLI; not hit by the terminal's Ctrl-C
            )
        self._write_pid(proc.pid)

    def wait_healthy(self, timeout_s: float = 180, progress: Progress | None = None) -> float:
        """Block until healthy; return the seconds waited. On early exit or timeout, raise
        StackError with the tail of the server's log."""
        started = time.monotonic()
        while True:
            waited = time.monotonic() - started
            if not self.is_running():
                raise StackError(f"{self.name} exited during start-up. Last lines of {self.log_file}:\n"
                                 + self.log_tail())
            if self.healthy():
                return waited
            if waited > timeout_s:
                raise StackError(f"{self.name} not healthy after {timeout_s:.0f} s. "
                                 f"Last lines of {self.log_file}:\n" + self.log_tail())
            if progress:
                progress(f"{self.name}: waiting for health ({waited:.0f} s)")
            time.sleep(0.5)

    def stop(self, grace_s: float = 30) -> bool:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL. Returns True if something was stopped."""
        return bool(stop_all([self], grace_s))

    def kill(self) -> None:
        """SIGKILL at once, as a crash would (for failure tests): the server JVM and everything
        else of its process group (the launcher), and wait until they are gone."""
        pid = self.pid()
        if pid is not None:
            target = _Target(pid)
            target.signal(signal.SIGKILL)
            target.wait_gone(10)
            self.pid_file.unlink(missing_ok=True)

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.rstrip().splitlines()[-lines:])


def stop_all(servers: list[JavaServer], grace_s: float = 30) -> list[JavaServer]:
    """Stop several servers at once: SIGTERM to all, wait up to ``grace_s`` for all, then SIGKILL
    what is left. Returns the servers that were running.

    At once, because the nodes of a Kafka cluster stopped one after another would leave the last
    ones without a controller quorum for their controlled shutdown."""
    running = [(server, pid) for server in servers if (pid := server.pid()) is not None]
    targets = [(server, _Target(pid)) for server, pid in running]
    for _, target in targets:
        target.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(t.alive() for _, t in targets):
        time.sleep(0.2)
    for _, target in targets:
        if target.alive():
            target.signal(signal.SIGKILL)
            target.wait_gone(10)
    for server, _ in targets:
        server.pid_file.unlink(missing_ok=True)
    return [server for server, _ in targets]


class _Target:
    """A server process and the process group it runs in (the one ``start`` made for the
    launcher). Signals go to the whole group, so the launcher and the server JVM both get them;
    never to our own group."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            pgid: int | None = os.getpgid(pid)
        except ProcessLookupError:
            pgid = None
        self.pgid = None if pgid == os.getpgrp() else pgid

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.pgid is not None:
                os.killpg(self.pgid, sig)
            else:
                os.kill(self.pid, sig)

    def alive(self) -> bool:
        return _alive(self.pid) or (self.pgid is not None and bool(_group_members(self.pgid)))

    def wait_gone(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.alive():
            time.sleep(0.1)


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and not (fields[0] == "Z" and _exited(int(entry))):
            members.append(int(entry))
    return members


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    if _exited(pid):  # a zombie child of ours counts as gone (and is reaped)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def _exited(pid: int) -> bool:
    """Gone, or a zombie whose threads have all exited. A killed JVM's main thread is a zombie
    while its other threads still tear down and its sockets are still open, so a zombie with
    threads left is not gone yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    if state != "Z":
        return False
    try:
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except OSError:
        return True


def _start_time(pid: int) -> str:
    """Start time of ``pid`` in clock ticks since boot ('' if unknown)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


class KafkaServer(JavaServer):
    """Apache Kafka in KRaft mode: a node that is both broker and controller (combined mode).

    Alone by default; with ``voters`` (``(node_id, controller_port)`` of every node, itself
    included) and a shared ``cluster_id`` it is one node of a cluster (see
    ``playscope.stack.cluster.KafkaCluster``), and the internal topics are replicated.
    """

    product = "kafka"
    min_java = 17
    heap = "1g"

    def __init__(self, home: Path, port: int = 9092, controller_port: int | None = None,
                 dist_cache: Path | None = None, *, node_id: int = 1,
                 voters: Sequence[tuple[int, int]] | None = None, cluster_id: str | None = None,
                 heap: str | None = None) -> None:
        super().__init__(home, port, dist_cache)
        self.controller_port = controller_port or port + 1
        self.node_id = node_id
        self.voters: list[tuple[int, int]] = list(voters) if voters else [(node_id, self.controller_port)]
        if (node_id, self.controller_port) not in self.voters:
            raise StackError(f"kafka node {node_id} (controller port {self.controller_port}) is not among "
                             f"the voters {self.voters}")
        self.cluster_id = cluster_id  # None: a fresh one when the storage is formatted
        if heap:
            self.heap = heap
        if self.clustered:
            self.name = f"kafka-{node_id}"

    @classmethod
    def on_free_ports(cls, home: Path, dist_cache: Path | None = None) -> KafkaServer:
        """A broker on free ports (tests that stop or kill a broker of their own)."""
        return cls(home, free_port(), free_port(), dist_cache=dist_cache or default_dist_cache())

    @property
    def clustered(self) -> bool:
        return len(self.voters) > 1

    @property
    def internal_replication(self) -> tuple[int, int]:
        """(replication factor, min ISR) of the internal topics (offsets, transactions, share
        state): 3 and 2 from three nodes on, so one node may be down without stopping writes."""
        rf = min(len(self.voters), 3)
        return rf, max(1, rf - 1)

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, self.controller_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_conf(self) -> dict[str, str]:
        """librdkafka settings to reach this node (security included)."""
        return {"bootstrap.servers": self.bootstrap}

    def _properties(self) -> str:
        rf, min_isr = self.internal_replication
        voters = ",".join(f"{node}@127.0.0.1:{port}" for node, port in self.voters)
        lines = [
            "process.roles=broker,controller",
            f"node.id={self.node_id}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={self.home.resolve() / 'data'}",
            "num.partitions=6",
            f"offsets.topic.replication.factor={rf}",
            "offsets.topic.num.partitions=10",
            f"transaction.state.log.replication.factor={rf}",
            f"transaction.state.log.min.isr={min_isr}",
            f"share.coordinator.state.topic.replication.factor={rf}",
            f"share.coordinator.state.topic.min.isr={min_isr}",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.retention.check.interval.ms=60000",
        ]
        if self.clustered:  # topics made without explicit settings (auto-created, internal) are replicated too
            lines += [f"default.replication.factor={rf}", f"min.insync.replicas={min_isr}"]
        return "\n".join([*lines, ""])

    def _prepare(self, dist: Path) -> None:
        props = self.home / "server.properties"
        props.write_text(self._properties())
        (self.home / "log4j2.yaml").write_text(_KAFKA_LOG4J)
        if self.formatted:
            return
        if self.clustered and not self.cluster_id:
            raise StackError(f"{self.name} is a node of a cluster and has no cluster id to format its storage "
                             "with; start it through KafkaCluster.start() the first time")
        jdk = find_jdk(self.min_java, self.product)
        cmd = [str(jdk.java), *_TOOL_JVM_FLAGS, "-cp", f"{dist}/*", "kafka.tools.StorageTool", "format",
               "-t", self.cluster_id or new_cluster_id(), "-c", str(props), "--ignore-formatted"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise StackError(f"{self.name}: formatting storage failed:\n{proc.stdout}{proc.stderr}")

    @property
    def formatted(self) -> bool:
        return (self.home / "data" / "meta.properties").is_file()

    def formatted_cluster_id(self) -> str | None:
        """The cluster id this node's storage was formatted with (None if not formatted yet)."""
        try:
            text = (self.home / "data" / "meta.properties").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
        return None

    def _command(self, dist: Path, java_home: Path) -> tuple[list[str], dict[str, str]]:
        cmd = [
            str(java_home / "bin" / "java"),
            f"-Xms{self.heap}", f"-Xmx{self.heap}",
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home.resolve() / 'log4j2.yaml'}",
            f"-Dplayscope.home={self.home.resolve()}",
            "-cp", f"{dist}/*",
            "kafka.Kafka", str(self.home.resolve() / "server.properties"),
        ]
        return cmd, {}

    def healthy(self) -> bool:
        """A broker answers metadata on this node's port. For a cluster node the metadata must
        also be this cluster's (its id) and list this node, at this port, as live (registered and
        not fenced), so a node that has not joined, or another broker on the port, does not count.
        (Which node answers is librdkafka's choice once it knows the others, so the metadata is
        asked about this node rather than trusted to come from it.)"""
        from confluent_kafka.admin import AdminClient

        if not tcp_open("127.0.0.1", self.port, 0.5):  # nothing listens: say so at once, not after 2 s
            return False
        try:
            admin = AdminClient({**self.client_conf(), "socket.timeout.ms": 2000, "log_level": 0})
            meta = admin.list_topics(timeout=2)
        except Exception:
            return False
        if self.clustered:
            cluster_id = self.cluster_id or self.formatted_cluster_id()
            me = meta.brokers.get(self.node_id)
            return cluster_id is not None and meta.cluster_id == cluster_id and me is not None and me.port == self.port
        return bool(meta.brokers)


# The storage tool runs for a few seconds once per node: a JIT and GC for short runs (about a third
# less CPU than the defaults, which matters when three nodes are formatted on two cores).
_TOOL_JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto")


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, base64url without padding (22 characters).

    Never one that starts with ``-``: the storage tool would read it as an option (``-t -x…``)
    and refuse to format, about one start in 64."""
    import base64

    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


_KAFKA_LOG4J = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.controller
        level: WARN
      - name: state.change.logger
        level: WARN
      - name: org.apache.kafka.storage
        level: WARN
"""


@dataclass(frozen=True)
class SearchMembership:
    """A search node's place in a cluster of several nodes on loopback (tests and recipes that
    lose a node; the local stack runs single nodes).

    ``seed_transport_ports``: the transport ports of the cluster-manager-eligible nodes, where a
    starting node looks for the cluster. ``initial_managers``: the names of the nodes that vote in
    the cluster's very first election, given to those nodes (empty: not written; a restart of a
    formed cluster ignores it). ``roles``: ``node.roles``, None for the product's defaults."""

    node_name: str
    cluster_name: str
    seed_transport_ports: tuple[int, ...]
    initial_managers: tuple[str, ...] = ()
    roles: tuple[str, ...] | None = None


class SearchServer(JavaServer):
    """Elasticsearch or OpenSearch from its integ-test-zip: loopback, no security; a single node
    unless given a ``membership`` in a cluster."""

    env_prefix = "ES"
    config_file = "elasticsearch.yml"
    launcher = "elasticsearch"
    initial_managers_key = "cluster.initial_master_nodes"

    def __init__(self, home: Path, port: int, transport_port: int | None = None,
                 dist_cache: Path | None = None, *, membership: SearchMembership | None = None,
                 heap: str | None = None) -> None:
        super().__init__(home, port, dist_cache)
        self.transport_port = transport_port or port + 100
        self.membership = membership
        if heap:
            self.heap = heap
        if membership:
            self.name = f"{self.product}-{membership.node_name}"

    @classmethod
    def on_free_ports(cls, home: Path, dist_cache: Path | None = None) -> SearchServer:
        return cls(home, free_port(), free_port(), dist_cache=dist_cache or default_dist_cache())

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, self.transport_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def conf_dir(self) -> Path:
        return self.home / "config"

    def _settings(self) -> list[str]:
        member = self.membership
        return [
            f"cluster.name: {member.cluster_name if member else f'playscope-{self.product}'}",
            f"node.name: {member.node_name if member else 'node-1'}",
            f"path.data: {self.home.resolve() / 'data'}",
            f"path.logs: {self.home.resolve() / 'logs'}",
            "network.host: 127.0.0.1",
            f"http.port: {self.port}",
            f"transport.port: {self.transport_port}",
            *self._discovery(),
            # A laptop or CI disk is often more than 90 % full; do not go read-only over it.
            "cluster.routing.allocation.disk.threshold_enabled: false",
            "action.destructive_requires_name: false",
            "",
        ]

    def _discovery(self) -> list[str]:
        """How the node finds its cluster: alone, or through the seeds of its membership."""
        member = self.membership
        if member is None:
            return ["discovery.type: single-node"]
        seeds = ", ".join(f"127.0.0.1:{port}" for port in member.seed_transport_ports)
        lines = [f"discovery.seed_hosts: [{seeds}]"]
        if member.initial_managers:
            lines.append(f"{self.initial_managers_key}: [{', '.join(member.initial_managers)}]")
        if member.roles is not None:
            lines.append(f"node.roles: [{', '.join(member.roles)}]")
        return lines

    def _prepare(self, dist: Path) -> None:
        for sub in ("data", "logs"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        if not self.conf_dir.is_dir():
            shutil.copytree(dist / "config", self.conf_dir)
        (self.conf_dir / self.config_file).write_text("\n".join(self._settings()))
        jvm_options = self.conf_dir / "jvm.options"
        if jvm_options.is_file():  # relative GC and error logs would land in the read-only dist
            text = jvm_options.read_text()
            logs = self.home / "logs"
            text = text.replace("file=logs/", f"file={logs}/").replace("=logs/", f"={logs}/")
            jvm_options.write_text(text)
        heap = self.conf_dir / "jvm.options.d" / "playscope-heap.options"
        heap.parent.mkdir(exist_ok=True)
        heap.write_text(f"-Xms{self.heap}\n-Xmx{self.heap}\n")

    def _command(self, dist: Path, java_home: Path) -> tuple[list[str], dict[str, str]]:
        p = self.env_prefix
        env = {
            f"{p}_JAVA_HOME": str(java_home),
            f"{p}_PATH_CONF": str(self.conf_dir.resolve()),
            f"{p}_JAVA_OPTS": f"-Dplayscope.home={self.home.resolve()}",
        }
        return [*unprivileged_prefix(self.home, dist), str(dist / "bin" / self.launcher)], env

    def healthy(self) -> bool:
        try:
            resp = httpx.get(f"{self.url}/_cluster/health", timeout=2)
            return resp.status_code == 200 and resp.json().get("status") in ("green", "yellow")
        except (httpx.HTTPError, ValueError):
            return False


class ElasticsearchServer(SearchServer):
    """Elasticsearch's integ-test-zip: no root endpoint, Painless or ILM, and Maven Central has
    nothing to add them with (``plugins.ELASTICSEARCH_LACKS``); OpenSearch is the complete option."""

    product = "elasticsearch"
    min_java = 21
    heap = "1g"
    main_class = "org.elasticsearch.bootstrap.Elasticsearch"  # bin/elasticsearch runs a CLI JVM that spawns it

    def __init__(self, home: Path, port: int = 9200, transport_port: int | None = None,
                 dist_cache: Path | None = None, *, membership: SearchMembership | None = None,
                 heap: str | None = None) -> None:
        super().__init__(home, port, transport_port, dist_cache, membership=membership, heap=heap)

    def _settings(self) -> list[str]:
        # The distribution would otherwise generate certificates and switch HTTP to TLS on its
        # first start. Local and test use is loopback-only; production settings: docs/security.md.
        return [*super()._settings()[:-1], "xpack.security.enabled: false", ""]


class OpenSearchServer(SearchServer):
    product = "opensearch"
    min_java = 21
    heap = "1g"
    main_class = "org.opensearch.bootstrap.OpenSearch"  # bin/opensearch is a shell script that execs it
    env_prefix = "OPENSEARCH"
    config_file = "opensearch.yml"
    launcher = "opensearch"
    initial_managers_key = "cluster.initial_cluster_manager_nodes"

    def __init__(self, home: Path, port: int = 9201, transport_port: int | None = None,
                 dist_cache: Path | None = None, *, membership: SearchMembership | None = None,
                 heap: str | None = None) -> None:
        super().__init__(home, port, transport_port, dist_cache, membership=membership, heap=heap)

    def _settings(self) -> list[str]:
        return [s.replace("action.destructive_requires_name: false", "") for s in super()._settings()]

    def _prepare(self, dist: Path) -> None:
        super()._prepare(dist)
        plugins.check(dist, self.name, plugins.OPENSEARCH_REQUIRED)  # warns; the server starts anyway


SERVICE_USER = "playscope"


def unreachable_ancestor(path: Path) -> Path | None:
    """The first folder above ``path`` that other users cannot enter (no o+x), if any."""
    for parent in reversed(path.resolve().parents):
        if not parent.stat().st_mode & 0o001:
            return parent
    return None


def unprivileged_prefix(home: Path, dist: Path | None = None) -> list[str]:
    """Elasticsearch and OpenSearch refuse to run as root. As root (containers, CI), run them
    as a system user of their own, owning only the server's folder; otherwise run as is."""
    if os.geteuid() != 0:
        return []
    for needed in (home, dist):
        blocked = unreachable_ancestor(needed) if needed else None
        if blocked is not None:
            raise StackError(
                f"Elasticsearch and OpenSearch cannot run as root, so they run as user '{SERVICE_USER}', "
                f"who cannot enter {blocked} (on the way to {needed}). Use a PLAYSCOPE_HOME that other "
                f"users can reach (e.g. under /var/lib or /srv), or allow it with: chmod o+x {blocked}"
            )
    import pwd

    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True, capture_output=True,
        )
    subprocess.run(["chown", "-R", f"{SERVICE_USER}:", str(home)], check=True)
    return ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--init-groups", "--"]


def default_dist_cache() -> Path:
    """Where distributions are cached when a caller gives no stack home."""
    return Path(os.environ.get("PLAYSCOPE_HOME", ".playscope")) / "dist"


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class SecureKafkaServer(KafkaServer):
    """Kafka whose client listener is SASL_SSL with SCRAM-SHA-512 (``playscope stack up --secure``).

    Its certificate is signed by the CA in ``tls_dir`` (made on first start). Two SCRAM users
    are created when the storage is formatted: ``admin`` (the broker's own inter-broker login)
    and the client ``username``. The controller listener stays on loopback only.
    """

    def __init__(self, home: Path, port: int = 9092, controller_port: int | None = None,
                 dist_cache: Path | None = None, tls_dir: Path | None = None,
                 username: str = "playscope", password: str | None = None) -> None:
        super().__init__(home, port, controller_port, dist_cache)
        self.tls_dir = (tls_dir or self.home / "tls").resolve()
        self.username = username
        self.password = password or self._stored_secret("client.password")
        self.admin_password = self._stored_secret("admin.password")

    @classmethod
    def on_free_ports(cls, home: Path, dist_cache: Path | None = None) -> SecureKafkaServer:
        return cls(home, free_port(), free_port(), dist_cache=dist_cache or default_dist_cache())

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.crt"

    def _stored_secret(self, name: str) -> str:
        """A random password kept in a 0600 file of the server's folder (stable across restarts)."""
        import secrets as _secrets

        path = self.home / name
        if path.is_file():
            return path.read_text().strip()
        self.home.mkdir(parents=True, exist_ok=True)
        value = _secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)
        return value

    def client_security(self) -> dict[str, str]:
        """The ``kafka.security`` section a client of this broker needs (password included)."""
        return {"protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "username": self.username,
                "password": self.password, "ca_file": str(self.ca_file)}

    def _properties(self) -> str:
        from playscope.stack.certs import ensure_ca, issue, pkcs12_keystore

        ca = ensure_ca(self.tls_dir)
        store_password = self._stored_secret("keystore.password")
        leaf = issue(ca, self.tls_dir, "kafka")
        keystore = pkcs12_keystore(leaf, ca, self.home / "kafka.p12", store_password)
        plain = super()._properties().splitlines()
        keep = [line for line in plain if not line.startswith(
            ("listeners=", "advertised.listeners=", "listener.security.protocol.map=", "inter.broker.listener.name="))]
        jaas = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                f'username="admin" password="{self.admin_password}";')
        return "\n".join([
            *[line for line in keep if line],
            f"listeners=SASL_SSL://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{self.port}",
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=SASL_SSL",
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={keystore}",
            f"ssl.keystore.password={store_password}",
            f"ssl.key.password={store_password}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={ca.cert}",
            "ssl.endpoint.identification.algorithm=https",
            "ssl.enabled.protocols=TLSv1.3,TLSv1.2",
            "",
        ])

    def _prepare(self, dist: Path) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        fd = os.open(props, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds passwords
        with os.fdopen(fd, "w") as f:
            f.write(self._properties())
        (self.home / "log4j2.yaml").write_text(_KAFKA_LOG4J)
        if self.formatted:
            return
        jdk = find_jdk(self.min_java, self.product)
        cmd = [str(jdk.java), *_TOOL_JVM_FLAGS, "-cp", f"{dist}/*", "kafka.tools.StorageTool", "format",
               "-t", new_cluster_id(), "-c", str(props), "--ignore-formatted",
               "--add-scram", f"SCRAM-SHA-512=[name=admin,password={self.admin_password}]",
               "--add-scram", f"SCRAM-SHA-512=[name={self.username},password={self.password}]"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).replace(self.password, "***").replace(self.admin_password, "***")
            raise StackError(f"kafka: formatting storage failed:\n{out}")

    def client_conf(self) -> dict[str, str]:
        sec = self.client_security()
        return {"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_SSL",
                "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": sec["username"],
                "sasl.password": sec["password"], "ssl.ca.location": sec["ca_file"]}
