"""End-to-end freshness (SPEC 11): from produce to searchable, through Kafka and the indexer.

Playback events are produced at a fixed offered rate while the indexer runs with its default
configuration (and the templates' default refresh interval). Every 50th event is a probe: its
send time is noted, and a poller searches for outstanding probes by id every 50 ms; a probe's
latency is the time from send to the first search that finds it. The offered rate is what was
asked for; ``achieved_events_per_s`` is what the producer really sent.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson

from bench.indexer_common import bench_namespace, running
from indexers.backends import backend_for
from playscope import topics
from playscope.config import Settings
from playscope.kafka import producer_config

PROBE_EVERY = 50
POLL_S = 0.05
TICK_S = 0.01


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Probes:
    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.lock = threading.Lock()

    def add(self, doc_id: str, at: float) -> None:
        with self.lock:
            self.sent[doc_id] = at

    def outstanding(self, limit: int = 2000) -> list[str]:
        with self.lock:
            return list(self.sent)[:limit]

    def found(self, ids: list[str], at: float) -> None:
        with self.lock:
            for doc_id in ids:
                sent = self.sent.pop(doc_id, None)
                if sent is not None:
                    self.latencies.append((at - sent) * 1000)


def _produce(ns: Settings, rate: int, duration_s: float, probes: Probes) -> int:
    from confluent_kafka import Producer

    producer = Producer(producer_config(ns.kafka, **{"linger.ms": 2}))
    name = ns.topic(topics.PLAYBACK_EVENTS)
    per_tick = rate * TICK_S
    start = time.time()
    sent = 0
    owed = 0.0
    while (now := time.time()) - start < duration_s:
        owed = rate * (now - start) - sent
        for _ in range(int(min(owed, per_tick * 10))):
            ts = time.time()
            event_id = f"f{sent}"
            ev = {"event_id": event_id, "session_id": f"s{sent % 2000}", "ts": int(ts * 1000),
                  "type": "heartbeat", "cdn": f"cdn{sent % 4}", "bitrate_kbps": 4500}
            producer.produce(name, orjson.dumps(ev), key=f"s{sent % 2000}".encode())
            if sent % PROBE_EVERY == 0:
                probes.add(event_id, ts)
            sent += 1
        producer.poll(0)
        time.sleep(TICK_S)
    producer.flush(60)
    return sent


def _poll(ns: Settings, probes: Probes, stop: threading.Event) -> None:
    backend = backend_for(ns)
    client: Any = getattr(backend, "client")  # noqa: B009 - both backends expose their client
    pattern = f"{ns.index_prefix}playscope-playback-*"
    while not stop.is_set():
        ids = probes.outstanding()
        if ids:
            try:
                resp = client.search(index=pattern, body={"query": {"ids": {"values": ids}},
                                                          "size": len(ids), "_source": False},
                                     ignore_unavailable=True, allow_no_indices=True)
                at = time.time()
                probes.found([h["_id"] for h in resp["hits"]["hits"]], at)
            except Exception:  # an index not created yet, a slow answer: poll again
                pass
        stop.wait(POLL_S)
    backend.close()


def run(settings: Settings, quick: bool = False) -> dict[str, Any]:
    rate = 10_000  # the target rate in both modes; quick only runs shorter
    duration_s = 15.0 if quick else 60.0
    probes = Probes()
    with bench_namespace(settings, "freshness") as ns, running(ns, families=("playback",)) as indexer:
        warm = Probes()
        stop = threading.Event()
        poller = threading.Thread(target=_poll, args=(ns, warm, stop), daemon=True)
        poller.start()
        _produce(ns, 50, 1.0, warm)  # consumer group joined and indices created before timing
        deadline = time.time() + 60
        while warm.sent and time.time() < deadline:
            time.sleep(0.1)
        stop.set()
        poller.join()
        stop = threading.Event()
        poller = threading.Thread(target=_poll, args=(ns, probes, stop), daemon=True)
        poller.start()
        started = time.time()
        sent = _produce(ns, rate, duration_s, probes)
        elapsed = time.time() - started
        deadline = time.time() + 60
        while probes.sent and time.time() < deadline:
            time.sleep(0.1)
        stop.set()
        poller.join()
        stored = indexer.stored_total
    if not probes.latencies:
        raise RuntimeError("no probe became searchable")
    return {
        "offered_events_per_s": rate,
        "achieved_events_per_s": round(sent / elapsed),
        "p50_ms": round(_percentile(probes.latencies, 0.50)),
        "p99_ms": round(_percentile(probes.latencies, 0.99)),
        "max_ms": round(max(probes.latencies)),
        "probes": len(probes.latencies),
        "probes_missing": len(probes.sent),
        "events": sent,
        "documents_stored": stored,
        "duration_s": duration_s,
        "backend": settings.backend,
    }


if __name__ == "__main__":
    import sys

    from playscope.config import load_settings

    print(orjson.dumps(run(load_settings(), quick="--quick" in sys.argv)).decode())
