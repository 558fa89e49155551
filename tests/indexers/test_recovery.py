"""Outages and crashes: Elasticsearch stopped ~30 s mid-stream, the indexer killed -9 and
restarted; the final count equals the unique records produced, and SIGTERM exits cleanly.

Uses an Elasticsearch of its own (never the shared one) and the indexer as a real process.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from playscope import topics
from playscope.config import Settings

from .helpers import committed_equals_end, count, produce, wait_for
from .helpers import indexer_process as _indexer_process
from .helpers import metric as _metric
from .helpers import metrics_port as _metrics_port

pytestmark = pytest.mark.slow


def test_es_outage_and_kill_minus_9_lose_and_duplicate_nothing(settings: Settings, tmp_path: Path) -> None:
    from elasticsearch import Elasticsearch

    from playscope.stack.servers import ElasticsearchServer

    # Not under tmp_path: as root the server runs as a service user, which cannot traverse
    # pytest's 0700 base directory; a fresh directory directly under /tmp is reachable.
    es_home = Path(tempfile.mkdtemp(prefix="playscope-test-es-"))
    server = ElasticsearchServer.on_free_ports(es_home)
    server.heap = "512m"
    server.start()
    try:
        server.wait_healthy(timeout_s=180)
        config = tmp_path / "playscope.yaml"
        config.write_text(yaml.safe_dump({
            "kafka": {"bootstrap": settings.kafka.bootstrap},
            "elasticsearch": {"url": server.url, "request_timeout_s": 5},
            "topic_prefix": settings.topic_prefix,
            "index_prefix": settings.index_prefix,
            "indexer": {"batch_max_docs": 500, "batch_max_wait_s": 0.2, "retry_initial_s": 0.2,
                        "retry_max_s": 2.0, "shutdown_timeout_s": 20},
        }))
        log = tmp_path / "indexer.log"
        unique = 12_000
        events = [{"event_id": f"e{i}", "session_id": f"s{i % 50}", "ts": 1_700_000_000_000 + i,
                   "type": "heartbeat"} for i in range(unique)]
        # every 10th event sent twice: the final count must still be `unique`
        stream = [e for i, e in enumerate(events) for _ in range(2 if i % 10 == 0 else 1)]

        def feed() -> None:  # about 60 s of traffic in 60 slices
            step = len(stream) // 60 + 1
            for start in range(0, len(stream), step):
                produce(settings, topics.PLAYBACK_EVENTS, stream[start:start + step],
                        key=lambda r: r["session_id"].encode())
                time.sleep(1.0)

        producer = threading.Thread(target=feed, daemon=True)
        producer.start()
        first = _indexer_process(config, log)
        client: Any = Elasticsearch(server.url, request_timeout=10)
        pattern = f"{settings.index_prefix}playscope-playback-*"
        wait_for(lambda: count(client, pattern) > 1000, 90, "the first documents")

        server.stop()  # outage: the indexer must retry, pause reading and keep everything
        port = _metrics_port(log, 0)
        time.sleep(30)
        assert _metric(port, "playscope_indexer_paused") == 1.0
        assert _metric(port, 'playscope_indexer_errors_total{error_type="unavailable"}') > 0
        server.start()
        server.wait_healthy(timeout_s=180)

        wait_for(lambda: count(client, pattern) > 6000, 120, "indexing to resume")
        first.kill()  # SIGKILL mid-stream: uncommitted records are read again, ids dedupe them
        first.wait(10)
        offset = log.stat().st_size
        second = _indexer_process(config, log)
        producer.join(120)
        assert not producer.is_alive()
        wait_for(lambda: committed_equals_end(settings, topics.PLAYBACK_EVENTS), 120, "all committed")
        assert count(client, pattern) == unique
        lag = 'playscope_indexer_consumer_lag{family="playback"}'
        port = _metrics_port(log, offset)
        wait_for(lambda: _metric(port, lag) == 0.0, 20, "consumer lag 0")

        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
        assert b'"indexer.stopped"' in log.read_bytes()[offset:]
        assert count(client, pattern) == unique
        client.close()
    finally:
        server.stop()
        shutil.rmtree(es_home, ignore_errors=True)
        log_file = tmp_path / "indexer.log"
        if os.environ.get("PLAYSCOPE_KEEP_LOGS") and log_file.exists():
            print(log_file.read_text()[-5000:])
