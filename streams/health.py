"""The worker's view of Kafka from outside Faust: start-up waits, broker up/down, true lag.

Faust's aiokafka clients retry by themselves through a broker outage but say nothing useful
about it (a line per retry). :class:`KafkaProbe` keeps one confluent-kafka admin client next
to them: its :class:`~playscope.kafka_health.BrokerWatch` says once when the broker goes away
and comes back (``playscope_streams_broker_up``), the tick timer asks it whether the worker is
connected, and a lag thread reads the group's committed offsets against the partition ends
(``playscope_streams_consumer_lag``), which stays true while this worker holds no partitions.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from playscope.config import Settings
from playscope.errors import ConfigError
from playscope.kafka import admin_config, consumer_config, wait_for_topic
from playscope.kafka_health import BrokerWatch, group_lag
from playscope.logs import log_event
from streams import telemetry as m

log = logging.getLogger("playscope.streams")

# Errors that mean no broker answered (as opposed to a broker answering "no such topic").
_UNREACHABLE = frozenset({KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN})


class KafkaProbe:
    """An admin client whose callbacks track the broker, polled by a thread of its own."""

    def __init__(self, settings: Settings, group: str, lag_topics: list[str], lag_interval_s: float = 5.0) -> None:
        self.settings = settings
        self.group = group
        self.lag_topics = lag_topics
        self.lag_interval_s = lag_interval_s
        # Statistics every second and a short reconnect backoff: "up again" is seen within ~2 s.
        self.watch = BrokerWatch("streams", stats_interval_ms=1000)
        self.admin = AdminClient({**admin_config(settings.kafka), **self.watch.config(),
                                  "reconnect.backoff.max.ms": 1000})
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll_loop, name="kafka-probe", daemon=True),
                         threading.Thread(target=self._lag_loop, name="kafka-lag", daemon=True)]
        m.BROKER_UP.set_function(lambda: 1.0 if self.watch.up else 0.0)

    @property
    def up(self) -> bool:
        return self.watch.up

    @property
    def up_since(self) -> float:
        """``time.monotonic()`` of the last change of state (the reconnection while up)."""
        return self.watch.changed_at

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=15)

    def _poll_loop(self) -> None:
        """Serves the admin client's callbacks; a metadata request every few seconds keeps a
        connection open, so a broker that goes away is noticed at once."""
        next_probe = 0.0
        while not self._stop.is_set():
            self.admin.poll(0.2)
            if time.monotonic() >= next_probe:
                next_probe = time.monotonic() + 3.0
                with contextlib.suppress(KafkaException):  # the watch has it from the error callback
                    self.admin.list_topics(timeout=2)  # no topic named: an admin request could create it

    def _lag_loop(self) -> None:
        offsets = Consumer(consumer_config(self.settings.kafka, self.group))  # reads offsets, never joins
        try:
            while not self._stop.wait(self.lag_interval_s):
                try:
                    by_topic = group_lag(offsets, self.lag_topics, timeout_s=10)
                except KafkaException:  # the cluster does not answer: the last values stay
                    continue
                for topic, behind in by_topic.items():
                    m.CONSUMER_LAG.labels(topic=topic).set(behind)
        finally:
            offsets.close()

    # -- start-up --------------------------------------------------------------------------

    def wait_for_broker(self) -> None:
        """Block until some broker answers (one ``kafka.waiting`` line however long it takes)."""
        said = False
        while True:
            try:
                self.admin.list_topics(timeout=5)
                return
            except KafkaException as exc:
                if not said:
                    log_event(log, "kafka.waiting", logging.WARNING, what="broker",
                              bootstrap=self.settings.kafka.bootstrap,
                              reason=str(exc.args[0] if exc.args else exc))
                    said = True
                time.sleep(0.5)

    def partitions(self, topic: str, wait_s: float = 60.0) -> int:
        """The partition count of ``topic`` once every partition has a leader.

        A broker still starting is waited for without limit; a topic being created (visible to
        one broker and not yet another, leaders being elected) gets ``wait_s``; after that it is
        a configuration error, with the way out in the message. Asked through a consumer: an
        admin client's metadata request for a missing topic makes a broker with
        ``auto.create.topics.enable`` create it, with the broker's defaults."""
        meta = Consumer(consumer_config(self.settings.kafka, self.group))  # metadata only, never joins
        try:
            while True:
                self.wait_for_broker()
                try:
                    return len(wait_for_topic(meta, topic, timeout_s=wait_s).partitions)
                except KafkaException as exc:
                    err = exc.args[0] if exc.args else None
                    if getattr(err, "code", lambda: None)() in _UNREACHABLE:
                        continue  # the broker went away while we waited: wait for it again
                    raise ConfigError(f"topic {topic} does not exist or has no leaders after {wait_s:.0f} s "
                                      f"({err}); run 'playscope stack up' or create it") from None
        finally:
            meta.close()
