"""Collector benchmark: events/s through ``playscope collector`` (202 = acknowledged by Kafka),
run as deployed with one worker process per core, next to a bare confluent-kafka producer
sending the same records in the same run; the p99 request latency at an offered 10,000
events/s; and, for comparison, 1000 events per request on a single worker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import Producer

from bench.collector_http import Connection
from playscope import topics
from playscope.config import Settings
from playscope.kafka import producer_config
from playscope.provision import ensure_topics
from playscope.stack.ports import free_port

# recent: the collector dead-letters a ts outside SPEC 4's bounds (7 days behind, 5 minutes ahead)
TS = int(time.time() * 1000) - 3_600_000


def _events(count: int, salt: str) -> list[dict[str, Any]]:
    return [{"event_id": f"{salt}-{i}", "session_id": f"s{i % 500}", "ts": TS + i, "type": "heartbeat",
             "cdn": "oca-7", "device": "tv", "bitrate_kbps": 3000, "buffer_ms": 8000} for i in range(count)]


def baseline(settings: Settings, events: list[dict[str, Any]]) -> tuple[float, float]:
    """Events/s of a bare producer (same config: acks=all, idempotent, lz4) for the same records,
    serialised in the timed loop as the collector does; and its CPU microseconds per event
    (this process: Python and librdkafka's threads). The producer is connected before timing,
    as the collector's is."""
    producer = Producer(producer_config(settings.kafka))
    topic = settings.topic(topics.PLAYBACK_EVENTS)
    producer.produce(topic, orjson.dumps(_events(1, "warm-up")[0]), b"s0")
    producer.flush(30)
    started, cpu = time.perf_counter(), time.process_time()
    for event in events:
        while True:
            try:
                producer.produce(topic, orjson.dumps(event), event["session_id"].encode())
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(events) / elapsed, cpu / len(events) * 1e6


async def _load(port: int, bodies: list[bytes], per_request: int, seconds: float, connections: int,
                rate_per_s: float | None = None) -> tuple[int, list[float]]:
    latencies: list[float] = []
    sent = 0
    deadline = time.perf_counter() + seconds
    interval = (connections / rate_per_s) if rate_per_s else 0.0

    async def worker(index: int) -> None:
        nonlocal sent
        conn = Connection("127.0.0.1", port)
        await conn.open()
        next_at = time.perf_counter() + interval * index / connections
        i = index
        try:
            while time.perf_counter() < deadline:
                if interval:
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    next_at += interval
                status, latency = await conn.post("/v1/events", bodies[i % len(bodies)])
                i += 1
                if status != 202:
                    raise RuntimeError(f"collector answered {status}")
                latencies.append(latency)
                sent += per_request
        finally:
            conn.close()

    await asyncio.gather(*(worker(i) for i in range(connections)))
    return sent, latencies


def _p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else 0.0


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process and its worker processes have used."""
    total = 0.0
    for one in (pid, *child_pids(pid)):
        try:
            with open(f"/proc/{one}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started (the collector's workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(child) for child in handle.read().split()]
    except FileNotFoundError:
        return []


def start_collector(settings: Settings, workers: int = 1, log: Path | None = None,
                    **env_overrides: str) -> tuple[subprocess.Popen[bytes], int]:
    """``playscope collector --workers N`` on a free loopback port, once /readyz answers 200;
    its stderr goes to ``log`` (else nowhere, unless BENCH_DEBUG is set)."""
    port = free_port()
    env = {**os.environ, "PLAYSCOPE_KAFKA": settings.kafka.bootstrap,
           **({"PLAYSCOPE__TOPIC_PREFIX": settings.topic_prefix} if settings.topic_prefix else {}),
           **env_overrides}
    command = [sys.executable, "-m", "playscope.cli", "collector", "--port", str(port), "--host", "127.0.0.1",
               "--workers", str(workers), "--log-level", "WARNING" if log is None else "INFO"]
    if log is not None:
        with open(log, "wb") as out:
            proc = subprocess.Popen(command, env=env, stderr=out)
    else:
        proc = subprocess.Popen(command, env=env,
                                stderr=subprocess.DEVNULL if not os.environ.get("BENCH_DEBUG") else None)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    tail = log.read_text()[-2000:] if log is not None else ""
    raise RuntimeError(f"collector did not become ready {tail}")


def _start_collector(settings: Settings, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    # the bench lifts the per-request item limit (its largest requests carry 1000 events)
    return start_collector(settings, workers, PLAYSCOPE__COLLECTOR__MAX_EVENTS_PER_REQUEST="10000")


# events per request -> client connections: enough requests in flight that the collector,
# not the client's round trips (each waits for Kafka's acknowledgement), sets the rate
CONNECTIONS = {1: 64, 100: 16, 1000: 8}
# the collector as deployed: one worker process per core (collectors/http/workers.py)
WORKERS = max(1, os.cpu_count() or 1)


def _measure(settings: Settings, proc: subprocess.Popen[bytes], port: int, size: int, seconds: float,
             salt: str) -> dict[str, Any]:
    """The collector at ``size`` events per request for ``seconds``, then the bare producer."""
    bodies = [orjson.dumps(_events(size, f"{salt}-{size}-{b}")) for b in range(8)]
    cpu = _cpu_s(proc.pid)
    started = time.perf_counter()
    sent, latencies = asyncio.run(_load(port, bodies, size, seconds, CONNECTIONS[size]))
    rate = sent / (time.perf_counter() - started)
    collector_cpu_us = (_cpu_s(proc.pid) - cpu) / max(sent, 1) * 1e6
    base, base_cpu_us = baseline(settings, _events(max(50_000, min(sent, 200_000)), f"{salt}-b{size}"))
    return {"events_per_s": round(rate), "baseline_events_per_s": round(base), "ratio": round(rate / base, 3),
            "p99_ms": round(_p99(latencies), 2), "collector_cpu_us_per_event": round(collector_cpu_us, 2),
            "baseline_cpu_us_per_event": round(base_cpu_us, 2)}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=60)


def run(settings: Settings, quick: bool) -> dict[str, Any]:
    """Each size on the collector with ``WORKERS`` processes for ``seconds``, then the bare
    producer on as many of the same records (at least 50,000); 1000 per request once more on a
    single worker. Quick: 3 s per measurement, about 40 s in all; full: 8 s."""
    ensure_topics(settings)
    seconds = 3.0 if quick else 8.0
    salt = uuid.uuid4().hex[:6]
    by_size: dict[str, Any] = {}
    proc, port = _start_collector(settings, WORKERS)
    try:
        for size in (1, 100, 1000):
            by_size[str(size)] = _measure(settings, proc, port, size, seconds, salt)
        # p99 at an offered 10,000 events/s: 8 connections x 12.5 requests/s x 100 events
        paced_bodies = [orjson.dumps(_events(100, f"{salt}-paced-{b}")) for b in range(8)]
        sent, latencies = asyncio.run(_load(port, paced_bodies, 100, seconds, 8, rate_per_s=100.0))
    finally:
        _stop(proc)
    single, single_port = _start_collector(settings, 1)
    try:
        one_worker = _measure(settings, single, single_port, 1000, seconds, f"{salt}-one")
    finally:
        _stop(single)
    head = by_size["1000"]
    return {"events_per_s": head["events_per_s"], "baseline_events_per_s": head["baseline_events_per_s"],
            "ratio": head["ratio"], "workers": WORKERS, "p99_ms": round(_p99(latencies), 2),
            "p99_at_events_per_s": round(sent / seconds), "by_events_per_request": by_size,
            "one_worker_1000_per_request": one_worker}


if __name__ == "__main__":
    from playscope.config import load_settings

    staged = load_settings().model_copy(update={"topic_prefix": f"bench-collector-{uuid.uuid4().hex[:6]}."})
    print(orjson.dumps(run(staged, quick="--quick" in sys.argv), option=orjson.OPT_INDENT_2).decode())
