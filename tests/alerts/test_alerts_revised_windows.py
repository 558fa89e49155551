"""Revised windows (SPEC 7) through the running evaluator: real Kafka, a real webhook receiver."""

from __future__ import annotations

import time
from pathlib import Path

from alerts_helpers import QOE, Receiver, produce, qoe_window, read_topic, running_service, wait_for, write_rules

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
    min_volume: 20
    notify: [oncall]
"""


def test_a_window_revised_to_clear_resolves_once_across_a_restart(
    kafka_settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    settings = kafka_settings
    rules = write_rules(tmp_path, RULES.format(url=receiver.url))
    with running_service(settings, rules):
        produce(settings, QOE, [qoe_window(0, "a", 0.2), qoe_window(1, "a", 0.2, revision=0)])
        wait_for(lambda: receiver.bodies("/hook"), 20, "firing")
        # window 1 revised, still breaching: the same state, nothing to say
        produce(settings, QOE, [qoe_window(1, "a", 0.4, revision=1)])
        time.sleep(2.0)
        assert [h["status"] for h in receiver.bodies("/hook")] == ["firing"]
    # a restart in between: the revisions seen are in the restored state
    with running_service(settings, rules):
        # window 1 revised again: not breaching after all (more watched time, same rebuffering)
        produce(settings, QOE, [qoe_window(1, "a", 0.01, revision=2)])
        resolved = wait_for(lambda: [h for h in receiver.bodies("/hook") if h["status"] == "resolved"], 20,
                            "resolved")  # fmt: skip
        assert resolved[0]["window_start"] == qoe_window(1, "a", 0)["window_start"]
        assert resolved[0]["value"] == 0.01
        # a replay re-sends the older revisions: stale, nothing fires again
        produce(settings, QOE, [qoe_window(1, "a", 0.2, revision=0), qoe_window(1, "a", 0.4, revision=1),
                                qoe_window(1, "a", 0.01, revision=2)])  # fmt: skip
        time.sleep(2.0)
    assert [h["status"] for h in receiver.bodies("/hook")] == ["firing", "resolved"]
    events = read_topic(settings, topics.ALERTS)
    assert [(e["group_key"], e["status"]) for e in events] == [("cdn=a", "firing"), ("cdn=a", "resolved")]
