"""The collector (also with --workers 2, with and without a spool) and the agent as processes,
under steady traffic, against a private broker that is killed (-9) and restarted, or that is
not there yet when they start. Nothing acknowledged is lost, the processes never exit, their
/metrics say whether the broker is up, and their logs say so once per change.

What the design guarantees and the tests assert (the traffic never retries a refused request,
so every id is sent once):

* collector without spool: an id answered 202 is in Kafka exactly once; an id answered 503 is
  there at most once (a request in flight at the kill may have been written by the broker
  without the answer reaching the producer).
* collector with spool: every request is answered 202 and every id is in Kafka; an id can be
  there twice only if its first produce failed before it was spooled (the same "written, not
  answered" case), so the duplicates are at most ``produce_failed_events_total``.
* agent: every line exactly once (librdkafka keeps and retries the agent's records through
  the outage, idempotently; only a restart of the agent itself repeats unconfirmed batches).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from collector_helpers import RECENT_TS, read_topic
from helpers import wait_for

from bench.collector import child_pids
from playscope import topics
from playscope.config import Settings, load_settings
from playscope.provision import ensure_topics
from playscope.stack.ports import free_port
from playscope.stack.servers import KafkaServer

pytestmark = pytest.mark.slow
TS = RECENT_TS
# how long the broker stays killed (its restart adds 10-30 s on a loaded host); a longer run,
# e.g. 60, stays within the tests' waits but not within the ~90 s a test should take
OUTAGE_S = float(os.environ.get("PLAYSCOPE_TEST_OUTAGE_S", "20"))


# -- the processes -------------------------------------------------------------------------------

def _settings(server: KafkaServer) -> Settings:
    base = load_settings(environ={})
    return base.model_copy(update={"kafka": base.kafka.model_copy(update={"bootstrap": server.bootstrap}),
                                   "topic_prefix": f"t{uuid.uuid4().hex[:8]}-restart."})


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {**os.environ, "PLAYSCOPE_KAFKA": settings.kafka.bootstrap,
            "PLAYSCOPE__TOPIC_PREFIX": settings.topic_prefix, **extra}


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int  # the collector's port, or the agent's metrics port

    def metric(self, name: str) -> float | None:
        """The sum of a metric's samples (None when the process does not answer)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return None
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith(name + "_"))

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                out.append(orjson.loads(line))
        return out

    def changes(self, event: str) -> Counter[str]:
        """How many ``event`` lines each Kafka client logged."""
        return Counter(str(e.get("client")) for e in self.events() if e.get("event") == event)


def _collector(settings: Settings, tmp: Path, name: str, workers: int = 1, spool: Path | None = None) -> Proc:
    port = free_port()
    extra = {"PLAYSCOPE__COLLECTOR__SPOOL_DIR": str(spool)} if spool is not None else {}
    log = tmp / f"{name}.log"
    cmd = [sys.executable, "-m", "playscope.cli", "collector", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=_env(settings, **extra), stderr=out, cwd=tmp)
    return Proc(name, proc, log, port)


def _agent(settings: Settings, tmp: Path, lines: Path) -> Proc:
    port = free_port()
    conf = tmp / "agent.yaml"
    conf.write_text(yaml.safe_dump({
        "inputs": [{"paths": [str(lines)], "service": "restart"}], "checkpoint_file": str(tmp / "ckpt.json"),
        "batch_lines": 200, "poll_interval_ms": 50, "metrics_port": port}))
    log = tmp / "agent.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "playscope.cli", "agent", "-c", str(conf)],
                                env=_env(settings), stderr=out, cwd=tmp)
    return Proc("agent", proc, log, port)


def _healthz(proc: Proc) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{proc.port}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(procs: list[Proc]) -> dict[str, int]:
    for p in procs:
        if p.proc.poll() is None:
            p.proc.send_signal(signal.SIGTERM)
    codes = {}
    for p in procs:
        try:
            codes[p.name] = p.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            codes[p.name] = -9
    return codes


def _checkpoint(tmp: Path) -> int:
    with contextlib.suppress(OSError, orjson.JSONDecodeError, StopIteration):
        return int(next(iter(orjson.loads((tmp / "ckpt.json").read_bytes())["offsets"].values())))
    return -1


# -- the traffic ---------------------------------------------------------------------------------

@dataclass
class Answer:
    started: float
    ended: float
    status: int  # 0: no answer
    retry_after: str | None
    ids: list[str]


