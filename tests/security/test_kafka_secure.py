"""Kafka over TLS + SASL/SCRAM-SHA-512 on a private secure broker (free ports, generated CA)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition
from helpers import running_collector
from security_helpers import read_raw_topic

from playscope import topics
from playscope.config import KafkaSecurity, Settings, load_settings
from playscope.errors import ConfigError
from playscope.kafka import aiokafka_kwargs, check_credentials, consumer_config, producer_config
from playscope.provision import ensure_topics
from playscope.stack.certs import ensure_ca
from playscope.stack.servers import SecureKafkaServer

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafkaServer]:
    server = SecureKafkaServer.on_free_ports(tmp_path_factory.mktemp("secure") / "kafka")
    server.start()
    try:
        server.wait_healthy(timeout_s=120)
        yield server
    finally:
        server.stop()


def _settings(server: SecureKafkaServer, **security: str) -> Settings:
    base = load_settings(environ={})
    sec = KafkaSecurity(**{**server.client_security(), **security})
    kafka = base.kafka.model_copy(update={"bootstrap": server.bootstrap, "security": sec})
    return base.model_copy(update={"kafka": kafka, "topic_prefix": f"t{uuid.uuid4().hex[:8]}."})


def test_tls_handshake_is_verified_against_the_generated_ca(secure_kafka: SecureKafkaServer, tmp_path: Path) -> None:
    ctx = ssl.create_default_context(cafile=str(secure_kafka.ca_file))
    with socket.create_connection(("127.0.0.1", secure_kafka.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() in ("TLSv1.3", "TLSv1.2")
        assert ("IP Address", "127.0.0.1") in tls.getpeercert()["subjectAltName"]
    with pytest.raises(ssl.SSLCertVerificationError), socket.create_connection(
            ("127.0.0.1", secure_kafka.port), timeout=10) as raw:
        ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")  # system CAs only
    other_ca = ensure_ca(tmp_path / "other")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="refused"):
        check_credentials(_settings(secure_kafka, ca_file=str(other_ca.cert)).kafka)
    assert time.monotonic() - started < 15


def test_wrong_sasl_password_fails_fast_with_a_clear_message(secure_kafka: SecureKafkaServer,
                                                             tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"refused user 'playscope' \(SCRAM-SHA-512\).*[Aa]uthentication"):
        check_credentials(_settings(secure_kafka, password="wrong-password").kafka)
    assert time.monotonic() - started < 15
    check_credentials(_settings(secure_kafka).kafka)  # the right one passes
    # A component started with the wrong password exits at once with that message.
    cfg = tmp_path / "playscope.yaml"
    cfg.write_text(yaml.safe_dump({"kafka": {"bootstrap": secure_kafka.bootstrap, "security": {
        **secure_kafka.client_security(), "password": "${T_WRONG}"}}, "collector": {"port": 0}}))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "playscope.cli", "collector", "--config", str(cfg)],
                          env={**os.environ, "T_WRONG": "wrong-password-123", "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 1 and time.monotonic() - started < 30
    assert "refused user 'playscope' (SCRAM-SHA-512) over SASL_SSL" in proc.stderr
    assert "wrong-password-123" not in proc.stdout + proc.stderr


def test_producer_consumer_and_collector_through_tls_and_scram(secure_kafka: SecureKafkaServer) -> None:
    settings = _settings(secure_kafka)
    ensure_topics(settings, partitions=3)
    topic = settings.topic(topics.SERVICE_LOGS)
    producer = Producer(producer_config(settings.kafka))
    for i in range(20):
        producer.produce(topic, orjson.dumps({"i": i}), key=str(i).encode())
    assert producer.flush(30) == 0
    consumer = Consumer(consumer_config(settings.kafka, settings.group("secure-test")))
    meta = consumer.list_topics(topic, timeout=10)
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions])
    got: list[int] = []
    deadline = time.monotonic() + 30
    while len(got) < 20 and time.monotonic() < deadline:
        got += [orjson.loads(m.value())["i"] for m in consumer.consume(100, timeout=0.5) if not m.error()]
    consumer.close()
    assert sorted(got) == list(range(20))

    # aiokafka (what the Faust workers use) with the same section.
    async def aio_roundtrip() -> list[bytes]:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        prod = AIOKafkaProducer(**aiokafka_kwargs(settings.kafka))
        await prod.start()
        try:
            await prod.send_and_wait(settings.topic(topics.QOE_SESSIONS), b"aio", partition=0)
        finally:
            await prod.stop()
        cons = AIOKafkaConsumer(settings.topic(topics.QOE_SESSIONS), auto_offset_reset="earliest",
                                group_id=None, **aiokafka_kwargs(settings.kafka))
        await cons.start()
        try:
            msg = await asyncio.wait_for(cons.getone(), 30)
            return [msg.value]
        finally:
            await cons.stop()

    assert asyncio.run(aio_roundtrip()) == [b"aio"]

    # The collector -> Kafka path in secure mode.
    # dated now: a fixed date ages past the SPEC 4 bound (7 days) and is dead-lettered
    event = {"event_id": "sec-k-1", "session_id": "s-k", "ts": int(time.time() * 1000), "type": "session_start"}
    with running_collector(settings) as url:
        assert httpx.post(f"{url}/v1/events", json=[event], timeout=30).status_code == 202
    raw = read_raw_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), 1)
    assert [orjson.loads(r)["event_id"] for r in raw] == ["sec-k-1"]
