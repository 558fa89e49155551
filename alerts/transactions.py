"""The evaluator's transactional producer, kept usable across broker outages.

librdkafka's transaction calls fail in three ways:

* **abortable** (``txn_requires_abort``): the transaction is aborted, the producer stays;
* **fatal** (``_FENCED`` after the coordinator aborted a transaction that outlived
  ``transaction.timeout.ms``, or any other fatal error): the producer is unusable;
* **retriable** (a timeout, a broker not there): in principle the same call may be made again.
  In practice (librdkafka 2.16, measured against a killed broker) a ``send_offsets_to_transaction``
  cut off by the outage ignores its timeout until the broker is back, and calling it again after
  its ``_TRANSPORT`` error can block for good, broker back or not. So a failed call is never
  retried: the producer is dropped and a new one made, whose ``init_transactions`` aborts what
  the old one left open (and fences it).

Either way :class:`TxnAborted` or :class:`ProducerLost` is raised, and the service goes back to
what Kafka holds (state topic, committed offsets): the batch is judged again, nothing is counted
twice or lost. The service also runs every call under a watchdog (``AlertService._guarded``),
which drops a producer whose call is still blocked well after the broker answers again.

A fence that neither an outage nor the transaction's age explains comes from a second evaluator
with the same transactional id: :class:`AnotherInstance`. The rule (:meth:`TxnProducer._fence`):
the fenced transaction began less than ``transaction.timeout.ms`` ago, no broker outage was seen
since it began, and no ``init_transactions`` of our own that the watchdog gave up on is still
running or got through since the current producer was made. A coordinator aborts (and fences)
only transactions older than that, and a broker restart alone fences nobody, so only another
``init_transactions`` with our id is left.
The instance that meets the rule stops; the one that fenced it carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from alerts import metrics
from playscope.errors import PlayscopeError
from playscope.kafka import _transient
from playscope.logs import log_event

log = logging.getLogger("playscope.alerts")

GiveUp = Callable[[], bool]

STEP_S = 5.0  # one attempt of init_transactions while the coordinator is away
CALL_S = 30.0  # timeout of send_offsets_to_transaction / commit_transaction / abort_transaction
FENCED = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH})


class TxnAborted(Exception):
    """The batch's transaction was aborted: rewind and judge it again."""


class ProducerLost(Exception):
    """The producer hit a fatal error and was replaced: rewind and judge the batch again."""


class GaveUp(Exception):
    """The caller asked to stop while a call was still waiting for Kafka."""


class AnotherInstance(PlayscopeError):
    """A second evaluator with the same transactional id took over; this one must stop."""


def kafka_error(exc: BaseException) -> KafkaError | None:
    err = exc.args[0] if exc.args else None
    return err if isinstance(err, KafkaError) else None


def describe(err: KafkaError | None, exc: BaseException) -> str:
    if err is None:
        return str(exc)
    return f"{err.name()}: {err.str()}"


