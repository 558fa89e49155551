"""The indexer: one consumer group over the SPEC 3 topics, into the daily indices of SPEC 10.

Flow: the main thread reads records, encodes them and fills a batch; a full batch (by count,
bytes or age) goes to a sender thread, which stores it (bulk API, retries) and produces the
dead-letter records of whatever the backend refused. Batches complete in order and the main
thread commits a batch's offsets only once it is complete, so an offset is committed only when
every record below it is stored or dead-lettered. While ``max_pending_batches`` are in flight
the consumer is paused (backpressure, bounded memory). Document ids are deterministic, so
whatever is read twice (after a crash, a rebalance, a replay) overwrites itself.

Kafka: at start-up the indexer waits for a broker and for its topics' leaders (one
``kafka.waiting`` line), and it rides out a broker outage without a restart (the client
reconnects; :class:`playscope.kafka_health.BrokerWatch` logs the change once and backs the
``broker_up`` gauge). It is a static group member, so after a crash the restarted process takes
its partitions back at once; on a clean stop it leaves the group explicitly. When it reaches the
end of a partition it commits that end offset, so a trailing transaction marker does not read
as lag; the lag gauge is the whole group's (committed offsets against the partition ends).

Several senders keep the cluster busy while the next batch is read, yet the order of writes per
document holds: a batch that shares a document id with a batch still in flight waits for that
one first, so a later version of a document (a re-emitted window, a session summary) is never
overtaken by an earlier one. Window documents are also versioned by their ``revision`` (see
``indexers/documents.py``): a replay that re-sends an older revision after a newer one was
stored, in a later batch or in the same one, leaves the newer one in the index and is counted
(``playscope_indexer_stale_revisions_total``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from indexers import retention
from indexers.backends import BackendUnavailable, SearchBackend, backend_for
from indexers.bulk import Abandoned, Backoff, BulkWriter
from indexers.config import IndexerConfig
from indexers.deadletters import DeadLetterWriter
from indexers.documents import Action, Encoder, Rejected
from indexers.metrics import IndexerMetrics
from playscope import membership
from playscope.config import Settings
from playscope.deadletter import deadletter_record
from playscope.errors import ConfigError
from playscope.indices import FAMILIES
from playscope.kafka import consumer_config, static_member_config, wait_for_topic
from playscope.kafka_health import BrokerWatch, group_lag
from playscope.logs import log_event

log = logging.getLogger("playscope.indexer")

SOURCE = "indexer"
TP = tuple[str, int]
# Errors that mean no broker answered (as opposed to a broker answering "no such topic").
_UNREACHABLE = frozenset({KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN})


@dataclass
class Batch:
    """Records read since the last flush: actions (last write per document wins), records
    refused before reaching the backend, and the next offset to commit per partition (which
    may be a partition's end offset, past records the consumer never returns: transaction
    markers, aborted records)."""

    actions: dict[tuple[str, str], Action] = field(default_factory=dict)
    deadletters: list[dict[str, Any]] = field(default_factory=list)
    offsets: dict[TP, int] = field(default_factory=dict)
    received: Counter[str] = field(default_factory=Counter)  # family -> records read
    records: int = 0
    size: int = 0
    started: float = 0.0

    def add_offset(self, topic: str, partition: int, offset: int) -> None:
        if not self.records:
            self.started = time.monotonic()
        self.records += 1
        self.offsets[(topic, partition)] = offset + 1

    def add_end(self, topic: str, partition: int, end: int) -> None:
        """The consumer reached the end of a partition at ``end``: commit up to there too."""
        if not self.records and not self.offsets:
            self.started = time.monotonic()
        key = (topic, partition)
        self.offsets[key] = max(self.offsets.get(key, 0), end)


@dataclass
class Stored:
    """What the sender reports for one batch."""

    offsets: dict[TP, int]
    documents: int
    deadlettered: int


class Indexer:
    def __init__(
        self,
        settings: Settings,
        config: IndexerConfig | None = None,
        backend: SearchBackend | None = None,
        metrics: IndexerMetrics | None = None,
        consumer_overrides: dict[str, Any] | None = None,
        retention_days: int | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or settings.section("indexer", IndexerConfig)
        self.backend = backend or backend_for(settings)
        self.metrics = metrics or IndexerMetrics()
        self.retention_days = retention_days
        self.encoder = Encoder.for_settings(settings.topic, self.config.families, settings.index_prefix)
        self.topics = [settings.topic(FAMILIES[name].topic) for name in self.config.families]
        self._family_of_topic = {t: self.encoder.family(t).name for t in self.topics}
        self._stop = threading.Event()
        self._abandon = threading.Event()  # set when shutdown stops waiting for the backend
        self._closing = threading.Event()  # set when run() ends (stops the lag thread)
        self.group = str((consumer_overrides or {}).get("group.id", settings.group("indexer")))
        self.broker = BrokerWatch("indexer")
        self.metrics.broker_up.set_function(lambda: 1.0 if self.broker.up else 0.0)
        self._consumer_conf = consumer_config(
            settings.kafka,
            self.group,
            # EOF events tell where a partition ends: that offset is committed (see add_end)
            **{"queued.max.messages.kbytes": 32 * 1024, "enable.partition.eof": True,
               "on_commit": self._on_commit},
            **static_member_config(settings, self.group),
            **self.broker.config(),
            **(consumer_overrides or {}),
        )
        self._consumer: Consumer | None = None
        self._sender = ThreadPoolExecutor(max_workers=self.config.senders,
                                          thread_name_prefix="indexer-sender")
        self._bulk = BulkWriter(self.backend, self.metrics, self._abandon,
                                self.config.retry_initial_s, self.config.retry_max_s)
        self._deadletters = DeadLetterWriter(settings, self._abandon, self.config.retry_initial_s,
                                             self.config.retry_max_s)
        self._batch = Batch()
        self._in_flight: deque[Future[Stored]] = deque()
        self._keys_in_flight: dict[Future[Stored], set[tuple[str, str]]] = {}
        self._assigned: set[TP] = set()
        self._committed: dict[TP, int] = {}  # offsets handed to commit(), per partition held
        self._committed_partitions: set[TP] = set()  # every partition this process committed
        self._confirmed: dict[TP, int] = {}  # offsets the coordinator acknowledged
        self._read_to: dict[TP, int] = {}  # next offset after what was read (or the end seen)
        self._paused = False
        self._failure: BaseException | None = None
        self.stored_total = 0
        self.deadlettered_total = 0

    # -- control --------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish: flush, commit what was stored, close. Safe to call twice.

        After ``shutdown_timeout_s`` whatever is still not stored is given up (and, not being
        committed, read again on the next start)."""
        if self._stop.is_set():
            return
        self._stop.set()
        timer = threading.Timer(self.config.shutdown_timeout_s, self._abandon.set)
        timer.daemon = True
        timer.start()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> int:
        """Index until :meth:`stop`; returns 0, or 1 after an unrecoverable error."""
        self._prepare_backend()
        if self._stop.is_set():
            return 0
        consumer = Consumer(self._consumer_conf)
        self._consumer = consumer
        lag = threading.Thread(target=self._lag_loop, name="indexer-lag", daemon=True)
        try:
            if not self._wait_for_kafka(consumer):
                return 0
            consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                               on_lost=self._on_lost)
            log_event(log, "indexer.started", topics=self.topics, backend=self.backend.name,
                      group=self.group, member=self._consumer_conf.get("group.instance.id"))
            lag.start()
            next_recommit = next_retention = time.monotonic()
            while not self._stop.is_set() and self._failure is None:
                self._reap(block=False)
                self._apply_backpressure()
                self._read(consumer)
                if self._batch_due():
                    self._submit()
                now = time.monotonic()
                if now >= next_recommit:
                    self._recommit()
                    next_recommit = now + self.config.lag_interval_s
                if self.retention_days and now >= next_retention:
                    self._sweep_retention()
                    next_retention = now + self.config.retention_interval_s
        finally:
            self._closing.set()
            self._shutdown(consumer)
            if lag.is_alive():
                lag.join(timeout=15)
        return 1 if self._failure is not None else 0

    # -- start-up --------------------------------------------------------------------------

    def _prepare_backend(self) -> None:
        """Install the index templates, waiting (with backoff) for the cluster to answer."""
        if not self.config.install_templates:
            return
        backoff = Backoff(self.config.retry_initial_s, self.config.retry_max_s, self._stop)
        while True:
            try:
                self.backend.install_templates(self.settings.index_prefix, self.settings.indices)
                return
            except BackendUnavailable as exc:
                self.metrics.errors.labels("unavailable").inc()
                log_event(log, "indexer.backend_waiting", logging.WARNING, reason=exc.reason[:300])
                try:
                    backoff.wait()
                except Abandoned:
                    return

    def _wait_for_kafka(self, consumer: Consumer) -> bool:
        """Wait for a broker, then for each topic's partition leaders; False if stopped first.

        A broker that is not up yet is waited for as long as it takes (one ``kafka.waiting``
        line; the broker_up gauge says 0 meanwhile); a broker that answers but lacks a topic
        gets ``topic_wait_s`` (a topic created a moment ago), then it is a configuration error."""
        pending = list(self.topics)
        said = False
        while pending and not self._stop.is_set():
            try:
                consumer.list_topics(timeout=5)
            except KafkaException as exc:
                if not said:
                    log_event(log, "kafka.waiting", logging.WARNING, what="broker",
                              bootstrap=self.settings.kafka.bootstrap, reason=str(exc.args[0] if exc.args else exc))
                    said = True
                consumer.poll(0.5)  # serves the error and statistics callbacks (BrokerWatch)
                continue
            try:
                wait_for_topic(consumer, pending[0], timeout_s=self.config.topic_wait_s)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if getattr(err, "code", lambda: None)() in _UNREACHABLE:
                    continue  # the broker went away while we waited: wait for it again
                raise ConfigError(f"topic {pending[0]} is not usable after {self.config.topic_wait_s:.0f} s "
                                  f"({err}); run 'playscope stack up' or create it") from None
            pending.pop(0)
        return not pending

    # -- reading ---------------------------------------------------------------------------

    def _read(self, consumer: Consumer) -> None:
        room = max(1, self.config.batch_max_docs - self._batch.records)
        wait = 0.1
        if self._batch.records:
            age = time.monotonic() - self._batch.started
            wait = max(0.0, min(wait, self.config.batch_max_wait_s - age))
        for msg in consumer.consume(num_messages=min(room, 5000), timeout=wait):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    self._reached_end(msg)
                else:
                    self.metrics.errors.labels("kafka").inc()
                    log_event(log, "indexer.kafka_error", logging.WARNING, error=str(err))
                continue
            self._add(msg)

    def _reached_end(self, msg: Message) -> None:
        """Commit a partition's end offset with the current batch when it lies past what was read.

        The consumer never returns transaction markers, so a topic written by a transactional
        producer ends one offset past its last record; committing only "last record + 1" would
        leave a lag of 1 forever."""
        topic, partition, end = msg.topic(), msg.partition(), msg.offset()
        if topic is None or partition is None or end is None or (topic, partition) not in self._assigned:
            return
        if end > self._read_to.get((topic, partition), -1):
            self._read_to[(topic, partition)] = end
            self._batch.add_end(topic, partition, end)

    def _add(self, msg: Message) -> None:
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        assert topic is not None and partition is not None and offset is not None  # a record, not an event
        family = self._family_of_topic[topic]
        batch = self._batch
        batch.received[family] += 1
        value = msg.value()
        kafka_ts = msg.timestamp()[1]
        try:
            action = self.encoder.encode(topic, value, kafka_ts)
        except Rejected as exc:
            if self._is_own_deadletter(family, value):
                self.metrics.errors.labels("deadletter_refused").inc()
                log_event(log, "indexer.deadletter_refused", logging.ERROR, reason=exc.reason,
                          original=(value or b"")[:2000].decode("utf-8", "replace"))
            else:
                batch.deadletters.append(self._deadletter(value, topic, kafka_ts, "invalid_record",
                                                          exc.reason, exc.field))
                self.metrics.deadlettered.labels(family, "invalid_record").inc()
            batch.size += len(value or b"")
        else:
            key = (action.index, action.doc_id)
            held = batch.actions.get(key)
            if held is not None and held.version is not None and held.version > (action.version or 0):
                self.metrics.stale.labels(family).inc()  # an older revision after a newer one: keep the newer
            else:
                batch.actions[key] = action
            batch.size += len(action.source) + 100
        batch.add_offset(topic, partition, offset)
        self._read_to[(topic, partition)] = offset + 1

    def _batch_due(self) -> bool:
        b = self._batch
        if not b.records:  # only end offsets: commit them after the usual wait
            return bool(b.offsets) and time.monotonic() - b.started >= self.config.batch_max_wait_s
        return (
            b.records >= self.config.batch_max_docs
            or b.size >= self.config.batch_max_bytes
            or time.monotonic() - b.started >= self.config.batch_max_wait_s
        )

    # -- sending ---------------------------------------------------------------------------

    def _submit(self) -> None:
        batch, self._batch = self._batch, Batch()
        if not batch.records:
            if batch.offsets:  # nothing to store: commit in turn, after the batches in flight
                done: Future[Stored] = Future()
                done.set_result(Stored(batch.offsets, 0, 0))
                self._in_flight.append(done)
            return
        for family, received in batch.received.items():
            self.metrics.received.labels(family).inc(received)
        self.metrics.batch_docs.observe(len(batch.actions))
        for done in [f for f in self._keys_in_flight if f.done()]:
            del self._keys_in_flight[done]
        keys = set(batch.actions)
        earlier = [f for f, k in self._keys_in_flight.items() if not keys.isdisjoint(k)]
        future = self._sender.submit(self._store, batch, earlier)
        self._keys_in_flight[future] = keys
        self._in_flight.append(future)
        self.metrics.pending_batches.set(len(self._in_flight))

    def _store(self, batch: Batch, earlier: list[Future[Stored]]) -> Stored:
        """Sender thread: store the batch, dead-letter what the backend refused."""
        for fut in earlier:  # same document in an earlier batch: let that write land first
            while not fut.done():
                if self._abandon.is_set():
                    raise Abandoned("shutdown while waiting for an earlier batch")
                wait([fut], timeout=0.5)
        outcome = self._bulk.store(list(batch.actions.values()))
        deadletters = list(batch.deadletters)
        for action, etype, reason in outcome.rejected:
            if self._is_own_deadletter(action.family, action.original):
                self.metrics.errors.labels("deadletter_refused").inc()
                log_event(log, "indexer.deadletter_refused", logging.ERROR, reason=reason[:500],
                          index=action.index, original=action.original[:2000].decode("utf-8", "replace"))
                continue
            deadletters.append(self._deadletter(action.original, action.topic, action.kafka_ts_ms,
                                                etype, reason, ""))
            self.metrics.deadlettered.labels(action.family, etype).inc()
            log_event(log, "indexer.document_refused", logging.WARNING, error_type=etype,
                      reason=reason[:500], index=action.index, doc_id=action.doc_id)
        if deadletters:
            self._deadletters.send_all(deadletters)
        for family, count in outcome.stored.items():
            self.metrics.sent.labels(family).inc(count)
        for family, count in outcome.stale.items():
            self.metrics.stale.labels(family).inc(count)
        stored = sum(outcome.stored.values())
        return Stored(batch.offsets, stored, len(deadletters))

    def _deadletter(self, value: bytes | None, topic: str, kafka_ts: int, etype: str, reason: str,
                    field_name: str) -> dict[str, Any]:
        # The Kafka timestamp (not the wall clock) keeps a re-sent dead-letter byte-identical,
        # so a replay after a crash overwrites the same dead-letter document.
        ts = kafka_ts if kafka_ts and kafka_ts > 0 else int(time.time() * 1000)
        return deadletter_record(value or b"", reason, SOURCE, field=field_name, ts_ms=ts,
                                 topic=topic, error_type=etype)

    @staticmethod
    def _is_own_deadletter(family: str, value: bytes | None) -> bool:
        """A dead-letter record the indexer itself wrote and cannot store: never re-dead-letter
        it (that could loop); it is logged in full instead."""
        if family != "deadletter" or not value:
            return False
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError:
            return False
        return isinstance(record, dict) and record.get("source") == SOURCE

    # -- completing and committing ---------------------------------------------------------

    def _reap(self, block: bool, timeout_s: float | None = None, sync: bool = False) -> bool:
        """Commit completed batches in order. With ``block``, wait for all (up to timeout_s);
        returns True when nothing is left in flight."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._in_flight:
            head = self._in_flight[0]
            if not head.done():
                if not block:
                    return False
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    head.result(timeout=remaining)
                except FutureTimeout:
                    return False
                except BaseException:
                    pass  # handled below
            self._in_flight.popleft()
            self.metrics.pending_batches.set(len(self._in_flight))
            try:
                stored = head.result()
            except Abandoned:
                self._drop_in_flight()
                return True
            except BaseException as exc:  # a bug or an unexpected backend answer: stop, commit nothing
                self._failure = exc
                log_event(log, "indexer.failed", logging.ERROR, error=repr(exc)[:1000])
                self._drop_in_flight()
                return True
            self.stored_total += stored.documents
            self.deadlettered_total += stored.deadlettered
            self._commit(stored.offsets, asynchronous=not sync)
        return True

    def _drop_in_flight(self) -> None:
        """Later batches must not commit past one that was not stored."""
        self._abandon.set()
        for fut in self._in_flight:
            fut.cancel()
        self._in_flight.clear()
        self._keys_in_flight.clear()

    def _commit(self, offsets: dict[TP, int], asynchronous: bool) -> None:
        owned = [TopicPartition(t, p, o) for (t, p), o in offsets.items() if (t, p) in self._assigned]
        if not owned or self._consumer is None:
            return
        try:
            if asynchronous:
                self._consumer.commit(offsets=owned, asynchronous=True)  # acknowledged in _on_commit
            else:
                self._on_commit(None, self._consumer.commit(offsets=owned, asynchronous=False) or [])
        except Exception as exc:  # e.g. a rebalance in progress; the next commit covers it
            self.metrics.errors.labels("commit").inc()
            log_event(log, "indexer.commit_failed", logging.WARNING, error=str(exc))
            return
        for tp in owned:
            self._committed[(tp.topic, tp.partition)] = tp.offset
            self._committed_partitions.add((tp.topic, tp.partition))

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Commit results (served by consume): remember what the coordinator acknowledged."""
        if err is not None:
            return
        for tp in partitions:
            if tp.error is None and tp.offset >= 0:
                key = (tp.topic, tp.partition)
                self._confirmed[key] = max(self._confirmed.get(key, -1), tp.offset)

    def _recommit(self) -> None:
        """Commit again what a failed commit (broker down, coordinator moving) left behind: a
        quiet stream after an outage would otherwise show a lag that no new record clears."""
        behind = {tp: offset for tp, offset in self._committed.items()
                  if tp in self._assigned and offset > self._confirmed.get(tp, -1)}
        if behind and self.broker.up:
            self._commit(behind, asynchronous=True)

    def _apply_backpressure(self) -> None:
        full = len(self._in_flight) >= self.config.max_pending_batches
        if full and not self._paused and self._consumer is not None:
            self._consumer.pause([TopicPartition(t, p) for t, p in self._assigned])
            self._paused = True
            self.metrics.paused.set(1)
        elif not full and self._paused and self._consumer is not None:
            self._consumer.resume([TopicPartition(t, p) for t, p in self._assigned])
            self._paused = False
            self.metrics.paused.set(0)
        if full:  # do not build more than one batch beyond the limit
            self._reap(block=True, timeout_s=0.1)

    def _flush_all(self, timeout_s: float | None) -> bool:
        self._submit()
        return self._reap(block=True, timeout_s=timeout_s, sync=True)

    # -- rebalancing -----------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        if self._paused:
            consumer.pause(partitions)
        log_event(log, "indexer.assigned", partitions=len(partitions), total=len(self._assigned))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Store and commit everything read so far before the partitions move on."""
        self._flush_all(None)  # bounded on shutdown: stop() abandons after shutdown_timeout_s
        self._forget(partitions)
        log_event(log, "indexer.revoked", partitions=len(partitions), total=len(self._assigned))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget(partitions)
        log_event(log, "indexer.lost", logging.WARNING, partitions=len(partitions))

    def _forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            key = (tp.topic, tp.partition)
            self._assigned.discard(key)
            for known in (self._read_to, self._committed, self._confirmed):  # a later owner commits
                known.pop(key, None)

    # -- housekeeping ----------------------------------------------------------------------

    def _lag_loop(self) -> None:
        """Lag thread: the group's uncommitted records per family, every ``lag_interval_s``.

        From the group's committed offsets, not from this process's assignment, so the gauge is
        true while it holds no partitions (a rebalance, a member waiting to take over). When the
        cluster does not answer the last values stay (the broker_up gauge says why)."""
        offsets = Consumer(consumer_config(self.settings.kafka, self.group))  # reads offsets, never joins
        try:
            while not self._closing.wait(self.config.lag_interval_s):
                try:
                    by_topic = group_lag(offsets, self.topics, timeout_s=10)
                except KafkaException:  # try again next time
                    continue
                for topic, behind in by_topic.items():
                    self.metrics.lag.labels(self._family_of_topic[topic]).set(behind)
        finally:
            offsets.close()

    def _sweep_retention(self) -> None:
        assert self.retention_days is not None
        try:
            deleted = retention.sweep(self.backend, self.settings.index_prefix, self.retention_days)
        except BackendUnavailable as exc:
            self.metrics.errors.labels("retention").inc()
            log_event(log, "retention.failed", logging.WARNING, reason=exc.reason[:300])
            return
        self.metrics.retention_deleted.inc(len(deleted))

    def _shutdown(self, consumer: Consumer) -> None:
        """Store what was read (bounded by shutdown_timeout_s), commit it, close. Safe twice."""
        if self._failure is None:
            done = self._flush_all(None)  # stop() abandons after shutdown_timeout_s
            if not done:
                log_event(log, "indexer.shutdown_abandoned", logging.WARNING,
                          batches=len(self._in_flight))
                self._drop_in_flight()
        else:
            self._drop_in_flight()
        self._sender.shutdown(wait=True, cancel_futures=True)
        member = self._consumer_conf.get("group.instance.id")
        member_id = ""
        with contextlib.suppress(Exception):  # never joined
            member_id = consumer.memberid() or ""
        try:
            consumer.close()  # revocation callbacks find nothing left to do
        except Exception as exc:
            log_event(log, "indexer.close_failed", logging.WARNING, error=str(exc))
        if member:
            # a static member does not leave on close: leave now, so the partitions move at once
            if member_id:
                membership.leave_group(self.settings, self.group, str(member), member_id)
            membership.release(self.group)
        self._deadletters.close()
        self.backend.close()
        log_event(log, "indexer.stopped", stored=self.stored_total, deadlettered=self.deadlettered_total,
                  committed_partitions=len(self._committed_partitions))
