"""The pid file names the server process itself, not its launcher, so ``kill`` and ``stop``
reach the server (Elasticsearch's ``bin/elasticsearch`` runs a CLI JVM that spawns the server JVM).

First with a stand-in launcher (two real Python processes, the same shape: a launcher in a
session of its own that spawns the server as its child), then with a real Elasticsearch.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from playscope.stack.ports import free_port
from playscope.stack.servers import (
    ElasticsearchServer,
    JavaServer,
    _alive,
    _cmdline,
    _group_members,
    default_dist_cache,
    tcp_open,
)

MARK = "playscope.tests.FakeServerMain"
# Like the ES CLI: start the server as a child, wait for it, exit with it. (The launcher's own
# command line must not contain the server's mark, so it is put together at run time.)
LAUNCHER = """
import subprocess, sys
mark = "playscope.tests." + "FakeServerMain"
server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", mark])
sys.exit(server.wait())
"""


class LaunchedServer(JavaServer):
    product = "kafka"  # any product: the JDK lookup needs one; nothing is fetched
    main_class = MARK

    def fetch(self) -> Path:
        return self.home

    def _command(self, dist: Path, java_home: Path) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, "-c", LAUNCHER], {}

    def healthy(self) -> bool:
        pid = self.pid()
        return pid is not None and MARK in _cmdline(pid)


def _launcher_pid(server: JavaServer) -> int:
    return int(server.pid_file.read_text().split()[0])


def _wait(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[LaunchedServer]:
    server = LaunchedServer(tmp_path / "fake", free_port())
    yield server
    server.kill()


def test_the_pid_file_is_rewritten_to_the_server_process(launched: LaunchedServer) -> None:
    launched.start()
    launcher = _launcher_pid(launched)
    assert MARK not in _cmdline(launcher)
    launched.wait_healthy(timeout_s=10)
    server = launched.pid()
    assert server is not None and server != launcher and MARK in _cmdline(server)
    pid_text, started = launched.pid_file.read_text().split()
    assert int(pid_text) == server and started  # "pid starttime" of the server itself
    launched.kill()
    assert not _alive(server) and not _alive(launcher) and launched.pid() is None


def test_stop_reaches_a_server_whose_launcher_died(launched: LaunchedServer) -> None:
    launched.start()
    launcher = _launcher_pid(launched)
    _wait(lambda: len(_group_members(launcher)) == 2)  # the server is up; pid() not asked yet
    server = next(p for p in _group_members(launcher) if p != launcher)
    os.kill(launcher, signal.SIGKILL)
    _wait(lambda: not _alive(launcher))
    assert launched.pid() == server  # found in the launcher's process group, written in
    assert launched.stop(grace_s=10) is True
    assert not _alive(server)


@pytest.fixture
def es_home() -> Iterator[Path]:
    """A home the search server's service user can enter when the tests run as root (pytest's
    own tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="playscope-es-", dir="/tmp"))
    base.chmod(0o755)
    yield base / "elasticsearch"
    shutil.rmtree(base, ignore_errors=True)


def _processes_of(home: Path) -> list[int]:
    """Live java processes whose command line names ``home`` (its config or data folder)."""
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    return [pid for pid in pids if str(home) in (cmd := _cmdline(pid)) and "java" in cmd and _alive(pid)]


@pytest.mark.integration
@pytest.mark.slow
def test_elasticsearch_kill_and_stop_reach_the_server_jvm(es_home: Path) -> None:
    es = ElasticsearchServer(es_home, free_port(), free_port(), dist_cache=default_dist_cache().resolve())
    try:
        es.start()
        launcher = _launcher_pid(es)
        es.wait_healthy(timeout_s=240)
        server = es.pid()
        assert server is not None and server != launcher
        assert ElasticsearchServer.main_class in _cmdline(server)
        assert len(_processes_of(es_home)) == 2  # the CLI JVM and the server JVM

        es.kill()
        assert not tcp_open("127.0.0.1", es.port)
        assert _processes_of(es_home) == []
        assert es.pid() is None

        es.start()
        es.wait_healthy(timeout_s=240)
        assert es.healthy()
        assert es.stop() is True
        assert not tcp_open("127.0.0.1", es.port)
        assert _processes_of(es_home) == []
        log = (es_home / "logs" / "playscope-elasticsearch.log").read_text()
        assert log.rstrip().endswith("closed")  # shut down gracefully, not killed
    finally:
        es.kill()
