"""The alert evaluator as a running service: Kafka in, state and alerts out, notifications sent.

Each batch of window records is judged, then one Kafka transaction writes the alert state
changes (``playscope.alerts``), the changed per rule+group states (the compacted state topic)
and the consumed offsets together. A kill -9 at any point therefore leaves either all of a
batch's effects or none: re-consumed windows meet the state that already counted them, so no
alert is emitted twice and none is lost. Notifications are sent only after the transaction
commits; what each channel was told is written back to the state, so a restart delivers
whatever was still pending.

A broker outage is waited out in the same process: a transaction that cannot commit is
retried, aborted or its producer replaced (see ``alerts/transactions.py``), and then the
service goes back to what Kafka holds, exactly as a restart would: the state re-read from the
state topic, the consumer rewound to the committed offsets, what the channels were already told
kept from memory. The failed batch is judged again, so nothing is counted twice or skipped.
Only a second evaluator with the same transactional id stops it (``AnotherInstance``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import httpx
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from alerts import metrics
from alerts.config import AlertsConfig
from alerts.dispatcher import Dispatcher
from alerts.evaluator import Change, Evaluator, alert_document
from alerts.loader import RuleSet
from alerts.notifiers import NOTIFIERS, Notifier
from alerts.state import FIRING
from alerts.transactions import AnotherInstance, GaveUp, GiveUp, ProducerLost, TxnAborted, TxnProducer
from playscope import topics
from playscope.config import Settings
from playscope.deadletter import deadletter_record
from playscope.errors import PlayscopeError
from playscope.kafka import admin_config, consumer_config, producer_config, wait_for_topic, watermarks
from playscope.kafka import committed as kafka_committed
from playscope.kafka_health import BrokerWatch, RepeatFilter
from playscope.logs import log_event

log = logging.getLogger("playscope.alerts")
# consume errors repeat while the broker is away: one line per kind a minute (the BrokerWatch
# says down/up once per change)
consume_log = logging.getLogger("playscope.alerts.consume")
consume_log.addFilter(RepeatFilter(60.0))

SOURCES = {topics.QOE_METRICS: "qoe", topics.SERVICE_METRICS: "service"}
RECOVERY_STEP_S = 60.0  # one attempt at re-reading the state or the committed offsets
HANG_S = 15.0  # a call still blocked this long after the broker answers again is given up
PROBE_S = 2.0  # how often a blocked call checks whether the broker answers
# librdkafka backs off reconnecting up to 10 s by default: a broker that is back would wait that
# long for an idle client (its repeated connect failures are collapsed in the log anyway)
RECONNECT = {"reconnect.backoff.max.ms": 2000}
BACKLOG_S = 2.0  # a call that blocked longer leaves stale consumer callbacks behind

T = TypeVar("T")

Record = tuple[str, bytes | None, bytes | None]  # topic, key, value


class _QueuedWatch(BrokerWatch):
    """A consumer's BrokerWatch that can be told to ignore the callbacks served by one consume.

    A consumer's error and statistics callbacks are served by ``consume``; while the loop waits
    in a transaction (a whole outage, at worst) they pile up, and the next consume would replay
    the outage as a down/up/down/up burst. That backlog is skipped; the next report is current
    (every ``stats_interval_ms``)."""

    muted = False

    def on_error(self, err: Any) -> None:
        if not self.muted:
            super().on_error(err)

    def on_stats(self, raw: str) -> None:
        if not self.muted:
            super().on_stats(raw)


class StartupError(PlayscopeError):
    """Kafka was not ready (broker, topics, coordinators) within ``startup_timeout_s``."""


__all__ = ["AlertService", "AnotherInstance", "StartupError", "parse_window"]


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
    revision = record.get("revision", 0)
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
        raise ValueError("revision: must be a non-negative integer (0 on a window's first emission)")
    return record


class AlertService:
    def __init__(self, settings: Settings, ruleset: RuleSet, cfg: AlertsConfig) -> None:
        self.settings = settings
        self.ruleset = ruleset
        self.cfg = cfg
        self.rules = {r.name: r for r in ruleset.rules}
        self.evaluator = self._new_evaluator()
        self.topic_source = {settings.topic(t): s for t, s in SOURCES.items()}
        self.state_topic = settings.topic(topics.ALERT_STATE)
        self.alerts_topic = settings.topic(topics.ALERTS)
        self.deadletter_topic = settings.topic(topics.DEADLETTER)
        self.consumer_watch = _QueuedWatch("alerts.consumer")
        self.watches = (BrokerWatch("alerts.producer"), self.consumer_watch)
        self._backlog = False  # the consumer was not served for a while: its queued callbacks are stale
        self.recoveries = 0
        self._partitions: list[tuple[str, int]] = []
        self._at_end: dict[tuple[str, int], bool] = {}  # partition -> consumer reached its end
        self._last_tick_wall = 0
        self._probe: AdminClient | None = None
        self.hang_s = HANG_S
        self._stop = threading.Event()
        self._stopped_at = 0.0
        self.ready = threading.Event()

    def stop(self) -> None:
        """Ask the service to finish its batch and shut down (safe from any thread, twice)."""
        if not self._stop.is_set():
            self._stopped_at = time.monotonic()
        self._stop.set()

    def _new_evaluator(self) -> Evaluator:
        return Evaluator(self.ruleset, grace_ms=self.cfg.grace_ms(self.settings),
                         horizon_ms=self.cfg.horizon_ms(self.settings),
                         wall_fallback=self.cfg.absent_wall_fallback, dashboard_url=self.cfg.dashboard_url)  # fmt: skip

    def broker_up(self) -> bool:
        return all(w.up for w in self.watches)

    def _outages(self) -> int:
        return sum(w.downs for w in self.watches)

    # -- start-up -------------------------------------------------------------------------------

    def _producer_conf(self) -> dict[str, Any]:
        txn_id = self.settings.group("alerts.evaluator")
        timeout_ms = int(self.cfg.transaction_timeout_s * 1000)
        return producer_config(self.settings.kafka, **{"transactional.id": txn_id, "linger.ms": 0,
                                                       "transaction.timeout.ms": timeout_ms,
                                                       "message.timeout.ms": timeout_ms,  # must be <=
                                                       **RECONNECT,
                                                       **self.watches[0].config()})  # fmt: skip

    def _new_txn(self) -> TxnProducer:
        return TxnProducer(self._producer_conf(), self._outages, self.broker_up)

    def _read_state(self, timeout_s: float) -> list[tuple[str, dict[str, Any] | None]]:
        """The compacted state topic from the beginning up to its end (committed records only)."""
        consumer = Consumer(consumer_config(self.settings.kafka, self.settings.group("alerts.restore"),
                                            **{"isolation.level": "read_committed"}))  # fmt: skip
        try:
            meta = wait_for_topic(consumer, self.state_topic, timeout_s)
            ends: dict[int, int] = {}
            parts = []
            for p in meta.partitions:
                low, high = watermarks(consumer, self.state_topic, p, timeout_s)
                if high > low:
                    ends[p] = high
                    parts.append(TopicPartition(self.state_topic, p, OFFSET_BEGINNING))
            records: list[tuple[str, dict[str, Any] | None]] = []
            if parts:
                consumer.assign(parts)
                deadline = time.monotonic() + timeout_s
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
                    raise KafkaException(KafkaError(KafkaError._TIMED_OUT,
                                                    f"state topic {self.state_topic}: could not read to its end"))
            return records
        finally:
            consumer.close()

    def _metrics_consumer(self, timeout_s: float) -> Consumer:
        consumer = Consumer(consumer_config(
            self.settings.kafka, self.settings.group("alerts"),
            **{"isolation.level": "read_committed", "enable.partition.eof": True, **RECONNECT,
               **self.watches[1].config()},
        ))  # fmt: skip
        try:
            self._partitions = []
            for topic in self.topic_source:
                meta = wait_for_topic(consumer, topic, timeout_s)
                self._partitions += [(topic, p) for p in meta.partitions]
            self._seek_committed(consumer, timeout_s)
        except BaseException:
            consumer.close()
            raise
        return consumer

    def _seek_committed(self, consumer: Consumer, timeout_s: float) -> None:
        """(Re)start every partition at its committed offset: the first record not yet judged."""
        parts = [TopicPartition(t, p) for t, p in self._partitions]
        committed = kafka_committed(consumer, parts, timeout_s)
        consumer.assign([
            TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
            for tp in committed
        ])  # fmt: skip
        self._at_end = {(t, p): False for t, p in self._partitions}

    async def _start(self) -> tuple[TxnProducer, Consumer] | None:
        """Producer, restored state and consumer, waiting for Kafka up to ``startup_timeout_s``."""
        deadline = time.monotonic() + self.cfg.startup_timeout_s
        txn = self._new_txn()
        try:
            while txn.producer is None:
                try:
                    txn.install(await self._guarded("init", txn.open, deadline=deadline))
                except ProducerLost:
                    continue  # an init blocked although the broker answers: again, with a new producer
            records = await asyncio.to_thread(self._read_state, max(1.0, deadline - time.monotonic()))
            consumer = await asyncio.to_thread(self._metrics_consumer, max(1.0, deadline - time.monotonic()))
        except (GaveUp, KafkaException) as exc:
            txn.close(0)
            if self._stop.is_set():
                return None
            if isinstance(exc, KafkaException) and time.monotonic() < deadline:
                raise  # not a matter of waiting (authorization, a bad topic config, ...)
            raise StartupError(f"Kafka at {self.settings.kafka.bootstrap} not ready after "
                               f"{self.cfg.startup_timeout_s:.0f} s (alerts.startup_timeout_s): {exc}") from None
        self.evaluator.restore(records)
        return txn, consumer

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        metrics.BROKER_UP.set_function(lambda: 1.0 if self.broker_up() else 0.0)
        started = await self._start()
        if started is None:
            return
        txn, consumer = started
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
                      restored_states=len(self.evaluator.states), firing=len(self.evaluator.firing()))  # fmt: skip
            self._reconcile_all(dispatcher)  # finish what a previous run left undelivered
            self.ready.set()
            try:
                if await self._loop(txn, consumer, dispatcher):
                    await dispatcher.drain(self.cfg.shutdown_timeout_s)
                    await self._final_commit(txn)
            finally:
                await self._cleanup(txn, consumer, dispatcher)

    async def _loop(self, txn: TxnProducer, consumer: Consumer, dispatcher: Dispatcher) -> bool:
        """Judge and commit batches until stopped. False when it stopped inside a transaction
        that could not finish (left to the coordinator: nothing more may be written)."""
        next_tick = 0.0
        self._last_tick_wall = self.evaluator.wall_ms()
        while not self._stop.is_set():
            txn.poll()
            msgs = await asyncio.to_thread(self._consume, consumer)
            changes, deadletters, data = self._judge(msgs)
            if time.monotonic() >= next_tick:
                self._hold_clocks(self._update_lag(consumer))
                changes += self.evaluator.tick()
                self._repeat(dispatcher)
                next_tick = time.monotonic() + self.cfg.tick_interval_s
            if data or changes or deadletters or self.evaluator.dirty:
                batch = self._batch(changes, deadletters)
                offsets = self._offsets(consumer) if data else None
                try:
                    await self._guarded("transaction", partial(txn.transact, batch, offsets), txn)
                    failure = ""
                except (TxnAborted, ProducerLost, KafkaException) as exc:
                    failure = str(exc) or type(exc).__name__
                except GaveUp:
                    return False
                if failure:
                    try:
                        await self._recover(txn, consumer, dispatcher, failure)
                    except GaveUp:
                        return False
                    continue  # the batch's changes are judged again from the committed offsets
                self.watches[0].set(True)  # a commit went through: the producer reaches the broker
                self._committed(changes)
            for change in changes:
                dispatcher.reconcile(change.rule, change.state, change.doc)
            metrics.FIRING.set(len(self.evaluator.firing()))
        return True

    async def _final_commit(self, txn: TxnProducer) -> None:
        """Persist what the last deliveries recorded, bounded by ``shutdown_timeout_s``."""
        if not self.evaluator.dirty:
            return
        deadline = time.monotonic() + max(1.0, self.cfg.shutdown_timeout_s)
        batch = self._batch([], [])
        try:
            await self._guarded("transaction", partial(txn.transact, batch, None), txn,
                                deadline=deadline)
        except (TxnAborted, ProducerLost, GaveUp, KafkaException) as exc:
            # the next start re-sends those deliveries (at least once, see README)
            log_event(log, "alerts.final_commit_failed", logging.WARNING, error=str(exc), keys=len(batch))

    async def _cleanup(self, txn: TxnProducer, consumer: Consumer, dispatcher: Dispatcher) -> None:
        """Stop deliveries, close the clients; logs what fails and never raises, so the error
        that ended the run (if any) is the one that is reported."""
        try:
            await dispatcher.drain(0)
        except Exception as exc:
            log_event(log, "alerts.cleanup_failed", logging.WARNING, step="dispatcher", error=repr(exc))
        closing = threading.Thread(target=self._close_consumer, args=(consumer,), daemon=True)
        closing.start()
        await asyncio.to_thread(closing.join, 5.0)  # a close cut off by an outage must not hold the exit
        await asyncio.to_thread(txn.close, 2.0)
        self._probe = None
        log_event(log, "alerts.stopped", pending=dispatcher.pending(), recoveries=self.recoveries)

    @staticmethod
    def _close_consumer(consumer: Consumer) -> None:
        try:
            consumer.close()
        except Exception as exc:  # cleanup must not mask the error that ended the run
            log_event(log, "alerts.cleanup_failed", logging.WARNING, step="consumer", error=repr(exc))

    # -- watched calls --------------------------------------------------------------------------

    async def _guarded(self, what: str, call: Callable[[GiveUp], T], txn: TxnProducer | None = None,
                       deadline: float | None = None) -> T:  # fmt: skip
        """``call(give_up)`` in a daemon thread of its own, watched from the event loop.

        A transactional call may block past its timeout while the broker is away (and, in
        librdkafka 2.16, for good after some failures): once the broker has answered again for
        ``hang_s`` and the call is still blocked, its producer is dropped (ProducerLost) and the
        thread left behind. On stop, the call gets ``shutdown_timeout_s``; past ``deadline``
        (start-up, shutdown) or then, GaveUp. ``give_up`` tells an abandoned ``call`` to stop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        abandoned = threading.Event()

        def settle(ok: bool, value: Any) -> None:
            if not future.done():
                future.set_result(value) if ok else future.set_exception(value)

        def target() -> None:
            try:
                result = call(abandoned.is_set)
            except BaseException as exc:
                loop.call_soon_threadsafe(settle, False, exc)
            else:
                loop.call_soon_threadsafe(settle, True, result)

        threading.Thread(target=target, daemon=True, name=f"alerts-{what}").start()
        started = time.monotonic()
        answering_since: float | None = None
        next_probe = started + PROBE_S
        try:
            while True:
                await asyncio.wait({future}, timeout=0.5)
                if future.done():
                    return future.result()
                if txn is not None:
                    txn.poll()  # the producer's BrokerWatch and log lines, while its call blocks
                now = time.monotonic()
                if (deadline is not None and now > deadline) or (
                        self._stop.is_set() and now - self._stopped_at > self.cfg.shutdown_timeout_s):
                    raise GaveUp(what)
                if now >= next_probe:
                    next_probe = now + PROBE_S
                    answering = await asyncio.to_thread(self._broker_answers)
                    answering_since = (answering_since or now) if answering else None
                    if answering_since is not None and now - answering_since >= self.hang_s:
                        log_event(log, "alerts.kafka_call_hung", logging.WARNING, what=what,
                                  blocked_s=round(now - started, 1))  # fmt: skip
                        if txn is not None:
                            txn.lose(f"{what} blocked {now - started:.0f} s")
                        raise ProducerLost(f"{what} blocked although the broker answers")
        finally:
            abandoned.set()
            if time.monotonic() - started > BACKLOG_S:
                self._backlog = True

    def _broker_answers(self) -> bool:
        """One metadata request of our own: the BrokerWatch of a client blocked in a call can
        lag behind, this cannot."""
        try:
            if self._probe is None:
                self._probe = AdminClient(admin_config(self.settings.kafka))
            self._probe.list_topics(self.state_topic, timeout=2)
            return True
        except KafkaException:
            return False

    # -- recovery -------------------------------------------------------------------------------

    async def _recover(self, txn: TxnProducer, consumer: Consumer, dispatcher: Dispatcher, reason: str) -> None:
        """After a batch that did not commit: back to what Kafka holds, as a restart would be.

        The state is re-read from the state topic and the consumer rewound to the committed
        offsets, so the failed batch is judged again (nothing counted twice, nothing skipped);
        what the channels were told is kept from memory (it happened, whatever Kafka says), so
        nothing is sent twice. Waits for Kafka as long as it takes, until stopped."""
        started = time.monotonic()
        waiting = False
        while True:
            if self._stop.is_set():
                raise GaveUp("recovery")  # the next start recovers from Kafka just the same
            try:
                if txn.producer is None:
                    txn.install(await self._guarded("init", txn.open))
                records = await asyncio.to_thread(self._read_state, RECOVERY_STEP_S)
                await asyncio.to_thread(self._seek_committed, consumer, RECOVERY_STEP_S)
                break
            except GaveUp:
                raise
            except (KafkaException, ProducerLost) as exc:
                if not waiting:
                    waiting = True
                    log_event(log, "alerts.kafka_waiting", logging.WARNING, what="recovery", reason=str(exc))
                if self._stop.is_set():
                    raise GaveUp("recovery") from None
                await asyncio.sleep(1.0)
        self._backlog = True
        before = self.evaluator
        self.evaluator = self._new_evaluator()
        restored = self.evaluator.restore(records)
        self._keep_deliveries(before)
        self._reconcile_all(dispatcher)
        self.recoveries += 1
        metrics.FIRING.set(len(self.evaluator.firing()))
        log_event(log, "alerts.recovered", reason=reason[:300], restored_states=restored,
                  firing=len(self.evaluator.firing()), took_s=round(time.monotonic() - started, 1))  # fmt: skip

    def _keep_deliveries(self, before: Evaluator) -> None:
        """Carry over deliveries newer than the re-read state (they are rewritten next batch)."""
        for key, old in before.states.items():
            state = self.evaluator.states.get(key)
            if state is None:
                continue  # born in the failed batch: nothing of it was sent
            for channel, entry in old.delivered.items():
                mine = state.delivered.get(channel)
                if mine is None or int(mine[1]) < int(entry[1]):
                    state.delivered[channel] = list(entry)
                    self.evaluator.dirty.add(key)

    def _reconcile_all(self, dispatcher: Dispatcher) -> None:
        for state in self.evaluator.states.values():
            rule = self.rules[state.rule]
            dispatcher.reconcile(rule, state, alert_document(rule, state, self.cfg.dashboard_url,
                                                             state.changed_ms))  # fmt: skip

    # -- one batch ------------------------------------------------------------------------------

    def _consume(self, consumer: Consumer) -> list[Message]:
        """A batch, or none: a consume that raises (broker away, client trouble) never ends the loop."""
        self.consumer_watch.muted, self._backlog = self._backlog, False
        try:
            return list(consumer.consume(self.cfg.batch_size, 0.2))
        except KafkaException as exc:
            metrics.ERRORS.labels("kafka").inc()
            log_event(consume_log, "alerts.consume_error", logging.WARNING, error=str(exc))
            time.sleep(0.5)
            return []
        finally:
            self.consumer_watch.muted = False

    def _judge(self, msgs: list[Message]) -> tuple[list[Change], list[dict[str, Any]], bool]:
        """Changes, dead letters, and whether any window record was read."""
        changes: list[Change] = []
        deadletters: list[dict[str, Any]] = []
        data = False
        for msg in msgs:
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._at_end[(msg.topic() or "", msg.partition() or 0)] = True
                else:
                    metrics.ERRORS.labels("kafka").inc()
                    log_event(consume_log, "alerts.consume_error", logging.WARNING, error=str(error))
                continue
            if not data:
                self.consumer_watch.set(True)  # records arrive: the consumer reaches the broker
            data = True
            topic = msg.topic() or ""  # a record without an error always has its topic
            self._at_end[(topic, msg.partition() or 0)] = False
            source = self.topic_source[topic]
            metrics.RECEIVED.labels(source).inc()
            try:
                record = parse_window(msg.value())
            except ValueError as exc:
                metrics.DISCARDED.labels("invalid").inc()
                deadletters.append(deadletter_record(msg.value() or b"", str(exc), "alerts",
                                                     topic=msg.topic()))  # fmt: skip
                continue
            changes += self.evaluator.observe(source, record)
        return changes, deadletters, data

    def _batch(self, changes: list[Change], deadletters: list[dict[str, Any]]) -> list[Record]:
        """The records of one transaction, serialised here in the event loop (deliveries
        change the states in this thread, never while a snapshot is taken)."""
        out: list[Record] = [(self.alerts_topic, c.state.key.encode(), orjson.dumps(c.doc)) for c in changes]
        for key in self.evaluator.take_dirty():
            snapshot = self.evaluator.snapshot(key)
            out.append((self.state_topic, key.encode(), orjson.dumps(snapshot) if snapshot is not None else None))
        out += [(self.deadletter_topic, None, orjson.dumps(r)) for r in deadletters]
        return out

    @staticmethod
    def _offsets(consumer: Consumer) -> tuple[list[TopicPartition], Any]:
        positions = consumer.position(consumer.assignment())
        return [tp for tp in positions if tp.offset >= 0], consumer.consumer_group_metadata()

    def _committed(self, changes: list[Change]) -> None:
        for change in changes:
            metrics.SENT.labels(change.doc["status"]).inc()
            log_event(log, "alerts.state_changed", rule=change.doc["rule"], group=change.doc["group_key"],
                      status=change.doc["status"], value=change.doc["value"])  # fmt: skip

    # -- health ---------------------------------------------------------------------------------

    def _update_lag(self, consumer: Consumer) -> bool:
        """Set the lag gauge; True when the consumer is connected and at the end of every partition.

        A partition whose last records are a transaction's commit marker has a high watermark
        one past the last record, forever; so a partition the consumer reached the end of
        (EOF) counts 0, and the others count high watermark minus position."""
        lag = dict.fromkeys(SOURCES.values(), 0)
        parts = [TopicPartition(t, p) for (t, p), at_end in self._at_end.items() if not at_end]
        try:
            for tp in consumer.position(parts) if parts else []:
                low, high = consumer.get_watermark_offsets(tp, cached=True)
                if high >= 0:
                    position = tp.offset if tp.offset >= 0 else low
                    lag[self.topic_source[tp.topic]] += max(0, high - position)
        except KafkaException:
            pass  # no figures yet; keep the last ones
        else:
            for source, value in lag.items():
                metrics.LAG.labels(source).set(value)
        return not parts and self.broker_up()

    def _hold_clocks(self, caught_up: bool) -> None:
        """Wall time counts toward the absent fallback only while connected and caught up: a
        broker outage is not silence of the sources (their windows are waiting in Kafka)."""
        now = self.evaluator.wall_ms()
        if not caught_up:
            self.evaluator.hold(now - self._last_tick_wall)
        self._last_tick_wall = now

    # -- deliveries -----------------------------------------------------------------------------

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