@dataclass
class Poster:
    """Threads POSTing batches of events with ids never sent before (a refused batch is not
    retried), each on a fresh connection so that the kernel spreads them over the workers."""

    port: int
    prefix: str
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _seq: Iterator[int] = field(default_factory=lambda: iter(range(10**9)))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, threads: int = 2) -> list[threading.Thread]:
        started = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]
        for thread in started:
            thread.start()
        return started

    def _loop(self) -> None:
        while not self.stop.is_set():
            with self._lock:
                ids = [f"{self.prefix}-{next(self._seq)}" for _ in range(10)]
            body = [{"event_id": i, "session_id": f"s{hash(i) % 5}", "ts": TS, "type": "heartbeat"} for i in ids]
            started = time.monotonic()
            try:
                answer = httpx.post(f"http://127.0.0.1:{self.port}/v1/events", json=body, timeout=30)
                status, retry = answer.status_code, answer.headers.get("retry-after")
            except httpx.HTTPError:
                status, retry = 0, None
            self.answers.append(Answer(started, time.monotonic(), status, retry, ids))
            self.stop.wait(0.1)

    def ids(self, status: int) -> set[str]:
        return {i for a in self.answers if a.status == status for i in a.ids}

    def first_accepted_after(self, moment: float) -> float | None:
        ends = [a.ended for a in self.answers if a.status == 202 and a.started >= moment]
        return min(ends) - moment if ends else None


