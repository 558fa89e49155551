"""Several collector processes behind one listening socket (``collector.workers``).

One Python process spends its CPU on decoding, validating and encoding events and tops out at a
single core; the collector scales on a host by forking workers that accept on the same socket
(the kernel hands each new connection to one of them). The parent binds the socket, forks the
workers before it starts any thread, restarts a worker that dies, passes SIGHUP (key reload)
on, and on SIGTERM or SIGINT stops them gracefully: each answers its requests in flight and
flushes its producer, as a single collector does.

What each worker owns: its Kafka producer, its spool folder (``spool.worker_directory``) and its
rate-limit buckets, so a limit applies per worker (docs in collectors/README.md). Metrics are
summed across workers (``metrics.enable_multiprocess``).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable

from prometheus_client import multiprocess

from collectors.http.metrics import enable_multiprocess
from playscope.errors import ConfigError
from playscope.logs import log_event

log = logging.getLogger("playscope.collector.workers")

RESTART_BACKOFF_S = 1.0
_PR_SET_PDEATHSIG = 1
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

ServeOne = Callable[[int, socket.socket], None]  # (worker index, listening socket): serve until stopped


def listen(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The listening socket the workers share (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"collector: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _stop_with_parent(parent: int) -> None:
    """Ask Linux to send this worker SIGTERM when the supervisor dies, even by SIGKILL, so no
    orphaned worker keeps the port (a no-op where prctl is missing)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


class Supervisor:
    """Forks ``count`` workers running ``serve_one`` and keeps them running until told to stop."""

    def __init__(self, count: int, sock: socket.socket, serve_one: ServeOne, stop_timeout_s: float) -> None:
        self.count = count
        self.sock = sock
        self.serve_one = serve_one
        self.stop_timeout_s = stop_timeout_s
        self.children: dict[int, int] = {}  # pid -> worker index
        self._stopping = False
        self._pending: list[int] = []

    def run(self) -> int:
        metrics_dir = tempfile.mkdtemp(prefix="playscope-collector-metrics-")
        enable_multiprocess(metrics_dir)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _FORWARDED}
        try:
            for index in range(self.count):
                self._spawn(index)
            log_event(log, "collector.workers_started", workers=self.count,
                      pids=sorted(self.children))
            self._watch()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return 0

    def _spawn(self, index: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                for sig in _FORWARDED:
                    signal.signal(sig, signal.SIG_DFL)
                _stop_with_parent(parent)
                log_event(log, "collector.worker_started", worker=index, pid=os.getpid())
                self.serve_one(index, self.sock)
            except BaseException as exc:  # a worker must never return into the parent's loop
                code = 1
                log_event(log, "collector.worker_failed", level=logging.ERROR, worker=index, error=repr(exc))
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = index

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._pending.append(signum)

    def _watch(self) -> None:
        deadline: float | None = None
        while self.children:
            while self._pending:
                signum = self._pending.pop(0)
                if signum == signal.SIGHUP:
                    self._signal_all(signal.SIGHUP)
                elif not self._stopping:
                    self._stopping = True
                    deadline = time.monotonic() + self.stop_timeout_s
                    log_event(log, "collector.workers_stopping", signal=signal.Signals(signum).name)
                    self._signal_all(signal.SIGTERM)
            if deadline is not None and time.monotonic() > deadline:
                log_event(log, "collector.workers_killed", level=logging.WARNING, pids=sorted(self.children))
                self._signal_all(signal.SIGKILL)
                deadline = None
            self._reap()
            time.sleep(0.1)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            index = self.children.pop(pid, None)
            if index is None:
                continue
            multiprocess.mark_process_dead(pid)
            if not self._stopping:
                log_event(log, "collector.worker_died", level=logging.ERROR, worker=index, pid=pid,
                          status=os.waitstatus_to_exitcode(status))
                time.sleep(RESTART_BACKOFF_S)
                self._spawn(index)

    def _signal_all(self, signum: int) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
