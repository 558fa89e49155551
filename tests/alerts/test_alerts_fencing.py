"""Fencing: a single evaluator fenced by the coordinator recovers; a real second one stops one.

Both on the shared broker (nothing is killed): the coordinator's own transaction timeout does
the fencing in the first test, a second process with the same transactional id in the second.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alerts_helpers import QOE, Receiver, produce, qoe_window, read_topic, wait_for, write_rules
from fault_helpers import RULES, Evaluator, WindowFeed, hooks_by_status

from alerts.config import AlertsConfig
from alerts.loader import load_rules
from alerts.service import AlertService
from alerts.transactions import TxnProducer
from playscope import topics
from playscope.config import Settings

pytestmark = pytest.mark.slow


class StallingTxn(TxnProducer):
    """Stalls once inside a transaction, after its first record went out (a process stall: a
    GC pause, a SIGSTOP, a swapped-out host), for longer than ``transaction.timeout.ms``."""

    stall_s = 0.0

    def transact(self, records: Iterable[Any], offsets: Any, give_up: Any = None) -> None:
        stall, self.stall_s = self.stall_s, 0.0
        batch = list(records)
        if not stall or not batch:
            return super().transact(batch, offsets, give_up)

        def slow() -> Iterator[Any]:
            yield batch[0]
            time.sleep(stall)
            yield from batch[1:]

        return super().transact(slow(), offsets, give_up)


class StallingService(AlertService):
    def _new_txn(self) -> TxnProducer:
        self.txn = StallingTxn(self._producer_conf(), self._outages, self.broker_up)
        return self.txn


def test_fenced_by_the_coordinators_timeout_recovers_without_duplicates(
    kafka_settings: Settings, receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = kafka_settings
    config = AlertsConfig(retry_initial_s=0.2, retry_max_s=1.0, tick_interval_s=0.2, transaction_timeout_s=2)
    service = StallingService(settings, load_rules(write_rules(tmp_path, RULES.format(url=receiver.url))), config)
    service.hang_s = 120  # the stall is ours, not the broker's: the watchdog must not cut it short
    errors: list[BaseException] = []
    thread = threading.Thread(target=_run, args=(service, errors), daemon=True)
    thread.start()
    try:
        wait_for(lambda: service.ready.is_set() or errors, 60, "the evaluator to start")
        assert not errors, errors
        # the coordinator aborts transactions older than 2 s within its 10 s check interval
        service.txn.stall_s = 16
        produce(settings, QOE, [qoe_window(0, "a", 0.2), qoe_window(1, "a", 0.2)])
        wait_for(lambda: hooks_by_status(receiver)[("cdn=a", "firing")], 60, "firing after the fence")
        assert service.recoveries >= 1, "the stalled transaction was not fenced"
        assert "alerts.fenced" in caplog.messages and "alerts.another_instance" not in caplog.messages
        produce(settings, QOE, [qoe_window(2, "a", 0.0)])
        wait_for(lambda: hooks_by_status(receiver)[("cdn=a", "resolved")], 30, "resolved")
        time.sleep(1.0)  # a duplicate, if any, would follow within the retry interval
        assert thread.is_alive() and not errors, errors
    finally:
        service.stop()
        thread.join(30)
    assert not errors, errors
    assert hooks_by_status(receiver) == {("cdn=a", "firing"): 1, ("cdn=a", "resolved"): 1}
    events = read_topic(settings, topics.ALERTS)
    assert [(e["group_key"], e["status"]) for e in events] == [("cdn=a", "firing"), ("cdn=a", "resolved")]


def _run(service: AlertService, errors: list[BaseException]) -> None:
    try:
        asyncio.run(service.run())
    except BaseException as exc:
        errors.append(exc)


def test_a_second_instance_makes_one_of_them_stop_with_a_clear_message(
    kafka_settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    settings = kafka_settings
    rules = write_rules(tmp_path, RULES.format(url=receiver.url))
    feed = WindowFeed(settings).start()
    first = Evaluator(settings, rules, tmp_path, 1)
    second: Evaluator | None = None
    try:
        first.wait_started()
        wait_for(lambda: feed.written > 20, 30, "the feed")
        second = Evaluator(settings, rules, tmp_path, 2)
        both = (first, second)
        stopped = wait_for(lambda: [e for e in both if e.proc.poll() is not None], 60, "one evaluator to stop")
        assert len(stopped) == 1
        gone = stopped[0]
        survivor = second if gone is first else first
        assert gone.proc.returncode != 0
        assert "another evaluator with the same transactional id" in gone.text(), gone.text()[-3000:]
        assert gone.events("alerts.another_instance")
        # the survivor goes on evaluating, alone
        survivor.wait_started()
        feed.put(qoe_window(100, "x", 0.3), qoe_window(101, "x", 0.3))
        wait_for(lambda: hooks_by_status(receiver)[("cdn=x", "firing")], 60, "firing from the survivor")
        time.sleep(1.0)
        assert survivor.proc.poll() is None, survivor.text()[-3000:]
        assert not survivor.events("alerts.another_instance")
    finally:
        feed.stop()
        first.kill()
        if second is not None:
            second.kill()
    assert hooks_by_status(receiver)[("cdn=x", "firing")] == 1
