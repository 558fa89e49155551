"""The alert evaluator as a running service: Kafka in, state and alerts out, notifications sent.

Each batch of window records is judged, then one Kafka transaction writes the alert state
changes (``playscope.alerts``), the changed per rule+group states (the compacted state topic)
and the consumed offsets together. A kill -9 at any point therefore leaves either all of a
batch's effects or none: re-consumed windows meet the state that already counted them, so no
alert is emitted twice and none is lost. Notifications are sent only after the transaction
commits; what each channel was told is written back to the state, so a restart delivers
whatever was still pending. The transactional id also fences a second instance: the older
one stops at its next commit, so only one evaluator pages.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import httpx
import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from alerts import metrics
from alerts.config import AlertsConfig
from alerts.dispatcher import Dispatcher
from alerts.evaluator import Change, Evaluator, alert_document
from alerts.loader import RuleSet
from alerts.notifiers import NOTIFIERS, Notifier
from alerts.state import FIRING
from playscope import topics
from playscope.config import Settings
from playscope.deadletter import deadletter_record
from playscope.kafka import consumer_config, producer_config, wait_for_topic, watermarks
from playscope.logs import log_event

log = logging.getLogger("playscope.alerts")

SOURCES = {topics.QOE_METRICS: "qoe", topics.SERVICE_METRICS: "service"}


class FencedError(RuntimeError):
    """Another evaluator instance took over the transactional id."""


def parse_window(raw: bytes | None) -> dict[str, Any]:
    """A window record as a dict, or ValueError naming what is wrong with it."""
    if raw is None:
        raise ValueError("empty record")
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    for key in ("window_start", "window_end"):
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key}: must be epoch milliseconds (an integer)")
    if record["window_end"] <= record["window_start"]:
        raise ValueError("window_end: must be after window_start")
    if not isinstance(record.get("group"), str):
        raise ValueError("group: must be a string")
    return record


class AlertService:
    def __init__(self, settings: Settings, ruleset: RuleSet, cfg: AlertsConfig) -> None:
        self.settings = settings
        self.ruleset = ruleset
        self.cfg = cfg
        self.rules = {r.name: r for r in ruleset.rules}
        self.evaluator = Evaluator(
            ruleset,
            grace_ms=cfg.grace_ms(settings),
            wall_fallback=cfg.absent_wall_fallback,
            dashboard_url=cfg.dashboard_url,
        )
        self.topic_source = {settings.topic(t): s for t, s in SOURCES.items()}
        self.state_topic = settings.topic(topics.ALERT_STATE)
        self.alerts_topic = settings.topic(topics.ALERTS)
        self.deadletter_topic = settings.topic(topics.DEADLETTER)
        self._stop = threading.Event()
        self.ready = threading.Event()

    def stop(self) -> None:
        """Ask the service to finish its batch and shut down (safe from any thread, twice)."""
        self._stop.set()

    # -- start-up -------------------------------------------------------------------------------

    def _restore(self) -> int:
        """Read the compacted state topic from the beginning up to its end."""
        consumer = Consumer(consumer_config(self.settings.kafka, self.settings.group("alerts.restore"),
                                            **{"isolation.level": "read_committed"}))  # fmt: skip
        try:
            meta = wait_for_topic(consumer, self.state_topic)
            ends: dict[int, int] = {}
            parts = []
            for p in meta.partitions:
                low, high = watermarks(consumer, self.state_topic, p)
                if high > low:
                    ends[p] = high
                    parts.append(TopicPartition(self.state_topic, p, OFFSET_BEGINNING))
            records: list[tuple[str, dict[str, Any] | None]] = []
            if parts:
                consumer.assign(parts)
                deadline = time.monotonic() + 120
                while ends and time.monotonic() < deadline:
                    for msg in consumer.consume(1000, 0.5):
                        key = msg.key()
                        if msg.error() or key is None:
                            continue
                        value = msg.value()
                        records.append((key.decode(), orjson.loads(value) if value else None))
                    for tp in consumer.position([TopicPartition(self.state_topic, p) for p in list(ends)]):
                        if tp.offset >= ends[tp.partition]:
                            del ends[tp.partition]
                if ends:
                    raise KafkaException(f"state topic {self.state_topic}: could not read to its end")
            return self.evaluator.restore(records)
        finally:
            consumer.close()

    def _metrics_consumer(self) -> Consumer:
        consumer = Consumer(consumer_config(
            self.settings.kafka, self.settings.group("alerts"), **{"isolation.level": "read_committed"}
        ))  # fmt: skip
        parts: list[TopicPartition] = []
        for topic in self.topic_source:
            meta = wait_for_topic(consumer, topic)
            parts += [TopicPartition(topic, p) for p in meta.partitions]
        committed = consumer.committed(parts, timeout=30)
        consumer.assign([
            TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
            for tp in committed
        ])  # fmt: skip
        return consumer

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        txn_id = self.settings.group("alerts.evaluator")
        conf = producer_config(self.settings.kafka, **{"transactional.id": txn_id, "linger.ms": 0,
                                                       "transaction.timeout.ms": 120_000})  # fmt: skip
        producer = Producer(conf)
        await asyncio.to_thread(producer.init_transactions, 60)
        restored = await asyncio.to_thread(self._restore)
        consumer = await asyncio.to_thread(self._metrics_consumer)
        async with httpx.AsyncClient(timeout=self.cfg.http_timeout_s) as http:
            notifiers: dict[str, Notifier] = {
                name: NOTIFIERS[ch.options.type](name, ch.options, http)
                for name, ch in self.ruleset.channels.items()
            }
            dispatcher = Dispatcher(
                notifiers, self._delivered, self.cfg.retry_initial_s, self.cfg.retry_max_s
            )
            self.dispatcher = dispatcher
            log_event(log, "alerts.started", rules=len(self.rules), channels=len(notifiers),
                      restored_states=restored, firing=len(self.evaluator.firing()))  # fmt: skip
            for state in self.evaluator.states.values():  # finish what a previous run left undelivered
                rule = self.rules[state.rule]
                dispatcher.reconcile(rule, state, alert_document(rule, state, self.cfg.dashboard_url,
                                                                 state.changed_ms))  # fmt: skip
            self.ready.set()
            next_tick = 0.0
            try:
                while not self._stop.is_set():
                    msgs = await asyncio.to_thread(consumer.consume, self.cfg.batch_size, 0.2)
                    changes, deadletters = self._judge(msgs)
                    if time.monotonic() >= next_tick:
                        changes += self.evaluator.tick()
                        self._repeat(dispatcher)
                        next_tick = time.monotonic() + self.cfg.tick_interval_s
                    if msgs or changes or deadletters or self.evaluator.dirty:
                        await asyncio.to_thread(self._commit, producer, consumer, msgs, changes, deadletters)
                    for change in changes:
                        dispatcher.reconcile(change.rule, change.state, change.doc)
                    metrics.FIRING.set(len(self.evaluator.firing()))
                await dispatcher.drain(self.cfg.shutdown_timeout_s)
                if self.evaluator.dirty:
                    await asyncio.to_thread(self._commit, producer, consumer, [], [], [])
            finally:
                await dispatcher.drain(0)
                consumer.close()
                producer.flush(10)
                log_event(log, "alerts.stopped", pending=dispatcher.pending())

    def _judge(self, msgs: list[Message]) -> tuple[list[Change], list[dict[str, Any]]]:
        changes: list[Change] = []
        deadletters: list[dict[str, Any]] = []
        for msg in msgs:
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    metrics.ERRORS.labels("kafka").inc()
                    log_event(log, "alerts.consume_error", logging.WARNING, error=str(error))
                continue
            source = self.topic_source[msg.topic() or ""]  # a record without an error always has its topic
            metrics.RECEIVED.labels(source).inc()
            try:
                record = parse_window(msg.value())
            except ValueError as exc:
                metrics.DISCARDED.labels("invalid").inc()
                deadletters.append(deadletter_record(msg.value() or b"", str(exc), "alerts",
                                                     topic=msg.topic()))  # fmt: skip
                continue
            changes += self.evaluator.observe(source, record)
        return changes, deadletters

    def _commit(self, producer: Producer, consumer: Consumer, msgs: list[Message],
                changes: list[Change], deadletters: list[dict[str, Any]]) -> None:  # fmt: skip
        """Write one batch's effects and its offsets in one transaction."""
        dirty = self.evaluator.take_dirty()
        try:
            producer.begin_transaction()
            for change in changes:
                alert_key = change.state.key.encode()
                producer.produce(self.alerts_topic, key=alert_key, value=orjson.dumps(change.doc))
            for key in dirty:
                snapshot = self.evaluator.snapshot(key)
                producer.produce(self.state_topic, key=key.encode(),
                                 value=orjson.dumps(snapshot) if snapshot is not None else None)  # fmt: skip
            for record in deadletters:
                producer.produce(self.deadletter_topic, value=orjson.dumps(record))
            if msgs:
                positions = consumer.position(consumer.assignment())
                producer.send_offsets_to_transaction(
                    [tp for tp in positions if tp.offset >= 0], consumer.consumer_group_metadata(), 60
                )
            producer.commit_transaction(60)
        except KafkaException as exc:
            error = exc.args[0]
            metrics.ERRORS.labels("transaction").inc()
            if isinstance(error, KafkaError) and error.fatal():
                raise FencedError(f"evaluator stopped: {error.str()}") from None
            log_event(log, "alerts.transaction_failed", logging.ERROR, error=str(exc))
            raise
        for change in changes:
            metrics.SENT.labels(change.doc["status"]).inc()
            log_event(log, "alerts.state_changed", rule=change.doc["rule"], group=change.doc["group_key"],
                      status=change.doc["status"], value=change.doc["value"])  # fmt: skip

    def _delivered(self, key: str, channel: str, status: str, wall_ms: int) -> None:
        state = self.evaluator.states.get(key)
        if state is not None:
            state.delivered[channel] = [status, wall_ms]
            self.evaluator.dirty.add(key)
        metrics.PENDING.set(self.dispatcher.pending())

    def _repeat(self, dispatcher: Dispatcher) -> None:
        """Re-send alerts still firing once their rule's repeat_interval has passed."""
        now = int(time.time() * 1000)
        for state in self.evaluator.firing():
            rule = self.rules[state.rule]
            due = [ch for ch in rule.notify
                   if (entry := state.delivered.get(ch)) and entry[0] == FIRING
                   and now - int(entry[1]) >= rule.repeat_interval * 1000
                   and not dispatcher.busy(state.key, ch)]  # fmt: skip
            if due:
                doc = alert_document(rule, state, self.cfg.dashboard_url, now)
                dispatcher.reconcile(rule.model_copy(update={"notify": due}), state, doc, repeat=True)
