"""The evaluator rides out a broker outage (kill -9, ~40 s, restart) on a private broker.

Windows keep arriving the way the streams write them (a transactional producer), so the kill
lands in the middle of the evaluator's own transactions; the alert must fire from windows
produced after the broker is back, with the same process, and nothing may be sent twice.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alerts_helpers import Receiver, qoe_window, wait_for, write_rules
from fault_helpers import RULES, Evaluator, WindowFeed, hooks_by_status

from playscope.config import Settings, load_settings
from playscope.provision import ensure_topics

pytestmark = pytest.mark.slow


def private_settings(server: Any) -> Settings:
    base = load_settings(environ={})
    settings = base.model_copy(update={
        "kafka": base.kafka.model_copy(update={"bootstrap": server.bootstrap}),
        "topic_prefix": f"t{uuid.uuid4().hex[:8]}-alerts-outage."})  # fmt: skip
    ensure_topics(settings, partitions=3)
    return settings


def test_alert_fires_from_windows_written_after_the_broker_came_back(
    private_kafka: Callable[[], Any], tmp_path: Path
) -> None:
    server = private_kafka()
    settings = private_settings(server)
    receiver = Receiver().start()
    evaluator = Evaluator(settings, write_rules(tmp_path, RULES.format(url=receiver.url)), tmp_path)
    feed = WindowFeed(settings).start()
    try:
        evaluator.wait_started()
        feed.put(qoe_window(100, "a", 0.2), qoe_window(101, "a", 0.2))
        wait_for(lambda: hooks_by_status(receiver)[("cdn=a", "firing")], 30, "cdn=a firing before the outage")

        server.kill()  # mid-transaction: the feed keeps the evaluator committing every ~50 ms
        time.sleep(40)
        assert evaluator.proc.poll() is None, evaluator.text()[-3000:]
        server.start()
        server.wait_healthy(timeout_s=90)
        back = time.monotonic()

        # windows written only now: a new alert fires, the old one resolves
        wait_for(lambda: feed.written and feed._index and not feed.queued, 60, "the feed to write again")
        feed.put(qoe_window(100, "c", 0.3), qoe_window(101, "c", 0.3), qoe_window(102, "a", 0.0))
        wait_for(lambda: hooks_by_status(receiver)[("cdn=c", "firing")], 60,
                 f"cdn=c firing after the broker came back; log:\n{evaluator.text()[-3000:]}")  # fmt: skip
        wait_for(lambda: hooks_by_status(receiver)[("cdn=a", "resolved")], 30, "cdn=a resolved")
        recovered_s = time.monotonic() - back
        print(f"alert fired {recovered_s:.1f} s after the broker was healthy again")
        assert evaluator.proc.poll() is None, evaluator.text()[-3000:]
        wait_for(lambda: "playscope_alerts_broker_up 1.0" in evaluator.metrics(), 30, "broker_up 1 on /metrics")
        lag = wait_for(lambda: re.findall(r'playscope_alerts_consumer_lag\{source="qoe"\} (\S+)', evaluator.metrics()),
                       10, "the lag gauge")  # fmt: skip
        assert float(lag[0]) < 100, lag  # the feed keeps writing: a few windows behind at most
        time.sleep(1.0)  # a duplicate, if any, would follow within the retry interval
        assert evaluator.proc.poll() is None
        assert evaluator.events("alerts.recovered") or evaluator.events("alerts.kafka_resumed"), evaluator.text()
    finally:
        feed.stop()
        evaluator.kill()
        receiver.stop()
    counts = hooks_by_status(receiver)
    assert counts == {("cdn=a", "firing"): 1, ("cdn=c", "firing"): 1, ("cdn=a", "resolved"): 1}, counts


def test_start_up_waits_for_a_broker_that_is_not_there_yet(private_kafka: Callable[[], Any], tmp_path: Path) -> None:
    server = private_kafka()
    settings = private_settings(server)
    server.kill()
    receiver = Receiver().start()
    evaluator = Evaluator(settings, write_rules(tmp_path, RULES.format(url=receiver.url)), tmp_path)
    try:
        wait_for(lambda: evaluator.events("alerts.kafka_waiting") or evaluator.proc.poll() is not None, 60,
                 "the evaluator to say it waits")  # fmt: skip
        time.sleep(3)
        assert evaluator.proc.poll() is None, evaluator.text()[-3000:]
        assert len(evaluator.events("alerts.kafka_waiting")) == 1, evaluator.text()[-3000:]
        server.start()
        server.wait_healthy(timeout_s=90)
        evaluator.wait_started(90)
        feed = WindowFeed(settings).start()
        try:
            feed.put(qoe_window(100, "a", 0.2), qoe_window(101, "a", 0.2))
            wait_for(lambda: hooks_by_status(receiver)[("cdn=a", "firing")], 60, "firing")
        finally:
            feed.stop()
    finally:
        evaluator.kill()
        receiver.stop()
