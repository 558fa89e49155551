"""The log agent: tail, join multi-line records, parse, ship, and checkpoint what was confirmed.

Batches are shipped in order with at most ``max_in_flight`` outstanding; a file's checkpoint
moves only when every batch up to and including the one holding its lines is confirmed, so a
kill -9 repeats at most the unconfirmed batches (and the last second of confirmed ones, as
checkpoints are written and fsynced at most once a second) and loses nothing.

No line can stop the agent: whatever a parser, the validator or the enrichment raises makes
that line a dead letter with the reason, and the next line goes on; a record too large for
Kafka (``max_record_bytes``) is one too, with its original cut to ``DEADLETTER_ORIGINAL_MAX``.
Records get the same treatment as at the collector: identifiers pseudonymised (the top-level
``privacy:`` section; client addresses in dead-lettered lines too), and ``ts`` bounded against
the moment the line was read (SPEC 4).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from collectors.agent.checkpoint import Checkpoints
from collectors.agent.config import AgentConfig, InputConfig
from collectors.agent.fastpath import JsonFastPath
from collectors.agent.metrics import BROKER_UP, DISCARDED, ERRORS, IN_FLIGHT, RECEIVED, SENT
from collectors.agent.parsers import PARSERS, Parser
from collectors.agent.sinks import DEADLETTER_ORIGINAL_MAX, SINKS
from collectors.agent.tailer import Chunk, Line, Tailer
from collectors.delivery import Message, Run, encode
from playscope import topics
from playscope.config import Settings
from playscope.deadletter import deadletter_record
from playscope.errors import ValidationError
from playscope.events import check_clock, validate_log_record
from playscope.logs import log_event
from playscope.privacy import Pseudonymizer, addresses_in, privacy_of

log = logging.getLogger("playscope.agent")

RETRY_MAX_S = 5.0  # the longest wait before a failed batch is sent again


@dataclass
class _Batch:
    runs: list[Run]  # the records, by topic, in produce_batch form
    size: int
    # fingerprint -> (end offset of the last complete record in the batch, the bytes before it)
    offsets: dict[str, tuple[int, bytes]]
    lines: int
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    failures: int = 0  # failed attempts so far
    retry_at: float | None = None  # when a failed batch is sent again


@dataclass
class _Pending:
    """A multi-line record being assembled."""

    lines: list[bytes]
    end_offset: int
    tail: bytes
    path: str
    since: float


class _Input:
    def __init__(self, config: InputConfig, agent: AgentConfig) -> None:
        self.config = config
        self.parse: Parser = PARSERS[config.parser](config.pattern, config.time_format)
        self.tailer = Tailer(config.paths, agent.fingerprint_bytes, agent.read_chunk_bytes,
                             agent.max_line_bytes, start_at_end=config.start_at == "end")
        import re

        self.start = re.compile(config.multiline.start.encode()) if config.multiline else None
        self.pending: dict[str, _Pending] = {}
        self.fields = tuple(config.fields.items())  # read once: _record runs for every line
        self.service = config.service
        self.json = config.parser == "json"  # a rejected line may still be a JSON object
        self.fast: JsonFastPath | None = None  # set by the agent when its checks can stand in


class Agent:
    def __init__(self, settings: Settings, config: AgentConfig) -> None:
        self.settings = settings
        self.config = config
        self.inputs = [_Input(cfg, config) for cfg in config.inputs]
        self.checkpoints = Checkpoints(config.checkpoint_file)
        self.privacy = Pseudonymizer(privacy_of(settings))
        if not self.privacy.enabled:
            log_event(log, "agent.privacy_disabled", level=logging.WARNING,
                      detail="privacy.secret is not set: profile_id is shipped as read, IP fields dropped")
        self.ahead_ms, self.behind_ms = settings.clock_bounds_ms()
        privacy_fields = frozenset((*self.privacy.hash_fields, *self.privacy.ip_fields))
        for source in self.inputs:
            if source.json and JsonFastPath.usable(source.fields, source.service, config.host, privacy_fields):
                source.fast = JsonFastPath(source.fields, source.service, config.host, privacy_fields,
                                           config.max_record_bytes, self.ahead_ms, self.behind_ms)
        self._received_ms = 0  # when the lines being turned into records were read
        self.sink = SINKS[config.sink.type](settings, config.sink)
        BROKER_UP.set_function(lambda: 1.0 if self.sink.broker_up else 0.0)
        self.topic_logs = settings.topic(topics.SERVICE_LOGS)
        self.topic_deadletter = settings.topic(topics.DEADLETTER)
        self.in_flight: deque[_Batch] = deque()
        self.stop_event = threading.Event()
        self._logs: list[Message] = []
        self._dead: list[Message] = []
        self._offsets: dict[str, tuple[int, bytes]] = {}
        self._lines = 0
        self._last_flush = time.monotonic()

    # -- main loop ---------------------------------------------------------------------------
    def run(self) -> None:
        log_event(log, "agent.started", inputs=len(self.inputs), sink=self.config.sink.type)
        poll_s = self.config.poll_interval_ms / 1000
        last_discover = 0.0
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now - last_discover >= poll_s:
                for source in self.inputs:
                    source.tailer.discover(self.checkpoints.offsets, self.checkpoints.tails)
                last_discover = now
            read = self.step()
            self.sink.poll(0 if read else poll_s / 2)  # delivery reports; the idle wait
            self._reap()
        self.shutdown()

    def step(self) -> int:
        """Read what is available (bounded by free batch slots); returns the lines read."""
        read = 0
        if len(self.in_flight) < self.config.max_in_flight:
            for source in self.inputs:
                if source.start is None:
                    read += self._read_chunks(source)
                    continue
                for line in source.tailer.read(self.config.batch_lines):
                    read += 1
                    self._take(source, line)
                    if self._lines >= self.config.batch_lines:
                        self._ship()
                        if len(self.in_flight) >= self.config.max_in_flight:
                            break
                self._expire_multiline(source)
        if self._lines and (time.monotonic() - self._last_flush) * 1000 >= self.config.poll_interval_ms:
            self._ship()
        return read

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Flush partial records and batches, wait for confirmation, save the checkpoints."""
        for source in self.inputs:
            for fp in list(source.pending):
                self._emit_pending(source, fp)
        if self._lines:
            self._ship()
        deadline = time.monotonic() + timeout_s
        while self.in_flight and time.monotonic() < deadline:
            self.sink.poll(0.02)
            self._reap()
        self.checkpoints.save(sync=True)
        self.sink.close(timeout_s=5)
        for source in self.inputs:
            source.tailer.close()
        log_event(log, "agent.stopped", unconfirmed_batches=len(self.in_flight))

    # -- records -----------------------------------------------------------------------------
    def _read_chunks(self, source: _Input) -> int:
        """An input without multi-line joining: every line is a record, read a chunk at a time."""
        read = 0
        for chunk in source.tailer.read_chunks(self.config.batch_lines - self._lines):
            read += len(chunk.lines)
            self._add(source, chunk)
            if self._lines >= self.config.batch_lines:
                self._ship()
                if len(self.in_flight) >= self.config.max_in_flight:
                    break
        return read

    def _take(self, source: _Input, line: Line) -> None:
        """A line of a multi-line input: it starts a record or joins the pending one."""
        assert source.start is not None and source.config.multiline is not None
        pending = source.pending.get(line.fingerprint)
        starts = source.start.search(line.text) is not None
        if pending is not None and (starts or len(pending.lines) >= source.config.multiline.max_lines):
            self._emit_pending(source, line.fingerprint)
            pending = None
        if pending is None:
            source.pending[line.fingerprint] = _Pending([line.text], line.end_offset, line.tail, line.path,
                                                        time.monotonic())
        else:
            pending.lines.append(line.text)
            pending.end_offset, pending.tail = line.end_offset, line.tail
            pending.since = time.monotonic()

    def _expire_multiline(self, source: _Input) -> None:
        if not source.pending or source.config.multiline is None:
            return
        limit = source.config.multiline.timeout_ms / 1000
        now = time.monotonic()
        for fp, pending in list(source.pending.items()):
            if now - pending.since >= limit:
                self._emit_pending(source, fp)

    def _emit_pending(self, source: _Input, fp: str) -> None:
        pending = source.pending.pop(fp)
        self._add(source, Chunk(fp, pending.path, [b"\n".join(pending.lines)], pending.end_offset, pending.tail))

    def _add(self, source: _Input, chunk: Chunk) -> None:
        """Parse, complete and validate each line of ``chunk`` into a record for Kafka (or a
        dead letter with the reason), and note how far the file has been taken."""
        self._received_ms = int(time.time() * 1000)
        path = chunk.path
        if source.fast is not None:
            source.fast.take(chunk.lines, path, self._received_ms, self._logs,
                             lambda raw: self._add_line(source, raw, path))
        else:
            for raw in chunk.lines:
                self._add_line(source, raw, path)
        self._offsets[chunk.fingerprint] = (chunk.end_offset, chunk.tail)
        self._lines += len(chunk.lines)

    def _add_line(self, source: _Input, raw: bytes, path: str) -> None:
        """The general path for one line: a record for Kafka, or a dead letter with the reason."""
        try:
            record = self._record(source, raw.decode("utf-8", errors="replace"), path)
            value = encode(record)
            max_bytes = self.config.max_record_bytes
            if len(value) > max_bytes:
                raise ValidationError("", f"{len(value)} bytes once encoded; at most {max_bytes} per record "
                                          "(max_record_bytes)")
            self._logs.append({"value": value, "key": record["service"].encode()})
        except ValidationError as exc:
            self._dead_letter(source, raw, exc.field, exc.reason, path, "parse")
        except Exception as exc:  # nothing a line does may stop the agent
            self._dead_letter(source, raw, "", f"cannot be processed: {type(exc).__name__}: {str(exc)[:200]}",
                              path, "exception")

    def _dead_letter(self, source: _Input, raw: bytes, field: str, reason: str, path: str, error_type: str) -> None:
        """The line as read (cut to ``DEADLETTER_ORIGINAL_MAX``), with the client addresses in
        it pseudonymised, and the reason."""
        DISCARDED.inc()
        ERRORS.labels(error_type).inc()
        extra: dict[str, Any] = {}
        if len(raw) > DEADLETTER_ORIGINAL_MAX:
            extra = {"original_truncated": True, "original_size": len(raw)}
            raw = raw[:DEADLETTER_ORIGINAL_MAX].decode("utf-8", errors="ignore").encode()
        try:
            original: Any = self.privacy.scrub_original(raw) if source.json else raw
            if isinstance(original, bytes):
                original = self.privacy.scrub_text(original, addresses_in(original.decode("utf-8", errors="replace")))
        except Exception as exc:  # scrubbing failed: keep nothing rather than a raw address
            original, extra = b"", {**extra, "original_error": type(exc).__name__}
        doc = deadletter_record(original, reason, "agent", field=field, path=path, host=self.config.host, **extra)
        self._dead.append({"value": encode(doc), "key": None})

    def _record(self, source: _Input, text: str, path: str) -> dict[str, Any]:
        record = source.parse(text)
        for key, value in source.fields:
            record.setdefault(key, value)
        if source.service:
            record.setdefault("service", source.service)
        record.setdefault("host", self.config.host)
        record["source_file"] = path
        record = validate_log_record(record)
        check_clock(record, self._received_ms, self.ahead_ms, self.behind_ms)
        return self.privacy.apply(record)

    # -- shipping and confirmation -------------------------------------------------------------
    def _ship(self) -> None:
        RECEIVED.inc(self._lines)  # counted per batch, not per line: the counter takes a lock
        runs: list[Run] = [(self.topic_logs, self._logs), (self.topic_deadletter, self._dead)]
        batch = _Batch(runs, len(self._logs) + len(self._dead), self._offsets, self._lines)
        self._logs, self._dead, self._offsets, self._lines = [], [], {}, 0
        self._last_flush = time.monotonic()
        self.in_flight.append(batch)
        IN_FLIGHT.set(len(self.in_flight))
        self._send(batch)

    def _send(self, batch: _Batch) -> None:
        batch.done.clear()

        def done(ok: bool) -> None:
            batch.ok = ok
            batch.done.set()

        self.sink.send(batch.runs, done)

    def _reap(self) -> None:
        """Advance checkpoints over the confirmed head of the in-flight queue; re-send failures
        (the same batch, in order) after a back-off that grows with each failed attempt, without
        blocking the loop that serves the other batches' confirmations."""
        advanced = False
        while self.in_flight and self.in_flight[0].done.is_set():
            head = self.in_flight[0]
            if not head.ok:
                now = time.monotonic()
                if head.retry_at is None:
                    ERRORS.labels("delivery").inc()
                    head.failures += 1
                    head.retry_at = now + min(RETRY_MAX_S, 0.25 * 2 ** head.failures)
                elif now >= head.retry_at:
                    head.retry_at = None
                    self._send(head)
                break
            self.in_flight.popleft()
            SENT.inc(head.size)
            for fp, (offset, tail) in head.offsets.items():
                self.checkpoints.advance(fp, offset, tail)
            advanced = True
        if advanced or self.checkpoints.dirty:
            self.checkpoints.save()  # at most once a second; a later call writes what is left
        IN_FLIGHT.set(len(self.in_flight))
