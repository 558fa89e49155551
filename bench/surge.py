"""Surge benchmark: the collector offered ten times the request rate it sustains.

A surge must degrade into fast refusals (503 with Retry-After), never into timeouts, resets or
lost data. The run first measures the sustainable rate (closed loop, single-event beacons, as a
player sends them), then offers ``factor`` times that rate open loop (requests are sent on a
schedule whether or not earlier ones were answered, as a crowd of players does) and afterwards
reads the topic back: every event answered 202 must be in Kafka. Latencies are measured from
each request's scheduled send time, so a client that falls behind its schedule shows up as
latency instead of hiding it; ``sent_rps`` says what the client really offered.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from bench.collector import WORKERS, _load, child_pids, start_collector
from playscope import topics
from playscope.config import Settings
from playscope.kafka import consumer_config
from playscope.provision import ensure_topics


def _event(event_id: str, ts: int) -> bytes:
    return orjson.dumps({"event_id": event_id, "session_id": f"s-{event_id[-3:]}", "ts": ts,
                         "type": "heartbeat", "cdn": "oca-7", "bitrate_kbps": 3000})


@dataclass
class SurgeResult:
    scheduled: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    accepted_ids: list[str] = field(default_factory=list)
    retry_after_missing: int = 0
    elapsed_s: float = 0.0
    health_probes: int = 0
    health_failed: int = 0
    health_max_ms: float = 0.0

    def count(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line[15:])
    return 0


class _Beacon(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight (as a player sends), driven
    by callbacks rather than a task per request, so the client stays cheaper than the server."""

    def __init__(self, client: _OpenLoopClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.current: tuple[str, float, float] | None = None  # event id, due, sent

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.client.ready(self)

    def send(self, event_id: str, due: float, body: bytes) -> None:
        assert self.transport is not None
        self.current = (event_id, due, time.perf_counter())
        self.transport.write(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                             b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        length = _content_length(head)
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length:]
        current, self.current = self.current, None
        if current is not None:
            self.client.answered(self, current, int(head[9:12]), b"retry-after:" in head)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.lost(self)


class _OpenLoopClient:
    """Requests sent on a schedule over up to ``cap`` connections; a request due while every
    connection is busy waits for the first one free (its wait counts in its latency)."""

    def __init__(self, port: int, cap: int, ts: int, result: SurgeResult) -> None:
        self.port, self.cap, self.ts, self.result = port, cap, ts, result
        self.opened = 0
        self.idle: list[_Beacon] = []
        self.waiting: deque[tuple[str, float]] = deque()
        self.send_latencies_ms: list[float] = []
        self.outstanding = 0
        self.done = asyncio.Event()

    def submit(self, event_id: str, due: float) -> None:
        self.outstanding += 1
        if self.idle:
            self.idle.pop().send(event_id, due, _event(event_id, self.ts))
            return
        self.waiting.append((event_id, due))
        if self.opened < self.cap:
            self.opened += 1
            asyncio.get_running_loop().create_task(self._open())

    async def _open(self) -> None:
        try:
            await asyncio.get_running_loop().create_connection(lambda: _Beacon(self), "127.0.0.1", self.port)
        except OSError:
            self.opened -= 1
            if self.waiting:
                self.waiting.popleft()
                self.result.count("connect_failed")
                self._finish()

    def ready(self, beacon: _Beacon) -> None:
        if self.waiting:
            event_id, due = self.waiting.popleft()
            beacon.send(event_id, due, _event(event_id, self.ts))
        else:
            self.idle.append(beacon)

    def answered(self, beacon: _Beacon, current: tuple[str, float, float], status: int, retry_after: bool) -> None:
        event_id, due, sent = current
        now = time.perf_counter()
        result = self.result
        result.count(str(status))
        result.latencies_ms.append((now - due) * 1000)
        self.send_latencies_ms.append((now - sent) * 1000)
        if status == 202:
            result.accepted_ids.append(event_id)
        elif status == 503 and not retry_after:
            result.retry_after_missing += 1
        self._finish()
        self.ready(beacon)

    def lost(self, beacon: _Beacon) -> None:
        self.opened -= 1
        if beacon in self.idle:
            self.idle.remove(beacon)
        if beacon.current is not None:
            self.result.count("reset")
            self._finish()

    def _finish(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0:
            self.done.set()

    def close(self) -> None:
        for beacon in self.idle:
            if beacon.transport is not None:
                beacon.transport.close()


async def surge(port: int, rate_per_s: float, seconds: float, salt: str, max_connections: int = 1024,
                answer_timeout_s: float = 60.0) -> tuple[SurgeResult, list[float]]:
    """Offer ``rate_per_s`` single-event requests for ``seconds`` on a schedule (1 ms ticks);
    returns the result and the latencies from the moment each request was written."""
    result = SurgeResult()
    client = _OpenLoopClient(port, max_connections, int(time.time() * 1000), result)
    started = time.perf_counter()
    total = int(rate_per_s * seconds)
    index = 0
    probe = asyncio.create_task(_probe_health(port, result))
    while index < total:
        due_count = min(total, int((time.perf_counter() - started) * rate_per_s) + 1)
        while index < due_count:
            client.submit(f"{salt}-{index}", started + index / rate_per_s)
            index += 1
        await asyncio.sleep(0.001)
    result.scheduled = total
    if client.outstanding:
        try:
            await asyncio.wait_for(client.done.wait(), answer_timeout_s)
        except TimeoutError:
            # requests still queued in this client were never written (it fell behind its
            # schedule); only the rest waited for the collector and got no answer
            unsent = len(client.waiting)
            if unsent:
                result.statuses["not_sent"] = unsent
            if client.outstanding - unsent:
                result.statuses["timeout"] = client.outstanding - unsent
    result.elapsed_s = time.perf_counter() - started
    probe.cancel()
    client.close()
    return result, client.send_latencies_ms


async def _probe_health(port: int, result: SurgeResult, every_s: float = 0.5) -> None:
    """GET /healthz twice a second on a connection of its own: it must answer throughout."""
    while True:
        started = time.perf_counter()
        writer = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            ok = (await asyncio.wait_for(reader.read(), 30))[9:12] == b"200"
        except (OSError, TimeoutError):
            ok = False
        finally:
            if writer is not None:
                writer.close()
        result.health_probes += 1
        result.health_failed += 0 if ok else 1
        result.health_max_ms = max(result.health_max_ms, (time.perf_counter() - started) * 1000)
        await asyncio.sleep(every_s)


def missing_from_topic(settings: Settings, ids: list[str], wait_s: float = 60.0) -> int:
    """How many of ``ids`` are not in the events topic (read from the start)."""
    wanted = set(ids)
    topic = settings.topic(topics.PLAYBACK_EVENTS)
    consumer = Consumer(consumer_config(settings.kafka, f"bench-surge-{uuid.uuid4().hex[:6]}",
                                        **{"enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        deadline = time.monotonic() + wait_s
        while wanted and time.monotonic() < deadline:
            for message in consumer.consume(5000, 1.0):
                value = message.value()
                if message.error() is None and value is not None:
                    wanted.discard(orjson.loads(value).get("event_id"))
    finally:
        consumer.close()
    return len(wanted)


def _percentile(values: list[float], q: float) -> float:
    """The sample at 0-based rank floor(q * (n - 1)) (SPEC 7's convention)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[int(q * (len(ordered) - 1))], 2)


def run(settings: Settings, quick: bool, factor: float = 10.0) -> dict[str, Any]:
    """Sustainable rate (closed loop, 64 connections), then ``factor`` times it open loop for
    30 s (quick: 10 s) on the collector as deployed (one worker per core)."""
    ensure_topics(settings)
    seconds = 10.0 if quick else 30.0
    salt = uuid.uuid4().hex[:8]
    proc, port = start_collector(settings, WORKERS)
    try:
        bodies = [_event(f"{salt}-warm-{i}", int(time.time() * 1000)) for i in range(64)]
        sent, latencies = asyncio.run(_load(port, bodies, 1, 3.0 if quick else 5.0, 64))
        sustainable = sent / (3.0 if quick else 5.0)
        result, sent_latencies = asyncio.run(surge(port, sustainable * factor, seconds, salt))
        workers_alive = len(child_pids(proc.pid)) if WORKERS > 1 else int(proc.poll() is None)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    lost = missing_from_topic(settings, result.accepted_ids)
    answered = sum(n for status, n in result.statuses.items() if status.isdigit())
    accepted = result.statuses.get("202", 0)
    return {
        "sustainable_rps": round(sustainable), "sustainable_p99_ms": round(_percentile(
            [latency * 1000 for latency in latencies], 0.99), 2),
        "factor": factor, "offered_rps": round(sustainable * factor),
        "sent_rps": round(result.scheduled / result.elapsed_s), "seconds": seconds,
        "requests": result.scheduled, "answered": answered, "statuses": result.statuses,
        "unanswered": result.scheduled - answered, "not_sent": result.statuses.get("not_sent", 0),
        "timed_out": result.statuses.get("timeout", 0), "retry_after_missing": result.retry_after_missing,
        "accepted_rps": round(accepted / result.elapsed_s),
        "ratio": round(accepted / result.elapsed_s / sustainable, 3) if sustainable else 0.0,
        "lost_after_202": lost, "p50_ms": _percentile(result.latencies_ms, 0.5),
        "p99_ms": _percentile(result.latencies_ms, 0.99),
        "p99_from_send_ms": _percentile(sent_latencies, 0.99), "workers_alive": workers_alive,
        "sent_factor": round(result.scheduled / result.elapsed_s / sustainable, 2) if sustainable else 0.0,
        "healthz_probes": result.health_probes, "healthz_failed": result.health_failed,
        "healthz_max_ms": round(result.health_max_ms, 1),
    }


if __name__ == "__main__":
    import sys

    from playscope.config import load_settings

    staged = load_settings().model_copy(update={"topic_prefix": f"bench-surge-{uuid.uuid4().hex[:6]}."})
    print(orjson.dumps(run(staged, quick="--quick" in sys.argv), option=orjson.OPT_INDENT_2).decode())
