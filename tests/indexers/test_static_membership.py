"""An indexer killed with SIGKILL and started again with the same command takes its partitions
back at once (static group membership), instead of waiting out the dead member's session.

The session timeout is 45 s here, so without static membership the restarted indexer could not
index anything new for 45 s: the bound asserted (30 s, generous for this shared machine) fails
without it. The figure measured goes to indexers/README.md.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from playscope import topics
from playscope.config import Settings

from .helpers import count, indexer_process, produce, wait_for

pytestmark = pytest.mark.slow


def events(prefix: str, n: int) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [{"event_id": f"{prefix}{i}", "session_id": f"s{i % 20}", "ts": now + i, "type": "heartbeat"}
            for i in range(n)]


def test_a_killed_indexer_restarted_takes_its_partitions_back_at_once(settings: Settings, es: Any,
                                                                       tmp_path: Path) -> None:
    config = tmp_path / "playscope.yaml"
    config.write_text(yaml.safe_dump({
        "kafka": {"bootstrap": settings.kafka.bootstrap, "session_timeout_s": 45},
        "elasticsearch": {"url": settings.elasticsearch.url},
        "topic_prefix": settings.topic_prefix,
        "index_prefix": settings.index_prefix,
        "indexer": {"batch_max_wait_s": 0.2, "families": ["playback"]},
    }))
    pattern = f"{settings.index_prefix}playscope-playback-*"
    log = tmp_path / "indexer.log"
    first = indexer_process(config, log)
    second = None
    try:
        produce(settings, topics.PLAYBACK_EVENTS, events("a", 500), key=lambda r: r["session_id"].encode())
        wait_for(lambda: count(es, pattern) == 500, 90, "the first records indexed")
        first.kill()
        first.wait(10)
        restarted = time.monotonic()
        second = indexer_process(config, log)
        produce(settings, topics.PLAYBACK_EVENTS, events("b", 500), key=lambda r: r["session_id"].encode())
        wait_for(lambda: count(es, pattern) == 1000, 90, "the new records indexed after the restart")
        recovered_s = time.monotonic() - restarted
        print(f"restarted indexer stored new records {recovered_s:.1f} s after it was started")
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    text = log.read_text(errors="replace")
    assert text.count('"indexer.started"') == 2 and '"member":"' in text
    assert '"kafka.left_group"' in text  # the clean stop left the group explicitly
    assert recovered_s < 30, f"{recovered_s:.0f} s: the partitions waited for the dead member's session"
