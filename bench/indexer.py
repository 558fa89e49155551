"""Indexer throughput (SPEC 11): docs/s through ``playscope indexer`` against a bare
``helpers.streaming_bulk`` of the same pre-built documents, in the same run.

The baseline is the faster of ``streaming_bulk`` and a ``parallel_bulk`` with as many threads as
the indexer has senders, each run once before and once after the indexer and averaged.
Both write the same documents (playback events, ids = event_id) into indices of the same
template on the configured backend. The indexer reads them from Kafka, where they were produced
before the clock starts; its time runs from the first record read to the last one stored
(the consumer-group join before it is reported separately as ``startup_s``).
The same records also give their stored size: bytes per record in the events topic's log
segments (local broker only) and per document in the indexer's primary shards, which
``playscope capacity`` sizes disk from.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson

from bench.indexer_common import bench_namespace, running
from indexers.backends import backend_for
from indexers.config import IndexerConfig
from playscope import topics
from playscope.config import Settings
from playscope.indices import FAMILIES
from playscope.kafka import producer_config

CHUNK = 5000
CPU_S: dict[str, float] = {}  # client process CPU seconds per contender, summed over its runs


def make_events(count: int, base_ts: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"bench-{i}",
            "session_id": f"s{i % 5000}",
            "ts": base_ts + i,
            "type": "heartbeat",
            "device": "tv",
            "os": "tizen",
            "cdn": f"cdn{i % 4}",
            "isp": f"isp{i % 20}",
            "country": "DE",
            "title_id": f"t{i % 300}",
            "bitrate_kbps": 3000 + i % 4000,
            "buffer_ms": 12000,
            "position_ms": i * 10,
        }
        for i in range(count)
    ]


def _produce(ns: Settings, events: list[dict[str, Any]]) -> None:
    from confluent_kafka import Producer

    producer = Producer(producer_config(ns.kafka))
    name = ns.topic(topics.PLAYBACK_EVENTS)
    for ev in events:
        while True:
            try:
                producer.produce(name, orjson.dumps(ev), key=ev["session_id"].encode())
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("benchmark records were not all delivered to Kafka")


def _baseline(ns: Settings, events: list[dict[str, Any]], run_no: int, parallel: bool) -> float:
    """Seconds for a bare streaming_bulk (or a parallel_bulk) of the same documents."""
    backend = backend_for(ns)
    client: Any = getattr(backend, "client")  # noqa: B009 - both backends expose their client
    if ns.backend == "opensearch":
        from opensearchpy.helpers import parallel_bulk, streaming_bulk
    else:
        from elasticsearch.helpers import parallel_bulk, streaming_bulk  # type: ignore[assignment]
    family = FAMILIES["playback"]
    prefix = f"{ns.index_prefix}base{run_no}{'p' if parallel else 's'}-"  # same template, own indices
    backend.install_templates(prefix)
    actions = [
        {"_index": family.index_for(ev, prefix), "_id": ev["event_id"], "_source": ev}
        for ev in events
    ]
    started = time.perf_counter()
    cpu_started = time.process_time()
    if parallel:
        threads = IndexerConfig().senders  # as many concurrent requests as the indexer makes
        results = parallel_bulk(client, actions, thread_count=threads, chunk_size=CHUNK, raise_on_error=True)
    else:
        results = streaming_bulk(client, actions, chunk_size=CHUNK, raise_on_error=True)
    ok = sum(1 for good, _ in results if good)
    elapsed = time.perf_counter() - started
    CPU_S["parallel_bulk" if parallel else "streaming_bulk"] += time.process_time() - cpu_started
    backend.close()
    if ok != len(events):
        raise RuntimeError(f"baseline stored {ok} of {len(events)}")
    return elapsed


def _through_indexer(ns: Settings, total: int) -> tuple[float, float]:
    """(seconds from first record read to last stored, seconds before the first record)."""
    begun = time.perf_counter()
    cpu_started = time.process_time()
    with running(ns, batch_max_docs=CHUNK, families=("playback",)) as indexer:
        first = None
        deadline = begun + 600
        while time.perf_counter() < deadline:
            now = time.perf_counter()
            if first is None and indexer.metrics.value("playscope_indexer_received_events_total",
                                                       {"family": "playback"}) > 0:
                first = now
            if indexer.stored_total >= total:
                CPU_S["indexer"] += time.process_time() - cpu_started
                return now - (first or begun), (first or begun) - begun
            time.sleep(0.005)
    raise RuntimeError(f"indexer stored {indexer.stored_total} of {total} in time")


def _stored_sizes(ns: Settings, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Bytes per record as stored, for disk sizing: the events topic's log segments (readable only
    when the broker is the local stack's single node) and the primary store of the indices the
    indexer wrote (refreshed first, so every document is counted)."""
    source = sum(len(orjson.dumps(ev)) for ev in events) / len(events)
    sizes: dict[str, Any] = {"source_bytes_per_doc": round(source, 1), "host_cpus": os.cpu_count() or 1}
    topic_dir = Path(ns.home) / "kafka" / "data"
    segments = list(topic_dir.glob(f"{ns.topic(topics.PLAYBACK_EVENTS)}-*/*.log"))
    if segments:
        sizes["kafka_bytes_per_event"] = round(sum(p.stat().st_size for p in segments) / len(events), 1)
    backend = backend_for(ns)
    client: Any = getattr(backend, "client")  # noqa: B009 - both backends expose their client
    names = ",".join(sorted({FAMILIES["playback"].index_for(ev, ns.index_prefix) for ev in events}))
    client.indices.refresh(index=names)
    primaries = client.indices.stats(index=names)["_all"]["primaries"]
    if primaries["docs"]["count"]:
        sizes["store_bytes_per_doc"] = round(primaries["store"]["size_in_bytes"] / primaries["docs"]["count"], 1)
    backend.close()
    return sizes


