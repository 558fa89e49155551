"""Whole-fetch delivery for the high-volume input topics, inside Faust's own consumer.

Faust hands every record to its streams one at a time: two asyncio tasks per record in the
fetch loop, the conductor, a channel queue, the stream iterator and ``take_events``. Measured on
the benchmark machine that path alone tops out near 7,000 records/s, whatever the agent does.

:class:`BulkConsumer` keeps everything else Faust does (group membership, co-partitioned
assignment, table changelogs and recovery, standbys, offset commits after a producer flush) and
changes one thing: records of the topics named in ``app.bulk_handlers`` are passed to their
handler in batches (as many fetches as fill ``bulk_batch_size`` records or ``bulk_batch_wait_s``),
as (topic-partition, records) pairs, synchronously, and then
acknowledged in bulk so Faust commits them as usual. Records of every other topic (changelogs
during recovery, the partials topic) take Faust's normal path. The handler runs without yielding to the event loop,
so no rebalance can interleave with a batch; state written by the handler is sent before the
records are acknowledged, and no offset is committed before every record the producer holds
has reached Kafka (:meth:`BulkConsumer._commit_offsets`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import monotonic
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka

Handler = Callable[[list[tuple[Any, list[Any]]]], None]  # [(topic-partition, records)]


class BulkConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, delivering registered topics a whole fetch at a time."""

    async def _commit_offsets(self, offsets: Any, start_new_transaction: bool = True) -> bool:
        """Commit only once every state write and output sent so far is acknowledged.

        Faust flushes its producer before a commit, but its buffer's flush gives up after 0.1 s
        without a send (``ProducerBuffer.flush_atmost``): under load, state still queued there
        was behind a committed offset, and a kill -9 then lost it for good (the restored state
        lacked records the group would never deliver again)."""
        app = cast(BulkApp, self.app)
        if not await app.wait_sent():
            return False  # a write failed: the offsets stay where they are, the records come again
        return cast(bool, await super()._commit_offsets(offsets, start_new_transaction))

    def _handlers(self) -> dict[str, Handler]:
        return cast(dict[str, Handler], getattr(self.app, "bulk_handlers", {}))

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised via Kafka tests
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        acks_enabled_for = self.app.topics.acks_enabled_for
        batch_size = int(getattr(self.app, "bulk_batch_size", 10_000))
        batch_wait = float(getattr(self.app, "bulk_batch_wait_s", 0.5))
        # Records of bulk topics wait here until batch_size of them or batch_wait_s have passed,
        # so state is written at most once per batch; a rebalance drops them (not acked, so they
        # are fetched again from the committed offset by whoever owns the partition next).
        pending: dict[Handler, list[tuple[Any, list[Any]]]] = {}
        pending_n = 0
        pending_since = 0.0
        pending_generation = None
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                await self.sleep(0)
                if self.should_stop:
                    break
                timeout = max(0.0, batch_wait - (monotonic() - pending_since)) if pending_n else 1.0
                records, active = await self._wait_next_records(timeout)
                if self.should_stop:
                    break
                if not self.flow_active:
                    pending.clear()
                    pending_n = 0
                    if records is not None:
                        try:
                            await self.perform_seek()
                        except Exception as exc:
                            self.log.warning(f"exception performing seek when flow not active {exc}")
                    unset_flag(CONSUMER_FETCHING)
                    continue
                generation = self.app.consumer_generation_id
                if pending_n and generation != pending_generation:
                    pending.clear()
                    pending_n = 0
                handlers = self._handlers()
                rest: list[tuple[Any, list[Any]]] = []
                for tp, recs in (records or {}).items():
                    if not recs or not (active is None or tp in active or tp in self._buffered_partitions):
                        continue
                    handler = handlers.get(tp.topic)
                    if handler is None:
                        rest.append((tp, recs))
                        continue
                    if not pending_n:
                        pending_since = monotonic()
                        pending_generation = generation
                    pending.setdefault(handler, []).append((tp, recs))
                    pending_n += len(recs)
                if pending_n and (pending_n >= batch_size or monotonic() - pending_since >= batch_wait):
                    batch, pending, pending_n = pending, {}, 0
                    await self._process_bulk(batch, get_read_offset, set_read_offset, acks_enabled_for)
                # Everything else: Faust's own per-record path, unchanged.
                to_message = self._to_message
                for tp, recs in rest:
                    for record in recs:
                        if not self.flow_active or self.app.consumer_generation_id != generation:
                            break
                        offset = record.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            if r_offset and offset - r_offset > 1 and acks_enabled_for(tp.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            await self.wait_first(callback(to_message(tp, record)), self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    async def _process_bulk(
        self,
        batch: dict[Handler, list[tuple[Any, list[Any]]]],
        get_read_offset: Callable[[Any], int | None],
        set_read_offset: Callable[[Any, int], None],
        acks_enabled_for: Callable[[str], bool],
    ) -> None:
        """Run each handler on its records (no await in between), then acknowledge them all."""
        for handler, parts in batch.items():
            handler(parts)
        now = monotonic()
        for parts in batch.values():
            for tp, recs in parts:
                await self._ack_bulk(tp, recs, get_read_offset(tp), acks_enabled_for(tp.topic))
                set_read_offset(tp, recs[-1].offset)
                self.app.monitor.stream_inbound_time[tp] = now
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()

    async def _ack_bulk(self, tp: Any, recs: list[Any], read_offset: int | None, acks: bool) -> None:
        """Acknowledge processed records as Faust's ``ack`` would, gaps included."""
        if not acks:
            return
        committed = self._committed_offset[tp]
        offsets = [r.offset for r in recs if committed is None or r.offset >= committed]
        prev = read_offset
        for off in offsets:
            if prev and off - prev > 1:
                await self._add_gap(tp, prev + 1, off)
            prev = off
        index = self._acked_index[tp]
        fresh = [off for off in offsets if off not in index]
        index.update(fresh)
        self._acked[tp].extend(fresh)
        self._n_acked += len(fresh)


class BulkTransport(faust_aiokafka.Transport):
    Consumer = BulkConsumer


class BulkApp(faust.App):
    """A faust.App whose consumer is a :class:`BulkConsumer`; ``bulk_handlers`` maps a topic
    name to the function that receives its records, a batch at a time: at most
    ``bulk_batch_size`` records, waiting at most ``bulk_batch_wait_s`` to fill it."""

    bulk_handlers: dict[str, Handler]
    bulk_batch_size: int = 10_000
    bulk_batch_wait_s: float = 0.5
    _unacked: set[Any] | None = None
    _failed: int = 0

    def track(self, fut: Any) -> Any:
        """Note a send (state or output) that a commit must wait for; returns ``fut``."""
        if self._unacked is None:
            self._unacked = set()
        self._unacked.add(fut)
        fut.add_done_callback(self._sent)
        return fut

    def _sent(self, fut: Any) -> None:
        if self._unacked is not None:
            self._unacked.discard(fut)
        if fut.cancelled() or fut.exception() is not None:
            self._failed += 1

    async def wait_sent(self) -> bool:
        """Wait until every tracked send is acknowledged; False once one has failed.

        A write fails only after the producer gave up on it (``producer_request_timeout``, 20
        minutes by default): from then on this process commits nothing, so a restart reads again
        everything since the last commit that was covered by acknowledged writes."""
        # The offsets being committed were acknowledged after their writes were tracked, so the
        # writes tracked now are the ones they depend on (later ones belong to later offsets).
        pending = list(self._unacked or ())
        if pending:
            await asyncio.wait(pending)
        if self._failed:
            self.log.error("%d state or output writes failed: offsets are no longer committed; "
                           "restart the worker", self._failed)
        return not self._failed

    def _new_transport(self) -> Any:
        return BulkTransport(self.conf.broker_consumer, self)
