"""Kafka client settings built from the one ``kafka:`` config section.

Every component builds its clients here, so security (TLS, SASL) is configured once for all of
them: confluent-kafka dicts for producers, consumers and the admin client, and keyword
arguments for aiokafka (which faust uses underneath).
"""

from __future__ import annotations

from typing import Any

from playscope.config import KafkaConfig, Settings


def _security(cfg: KafkaConfig) -> dict[str, Any]:
    sec = cfg.security
    out: dict[str, Any] = {"security.protocol": sec.protocol}
    if sec.sasl_mechanism:
        out["sasl.mechanism"] = sec.sasl_mechanism
        out["sasl.username"] = sec.username or ""
        out["sasl.password"] = sec.password or ""
    if sec.ca_file:
        out["ssl.ca.location"] = sec.ca_file
    return out


def _client_common(cfg: KafkaConfig) -> dict[str, Any]:
    """What every client shares: the cluster, security, and librdkafka's log lines routed to
    Python logging with repeats collapsed (an outage would otherwise print a line per retry)."""
    from playscope.kafka_health import client_logger

    return {"bootstrap.servers": cfg.bootstrap, "logger": client_logger(), "log.connection.close": False,
            **_security(cfg)}


def admin_config(cfg: KafkaConfig) -> dict[str, Any]:
    return _client_common(cfg)


def producer_config(cfg: KafkaConfig, **overrides: Any) -> dict[str, Any]:
    """A durable producer: acks=all and idempotence, so an acknowledged record is never lost
    or duplicated by a retry; lz4 and a short linger for throughput."""
    conf: dict[str, Any] = {
        **_client_common(cfg),
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": "lz4",
        "linger.ms": 5,
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": 500000,
        "queue.buffering.max.kbytes": 256 * 1024,
        "message.timeout.ms": 120000,
    }
    conf.update(overrides)
    return conf


