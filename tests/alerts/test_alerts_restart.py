"""kill -9 of the evaluator process: no duplicate firing, no lost resolve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from alerts_helpers import QOE, Receiver, produce, qoe_window, read_topic, wait_for, write_rules

from playscope import topics
from playscope.config import Settings

RULES = """
channels:
  oncall: {{type: webhook, url: "{url}/hook"}}
rules:
  - name: cdn-rebuffering
    source: qoe
    metric: rebuffer_ratio
    group_by: [cdn]
    op: ">"
    threshold: 0.05
    for: 2
    notify: [oncall]
"""


def start_evaluator(
    settings: Settings, rules: Path, tmp_path: Path, n: int
) -> tuple[subprocess.Popen[bytes], Path]:
    config = tmp_path / "playscope.yaml"
    config.write_text(yaml.safe_dump({
        "kafka": {"bootstrap": settings.kafka.bootstrap},
        "topic_prefix": settings.topic_prefix,
        "index_prefix": settings.index_prefix,
        "alerts": {"metrics_port": 0, "retry_initial_s": 0.2, "retry_max_s": 1.0, "tick_interval_s": 0.2},
    }))  # fmt: skip
    log = tmp_path / f"evaluator{n}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYSCOPE")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "playscope.cli", "alerts", "-r", str(rules), "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"), env=env,
    )  # fmt: skip
    wait_for(lambda: "alerts.started" in log.read_text() or proc.poll() is not None, 60, "evaluator start")
    assert proc.poll() is None, log.read_text()[-3000:]
    return proc, log


def kill9(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_kill9_neither_duplicates_firing_nor_loses_resolve(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings
    receiver = Receiver().start()
    rules = write_rules(tmp_path, RULES.format(url=receiver.url))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        first, _ = start_evaluator(settings, rules, tmp_path, 1)
        procs.append(first)
        produce(settings, QOE, [qoe_window(0, "a", 0.2), qoe_window(1, "a", 0.2)])
        wait_for(lambda: receiver.bodies("/hook"), 30, "firing")
        # Delivery is recorded in the state a few ms after the channel answered; a crash inside
        # that gap re-sends with the same notification id (receivers drop it), see README.
        time.sleep(1.0)
        kill9(first)

        second, _ = start_evaluator(settings, rules, tmp_path, 2)
        procs.append(second)
        # the same windows again (an upstream restart re-emits them) and one more breaching window
        produce(settings, QOE, [qoe_window(0, "a", 0.2), qoe_window(1, "a", 0.2), qoe_window(2, "a", 0.2)])
        time.sleep(3)
        assert [h["status"] for h in receiver.bodies("/hook")] == ["firing"]

        receiver.stop()  # the channel is down when the condition clears ...
        produce(settings, QOE, [qoe_window(3, "a", 0.0)])
        wait_for(lambda: any(e["status"] == "resolved" for e in read_topic(settings, topics.ALERTS, 2)),
                 30, "the resolved state change")  # fmt: skip
        kill9(second)  # ... and the evaluator dies before it could tell anyone

        receiver.start()
        third, _ = start_evaluator(settings, rules, tmp_path, 3)
        procs.append(third)
        wait_for(lambda: len(receiver.bodies("/hook")) >= 2, 30, "the resolve delivered after restart")
        time.sleep(1.5)
        third.send_signal(signal.SIGTERM)
        assert third.wait(30) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                kill9(proc)
        receiver.stop()
    hooks = receiver.bodies("/hook")
    assert [h["status"] for h in hooks] == ["firing", "resolved"]
    assert hooks[0]["notification_id"] != hooks[1]["notification_id"]
    events = read_topic(settings, topics.ALERTS)
    assert [(e["group_key"], e["status"]) for e in events] == [("cdn=a", "firing"), ("cdn=a", "resolved")]
