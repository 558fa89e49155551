"""Streams benchmark (SPEC 11): events/s through the sessionizer and QoE windows, one worker.

The same events are read twice from the same topic in the same run: first by a bare aiokafka
consume-and-decode loop (the baseline: what any Python consumer pays), then by one
``playscope streams`` worker. The worker's rate is measured from its first processed event to its
last (from its own Prometheus counter), so process start-up and group join are not counted.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from confluent_kafka import Producer

from bench import streams_state
from playscope import topics
from playscope.config import Settings
from playscope.kafka import aiokafka_kwargs, producer_config

# the workload's first event time: half an hour before the run, minute-aligned. A fixed date fell
# behind the 7-day retention of the topics: the broker deleted Quix Streams' repartitioned records
# (they carry the event time) at its next retention check, and the peer waited for them forever.
T0 = (int(time.time()) // 60 - 30) * 60_000
DIMS = {
    "cdn": ["oca-1", "oca-2", "akamai", "fastly"],
    "isp": ["isp-a", "isp-b", "isp-c"],
    "device": ["tv", "web", "ios", "android"],
    "country": ["FR", "US", "DE", "BR", "JP"],
}


def workload(n_events: int, seed: int = 1) -> list[bytes]:
    """Sessions of ~50 events (start, play, heartbeats, a few rebuffers, end), interleaved in time."""
    rng = random.Random(seed)
    per_session = 50
    out: list[tuple[int, bytes]] = []
    for s in range(max(1, n_events // per_session)):
        sid = f"bench-{s}"
        t = T0 + rng.randint(0, 600_000)
        dims = {k: rng.choice(v) for k, v in DIMS.items()}
        for i in range(per_session):
            if i == 0:
                kind = "session_start"
            elif i == 1:
                kind = "playing"
            elif i == per_session - 1:
                kind = "session_end"
            else:
                kind = rng.choice(["heartbeat"] * 8 + ["rebuffer_start", "rebuffer_end"])
            ev: dict[str, Any] = {
                "event_id": f"{sid}-{i}",
                "session_id": sid,
                "ts": t,
                "type": kind,
                "bitrate_kbps": 3000,
                **(dims if i == 0 else {}),
            }
            out.append((t, orjson.dumps(ev)))
            t += rng.randint(500, 2500)
    out.sort(key=lambda p: p[0])
    return [v for _, v in out]


def produce(settings: Settings, values: list[bytes]) -> None:
    producer = Producer(producer_config(settings.kafka))
    topic = settings.topic(topics.PLAYBACK_EVENTS)
    for value in values:
        key = orjson.loads(value)["session_id"]
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0


async def _baseline(settings: Settings, expected: int) -> float:
    from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

    consumer = AIOKafkaConsumer(
        settings.topic(topics.PLAYBACK_EVENTS),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **aiokafka_kwargs(settings.kafka),
    )
    await consumer.start()
    try:
        seen = 0
        started = None
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                if started is None:
                    started = time.perf_counter()
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
        return expected / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await consumer.stop()


def _received(port: int) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    found = re.search(r'^playscope_streams_received_events_total\{stream="qoe"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def _pipeline(settings: Settings, expected: int, timeout_s: float) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        tree = settings.model_dump(mode="json", exclude={"source_file"})
        tree["home"] = tmp
        tree["max_ts_age_s"] = 7 * 86400  # SPEC 4's bound: the workload is dated at the run
        config = Path(tmp) / "playscope.yaml"
        config.write_text(yaml.safe_dump(tree))
        port = 19182 + os.getpid() % 500
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYSCOPE")}
        log = open(Path(tmp) / "worker.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "playscope.cli",
                "streams",
                "--config",
                str(config),
                "--metrics-port",
                str(port),
                "--log-level",
                "WARNING",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout_s
            first = None
            while time.monotonic() < deadline:
                got = _received(port)
                now = time.perf_counter()
                if got > 0 and first is None:
                    first = (now, got)
                if got >= expected:
                    assert first is not None
                    return (got - first[1]) / max(now - first[0], 1e-3)
                time.sleep(0.05)
            raise RuntimeError(f"streams worker processed {_received(port)} of {expected} events in {timeout_s}s")
        finally:
            proc.terminate()
            proc.wait(60)
            log.close()


def run(settings: Settings, quick: bool) -> dict[str, Any]:
    n = 100_000 if quick else 400_000
    values = workload(n)
    produce(settings, values)
    baseline = asyncio.run(_baseline(settings, len(values)))
    rate = _pipeline(settings, len(values), timeout_s=240 if quick else 600)
    return {
        "events_per_s": round(rate),
        "baseline_events_per_s": round(baseline),
        "ratio": round(rate / baseline, 3) if baseline else 0,
        "events": len(values),
        "state": streams_state.run(20_000),  # memory per open session, restore of 20,000 sessions
    }


if __name__ == "__main__":
    import uuid

    from playscope.config import load_settings
    from playscope.provision import ensure_topics

    base = load_settings()
    tag = f"bench-streams-{uuid.uuid4().hex[:6]}"
    staged = base.model_copy(update={"topic_prefix": f"{tag}.", "index_prefix": f"{tag}-"})
    ensure_topics(staged)
    print(orjson.dumps(run(staged, quick="--quick" in sys.argv)).decode())
