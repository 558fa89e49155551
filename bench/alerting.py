"""Alert detection latency (SPEC 11): from producing the window record that crosses a threshold
to the webhook notification arriving at a local receiver.

The evaluator runs with its defaults (one transaction per batch, notification after commit)
and a ``for: 1`` rule; each probe is a breaching window of a new CDN, so each fires once. The
baseline, measured in the same run over the same broker and receiver, is the raw path: a plain
consumer that POSTs every record it reads to the receiver. ``ratio`` is evaluator / baseline.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from alerts.config import AlertsConfig
from alerts.loader import load_rules
from alerts.service import AlertService
from playscope import topics
from playscope.config import Settings
from playscope.kafka import consumer_config, producer_config
from playscope.provision import ensure_topics

W = 60_000


class _Arrivals:
    """A local HTTP receiver noting when each probe (by cdn) arrived."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        arrivals = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
                group = body.get("group")
                cdn = group.get("cdn") if isinstance(group, dict) else body.get("cdn")  # alert or raw window
                arrivals.at.setdefault(str(cdn), time.perf_counter())
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _window(cdn: str, i: int) -> dict[str, Any]:
    start = (int(time.time() * 1000) // W - 5 + i % 3) * W
    return {"window_start": start, "window_end": start + W, "group": "cdn", "cdn": cdn,
            "attempts": 100, "rebuffer_ratio": 0.5}  # fmt: skip


def _probe(ns: Settings, arrivals: _Arrivals, samples: int, tag: str) -> list[float]:
    producer = Producer(producer_config(ns.kafka, **{"linger.ms": 0}))
    topic = ns.topic(topics.QOE_METRICS)
    latencies = []
    for i in range(samples):
        cdn = f"{tag}-{i}"
        sent = time.perf_counter()
        producer.produce(topic, key=cdn.encode(), value=orjson.dumps(_window(cdn, i)))
        producer.flush(10)
        deadline = time.monotonic() + 30
        while cdn not in arrivals.at and time.monotonic() < deadline:
            time.sleep(0.002)
        if cdn not in arrivals.at:
            raise RuntimeError(f"no notification for probe {cdn} within 30 s")
        latencies.append(arrivals.at[cdn] - sent)
        time.sleep(0.3)
    return latencies


def _raw_forwarder(ns: Settings, url: str, stop: threading.Event, ready: threading.Event) -> None:
    """The baseline: read the topic, POST each record as it comes."""
    topic = ns.topic(topics.QOE_METRICS)
    consumer = Consumer(consumer_config(ns.kafka, ns.group("bench.raw")))
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])  # a fresh topic
    with httpx.Client(timeout=10) as http:
        consumer.consume(1, 0.5)
        ready.set()
        while not stop.is_set():
            for msg in consumer.consume(100, 0.05):
                if not msg.error():
                    http.post(url, content=msg.value(), headers={"content-type": "application/json"})
    consumer.close()


def _in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def _namespace(settings: Settings, name: str) -> Settings:
    tag = f"bench-alerting-{name}-{uuid.uuid4().hex[:6]}"
    ns = settings.model_copy(update={"topic_prefix": f"{tag}.", "index_prefix": f"{tag}-"})
    ensure_topics(ns, partitions=3)
    return ns


def run(settings: Settings, quick: bool = False) -> dict[str, Any]:
    samples = 5 if quick else 20
    arrivals = _Arrivals()
    raw_ns, ns = _namespace(settings, "raw"), _namespace(settings, "eval")
    try:
        # baseline: consume + POST, nothing else
        stop, ready = threading.Event(), threading.Event()
        forwarder = _in_thread(lambda: _raw_forwarder(raw_ns, arrivals.url, stop, ready))
        ready.wait(30)
        baseline = _probe(raw_ns, arrivals, samples, "raw")
        stop.set()
        forwarder.join(10)

        with tempfile.TemporaryDirectory() as tmp:
            rules = Path(tmp) / "rules.yaml"
            rules.write_text(
                f'channels:\n  hook: {{type: webhook, url: "{arrivals.url}"}}\n'
                "rules:\n  - {name: bench, source: qoe, metric: rebuffer_ratio, group_by: [cdn],"
                " op: '>', threshold: 0.05, notify: [hook]}\n"
            )
            service = AlertService(ns, load_rules(rules), AlertsConfig())
            thread = _in_thread(lambda: asyncio.run(service.run()))
            if not service.ready.wait(60):
                raise RuntimeError("evaluator did not start")
            try:
                detect = _probe(ns, arrivals, samples, "eval")
            finally:
                service.stop()
                thread.join(30)
    finally:
        arrivals.close()
    detect_s = statistics.median(detect)
    baseline_s = statistics.median(baseline)
    return {
        "detect_latency_s": round(detect_s, 4),
        "detect_latency_max_s": round(max(detect), 4),
        "baseline_latency_s": round(baseline_s, 4),
        "ratio": round(detect_s / baseline_s, 2) if baseline_s else None,
        "samples": samples,
    }


if __name__ == "__main__":
    from playscope.config import load_settings

    print(json.dumps(run(load_settings(), quick=True)))
