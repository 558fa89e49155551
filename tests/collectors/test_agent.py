"""The log agent against the real broker: rotation styles, multi-line, kill -9 accounting."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from collector_helpers import RECENT_TS, read_topic
from helpers import running_collector, wait_for

from collectors.agent.agent import Agent
from collectors.agent.config import AgentConfig, SinkConfig
from collectors.agent.sinks import HttpSink
from playscope import topics
from playscope.config import Settings, load_settings
from playscope.stack.ports import free_port
from playscope.timeparse import ms_to_rfc3339


def _line(i: int) -> bytes:
    return orjson.dumps({"ts": RECENT_TS + i, "message": f"line {i}", "seq": i}) + b"\n"


def _write(path: Path, start: int, count: int) -> None:
    with open(path, "ab") as handle:
        handle.write(b"".join(_line(i) for i in range(start, start + count)))


def _start(agent: Agent) -> threading.Thread:
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    return thread


def _wait_confirmed(agent: Agent, expected: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    from collectors.agent.agent import SENT

    start = SENT._value.get()
    while time.monotonic() < deadline:
        if SENT._value.get() - start >= expected and not agent.in_flight:
            return
        time.sleep(0.1)


def test_rename_and_copytruncate_rotation_exact_accounting(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    logs = tmp_path / "logs"
    logs.mkdir()
    app, edge = logs / "app.log", logs / "edge.log"
    config = AgentConfig(
        inputs=[{"paths": [str(logs / "app.log*")], "service": "app"},
                {"paths": [str(logs / "edge.log*")], "service": "edge"}],
        checkpoint_file=tmp_path / "ckpt.json", batch_lines=100, poll_interval_ms=50, host="h1",
        metrics_port=0,
    )
    agent = Agent(settings, config)
    from collectors.agent.agent import SENT

    start = SENT._value.get()
    thread = _start(agent)
    try:
        _write(app, 0, 300)
        _write(edge, 1000, 300)
        # the files are open and read before they are rotated (a fixed pause was too short on a
        # loaded host)
        wait_for(lambda: SENT._value.get() - start >= 600, 30, "the first 600 lines")
        # rename rotation: lines appended to the renamed file after the rename still count
        os.rename(app, logs / "app.log.1")
        _write(logs / "app.log.1", 300, 50)
        _write(app, 350, 100)
        # copytruncate: copy then truncate in place; then new lines in the truncated file
        _write(edge, 1300, 100)
        shutil.copyfile(edge, logs / "edge.log.1")
        with open(edge, "r+b") as handle:
            handle.truncate(0)
        _write(edge, 1400, 100)
        wait_for(lambda: SENT._value.get() - start >= 950 and not agent.in_flight, 30, "all 950 lines")
    finally:
        agent.stop_event.set()
        thread.join(timeout=40)
    records = read_topic(settings, settings.topic(topics.SERVICE_LOGS), 950, timeout_s=30)
    seqs = Counter(r["seq"] for r in records)
    expected = set(range(0, 450)) | set(range(1000, 1500))
    assert set(seqs) == expected, sorted(expected - set(seqs))[:10]
    assert max(seqs.values()) == 1, "no line may be shipped twice without a restart"
    one = next(r for r in records if r["seq"] == 1000)
    assert one["service"] == "edge" and one["host"] == "h1" and one["_key"] == "edge"
    assert one["source_file"].endswith("edge.log")


def test_multiline_stack_traces_and_dead_letters(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    log_file = tmp_path / "svc.log"
    day = ms_to_rfc3339(RECENT_TS)[:11]  # recent: inside SPEC 4's clock bounds
    log_file.write_text(
        f"{day}01:00:00Z ERROR boom\nTraceback (most recent call last):\n  File x, line 1\n"
        f"ValueError: bad\n{day}01:00:01Z INFO fine\nthis line has no timestamp\n"
        f"{day}01:00:02Z INFO last\n")
    config = AgentConfig(
        inputs=[{"paths": [str(log_file)], "parser": "regex", "service": "svc",
                 "pattern": r"^(?P<ts>\S+Z) (?P<level>[A-Z]+) (?P<message>(?s:.*))",
                 "multiline": {"start": r"^\d{4}-|^this", "timeout_ms": 200}}],
        checkpoint_file=tmp_path / "ckpt.json", batch_lines=10, poll_interval_ms=50, metrics_port=0,
    )
    agent = Agent(settings, config)
    thread = _start(agent)
    _wait_confirmed(agent, 3)  # the last line is held back until the multi-line timeout passes
    agent.stop_event.set()
    thread.join(timeout=40)
    records = read_topic(settings, settings.topic(topics.SERVICE_LOGS), 3)
    messages = sorted(r["message"] for r in records)
    assert messages == ["boom\nTraceback (most recent call last):\n  File x, line 1\nValueError: bad",
                        "fine", "last"]
    dead = read_topic(settings, settings.topic(topics.DEADLETTER), 1)
    assert [d["original"] for d in dead] == ["this line has no timestamp"]
    assert dead[0]["source"] == "agent"


def test_kill_9_and_restart_loses_nothing_and_repeats_at_most_unconfirmed(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings
    log_file = tmp_path / "big.log"
    total, batch, in_flight = 60_000, 500, 2
    _write(log_file, 0, total)
    conf = tmp_path / "agent.yaml"
    conf.write_text(yaml.safe_dump({
        "inputs": [{"paths": [str(log_file)], "service": "big"}],
        "checkpoint_file": str(tmp_path / "ckpt.json"), "batch_lines": batch, "max_in_flight": in_flight,
        "poll_interval_ms": 50, "metrics_port": 0}))
    env = {**os.environ, "PLAYSCOPE__TOPIC_PREFIX": settings.topic_prefix,
           "PLAYSCOPE_KAFKA": settings.kafka.bootstrap}
    cmd = [sys.executable, "-m", "playscope.cli", "agent", "-c", str(conf), "--log-level", "WARNING"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "ckpt.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (ckpt.exists() and orjson.loads(ckpt.read_bytes())["offsets"]):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    first_offsets = orjson.loads(ckpt.read_bytes())["offsets"]
    assert 0 < next(iter(first_offsets.values())) < log_file.stat().st_size, "kill came too late to test"
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        size = log_file.stat().st_size
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if ckpt.exists() and list(orjson.loads(ckpt.read_bytes())["offsets"].values()) == [size]:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    records = read_topic(settings, settings.topic(topics.SERVICE_LOGS), total, timeout_s=60)
    seqs = Counter(r["seq"] for r in records)
    assert set(seqs) == set(range(total)), f"lost {total - len(seqs)} lines"
    repeats = sum(seqs.values()) - total
    # what was shipped but not yet confirmed at the kill: the in-flight batches and the one being built
    assert repeats <= batch * (in_flight + 1), repeats


def test_http_sink_waits_out_a_refusing_collector_and_says_so_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A collector whose broker is not there answers 503 with Retry-After: the sink waits that
    long before it reports the batch failed (so the agent's re-send does not hammer it), says
    so in one line, and reports the collector as not accepting."""
    base = load_settings(environ={})
    settings = base.model_copy(update={"kafka": base.kafka.model_copy(
        update={"bootstrap": f"127.0.0.1:{free_port()}"})})  # nothing listens there
    with running_collector(settings, retry_after_s=1, produce_timeout_s=1) as url:
        wait_for(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 503, 20, "the collector to see no broker")
        sink = HttpSink(settings, SinkConfig(type="http", url=url, timeout_s=10))
        caplog.set_level(logging.INFO, logger="playscope.agent.sink")
        results: list[tuple[bool, float]] = []
        started = time.monotonic()
        try:
            for i in range(3):
                runs = [(settings.topic(topics.SERVICE_LOGS), [{"value": _line(i).strip(), "key": b"svc"}])]
                sink.send(runs, lambda ok: results.append((ok, time.monotonic() - started)))
            wait_for(lambda: len(results) == 3, 30, "three answers")
        finally:
            sink.close(5)
    assert [ok for ok, _t in results] == [False, False, False] and not sink.broker_up
    assert results[-1][1] >= 2.5, "each refusal is waited out for its Retry-After (1 s)"
    refused = [r for r in caplog.records if r.getMessage() == "agent.collector_refused"]
    assert len(refused) == 1
