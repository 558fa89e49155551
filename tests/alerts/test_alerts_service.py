"""The evaluator end to end: real Kafka, real local webhook and Slack-shaped receivers."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path

from alerts_helpers import (
    QOE,
    Receiver,
    produce,
    qoe_window,
    read_topic,
    running_service,
    wait_for,
    write_rules,
)

from playscope import topics
from playscope.config import Settings

RULES = """
channels:
  oncall: {{type: webhook, url: "{url}/hook", secret: "s3cret"}}
  team-slack: {{type: slack, url: "{url}/slack"}}
rules:
  - name: cdn-rebuffering
    source: qoe
    metric: rebuffer_ratio
    group_by: [cdn]
    op: ">"
    threshold: 0.05
    for: 2
    min_volume: 20
    severity: critical
    notify: [oncall, team-slack]
"""


def test_fires_after_for_windows_once_per_group_then_resolves(
    kafka_settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    settings = kafka_settings
    rules = write_rules(tmp_path, RULES.format(url=receiver.url))
    with running_service(settings, rules):
        produce(settings, QOE, [qoe_window(0, "a", 0.2), qoe_window(0, "b", 0.2),
                                qoe_window(0, "low", 0.9, attempts=5)])  # fmt: skip
        time.sleep(1.5)
        assert receiver.bodies() == []  # one breaching window is not enough for `for: 2`
        produce(settings, QOE, [qoe_window(1, "a", 0.3), qoe_window(1, "b", 0.2),
                                qoe_window(1, "low", 0.9, attempts=5)])  # fmt: skip
        hooks = wait_for(lambda: len(receiver.bodies("/hook")) >= 2 and receiver.bodies("/hook"), 20,
                         "two firing webhooks")  # fmt: skip
        assert sorted(h["group"]["cdn"] for h in hooks) == ["a", "b"]
        first = next(h for h in hooks if h["group"] == {"cdn": "a"})
        assert first["status"] == "firing" and first["rule"] == "cdn-rebuffering"
        assert first["value"] == 0.3 and first["threshold"] == 0.05 and first["severity"] == "critical"
        assert first["window_start"] == qoe_window(1, "a", 0)["window_start"]
        assert first["dedup_key"] == "cdn-rebuffering|cdn=a" and "a" in first["summary"]
        raw = next(r for r in receiver.requests if r["path"] == "/hook")
        signature = "sha256=" + hmac.new(b"s3cret", raw["raw"], hashlib.sha256).hexdigest()
        assert raw["headers"]["X-Playscope-Signature"] == signature
        slack = wait_for(lambda: len(receiver.bodies("/slack")) >= 2 and receiver.bodies("/slack"), 10)
        assert all(s["text"].startswith("[FIRING]") and s["attachments"][0]["fields"] for s in slack)

        # still breaching and a window delivered twice: nothing new
        produce(settings, QOE, [qoe_window(2, "a", 0.3), qoe_window(1, "a", 0.3)])
        # a clears, b stays
        produce(settings, QOE, [qoe_window(3, "a", 0.01), qoe_window(3, "b", 0.2)])
        resolved = wait_for(lambda: [h for h in receiver.bodies("/hook") if h["status"] == "resolved"], 20,
                            "resolved")  # fmt: skip
        time.sleep(1.0)
    hooks = receiver.bodies("/hook")
    assert [(h["group"]["cdn"], h["status"]) for h in hooks if h["group"]["cdn"] == "a"] == [
        ("a", "firing"), ("a", "resolved")]  # fmt: skip
    assert len(hooks) == 3 and len(receiver.bodies("/slack")) == 3
    assert resolved[0]["dedup_key"] == "cdn-rebuffering|cdn=a"
    events = read_topic(settings, topics.ALERTS)
    assert sorted((e["group_key"], e["status"]) for e in events) == [
        ("cdn=a", "firing"), ("cdn=a", "resolved"), ("cdn=b", "firing")]  # fmt: skip
    assert all(isinstance(e["ts"], int) for e in events)


def test_channel_down_is_retried_then_delivered(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    receiver = Receiver()  # not listening yet: connection refused
    rules = write_rules(tmp_path, RULES.replace("for: 2", "for: 1").format(url=receiver.url))
    with running_service(settings, rules) as service:
        produce(settings, QOE, [qoe_window(0, "a", 0.5)])
        wait_for(lambda: service.dispatcher.pending() > 0, 20, "a pending delivery")
        time.sleep(1.5)  # several failed attempts
        receiver.start()
        try:
            hooks = wait_for(lambda: receiver.bodies("/hook"), 20, "the retried webhook")
            wait_for(lambda: service.dispatcher.pending() == 0, 10, "no pending deliveries")
        finally:
            receiver.stop()
    assert [h["status"] for h in hooks] == ["firing"]
    assert len(receiver.bodies("/hook")) == 1  # delivered once, not once per retry


def test_invalid_window_is_dead_lettered(
    kafka_settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    settings = kafka_settings
    rules = write_rules(tmp_path, RULES.format(url=receiver.url))
    with running_service(settings, rules):
        produce(settings, QOE, [b"not json", b'{"window_start": "x", "window_end": 1, "group": "cdn"}'])
        dead = wait_for(lambda: read_topic(settings, topics.DEADLETTER, 2), 20, "dead letters")
    assert len(dead) == 2 and {d["source"] for d in dead} == {"alerts"}
    assert any("window_start" in d["reason"] for d in dead)