def run(settings: Settings, quick: bool = False) -> dict[str, Any]:
    count = 60_000 if quick else 300_000
    base_ts = int(time.time() * 1000) - count
    events = make_events(count, base_ts)
    CPU_S.clear()
    CPU_S.update({"indexer": 0.0, "streaming_bulk": 0.0, "parallel_bulk": 0.0})
    with bench_namespace(settings, "indexer") as ns:
        _produce(ns, events)
        # baseline before and after the indexer, averaged: drift in a shared machine's load
        # (merges, other processes) then weighs on both sides alike
        before = (_baseline(ns, events, 1, False), _baseline(ns, events, 1, True))
        indexer_s, startup_s = _through_indexer(ns, count)
        sizes = _stored_sizes(ns, events)
        after = (_baseline(ns, events, 2, False), _baseline(ns, events, 2, True))
    streaming_s = (before[0] + after[0]) / 2
    parallel_s = (before[1] + after[1]) / 2
    baseline_s = min(streaming_s, parallel_s)  # the faster bare client is the bar
    docs_per_s = count / indexer_s
    baseline_docs_per_s = count / baseline_s
    return {
        "docs_per_s": round(docs_per_s),
        "baseline_docs_per_s": round(baseline_docs_per_s),
        "ratio": round(docs_per_s / baseline_docs_per_s, 3),
        "streaming_bulk_docs_per_s": round(count / streaming_s),
        "parallel_bulk_docs_per_s": round(count / parallel_s),
        # client-side CPU per document (all threads of this process): the indexer's own cost
        "cpu_us_per_doc": {k: round(v / count / (1 if k == "indexer" else 2) * 1e6, 1)
                           for k, v in CPU_S.items()},
        "documents": count,
        "backend": settings.backend,
        "startup_s": round(startup_s, 2),
        **sizes,
    }


if __name__ == "__main__":
    import sys

    from playscope.config import load_settings

    print(orjson.dumps(run(load_settings(), quick="--quick" in sys.argv)).decode())
