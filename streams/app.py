"""The Faust application: a thin layer of agents, tables and a timer over the pure logic.

Three agents share one app (one consumer group, ``settings.group("streams")``):

* ``qoe``: playback events plus this app's qoe tick topic (co-partitioned) -> one
  :class:`streams.qoe.QoePartition` per partition; session summaries to ``qoe.sessions``;
  closed-window partials and frontier marks to the internal partials topic.
* ``service``: service logs plus the service tick topic -> :class:`streams.service.ServicePartition`.
* ``merge``: the partials topic (one partition) -> :class:`streams.merge.WindowMerger`; window
  records to ``qoe.metrics`` / ``service.metrics``, keyed by window and group.

Input: the events, logs and tick topics are delivered in whole batches by
:class:`streams.bulk.BulkConsumer` (Faust's per-record stream path is the bottleneck otherwise);
the partials topic goes through Faust's stream as usual.

State: each partition's processor is one value in a table backed by a changelog topic, written
once per batch together with the input offsets it reflects, so after a crash the restored
state says exactly which records it already contains (those are skipped on replay). Faust
flushes the producer before committing offsets, so a committed offset never runs ahead of the
state. A worker-local timer sends ticks into quiet partitions so their clocks move on, for
time the worker was connected and caught up only (see :meth:`StreamsApp.send_ticks`).

Kafka: start-up waits for a broker and for the topics' leaders (:mod:`streams.health`); the
worker is a static group member (``consumer_group_instance_id``), so a restarted worker takes
its partitions back at once, and it leaves the group explicitly on a clean stop (``streams.cli``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import faust
import orjson
from confluent_kafka.admin import AdminClient, NewTopic

from playscope import topics
from playscope.config import Settings
from playscope.deadletter import deadletter_record
from playscope.events import validate_log_record, validate_playback_event
from playscope.indices import window_doc_id
from playscope.kafka import aiokafka_kwargs, wait_for_topic
from playscope.logs import log_event
from playscope.membership import instance_id
from streams import telemetry as m
from streams.bulk import BulkApp
from streams.config import StreamsConfig
from streams.health import KafkaProbe
from streams.intake import TOO_OLD, Rejection, decode, failure
from streams.merge import WindowMerger, chunk_partial
from streams.outbox import Outbox
from streams.qoe import IngestStats, QoePartition
from streams.service import ServicePartition

log = logging.getLogger("playscope.streams")
Outputs = list[tuple[str, bytes | None, bytes, int | None]]  # (role, key, value, partition)


def _runs(messages: list[Any]) -> list[tuple[Any, list[Any]]]:
    """Group messages into runs of one topic-partition, keeping their order."""
    runs: list[tuple[Any, list[Any]]] = []
    last = None
    for msg in messages:
        if msg.tp != last:
            last = msg.tp
            runs.append((last, []))
        runs[-1][1].append(msg)
    return runs


class Names:
    """Every topic the app uses; internal ones are namespaced by the app id."""

    def __init__(self, settings: Settings) -> None:
        self.app_id = settings.group("streams")
        self.events = settings.topic(topics.PLAYBACK_EVENTS)
        self.logs = settings.topic(topics.SERVICE_LOGS)
        self.sessions = settings.topic(topics.QOE_SESSIONS)
        self.qoe_metrics = settings.topic(topics.QOE_METRICS)
        self.service_metrics = settings.topic(topics.SERVICE_METRICS)
        self.deadletter = settings.topic(topics.DEADLETTER)
        self.qoe_ticks = f"{self.app_id}-qoe-ticks"
        self.service_ticks = f"{self.app_id}-service-ticks"
        self.partials = f"{self.app_id}-window-partials"


def _ensure_internal_topics(admin: AdminClient, specs: dict[str, int], replication: int) -> None:
    """Create the tick and partials topics if missing, and wait for their leaders (Faust
    subscribes to them next)."""
    existing = admin.list_topics(timeout=30).topics
    missing = [NewTopic(name, n, replication) for name, n in specs.items() if name not in existing]
    for name, fut in admin.create_topics(missing).items() if missing else ():
        try:
            fut.result()
        except Exception as exc:  # a concurrent worker may have created it first
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
        log_event(log, "streams.topic_created", topic=name)
    for name in specs:
        wait_for_topic(admin, name)


def _credentials(settings: Settings) -> Any:
    kw = aiokafka_kwargs(settings.kafka)
    proto = kw.get("security_protocol", "PLAINTEXT")
    if proto == "PLAINTEXT":
        return None
    if "sasl_mechanism" in kw:
        return faust.SASLCredentials(
            username=kw["sasl_plain_username"],
            password=kw["sasl_plain_password"],
            mechanism=kw["sasl_mechanism"],
            ssl_context=kw.get("ssl_context"),
        )
    return faust.SSLCredentials(kw.get("ssl_context"))


class StreamsApp:
    """Builds the Faust app for one deployment; ``app`` is what a faust Worker runs."""

    def __init__(self, settings: Settings, cfg: StreamsConfig) -> None:
        self.settings = settings
        self.cfg = cfg
        self.names = n = Names(settings)
        self.kafka = KafkaProbe(settings, n.app_id, [n.events, n.logs])
        self.kafka.start()
        self.event_parts = self.kafka.partitions(n.events)
        self.log_parts = self.kafka.partitions(n.logs)
        _ensure_internal_topics(
            self.kafka.admin,
            {n.qoe_ticks: self.event_parts, n.service_ticks: self.log_parts, n.partials: 1},
            settings.kafka.replication_factor,
        )
        self.window_ms = settings.window_s * 1000
        self.lateness_ms = settings.allowed_lateness_s * 1000
        self.bounds_ms = settings.clock_bounds_ms()
        # A tick delivered later than this was held back (an outage, a lagging worker): dropped.
        self.tick_max_delay_ms = int(max(cfg.tick_max_delay_s, 3 * cfg.tick_interval_s) * 1000)
        # Emitted windows stay open to revisions while a session can still reach back into them.
        self.revision_ms = int(cfg.idle_timeout_s * 1000) + self.lateness_ms + self.window_ms
        datadir = Path(settings.home) / "streams" / n.app_id
        datadir.parent.mkdir(parents=True, exist_ok=True)
        # Static membership: a worker restarted after a crash takes its partitions back at once.
        self.member = instance_id(settings, n.app_id)
        self.joined = False
        self.coordinator_member_id = ""  # as of the last assignment (a closed consumer forgets it)
        self.app = BulkApp(
            n.app_id,
            broker=[f"kafka://{h.strip()}" for h in settings.kafka.bootstrap.split(",")],
            broker_credentials=_credentials(settings),
            store="memory://",
            web_enabled=False,
            datadir=str(datadir),
            topic_replication_factor=settings.kafka.replication_factor,
            topic_allow_declare=True,
            consumer_auto_offset_reset="earliest",
            producer_max_request_size=cfg.max_state_bytes,
            consumer_max_fetch_size=cfg.max_state_bytes,
            producer_acks=-1,
            stream_buffer_maxsize=max(4096, cfg.batch_size * 2),
            broker_max_poll_records=cfg.batch_size,
            broker_commit_livelock_soft_timeout=300.0,
            consumer_group_instance_id=self.member,
            broker_session_timeout=settings.kafka.session_timeout_s,
            key_serializer="raw",  # values are bytes we encode ourselves (orjson)
            value_serializer="raw",
        )
        big = {"max.message.bytes": str(cfg.max_state_bytes)}
        table_opts: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "extra_topic_configs": big}

        def topic(*names: str) -> Any:
            return self.app.topic(*names, key_serializer="raw", value_serializer="raw")

        self.t_events = topic(n.events, n.qoe_ticks)
        self.t_logs = topic(n.logs, n.service_ticks)
        self.t_partials = topic(n.partials)
        self.t_qoe_ticks = topic(n.qoe_ticks)
        self.t_service_ticks = topic(n.service_ticks)
        self.t_sessions = topic(n.sessions)
        self.t_qoe_metrics = topic(n.qoe_metrics)
        self.t_service_metrics = topic(n.service_metrics)
        self.t_deadletter = topic(n.deadletter)
        self.qoe_table = self.app.Table("qoe-state", partitions=self.event_parts, **table_opts)
        self.service_table = self.app.Table("service-state", partitions=self.log_parts, **table_opts)
        self.merge_table = self.app.Table("merge-state", partitions=1, **table_opts)
        self.qoe: dict[int, QoePartition] = {}
        self.service: dict[int, ServicePartition] = {}
        self.mergers: dict[str, WindowMerger] = {}
        self.outboxes: dict[bytes, Outbox] = {}  # by the processor's table key
        self.roles = {
            "sessions": self.t_sessions,
            "partials": self.t_partials,
            "qoe_metrics": self.t_qoe_metrics,
            "service_metrics": self.t_service_metrics,
            "deadletter": self.t_deadletter,
        }
        self.last_activity: dict[tuple[str, int], float] = {}
        self.last_offset: dict[tuple[str, int], int] = {}
        # The input topics bypass Faust's per-record stream path (see streams.bulk).
        self.app.bulk_batch_size = cfg.batch_size
        self.app.bulk_batch_wait_s = cfg.batch_wait_s
        self.app.bulk_handlers = {
            n.events: self.process_qoe_records,
            n.qoe_ticks: self.process_qoe_records,
            n.logs: self.process_service_records,
            n.service_ticks: self.process_service_records,
        }
        self._register()

    # -- state -----------------------------------------------------------------------------
    # Each processor's meta value (offsets, clock, windows, outbox, and for sessions the entries
    # the batch changed) is the one write of a batch that lands or not as a whole; a session's
    # own entry, written after it on the same changelog partition, is only its durable home
    # once later metas no longer carry it.
    def _track(self, table: Any, key: bytes, partition: int) -> None:
        """Tell the store which partition a key we wrote belongs to, as recovery does, so a
        revoked partition's keys are dropped with it."""
        known = getattr(table.data, "_key_partition", None)
        if known is not None:
            known[key] = partition

    def _write(self, table: Any, partition: int, key: bytes, blob: bytes | None) -> None:
        if blob is None:
            if table.data.pop(key, None) is None:
                return
        else:
            table.data[key] = blob
        self._track(table, key, partition)
        self.app.track(table.send_changelog(partition, key, blob))

    def _load(self, table: Any, key: bytes, fresh: Callable[[], Any], entries: bytes | None = None) -> Any:
        """A processor from its table value (and, for sessions, its entries under ``entries``);
        the outputs its state still holds are sent again."""
        proc = fresh()
        outbox = self.outboxes[key] = Outbox()
        blob = table.data.get(key)
        if blob:
            raw = orjson.loads(blob)
            if entries is not None and "sessions" not in raw:
                n = len(entries)
                raw["sessions"] = {k[n:].decode(): orjson.loads(v) for k, v in table.data.items()
                                   if v and k.startswith(entries)}
                for sid, entry in (raw.pop("changed", None) or {}).items():  # the meta's batch wins
                    if entry is None:
                        raw["sessions"].pop(sid, None)
                    else:
                        raw["sessions"][sid] = entry
            proc.load(raw)
            outbox.load(raw.get("outbox"))
            outbox.resend_all(self._send_output)
        return proc

    def _save(self, table: Any, partition: int, key: bytes, meta: dict[str, Any]) -> None:
        meta["outbox"] = self.outboxes[key].to_dict()
        self._write(table, partition, key, orjson.dumps(meta, option=orjson.OPT_NON_STR_KEYS))

    def _save_qoe(self, p: int, proc: QoePartition) -> None:
        """The meta value first, holding this batch's session entries too, then those entries
        under their own keys. Only one value lands atomically: with the entries written first, a
        kill between them and the meta restored entries that already held events the restored
        windows lacked (replayed, they were refused as duplicates and lost to the windows)."""
        changes = proc.session_changes()
        meta = proc.meta_dict()
        meta["changed"] = dict(changes)
        self._save(self.qoe_table, p, f"qoe:{p}".encode(), meta)
        prefix = f"qoe:{p}:s:".encode()
        for sid, entry in changes:
            blob = None if entry is None else orjson.dumps(entry, option=orjson.OPT_NON_STR_KEYS)
            self._write(self.qoe_table, p, prefix + sid.encode(), blob)

    def qoe_partition(self, p: int) -> QoePartition:
        proc = self.qoe.get(p)
        if proc is None:
            cfg = self.cfg
            proc = self.qoe[p] = self._load(
                self.qoe_table,
                f"qoe:{p}".encode(),
                lambda: QoePartition(
                    self.window_ms,
                    self.lateness_ms,
                    int(cfg.idle_timeout_s * 1000),
                    int(cfg.tombstone_s * 1000),
                    int(cfg.dedup_window_s * 1000),
                ),
                entries=f"qoe:{p}:s:".encode(),
            )
        return proc

    def service_partition(self, p: int) -> ServicePartition:
        proc = self.service.get(p)
        if proc is None:
            proc = self.service[p] = self._load(
                self.service_table,
                f"service:{p}".encode(),
                lambda: ServicePartition(self.window_ms, self.lateness_ms),
            )
        return proc

    def merger(self, kind: str) -> WindowMerger:
        proc = self.mergers.get(kind)
        if proc is None:
            proc = self.mergers[kind] = self._load(
                self.merge_table, f"merge:{kind}".encode(), lambda: WindowMerger(kind, self.window_ms, self.revision_ms)
            )
        return proc

    def forget(self) -> None:
        """Drop cached processors (after a rebalance they are reloaded from the tables)."""
        self.qoe.clear()
        self.service.clear()
        self.mergers.clear()
        self.outboxes.clear()

    # -- outputs ---------------------------------------------------------------------------
    def _send(self, topic: Any, key: bytes | None, value: dict[str, Any], partition: int | None = None) -> None:
        topic.send_soon(key=key, value=orjson.dumps(value), partition=partition)

    def _send_output(
        self, role: str, key: bytes | None, value: bytes, partition: int | None, done: Callable[[Any], None]
    ) -> None:
        fut = self.app.track(self.roles[role].send_soon(key=key, value=value, partition=partition))
        fut.add_done_callback(done)

    def _commit_outputs(self, key: bytes, outputs: Outputs) -> int | None:
        """Keep a batch's outputs in the processor's outbox (saved with its state next)."""
        return self.outboxes[key].add(outputs)

    def _flush_outputs(self, key: bytes, batch: int | None) -> None:
        """Send them, once the state that holds them has been written."""
        self.outboxes[key].send(batch, self._send_output)

    def _reject(self, rejection: Rejection, topic: str, outputs: Outputs) -> None:
        """A refused record: counted by kind and dead-lettered with its reason and bytes."""
        m.ERRORS.labels(error_type=rejection.error_type).inc()
        doc = deadletter_record(rejection.raw, rejection.reason, "streams", field=rejection.field, topic=topic)
        if rejection.exception:
            doc["exception"] = rejection.exception
        outputs.append(("deadletter", None, orjson.dumps(doc), None))

    def _apply_ticks(self, proc: Any, recs: list[Any], now_ms: int) -> None:
        """Move a quiet partition's clock by each tick, unless the tick was held back: a tick
        delivered late covers time in which the worker could not reach the broker or was behind."""
        for msg in recs:
            try:
                body = orjson.loads(msg.value)
                advance = int(body["advance_ms"])
                sent = int(body.get("sent_ms") or msg.timestamp or now_ms)
            except Exception:  # an internal topic, but never let one record stop the worker
                m.DISCARDED.labels(reason="bad_tick").inc()
                continue
            if now_ms - sent > self.tick_max_delay_ms:
                m.DISCARDED.labels(reason="stale_tick").inc()
                continue
            proc.tick(advance)

    def _received_ms(self, msg: Any, ts_scale: float, now_ms: int) -> int:
        stamp = msg.timestamp
        return int(stamp * ts_scale * 1000) if stamp else now_ms

    def _partials(
        self,
        kind: str,
        p: int,
        parts: int,
        closed: list[tuple[int, dict[str, Any]]],
        frontier: int | None,
        force_mark: bool,
        outputs: Outputs,
    ) -> None:
        for ws, groups in closed:
            for i, chunk in enumerate(chunk_partial(groups)):
                body = {"kind": kind, "t": "partial", "p": p, "chunk": i, "ws": ws, "aggs": chunk}
                outputs.append(("partials", None, orjson.dumps(body), 0))
        if closed or force_mark:
            body = {"kind": kind, "t": "mark", "p": p, "parts": parts, "frontier": frontier}
            outputs.append(("partials", None, orjson.dumps(body), 0))

    # -- agents ----------------------------------------------------------------------------
    def process_qoe_batch(self, events: list[Any]) -> None:
        """Faust stream events (only if a record ever takes Faust's per-record path)."""
        self.process_qoe_records(_runs([e.message for e in events]), ts_scale=1.0)

    def process_qoe_records(self, parts: list[tuple[Any, list[Any]]], ts_scale: float = 0.001) -> None:
        """Records of the events and qoe tick topics, as (topic-partition, records in offset
        order) pairs (aiokafka records: timestamps in ms)."""
        started = time.perf_counter()
        touched: dict[int, bool] = {}
        outs: dict[int, Outputs] = {}
        stats = IngestStats()
        now = time.time()
        now_ms = int(now * 1000)
        oldest = now
        received = after_close = 0
        bounds = self.bounds_ms
        ticks_topic = self.names.qoe_ticks
        events_topic = self.names.events
        for tp, recs in parts:
            topic, p = tp.topic, tp.partition
            proc = self.qoe_partition(p)
            recs = self._unseen(proc.offsets, topic, p, recs, ticks_topic)
            if not recs:
                continue
            proc.offsets[topic] = recs[-1].offset
            if topic == ticks_topic:
                self._apply_ticks(proc, recs, now_ms)
                touched[p] = touched.get(p, False) or proc.clock is None
                continue
            received += len(recs)
            stamps = [r.timestamp for r in recs if r.timestamp]
            if stamps:
                oldest = min(oldest, min(stamps) * ts_scale)
            ingest = proc.ingest
            outputs = outs.setdefault(p, [])
            for msg in recs:
                got = decode(msg.value, validate_playback_event, self._received_ms(msg, ts_scale, now_ms), bounds)
                if isinstance(got, Rejection):
                    self._reject(got, topic, outputs)
                    continue
                try:
                    ingest(got, stats)
                except Exception as exc:  # one record must not stop the worker
                    self._reject(failure(msg.value, exc), topic, outputs)
            for event, reason in stats.refused:
                event.pop("_late", None)
                self._reject(Rejection(orjson.dumps(event), reason, TOO_OLD), topic, outputs)
            stats.refused.clear()
            touched.setdefault(p, False)
        for p, empty_tick in touched.items():
            proc = self.qoe[p]
            outputs = outs.setdefault(p, [])
            before = proc.frontier
            out = proc.advance()
            after_close += out.after_close
            for event, error in out.rejected:
                self._reject(failure(event, error), events_topic, outputs)
            for summary in out.summaries:
                outputs.append(("sessions", summary["session_id"].encode(), orjson.dumps(summary), None))
            self._partials(
                "qoe", p, self.event_parts, out.windows, proc.frontier, empty_tick or proc.frontier != before, outputs
            )
            key = f"qoe:{p}".encode()
            batch = self._commit_outputs(key, outputs)
            self._save_qoe(p, proc)
            self._flush_outputs(key, batch)
            m.SESSIONS_EMITTED.inc(len(out.summaries))
        m.RECEIVED.labels(stream="qoe").inc(received)
        m.LATE.labels(stream="qoe").inc(stats.late)
        m.DISCARDED.labels(reason="duplicate").inc(stats.duplicates)
        m.DISCARDED.labels(reason="after_close").inc(stats.after_close + after_close)
        m.OPEN_SESSIONS.set(sum(len(proc.sessions) for proc in self.qoe.values()))
        m.BATCH_SECONDS.observe(time.perf_counter() - started)
        if received:
            m.EVENT_AGE.observe(max(0.0, time.time() - oldest))

    def process_service_batch(self, events: list[Any]) -> None:
        """Faust stream events (only if a record ever takes Faust's per-record path)."""
        self.process_service_records(_runs([e.message for e in events]))

    def _unseen(self, offsets: dict[str, int], topic: str, p: int, recs: list[Any], ticks_topic: str) -> list[Any]:
        """The records of ``recs`` that the partition's restored state does not hold yet."""
        if topic != ticks_topic:
            # consumed, even if already in the restored state: lag and quiet time count from here
            self.last_activity[(topic, p)] = time.monotonic()
            self.last_offset[(topic, p)] = recs[-1].offset
        done = offsets.get(topic, -1)
        if recs[-1].offset <= done:
            return []
        if recs[0].offset <= done:
            return [r for r in recs if r.offset > done]
        return recs

    def process_service_records(self, parts: list[tuple[Any, list[Any]]]) -> None:
        """Records of the service logs and service tick topics, as (topic-partition, records)."""
        started = time.perf_counter()
        touched: dict[int, bool] = {}
        outs: dict[int, Outputs] = {}
        received = late = 0
        now_ms = int(time.time() * 1000)
        bounds = self.bounds_ms
        ticks_topic = self.names.service_ticks
        for tp, recs in parts:
            topic, p = tp.topic, tp.partition
            proc = self.service_partition(p)
            recs = self._unseen(proc.offsets, topic, p, recs, ticks_topic)
            if not recs:
                continue
            proc.offsets[topic] = recs[-1].offset
            if topic == ticks_topic:
                self._apply_ticks(proc, recs, now_ms)
                touched[p] = touched.get(p, False) or proc.clock is None
                continue
            received += len(recs)
            outputs = outs.setdefault(p, [])
            for msg in recs:
                got = decode(msg.value, validate_log_record, self._received_ms(msg, 0.001, now_ms), bounds)
                if isinstance(got, Rejection):
                    self._reject(got, topic, outputs)
                    continue
                try:
                    late += proc.ingest(got)
                except Exception as exc:  # one record must not stop the worker
                    self._reject(failure(msg.value, exc), topic, outputs)
            touched.setdefault(p, False)
        for p, empty_tick in touched.items():
            proc = self.service[p]
            outputs = outs.setdefault(p, [])
            before = proc.frontier
            closed = proc.advance()
            self._partials(
                "service", p, self.log_parts, closed, proc.frontier, empty_tick or proc.frontier != before, outputs
            )
            key = f"service:{p}".encode()
            batch = self._commit_outputs(key, outputs)
            self._save(self.service_table, p, key, proc.to_dict())
            self._flush_outputs(key, batch)
        m.RECEIVED.labels(stream="service").inc(received)
        m.LATE.labels(stream="service").inc(late)
        m.BATCH_SECONDS.observe(time.perf_counter() - started)

    def process_merge_batch(self, events: list[Any]) -> None:
        touched: set[str] = set()
        outs: dict[str, Outputs] = {}
        for event in events:
            msg = event.message
            try:
                body = orjson.loads(msg.value)
                kind = body["kind"]
                merger = self.merger(kind)
            except Exception:  # an internal topic, but never let one record stop the worker
                m.DISCARDED.labels(reason="bad_partial").inc()
                continue
            if msg.offset <= merger.offset:
                continue
            merger.offset = msg.offset
            touched.add(kind)
            if body["t"] == "partial":
                merger.add_partial(body["p"], body["chunk"], body["ws"], body["aggs"])
                continue
            role = "qoe_metrics" if kind == "qoe" else "service_metrics"
            outputs = outs.setdefault(kind, [])
            for record in merger.mark(body["p"], body["parts"], body["frontier"]):
                outputs.append((role, window_doc_id(record).encode(), orjson.dumps(record), None))
                m.WINDOWS_EMITTED.labels(stream=kind).inc()
                if record.get("revision"):
                    m.WINDOWS_REVISED.labels(stream=kind).inc()
        for kind in sorted(self.mergers):
            # every merger state carries the latest offset, so each one is saved on each batch
            if touched:
                key = f"merge:{kind}".encode()
                batch = self._commit_outputs(key, outs.get(kind, []))
                self._save(self.merge_table, 0, key, self.mergers[kind].to_dict())
                self._flush_outputs(key, batch)

    def send_ticks(self) -> None:
        """Advance the clocks of quiet, caught-up partitions by the wall time that passed while
        the worker was connected.

        No tick while the broker is away: it would be delivered on reconnect, ahead of the
        backlog the producers retry then, and push the clocks past all of it (every retried
        event late). After an outage the quiet time counts from the reconnection plus
        ``reconnect_grace_s``, the time producers get to deliver what they held back."""
        if not self.kafka.up:
            return
        now = time.monotonic()
        connected_since = self.kafka.up_since + (self.cfg.reconnect_grace_s if self.kafka.watch.downs else 0.0)
        if now < connected_since:
            return
        consumer = self.app.consumer
        assigned = consumer.assignment()
        for tp in assigned:
            if tp.topic == self.names.events:
                ticks = self.t_qoe_ticks
            elif tp.topic == self.names.logs:
                ticks = self.t_service_ticks
            else:
                continue
            key = (tp.topic, tp.partition)
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            offset = self.last_offset.get(key)
            if offset is None:
                offset = self._restored_offset(tp.topic, tp.partition)
            behind = max(0, highwater - ((offset if offset is not None else -1) + 1))
            last = self.last_activity.setdefault(key, now)
            quiet = now - max(last, connected_since)
            if behind or quiet < self.cfg.tick_interval_s:
                continue
            self.last_activity[key] = now
            self._send(ticks, None, {"advance_ms": int(quiet * 1000), "sent_ms": int(time.time() * 1000)}, tp.partition)

    def _restored_offset(self, topic: str, p: int) -> int | None:
        """The last input offset the restored state of partition ``p`` holds, once recovery is
        over. A worker restarted after the stream went quiet reads nothing new, so without this
        it would never see its partitions as caught up and never advance their clocks: the last
        sessions and windows would stay open until new events came."""
        app = self.app
        consumer: Any = app.consumer  # the concrete classes: the abstract types lack these
        tables: Any = app.tables
        if app.rebalancing or not consumer.flow_active or not tables.recovery.completed.is_set():
            return None
        proc = self.qoe_partition(p) if topic == self.names.events else self.service_partition(p)
        offset = proc.offsets.get(topic)
        if offset is not None:
            self.last_offset[(topic, p)] = offset
        return offset

    def _register(self) -> None:
        app = self.app
        cfg = self.cfg

        # The qoe and service agents subscribe their topics (so Faust assigns them, co-partitioned
        # with their tick topics), but their records reach process_*_records through the bulk
        # consumer; the agent bodies only run if a record ever takes Faust's per-record path.
        @app.agent(self.t_events, name="qoe")
        async def qoe(stream: Any) -> None:
            async for batch in stream.take_events(cfg.batch_size, within=cfg.batch_wait_s):
                self.process_qoe_batch(batch)

        @app.agent(self.t_logs, name="service")
        async def service(stream: Any) -> None:
            async for batch in stream.take_events(cfg.batch_size, within=cfg.batch_wait_s):
                self.process_service_batch(batch)

        @app.agent(self.t_partials, name="merge")
        async def merge(stream: Any) -> None:
            async for batch in stream.take_events(cfg.batch_size, within=cfg.batch_wait_s):
                self.process_merge_batch(batch)

        @app.timer(cfg.tick_interval_s)
        async def ticks() -> None:
            self.send_ticks()

        async def on_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
            self.forget()

        async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
            self.joined = True
            self.coordinator_member_id = self.member_id() or self.coordinator_member_id

        app.on_partitions_revoked.connect(cast(Any, on_revoked))
        app.on_partitions_assigned.connect(cast(Any, on_assigned))

    def member_id(self) -> str:
        """The coordinator's id for this member ("" when unknown): what a LeaveGroup names."""
        try:
            consumer: Any = self.app.consumer
            return str(consumer._thread._ensure_consumer()._coordinator.member_id or "")
        except Exception:  # not started, or Faust's internals moved
            return ""
