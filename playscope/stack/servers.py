"""The three servers of the local stack, each a small class over one Java process.

A server owns a folder (config, data, logs, pid file) and knows how to start itself, tell
whether it is healthy, and stop gracefully (SIGTERM, then SIGKILL after a grace period). Only
processes recorded in its pid file are ever signalled, so ``down`` never touches a server
someone else started on the same port.
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
from collections.abc import Callable
from pathlib import Path

import httpx

from playscope.errors import PortInUse, StackError
from playscope.stack import fetch
from playscope.stack.jdk import find_jdk
from playscope.stack.ports import free_port, port_owner, port_taken

Progress = Callable[[str], None]


class JavaServer(ABC):
    """A server process of the stack. Subclasses say how to prepare, launch and probe it."""

    name: str = "server"
    min_java: int = 17
    heap: str = "1g"

    def __init__(self, home: Path, port: int, dist_cache: Path | None = None) -> None:
        self.home = Path(home).resolve()
        self.port = port
        self.dist_cache = (dist_cache or self.home.parent / "dist").resolve()

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
        """The pid of our process if it is alive, else None (a stale pid file is removed).

        The pid file holds the pid and the process start time, so a pid reused by an unrelated
        process after a crash is never mistaken for ours."""
        try:
            pid_text, _, started = self.pid_file.read_text().strip().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        if not _alive(pid) or (started and _start_time(pid) != started):
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def fetch(self) -> Path:
        return fetch.ensure_distribution(self.dist_cache, self.name)

    def start(self) -> None:
        """Start the process in the background (no wait); a no-op if ours is already running."""
        if self.is_running():
            return
        for port in self.ports:
            if port_taken(port):
                owner = port_owner(port)
                who = f" by {owner}" if owner else ""
                raise PortInUse(f"{self.name}: port {port} is already in use{who}")
        dist = self.fetch()
        jdk = find_jdk(self.min_java, self.name)
        self.home.mkdir(parents=True, exist_ok=True)
        self._prepare(dist)
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
        self.pid_file.write_text(f"{proc.pid} {_start_time(proc.pid)}")

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
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _wait_gone(pid, 10)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL at once, as a crash would (for failure tests)."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _wait_gone(pid, 10)
            self.pid_file.unlink(missing_ok=True)

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.rstrip().splitlines()[-lines:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours counts as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.split(")")[-1].split()[0] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    except OSError:
        return False
    return True


def _start_time(pid: int) -> str:
    """Start time of ``pid`` in clock ticks since boot ('' if unknown)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _wait_gone(pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)


class KafkaServer(JavaServer):
    """Apache Kafka in KRaft mode: one node that is both broker and controller."""

    name = "kafka"
    min_java = 17
    heap = "1g"

    def __init__(self, home: Path, port: int = 9092, controller_port: int | None = None,
                 dist_cache: Path | None = None) -> None:
        super().__init__(home, port, dist_cache)
        self.controller_port = controller_port or port + 1

    @classmethod
    def on_free_ports(cls, home: Path, dist_cache: Path | None = None) -> KafkaServer:
        """A broker on free ports (tests that stop or kill a broker of their own)."""
        return cls(home, free_port(), free_port(), dist_cache=dist_cache or default_dist_cache())

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, self.controller_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _properties(self) -> str:
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={self.home.resolve() / 'data'}",
            "num.partitions=6",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.retention.check.interval.ms=60000",
            "",
        ])

    def _prepare(self, dist: Path) -> None:
        props = self.home / "server.properties"
        props.write_text(self._properties())
        (self.home / "log4j2.yaml").write_text(_KAFKA_LOG4J)
        if (self.home / "data" / "meta.properties").is_file():
            return
        jdk = find_jdk(self.min_java, self.name)
        cmd = [str(jdk.java), "-cp", f"{dist}/*", "kafka.tools.StorageTool", "format",
               "-t", _cluster_id(), "-c", str(props), "--ignore-formatted"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise StackError(f"kafka: formatting storage failed:\n{proc.stdout}{proc.stderr}")

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
        from confluent_kafka.admin import AdminClient

        try:
            admin = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 2000,
                                 "log_level": 0})
            meta = admin.list_topics(timeout=2)
            return bool(meta.brokers)
        except Exception:
            return False


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, base64url without padding (22 characters)."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


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


class SearchServer(JavaServer):
    """Elasticsearch or OpenSearch from its integ-test-zip: single node, loopback, no security."""

    env_prefix = "ES"
    config_file = "elasticsearch.yml"
    launcher = "elasticsearch"

    def __init__(self, home: Path, port: int, transport_port: int | None = None,
                 dist_cache: Path | None = None) -> None:
        super().__init__(home, port, dist_cache)
        self.transport_port = transport_port or port + 100

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
        return [
            f"cluster.name: playscope-{self.name}",
            "node.name: node-1",
            f"path.data: {self.home.resolve() / 'data'}",
            f"path.logs: {self.home.resolve() / 'logs'}",
            "network.host: 127.0.0.1",
            f"http.port: {self.port}",
            f"transport.port: {self.transport_port}",
            "discovery.type: single-node",
            # A laptop or CI disk is often more than 90 % full; do not go read-only over it.
            "cluster.routing.allocation.disk.threshold_enabled: false",
            "action.destructive_requires_name: false",
            "",
        ]

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
    name = "elasticsearch"
    min_java = 21
    heap = "1g"

    def __init__(self, home: Path, port: int = 9200, transport_port: int | None = None,
                 dist_cache: Path | None = None) -> None:
        super().__init__(home, port, transport_port, dist_cache)

    def _settings(self) -> list[str]:
        # The distribution would otherwise generate certificates and switch HTTP to TLS on its
        # first start. Local and test use is loopback-only; production settings: docs/security.md.
        return [*super()._settings()[:-1], "xpack.security.enabled: false", ""]


class OpenSearchServer(SearchServer):
    name = "opensearch"
    min_java = 21
    heap = "1g"
    env_prefix = "OPENSEARCH"
    config_file = "opensearch.yml"
    launcher = "opensearch"

    def __init__(self, home: Path, port: int = 9201, transport_port: int | None = None,
                 dist_cache: Path | None = None) -> None:
        super().__init__(home, port, transport_port, dist_cache)

    def _settings(self) -> list[str]:
        return [s.replace("action.destructive_requires_name: false", "") for s in super()._settings()]


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
        if (self.home / "data" / "meta.properties").is_file():
            return
        jdk = find_jdk(self.min_java, self.name)
        cmd = [str(jdk.java), "-cp", f"{dist}/*", "kafka.tools.StorageTool", "format",
               "-t", _cluster_id(), "-c", str(props), "--ignore-formatted",
               "--add-scram", f"SCRAM-SHA-512=[name=admin,password={self.admin_password}]",
               "--add-scram", f"SCRAM-SHA-512=[name={self.username},password={self.password}]"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).replace(self.password, "***").replace(self.admin_password, "***")
            raise StackError(f"kafka: formatting storage failed:\n{out}")

    def healthy(self) -> bool:
        from confluent_kafka.admin import AdminClient

        sec = self.client_security()
        try:
            admin = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 2000, "log_level": 0,
                                 "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                                 "sasl.username": sec["username"], "sasl.password": sec["password"],
                                 "ssl.ca.location": sec["ca_file"]})
            meta = admin.list_topics(timeout=2)
            return bool(meta.brokers)
        except Exception:
            return False
