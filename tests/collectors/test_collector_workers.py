"""``playscope collector --workers N``: several processes on one port, against the real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from collector_helpers import RECENT_TS, read_topic

from bench.collector import child_pids, start_collector
from collectors.http.spool import adopt_orphans, worker_directory
from playscope import topics
from playscope.config import Settings
from playscope.stack.ports import free_port

TS = RECENT_TS


def _start(settings: Settings, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    return start_collector(settings, workers, log=log)


def _children(pid: int) -> set[int]:
    return set(child_pids(pid))


def _post(port: int, start: int, count: int) -> httpx.Response:
    events = [{"event_id": f"w-{i}", "session_id": f"s{i % 7}", "ts": TS + i, "type": "heartbeat"}
              for i in range(start, start + count)]
    # a fresh connection per request, so the kernel spreads them over the workers
    return httpx.post(f"http://127.0.0.1:{port}/v1/events", json=[*events, {"type": "nope"}], timeout=30)


def _metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_workers_share_the_port_sum_metrics_and_survive_a_killed_worker(
        kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    proc, port = _start(settings, 2, tmp_path / "collector.log")
    try:
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        for batch in range(20):
            answer = _post(port, batch * 10, 10)
            assert answer.status_code == 202 and answer.json()["accepted"] == 10, answer.text
        # every scrape sees the sum over both workers, whichever of them answers it
        for _ in range(4):
            assert _metric(port, 'playscope_collector_sent_events_total{endpoint="events"}') == 200
            assert _metric(port, "playscope_collector_rejected_events_total") == 20

        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (victim in _children(proc.pid) or len(_children(proc.pid)) < 2):
            time.sleep(0.2)
        replaced = _children(proc.pid)
        assert len(replaced) == 2 and victim not in replaced, replaced
        for batch in range(20, 30):
            answer = _post(port, batch * 10, 10)
            assert answer.status_code == 202, answer.text
        # the dead worker's counts stay in the sum
        assert _metric(port, 'playscope_collector_sent_events_total{endpoint="events"}') == 300
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in replaced), "workers outlived the parent"
    records = read_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), 300)
    assert sorted(int(r["event_id"][2:]) for r in records) == list(range(300))
    dead = read_topic(settings, settings.topic(topics.DEADLETTER), 30)
    assert len(dead) == 30


def test_workers_stop_when_the_supervisor_is_killed(kafka_settings: Settings, tmp_path: Path) -> None:
    proc, port = _start(kafka_settings, 2, tmp_path / "collector.log")
    workers = _children(proc.pid)
    assert len(workers) == 2
    assert _post(port, 0, 5).status_code == 202
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.2)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "orphaned workers kept running"


def test_bad_worker_count_is_refused(kafka_settings: Settings, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "playscope.cli", "collector", "--workers", "0"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PLAYSCOPE_KAFKA": kafka_settings.kafka.bootstrap})
    assert done.returncode != 0
    assert "--workers" in done.stderr


def test_config_errors_stop_the_start_instead_of_a_restart_loop(kafka_settings: Settings, tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text("applications: [{name: web}]\n")  # no key_sha256
    done = subprocess.run([sys.executable, "-m", "playscope.cli", "collector", "--workers", "2",
                           "--port", str(free_port())], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PLAYSCOPE_KAFKA": kafka_settings.kafka.bootstrap,
                               "PLAYSCOPE__COLLECTOR__KEYS_FILE": str(keys)})
    assert done.returncode != 0
    assert "collector.keys_file" in done.stderr
    assert "worker_started" not in done.stderr


@pytest.mark.parametrize("before,after", [(3, 1), (4, 2)])
def test_spool_segments_of_removed_workers_are_adopted(tmp_path: Path, before: int, after: int) -> None:
    base = tmp_path / "spool"
    written: dict[int, list[bytes]] = {}
    for index in range(before):
        folder = worker_directory(base, index)
        folder.mkdir(parents=True, exist_ok=True)
        written[index] = [f"w{index}-s{n}\n".encode() for n in range(2)]
        for n, data in enumerate(written[index]):
            (folder / f"spool-{n:012d}.ndjson").write_bytes(data)
    moved = adopt_orphans(base, after)
    assert moved == 2 * (before - after)
    for index in range(after):
        segments = sorted(worker_directory(base, index).glob("spool-*.ndjson"))
        contents = [s.read_bytes() for s in segments]
        expected = list(written[index])
        for orphan in range(after, before):
            if orphan % after == index:
                expected += written[orphan]
        assert contents == expected  # own segments first, then the orphan's, each in order
    assert not any((base / f"worker-{i}").exists() for i in range(after, before))