class LineWriter:
    """Appends numbered JSON lines to a file the agent tails, ten every 50 ms."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.write(10)
            self.stop.wait(0.05)

    def write(self, count: int) -> None:
        with open(self.path, "ab") as handle:
            handle.write(b"".join(orjson.dumps({"ts": TS + i, "message": f"line {i}", "seq": i}) + b"\n"
                                  for i in range(self.written, self.written + count)))
        self.written += count


class Sampler:
    """Every 0.5 s: broker_up (and a second metric) of each process, with the time."""

    def __init__(self, procs: dict[str, tuple[Proc, str]]) -> None:
        self.procs = procs
        self.samples: dict[str, list[tuple[float, float | None, float | None]]] = {n: [] for n in procs}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            for name, (proc, metric) in self.procs.items():
                gauge = f"playscope_{'agent' if name == 'agent' else 'collector'}_broker_up"
                self.samples[name].append((time.monotonic(), proc.metric(gauge), proc.metric(metric)))
            self.stop.wait(0.5)

    def up_values(self, name: str) -> list[float]:
        """The broker_up values seen, repeats collapsed (e.g. [1, 0, 1])."""
        out: list[float] = []
        for _t, up, _m in self.samples[name]:
            if up is not None and (not out or out[-1] != up):
                out.append(up)
        return out

    def first(self, name: str, after: float, test: Callable[[float | None, float | None], bool]) -> float | None:
        for t, up, value in self.samples[name]:
            if t >= after and test(up, value):
                return t - after
        return None

    def latest(self, name: str) -> float | None:
        return next((up for _t, up, _m in reversed(self.samples[name]) if up is not None), None)


# -- the tests -----------------------------------------------------------------------------------

def test_collectors_and_agent_ride_out_a_broker_kill_and_restart(
        private_kafka: Callable[[], Any], tmp_path: Path) -> None:
    server: KafkaServer = private_kafka()
    settings = _settings(server)
    ensure_topics(settings, partitions=3)
    events_topic, logs_topic = settings.topic(topics.PLAYBACK_EVENTS), settings.topic(topics.SERVICE_LOGS)
    spool = tmp_path / "spool"
    lines = tmp_path / "app.log"
    writer = LineWriter(lines)
    writer.write(10)
    plain = _collector(settings, tmp_path, "plain", workers=2)
    spooled = _collector(settings, tmp_path, "spooled", spool=spool)
    agent = _agent(settings, tmp_path, lines)
    procs = [plain, spooled, agent]
    try:
        wait_for(lambda: all(_healthz(p) for p in (plain, spooled)), 60, "the collectors")
        wait_for(lambda: _checkpoint(tmp_path) == lines.stat().st_size, 60, "the agent's first lines")
        workers = set(child_pids(plain.proc.pid))
        assert len(workers) == 2
        posters = {"plain": Poster(plain.port, "p"), "spooled": Poster(spooled.port, "s")}
        threads = [t for poster in posters.values() for t in poster.run()]
        sampler = Sampler({"plain": (plain, "playscope_collector_sent_events_total"),
                           "spooled": (spooled, "playscope_collector_replayed_events_total"),
                           "agent": (agent, "playscope_agent_sent_events_total")})
        sampler.thread.start()
        writer.thread.start()
        time.sleep(2)  # steady traffic before the fault

        server.kill()
        killed = time.monotonic()
        wait_for(lambda: all(sampler.latest(n) == 0 for n in sampler.procs), 20, "broker_up 0 everywhere")
        time.sleep(max(0.0, killed + OUTAGE_S - time.monotonic()))
        spooled_during = len(list(spool.glob("spool-*.ndjson")))
        restarting = time.monotonic()
        server.start()
        server.wait_healthy(timeout_s=90)
        back = time.monotonic()
        wait_for(lambda: all(sampler.latest(n) == 1 for n in sampler.procs), 30, "broker_up 1 everywhere")
        wait_for(lambda: posters["plain"].first_accepted_after(back) is not None, 30, "a 202 after the restart")
        time.sleep(2)  # steady traffic after the fault
        writer.stop.set()
        for poster in posters.values():
            poster.stop.set()
        for thread in [*threads, writer.thread]:
            thread.join(timeout=40)
        wait_for(lambda: not list(spool.glob("spool-*.ndjson")), 30, "the spool's replay")
        wait_for(lambda: _checkpoint(tmp_path) == lines.stat().st_size, 30, "the agent's last lines")
        sampler.stop.set()
        sampler.thread.join(timeout=10)
        produce_failed = spooled.metric("playscope_collector_produce_failed_events_total") or 0.0
        alive = {p.name: p.proc.poll() for p in procs}
        same_workers = set(child_pids(plain.proc.pid)) == workers
    finally:
        codes = _stop(procs)

    sent_at_back = max((v or 0.0) for t, _u, v in sampler.samples["agent"] if t <= back)
    measured = {
        "outage_s": round(back - killed, 1),
        "plain_first_202_s": round(posters["plain"].first_accepted_after(back) or -1, 1),
        **{f"{n}_broker_up_s": round(sampler.first(n, back, lambda up, _v: up == 1) or -1, 1)
           for n in sampler.procs},
        "agent_first_delivery_s": round(sampler.first(
            "agent", back, lambda _u, v: v is not None and v > sent_at_back) or -1, 1),
        "spooled_replayed_s": round(sampler.first(
            "spooled", back, lambda _u, v: v is not None and v > 0) or -1, 1),
    }
    measured["warnings"] = {p.name: sum(e.get("level") in ("WARNING", "ERROR") for e in p.events()) for p in procs}
    print("measured", measured)
    assert alive == {"plain": None, "spooled": None, "agent": None}, "a process exited during the outage"
    assert same_workers, "a collector worker was restarted"
    assert codes == {"plain": 0, "spooled": 0, "agent": 0}, codes
    for name in sampler.procs:
        values = sampler.up_values(name)
        assert values[-1] == 1 and 0 in values and values.index(0) > 0, (name, values)

    # what the collectors answered while the broker was down (not while it was starting: it
    # may take writes a little before its health check says so)
    outage = [a for a in posters["plain"].answers if killed + 1 < a.started < restarting]
    assert outage and all(a.status == 503 and a.retry_after == "5" for a in outage), \
        Counter((a.status, a.retry_after) for a in outage)
    assert {a.status for a in posters["spooled"].answers} == {202}
    assert spooled_during > 0, "nothing was spooled while the broker was down"

    records = read_topic(settings, events_topic, 1, timeout_s=60, settle_s=3)
    in_kafka = Counter(r["event_id"] for r in records)
    plain_ok, plain_refused = posters["plain"].ids(202), posters["plain"].ids(503)
    assert plain_ok and {i: in_kafka[i] for i in plain_ok if in_kafka[i] != 1} == {}
    assert all(in_kafka[i] <= 1 for i in plain_refused)
    assert {i for i in in_kafka if i.startswith("p-")} <= {i for a in posters["plain"].answers for i in a.ids}
    spool_ok = posters["spooled"].ids(202)
    assert not [i for i in spool_ok if in_kafka[i] == 0], "an id answered 202 by the spooling collector is lost"
    duplicates = sum(in_kafka[i] - 1 for i in spool_ok if in_kafka[i] > 1)
    assert duplicates <= produce_failed, (duplicates, produce_failed)

    seqs = Counter(r["seq"] for r in read_topic(settings, logs_topic, writer.written, timeout_s=60))
    assert set(seqs) == set(range(writer.written)), f"lost {writer.written - len(seqs)} lines"
    assert max(seqs.values()) == 1, "a line was delivered twice"

    # the logs: one line per change and client, and no flood
    assert plain.changes("kafka.broker_down") == {"collector-0": 1, "collector-1": 1}
    assert plain.changes("kafka.broker_up") == {"collector-0": 1, "collector-1": 1}
    for proc, client in ((spooled, "collector"), (agent, "agent")):
        assert proc.changes("kafka.broker_down") == {client: 1}, proc.name
        assert proc.changes("kafka.broker_up") == {client: 1}, proc.name
    # librdkafka's reconnect lines come at most about once a minute per client (a thousand
    # attempts a minute without the collapsing); the rest are the state changes above
    for proc, clients in ((plain, 2), (spooled, 1), (agent, 1)):
        warnings = [e for e in proc.events() if e.get("level") in ("WARNING", "ERROR")]
        limit = 10 + 4 * clients * (back - killed) / 60
        assert len(warnings) <= limit, (proc.name, [e.get("event", "")[:100] for e in warnings])


@pytest.mark.integration
def test_collector_and_agent_started_before_the_broker_begin_delivering_when_it_comes(
        tmp_path: Path) -> None:
    server = KafkaServer.on_free_ports(tmp_path / "kafka")  # not started yet
    try:
        _started_before(server, tmp_path)
    finally:
        server.stop()


def _started_before(server: KafkaServer, tmp_path: Path) -> None:
    settings = _settings(server)
    lines = tmp_path / "app.log"
    writer = LineWriter(lines)
    writer.write(100)
    collector = _collector(settings, tmp_path, "collector", workers=2)
    agent = _agent(settings, tmp_path, lines)
    procs = [collector, agent]
    try:
        wait_for(lambda: _healthz(collector), 60, "the collector")
        wait_for(lambda: collector.metric("playscope_collector_broker_up") == 0
                 and agent.metric("playscope_agent_broker_up") == 0, 30, "broker_up 0")
        refused = httpx.post(f"http://127.0.0.1:{collector.port}/v1/events", timeout=30,
                             json=[{"event_id": "early", "session_id": "s", "ts": TS, "type": "heartbeat"}])
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        assert httpx.get(f"http://127.0.0.1:{collector.port}/readyz", timeout=10).status_code == 503
        time.sleep(3)  # they keep waiting, quietly
        server.start()
        server.wait_healthy(timeout_s=90)
        back = time.monotonic()
        ensure_topics(settings, partitions=3)  # created while the clients already try to use them
        poster = Poster(collector.port, "late")
        threads = poster.run(threads=1)
        wait_for(lambda: poster.first_accepted_after(back) is not None, 30, "a 202 from the collector")
        wait_for(lambda: _checkpoint(tmp_path) == lines.stat().st_size, 30, "the agent's lines")
        delivered = time.monotonic() - back
        poster.stop.set()
        for thread in threads:
            thread.join(timeout=40)
        alive = {p.name: p.proc.poll() for p in procs}

        def ups_now() -> tuple[float, float]:
            return collector.metric("playscope_collector_broker_up"), agent.metric("playscope_agent_broker_up")

        # delivery can come first: a rise shows at the clients' next statistics report (3 s)
        with contextlib.suppress(AssertionError):
            wait_for(lambda: ups_now() == (1, 1), 15, "broker_up 1")
        ups = ups_now()
    finally:
        codes = _stop(procs)
    print("measured", {"collector_first_202_s": round(poster.first_accepted_after(back) or -1, 1),
                       "agent_all_lines_s": round(delivered, 1)})
    assert alive == {"collector": None, "agent": None} and codes == {"collector": 0, "agent": 0}
    assert ups == (1, 1)
    records = read_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), 1, timeout_s=30, settle_s=2)
    in_kafka = Counter(r["event_id"] for r in records)
    accepted = poster.ids(202)
    assert accepted and all(in_kafka[i] == 1 for i in accepted) and "early" not in in_kafka
    seqs = Counter(r["seq"] for r in read_topic(settings, settings.topic(topics.SERVICE_LOGS), 100))
    assert seqs == Counter(range(100))
    assert collector.changes("kafka.broker_down") == {"collector-0": 1, "collector-1": 1}
    assert collector.changes("kafka.broker_up") == {"collector-0": 1, "collector-1": 1}
    assert agent.changes("kafka.broker_down") == {"agent": 1} and agent.changes("kafka.broker_up") == {"agent": 1}
    for proc in procs:
        warnings = [e for e in proc.events() if e.get("level") in ("WARNING", "ERROR")]
        assert len(warnings) <= 12, (proc.name, [e.get("event", "")[:100] for e in warnings])