def consumer_config(cfg: KafkaConfig, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A consumer that commits only what the caller says was processed."""
    conf: dict[str, Any] = {
        **_client_common(cfg),
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
    }
    conf.update(overrides)
    return conf


def static_member_config(settings: Settings, group_id: str) -> dict[str, Any]:
    """``group.instance.id`` and the session timeout for a subscribing consumer of ``group_id``
    (empty when static membership is off): a restarted member takes its partitions back at once.

    A static member does not leave the group on close, so when a worker is removed for good its
    partitions move after ``kafka.session_timeout_s``."""
    from playscope.membership import instance_id

    member = instance_id(settings, group_id)
    if member is None:
        return {}
    return {"group.instance.id": member, "session.timeout.ms": int(settings.kafka.session_timeout_s * 1000)}


def committed(consumer: Any, partitions: list[Any], timeout_s: float = 60.0) -> list[Any]:
    """``consumer.committed`` that waits out a group coordinator that is not there yet.

    A broker seconds old, or one just restarted, answers NOT_COORDINATOR or
    COORDINATOR_LOAD_IN_PROGRESS for a while: a reason to wait (logged once), not to fail."""
    import logging
    import time

    from confluent_kafka import KafkaException

    from playscope.logs import log_event

    deadline = time.monotonic() + timeout_s
    said = False
    while True:
        try:
            return list(consumer.committed(partitions, timeout=min(10.0, timeout_s)))
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if not _transient(err) or time.monotonic() > deadline:
                raise
            if not said:
                log_event(logging.getLogger("playscope.kafka"), "kafka.waiting", what="group coordinator",
                          reason=str(err))
                said = True
            time.sleep(0.5)


def aiokafka_kwargs(cfg: KafkaConfig) -> dict[str, Any]:
    """The same settings for aiokafka clients (and faust's broker_credentials)."""
    sec = cfg.security
    kwargs: dict[str, Any] = {"bootstrap_servers": cfg.bootstrap, "security_protocol": sec.protocol}
    if sec.sasl_mechanism:
        kwargs.update(
            sasl_mechanism=sec.sasl_mechanism,
            sasl_plain_username=sec.username,
            sasl_plain_password=sec.password,
        )
    if sec.ca_file or sec.protocol in ("SSL", "SASL_SSL"):
        import ssl

        # Verifies the broker's certificate and host name (against the system CAs without ca_file).
        kwargs["ssl_context"] = ssl.create_default_context(cafile=sec.ca_file)
    return kwargs


def check_credentials(cfg: KafkaConfig, timeout_s: float = 15.0) -> None:
    """Fail fast, with a clear message, when the brokers refuse our TLS or SASL settings.

    Clients would otherwise retry a wrong password forever. One metadata request: an
    authentication or handshake error reported by the client raises ConfigError at once;
    a broker that is merely down is left to the components' own retry logic."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    from playscope.errors import ConfigError

    failures: list[str] = []

    def on_error(err: KafkaError) -> None:
        text = err.str()
        if err.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED) or any(
                marker in text for marker in ("SSL handshake failed", "certificate verify failed", "Authentication")):
            failures.append(text)

    import logging
    import time

    # the client's stub types config values as scalars only, but callbacks such as error_cb go in the same dict
    conf: dict[str, Any] = {**admin_config(cfg), "error_cb": on_error, "socket.timeout.ms": 5000}
    admin = AdminClient(conf, logger=logging.getLogger("playscope.kafka.check"))
    deadline = time.monotonic() + timeout_s
    while not failures and time.monotonic() < deadline:
        admin.poll(0.1)  # serves error_cb: an authentication failure shows up within a second
        try:
            admin.list_topics(timeout=0.5)
            return
        except KafkaException:
            continue
    if failures:
        sec = cfg.security
        who = f"user {sec.username!r} ({sec.sasl_mechanism}) " if sec.sasl_mechanism else ""
        raise ConfigError(f"kafka.security: the brokers at {cfg.bootstrap} refused {who}over {sec.protocol}: "
                          f"{failures[0]}")


_LEADERSHIP_ERRORS = frozenset({"LEADER_NOT_AVAILABLE", "NOT_LEADER_FOR_PARTITION", "UNKNOWN_TOPIC_OR_PART",
                                "_UNKNOWN_PARTITION", "_TRANSPORT", "_TIMED_OUT", "NOT_COORDINATOR",
                                "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE",
                                "_WAIT_COORD", "_ALL_BROKERS_DOWN"})


def _transient(err: Any) -> bool:
    """A Kafka error that passes by itself (a leader election, a topic still being created)."""
    if err is None or not hasattr(err, "name"):
        return False
    return bool(err.retriable()) or err.name() in _LEADERSHIP_ERRORS


def wait_for_topic(client: Any, topic: str, timeout_s: float = 60.0) -> Any:
    """The metadata of ``topic`` once every partition has a leader.

    A topic created moments ago answers LEADER_NOT_AVAILABLE / NOT_LEADER_FOR_PARTITION for a
    short while, and a broker that is starting answers nothing at all; both are reasons to wait
    (one ``kafka.waiting`` line), not to fail a component's start-up. ``client`` is a
    confluent-kafka Consumer, Producer or AdminClient."""
    import logging
    import time

    from confluent_kafka import KafkaException

    from playscope.logs import log_event

    deadline = time.monotonic() + timeout_s
    said = False
    while True:
        try:
            meta = client.list_topics(topic, timeout=min(10.0, timeout_s)).topics[topic]
            errors = [meta.error] if meta.error is not None else []
            errors += [p.error for p in meta.partitions.values() if p.error is not None]
        except KafkaException as exc:  # no broker answered in time
            errors, meta = [exc.args[0] if exc.args else None], None
        if not errors and meta is not None and meta.partitions:
            if said:
                log_event(logging.getLogger("playscope.kafka"), "kafka.ready", topic=topic)
            return meta
        if not all(_transient(err) for err in errors) or time.monotonic() > deadline:
            raise KafkaException(errors[0] if errors else f"topic {topic}: no partitions")
        if not said:
            log_event(logging.getLogger("playscope.kafka"), "kafka.waiting", what=f"topic {topic}",
                      reason=str(errors[0]) if errors else "no partitions")
            said = True
        time.sleep(0.5)


def watermarks(consumer: Any, topic: str, partition: int, timeout_s: float = 30.0) -> tuple[int, int]:
    """``get_watermark_offsets`` that rides out a leader election instead of failing on it."""
    import time

    from confluent_kafka import KafkaException, TopicPartition

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            return int(low), int(high)
        except KafkaException as exc:
            if not _transient(exc.args[0] if exc.args else None) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