class TxnProducer:
    """The current transactional producer for ``transactional.id`` (None between a loss and the
    next :meth:`open`).

    ``conf`` is the full producer configuration (transactional id and timeout included);
    ``outages`` counts the broker outages seen so far by the service's clients, ``up`` says
    whether the broker is reachable now (both from their BrokerWatch)."""

    def __init__(self, conf: dict[str, Any], outages: Callable[[], int], up: Callable[[], bool]) -> None:
        self.conf = conf
        self.timeout_s = float(conf["transaction.timeout.ms"]) / 1000
        self.outages = outages
        self.up = up
        self.producer: Producer | None = None
        self.generation = 0  # producers installed so far
        self._began = 0.0  # monotonic time the current transaction began
        self._outages_at_begin = 0
        self._outages_at_install = 0
        self._installed_at = 0.0
        self._opening = 0  # open() calls running (at most one is not abandoned)
        self._stray_init_at = 0.0  # when an abandoned open() got through anyway
        self._lock = threading.Lock()

    # -- life cycle ---------------------------------------------------------------------------

    def open(self, give_up: GiveUp) -> Producer:
        """A new producer whose ``init_transactions`` went through (that fences the previous
        epoch and aborts what it left open). Waits for the coordinator, with one log line;
        the caller installs it (:meth:`install`), so a call abandoned by the watchdog installs
        nothing. An abandoned call that still gets through fences the producer installed in
        the meantime: that fence is ours, not another instance's (see :meth:`_fence`)."""
        with self._lock:
            self._opening += 1
        try:
            producer = self._init(give_up)
        finally:
            with self._lock:
                self._opening -= 1
        if give_up():  # abandoned, yet through: the epoch it took fences whatever was installed since
            self._stray_init_at = time.monotonic()
            threading.Thread(target=_discard, args=(producer,), daemon=True, name="alerts-producer-drop").start()
            raise GaveUp("transaction coordinator")
        return producer

    def _init(self, give_up: GiveUp) -> Producer:
        producer = Producer(self.conf)
        started = time.monotonic()
        waiting = False
        while True:
            try:
                producer.init_transactions(STEP_S)
                break
            except KafkaException as exc:
                err = kafka_error(exc)
                if err is None or err.fatal() or not (err.retriable() or _transient(err)):
                    raise
                if not waiting:
                    waiting = True
                    log_event(log, "alerts.kafka_waiting", logging.WARNING, what="transaction coordinator",
                              reason=describe(err, exc))  # fmt: skip
                if give_up():
                    raise GaveUp("transaction coordinator") from None
                producer.poll(0.5)  # serves the BrokerWatch while we wait
        if waiting:
            log_event(log, "alerts.kafka_resumed", what="transaction coordinator",
                      waited_s=round(time.monotonic() - started, 1))  # fmt: skip
        return producer

    def install(self, producer: Producer) -> None:
        self.producer = producer
        self.generation += 1
        self._outages_at_install = self.outages()
        self._installed_at = time.monotonic()

    def _refresh(self, give_up: GiveUp) -> None:
        """Replace a producer that lived through a broker outage before its next transaction.

        Measured with librdkafka 2.16: a producer idle through an outage gets its first
        ``send_offsets_to_transaction`` afterwards stuck for good (AddOffsetsToTxn succeeds, the
        call never returns, its timeout ignored), while a new producer goes through at once."""
        old, self.producer = self.producer, None
        log_event(log, "alerts.producer_refreshed", reason="broker outage since it was made",
                  generation=self.generation)  # fmt: skip
        if old is not None:
            threading.Thread(target=_discard, args=(old,), daemon=True, name="alerts-producer-drop").start()
        self.install(self.open(give_up))

    def lose(self, reason: str) -> None:
        """Drop the producer (a new one is opened before the next transaction)."""
        producer, self.producer = self.producer, None
        if producer is None:
            return
        metrics.ERRORS.labels("producer_lost").inc()
        log_event(log, "alerts.producer_replaced", logging.WARNING, reason=reason[:300], generation=self.generation)
        threading.Thread(target=_discard, args=(producer,), daemon=True, name="alerts-producer-drop").start()

    def poll(self) -> None:
        """Serve the producer's callbacks (its BrokerWatch, librdkafka's log lines)."""
        producer = self.producer
        if producer is not None:
            producer.poll(0)

    def close(self, flush_s: float) -> None:
        """Flush briefly and say what was left (never raises: it runs in cleanup)."""
        producer, self.producer = self.producer, None
        if producer is None:
            return
        try:
            left = producer.flush(flush_s)
        except Exception as exc:  # cleanup must not mask the error that ended the run
            log_event(log, "alerts.producer_close_failed", logging.WARNING, error=f"{type(exc).__name__}: {exc}")
            return
        if left:
            log_event(log, "alerts.producer_unflushed", logging.WARNING, records=left, waited_s=flush_s)

    # -- one transaction ----------------------------------------------------------------------

    def transact(self, records: Iterable[tuple[str, bytes | None, bytes | None]],
                 offsets: tuple[list[Any], Any] | None, give_up: GiveUp | None = None) -> None:  # fmt: skip
        """Begin, produce ``records`` (topic, key, value), add ``offsets`` (partitions and the
        consumer's group metadata) unless None, commit; no call is retried, so ``give_up`` (the
        watchdog's) has nothing to stop. Raises TxnAborted or ProducerLost (the
        transaction did not commit, or its outcome is for the next producer's init to settle),
        or AnotherInstance."""
        if self.producer is not None and self.outages() != self._outages_at_install:
            self._refresh(give_up or (lambda: False))
        producer = self.producer
        if producer is None:
            raise ProducerLost("no producer")
        self._began = time.monotonic()
        self._outages_at_begin = self.outages()
        try:
            producer.begin_transaction()
            for topic, key, value in records:
                producer.produce(topic, key=key, value=value)
            if offsets is not None:
                parts, group = offsets
                producer.send_offsets_to_transaction(parts, group, CALL_S)
            producer.commit_transaction(CALL_S)
        except (KafkaException, BufferError) as exc:
            self._failed(producer, exc)

    def _failed(self, producer: Producer, exc: BaseException) -> None:
        """Leave things ready for the next transaction and raise what happened."""
        if producer is not self.producer:  # the watchdog gave this call up already
            raise ProducerLost("abandoned call ended") from None
        err = kafka_error(exc)
        text = describe(err, exc)
        metrics.ERRORS.labels("transaction").inc()
        if err is not None and err.fatal():
            if err.code() in FENCED:
                self._fence(text)
            self.lose(text)
            raise ProducerLost(text) from None
        if err is not None and err.txn_requires_abort():
            try:
                producer.abort_transaction(CALL_S)
            except KafkaException as abort_exc:  # the abort itself failed: start over
                abort_err = kafka_error(abort_exc)
                text = f"{text}; abort failed: {describe(abort_err, abort_exc)}"
                if abort_err is not None and abort_err.fatal() and abort_err.code() in FENCED:
                    self._fence(text)
                self.lose(text)
                raise ProducerLost(text) from None
            log_event(log, "alerts.transaction_aborted", logging.WARNING, reason=text)
            raise TxnAborted(text) from None
        self.lose(text)  # retriable or unknown: see the module's docstring
        raise ProducerLost(text) from None

    def _fence(self, text: str) -> None:
        """Raise AnotherInstance unless an outage or the transaction's age explains the fence."""
        age = time.monotonic() - self._began
        outage = self.outages() != self._outages_at_begin or not self.up()
        ours = self._opening > 0 or self._stray_init_at > self._installed_at  # an abandoned init of ours
        if age < self.timeout_s and not outage and not ours:
            log_event(log, "alerts.another_instance", logging.ERROR, reason=text, transaction_age_s=round(age, 1))
            raise AnotherInstance(
                "another evaluator with the same transactional id took over (fenced while the broker was "
                f"reachable, {age:.1f} s into a transaction: {text}); this one stops. Run one evaluator per "
                "deployment.")
        log_event(log, "alerts.fenced", logging.WARNING, reason=text, transaction_age_s=round(age, 1),
                  outage=outage, own_init=ours)  # fmt: skip


def _discard(producer: Producer) -> None:
    """Purge and let go of a dropped producer (in a thread of its own: a dead one may block)."""
    try:
        producer.purge()
        producer.flush(0)
    except Exception:  # a dead producer may refuse even this; it is dropped anyway
        pass
