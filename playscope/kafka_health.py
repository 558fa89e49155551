"""How a Kafka client is doing, said once per change instead of twenty times a second.

During a broker outage librdkafka and aiokafka log every reconnect attempt. Two pieces keep
that readable:

* :class:`RepeatFilter` collapses repeated lines of a client library (digits and addresses
  normalised away) to one per ``window_s``, with the count of what it held back;
* :class:`BrokerWatch` turns a confluent-kafka client's error and statistics callbacks into one
  boolean, ``up`` (some broker of the cluster is connected), logs ``kafka.broker_down`` and
  ``kafka.broker_up`` once per change, and backs each component's ``*_broker_up`` gauge.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import orjson

from playscope.logs import log_event

log = logging.getLogger("playscope.kafka")

# Numbers, and librdkafka's parenthesised asides ("(after 3ms in state CONNECT, 1 identical
# error(s) suppressed)"), vary from one attempt to the next of the same failure.
_VARYING = re.compile(r"\((?:[^()]|\([^()]*\))*\)|\d+")


class RepeatFilter(logging.Filter):
    """Let the first of a kind of line through, hold back the same kind for ``window_s``.

    The kind is the logger, the level and the message with every number blanked, so
    "Connect to ipv4#127.0.0.1:9092 failed (after 0ms)" and its next attempt are one kind.
    The next line of a kind after the window carries ``suppressed`` (how many were held back).
    """

    def __init__(self, window_s: float = 60.0) -> None:
        super().__init__()
        self.window_s = window_s
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a library's malformed format string: let it through as it is
            return True
        kind = (record.name, record.levelno, _VARYING.sub("#", text)[:300])
        now = time.monotonic()
        with self._lock:
            first, held = self._seen.get(kind, (0.0, 0))
            if first and now - first < self.window_s:
                self._seen[kind] = (first, held + 1)
                return False
            self._seen[kind] = (now, 0)
            if len(self._seen) > 10_000:  # bounded: forget the oldest kinds
                for old in sorted(self._seen, key=lambda k: self._seen[k][0])[:5_000]:
                    del self._seen[old]
        if held:
            record.suppressed = held
        return True


_CLIENT_FILTER = RepeatFilter()
LIBRDKAFKA_LOGGER = "playscope.kafka.client"
# Python libraries whose retry loops log per attempt.
CHATTY_LOGGERS = ("aiokafka", "faust", "mode", "kafka", LIBRDKAFKA_LOGGER)


class _ChildLinesFilter(logging.Filter):
    """The repeat filter for the client loggers' children, set on the root handlers: a logger's
    own filters never see its children's records (``aiokafka.consumer.fetcher`` logs a line per
    retry during an outage). Records of the client loggers themselves went through
    ``_CLIENT_FILTER`` already and pass."""

    _prefixes = tuple(f"{name}." for name in CHATTY_LOGGERS)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name in CHATTY_LOGGERS or not record.name.startswith(self._prefixes):
            return True
        return _CLIENT_FILTER.filter(record)


_CHILD_FILTER = _ChildLinesFilter()


def quiet_client_logs() -> None:
    """Install the repeat filter on the Kafka client loggers and, for their children, on the
    root logger's handlers (idempotent; call again after adding a root handler)."""
    for name in CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if _CLIENT_FILTER not in logger.filters:
            logger.addFilter(_CLIENT_FILTER)
    for handler in logging.getLogger().handlers:
        if _CHILD_FILTER not in handler.filters:
            handler.addFilter(_CHILD_FILTER)


def client_logger() -> logging.Logger:
    """The logger librdkafka's own lines go to (instead of raw stderr), repeats collapsed."""
    quiet_client_logs()
    return logging.getLogger(LIBRDKAFKA_LOGGER)


class BrokerWatch:
    """Whether a confluent-kafka client reaches its cluster, from the client's own callbacks.

    Pass :meth:`config` into the client's configuration; the callbacks run in whichever thread
    polls the client. ``up`` falls at ``_ALL_BROKERS_DOWN`` and rises at the first statistics
    report that shows a connected broker (every ``stats_interval_ms``)."""

    def __init__(self, client: str, stats_interval_ms: int = 3000) -> None:
        self.client = client
        self.stats_interval_ms = stats_interval_ms
        self._up = True
        self.changed_at = time.monotonic()
        self.downs = 0

    @property
    def up(self) -> bool:
        return self._up

    def config(self) -> dict[str, Any]:
        return {"error_cb": self.on_error, "stats_cb": self.on_stats,
                "statistics.interval.ms": self.stats_interval_ms}

    def on_error(self, err: Any) -> None:
        code = err.code()
        from confluent_kafka import KafkaError

        if code == KafkaError._ALL_BROKERS_DOWN:
            self.set(False, err.str())
        elif err.fatal():
            log_event(log, "kafka.fatal_error", logging.ERROR, client=self.client, error=err.str())

    def on_stats(self, raw: str) -> None:
        try:
            brokers = orjson.loads(raw).get("brokers", {})
        except (orjson.JSONDecodeError, AttributeError):
            return
        connected = any(b.get("state") == "UP" and int(b.get("nodeid", -1)) >= 0 for b in brokers.values())
        self.set(connected, "no broker connected" if not connected else "")

    def set(self, up: bool, reason: str = "") -> None:
        """Record a state; log only when it differs from the last one."""
        if up == self._up:
            return
        self._up = up
        down_for = time.monotonic() - self.changed_at
        self.changed_at = time.monotonic()
        if up:
            log_event(log, "kafka.broker_up", client=self.client, down_s=round(down_for, 1))
        else:
            self.downs += 1
            log_event(log, "kafka.broker_down", logging.WARNING, client=self.client, reason=reason[:300])



def group_lag(consumer: Any, topics: list[str], timeout_s: float = 10.0) -> dict[str, int]:
    """Records of ``topics`` that the consumer group of ``consumer`` has not committed, per topic.

    ``consumer`` is a confluent-kafka Consumer configured with the group's ``group.id`` and
    never subscribed (it only reads offsets, it does not join). Per partition: the high
    watermark minus the group's committed offset, or minus the earliest offset where the group
    never committed. Every partition counts, held or not, so a group whose members wait for a
    rebalance still shows its backlog. A consumer that commits the end-of-partition offset (past
    a trailing transaction marker) reads 0 when it is done. Raises KafkaException when the
    cluster does not answer. (Not the AdminClient's offset APIs: in confluent-kafka 2.16 a
    client with those requests outstanding across a broker restart crashed the process.)"""
    from confluent_kafka import TopicPartition

    meta = consumer.list_topics(timeout=timeout_s).topics
    parts = [TopicPartition(t, p) for t in topics if t in meta for p in sorted(meta[t].partitions)]
    lag = dict.fromkeys(topics, 0)
    if not parts:
        return lag
    committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(parts, timeout=timeout_s)}
    for tp in parts:
        low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
        done_at = committed.get((tp.topic, tp.partition), -1)
        lag[tp.topic] += max(0, high - max(low, done_at))
    return lag
