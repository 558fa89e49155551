"""Agent benchmark: lines/s from a file to Kafka-confirmed checkpoints, next to a bare
confluent-kafka producer in the same run that reads, line by line, a file holding the very
records the agent produced (its lines with ``service``, ``host`` and ``source_file`` added),
so both put the same bytes into Kafka with the same producer settings."""

from __future__ import annotations

import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

from collectors.agent.agent import Agent
from collectors.agent.config import AgentConfig, InputConfig
from collectors.agent.sinks import KafkaSink
from playscope import topics
from playscope.config import Settings
from playscope.kafka import producer_config
from playscope.provision import ensure_topics


def write_log(path: Path, count: int) -> None:
    """JSON log lines like a service writes them, dated an hour ago (the agent refuses a ts
    outside SPEC 4's bounds); the peers' agent run ships the same file."""
    base = int(time.time() * 1000) - 3_600_000
    with open(path, "wb") as handle:
        for start in range(0, count, 10_000):
            handle.write(b"".join(
                orjson.dumps({"ts": base + i, "level": "INFO", "route": "/play", "status": 200,
                              "latency_ms": 12.5, "message": f"GET /play {i}"}) + b"\n"
                for i in range(start, min(count, start + 10_000))))


WARM_UP = orjson.dumps({"ts": int(time.time() * 1000), "service": "bench", "message": "warm-up"})


def baseline(settings: Settings, path: Path) -> tuple[float, float]:
    """Lines/s and CPU microseconds per line (this process) of a bare producer sending ``path``."""
    producer = Producer(producer_config(settings.kafka))
    topic = settings.topic(topics.SERVICE_LOGS)
    producer.produce(topic, WARM_UP, b"bench")
    producer.flush(30)  # connected before timing, as the agent's producer is
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    with open(path, "rb") as handle:
        for line in handle:
            while True:
                try:
                    producer.produce(topic, line.rstrip(b"\n"), b"bench")
                    break
                except BufferError:
                    producer.poll(0.01)
            count += 1
    producer.flush(120)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return count / elapsed, cpu / count * 1e6


def _agent_records(agent: Agent, source: Path, target: Path) -> None:
    """The records the agent ships for ``source``'s lines, one per line, as it serialises them."""
    item = agent.inputs[0]
    with open(source, "rb") as src, open(target, "wb") as out:
        for line in src:
            record = agent._record(item, line.rstrip(b"\n").decode(), str(source))
            out.write(orjson.dumps(record) + b"\n")


def run(settings: Settings, quick: bool) -> dict[str, Any]:
    ensure_topics(settings)
    lines = 100_000 if quick else 500_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.log"
        write_log(path, lines)
        size = path.stat().st_size
        config = AgentConfig(inputs=[InputConfig(paths=[str(path)], service="bench")],
                             checkpoint_file=Path(tmp) / "ckpt.json", metrics_port=0, batch_lines=5000)
        agent = Agent(settings, config)
        assert isinstance(agent.sink, KafkaSink)  # the default sink
        # connected before timing, as the baseline's producer is
        agent.sink.producer.deliver_sync([(settings.topic(topics.SERVICE_LOGS), b"bench", WARM_UP)], 30)
        started, cpu = time.perf_counter(), time.process_time()
        thread = threading.Thread(target=agent.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and list(agent.checkpoints.offsets.values()) != [size]:
            time.sleep(0.01)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        agent.stop_event.set()
        thread.join(timeout=60)
        rate = lines / elapsed
        shipped = Path(tmp) / "shipped.ndjson"
        _agent_records(agent, path, shipped)
        base, base_cpu_us = baseline(settings, shipped)
    return {"lines_per_s": round(rate), "baseline_lines_per_s": round(base), "ratio": round(rate / base, 3),
            "agent_cpu_us_per_line": round(cpu / lines * 1e6, 2), "baseline_cpu_us_per_line": round(base_cpu_us, 2)}


if __name__ == "__main__":
    from playscope.config import load_settings

    staged = load_settings().model_copy(update={"topic_prefix": f"bench-agent-{uuid.uuid4().hex[:6]}."})
    print(orjson.dumps(run(staged, quick="--quick" in sys.argv)).decode())
