"""The agent's HTTP sink against a real collector and the shared broker: its own dead letters are
not posted as if they were logs, and a 413 splits the batch (the one record still too large
becomes a dead letter with the reason) instead of being retried for ever."""

from __future__ import annotations

from pathlib import Path

import orjson
from collector_helpers import RECENT_TS, read_topic
from helpers import running_collector, wait_for
from test_agent_hostile import Running

from collectors.agent.config import AgentConfig
from playscope import topics
from playscope.config import Settings


def _line(seq: int, message: str = "") -> bytes:
    return orjson.dumps({"ts": RECENT_TS + seq, "message": message or f"line {seq}", "seq": seq}) + b"\n"


def test_http_sink_keeps_its_dead_letters_and_splits_on_413(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    log_file = tmp_path / "app.log"
    letters = tmp_path / "deadletter.ndjson"
    # 200 small lines (16 KB in all, twice the collector's body limit), a line of 20 KB that no
    # body may hold, and a line no parser reads
    log_file.write_bytes(b"".join(_line(i) for i in range(100)) + _line(100, "z" * 20_000)
                         + b"this is not JSON\n" + b"".join(_line(i) for i in range(101, 201)))
    with running_collector(settings, max_body_bytes=8192) as url:
        config = AgentConfig.model_validate({
            "inputs": [{"paths": [str(log_file)], "service": "app"}], "checkpoint_file": tmp_path / "ckpt.json",
            "batch_lines": 500, "poll_interval_ms": 50, "metrics_port": 0,
            "sink": {"type": "http", "url": url, "timeout_s": 10, "deadletter_file": str(letters)}})
        run = Running(settings, config)
        try:
            run.wait_confirmed(202, timeout_s=40)
        finally:
            run.stop()
    records = read_topic(settings, settings.topic(topics.SERVICE_LOGS), 200)
    assert sorted(r["seq"] for r in records) == [i for i in range(201) if i != 100]
    # nothing reached the collector as a log that was a dead letter: it dead-lettered nothing
    assert read_topic(settings, settings.topic(topics.DEADLETTER), 0, timeout_s=3) == []
    kept = [orjson.loads(line) for line in letters.read_bytes().splitlines()]
    assert len(kept) == 2, kept
    by_reason = {("413" in k["reason"]): k for k in kept}
    assert by_reason[False]["original"] == "this is not JSON" and "not a JSON line" in by_reason[False]["reason"]
    assert by_reason[True]["source"] == "agent" and orjson.loads(by_reason[True]["original"])["seq"] == 100
    wait_for(lambda: not run.agent.in_flight, 5, "no batch left")
