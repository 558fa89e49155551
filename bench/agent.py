"""Agent benchmark: lines/s from a file to Kafka-confirmed checkpoints, next to a bare
confluent-kafka producer sending the same lines from the same file in the same run."""

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
from collectors.agent.config import AgentConfig
from playscope import topics
from playscope.config import Settings
from playscope.kafka import producer_config
from playscope.stack.provision import ensure_topics


def _write(path: Path, count: int) -> None:
    with open(path, "wb") as handle:
        for start in range(0, count, 10_000):
            handle.write(b"".join(
                orjson.dumps({"ts": 1_795_307_712_000 + i, "level": "INFO", "route": "/play", "status": 200,
                              "latency_ms": 12.5, "message": f"GET /play {i}"}) + b"\n"
                for i in range(start, min(count, start + 10_000))))


def baseline(settings: Settings, path: Path) -> float:
    producer = Producer(producer_config(settings.kafka))
    topic = settings.topic(topics.SERVICE_LOGS)
    started = time.perf_counter()
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
    return count / (time.perf_counter() - started)


def run(settings: Settings, quick: bool) -> dict[str, Any]:
    ensure_topics(settings)
    lines = 100_000 if quick else 500_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.log"
        _write(path, lines)
        size = path.stat().st_size
        config = AgentConfig(inputs=[{"paths": [str(path)], "service": "bench"}],
                             checkpoint_file=Path(tmp) / "ckpt.json", metrics_port=0, batch_lines=5000)
        agent = Agent(settings, config)
        started = time.perf_counter()
        thread = threading.Thread(target=agent.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and list(agent.checkpoints.offsets.values()) != [size]:
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        agent.stop_event.set()
        thread.join(timeout=60)
        rate = lines / elapsed
        base = baseline(settings, path)
    return {"lines_per_s": round(rate), "baseline_lines_per_s": round(base), "ratio": round(rate / base, 3)}


if __name__ == "__main__":
    from playscope.config import load_settings

    staged = load_settings().model_copy(update={"topic_prefix": f"bench-agent-{uuid.uuid4().hex[:6]}."})
    print(orjson.dumps(run(staged, quick="--quick" in sys.argv)).decode())
