"""The log agent against the shared broker with lines that used to stop it, files that start
alike, and client addresses: every line is shipped or dead-lettered with its reason, a restart
does not stop on the same line again, and no raw client IP reaches Kafka."""

from __future__ import annotations

import base64
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from collector_helpers import RECENT_TS, read_topic
from confluent_kafka.admin import AdminClient, NewTopic
from helpers import wait_for

from collectors.agent.agent import SENT, Agent
from collectors.agent.config import AgentConfig
from playscope import topics
from playscope.config import PrivacyConfig, Settings
from playscope.kafka import admin_config
from playscope.privacy import Pseudonymizer
from playscope.provision import ensure_topics

SECRET = "a-test-secret-of-32-characters!!"


def _clf_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _combined(ip: str, ms: int, status: int = 200, size: str = "512", route: str = "/api/play") -> str:
    return f'{ip} - - [{_clf_time(ms)}] "GET {route} HTTP/1.1" {status} {size} "-" "curl/8.0" 0.010\n'


class Running:
    """An agent in a thread of this test; ``stop`` is SIGTERM's path (flush, confirm, save)."""

    def __init__(self, settings: Settings, config: AgentConfig) -> None:
        self.agent = Agent(settings, config)
        self.thread = threading.Thread(target=self.agent.run, daemon=True)
        self.started = SENT._value.get()
        self.thread.start()

    def confirmed(self) -> float:
        return float(SENT._value.get() - self.started)

    def wait_confirmed(self, count: int, timeout_s: float = 30) -> None:
        wait_for(lambda: (self.confirmed() >= count and not self.agent.in_flight) or not self.thread.is_alive(),
                 timeout_s, f"{count} records confirmed")
        assert self.thread.is_alive(), "the agent's loop died"

    def stop(self) -> None:
        self.agent.stop_event.set()
        self.thread.join(timeout=40)
        assert not self.thread.is_alive()


def _config(tmp_path: Path, inputs: list[dict[str, Any]]) -> AgentConfig:
    return AgentConfig.model_validate({"inputs": inputs, "checkpoint_file": tmp_path / "ckpt.json", "batch_lines": 50,
                                       "poll_interval_ms": 50, "host": "h1", "metrics_port": 0})


def test_lines_that_stopped_the_agent_are_dead_letters_and_a_restart_goes_past_them(
        kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    app, edge = tmp_path / "app.log", tmp_path / "edge.log"
    app.write_text(f"{RECENT_TS} INFO first\n"
                   "\u00b2 INFO superscript two: isdigit() is true, int() raises\n"
                   f"{'7' * 5000} INFO a 5,000-digit number\n"
                   f"{RECENT_TS + 1} INFO after\n")
    edge.write_text(_combined("192.0.2.1", RECENT_TS) + _combined("192.0.2.2", RECENT_TS, size="9" * 5000)
                    + _combined("192.0.2.3", RECENT_TS + 1))
    config = _config(tmp_path, [
        {"paths": [str(app)], "parser": "regex", "service": "app",
         "pattern": r"^(?P<ts>\S+) (?P<level>[A-Z]+) (?P<message>.*)$"},
        {"paths": [str(edge)], "parser": "combined", "service": "edge"},
    ])
    run = Running(settings, config)
    try:
        run.wait_confirmed(7)
    finally:
        run.stop()
    logs = read_topic(settings, settings.topic(topics.SERVICE_LOGS), 4)
    assert sorted(r["message"] for r in logs if r["service"] == "app") == ["after", "first"]
    assert sorted(r["status"] for r in logs if r["service"] == "edge") == [200, 200] and len(logs) == 4
    dead = read_topic(settings, settings.topic(topics.DEADLETTER), 3)
    by_field = {d.get("field"): d for d in dead}
    assert len(dead) == 3 and set(by_field) == {"ts", "bytes"}
    assert sorted(d["original"][:1] for d in dead if d["field"] == "ts") == ["7", "\u00b2"]
    assert all(d["reason"] and d["source"] == "agent" and d["path"] for d in dead)
    assert "not an integer" in by_field["bytes"]["reason"]
    assert "192.0.2.2" not in by_field["bytes"]["original"], "the dead letter's client address is replaced"

    # a restart takes up the checkpoints past those lines: they are not read (nor refused) again
    with open(app, "a") as handle:
        handle.write(f"{RECENT_TS + 2} INFO after the restart\n")
    with open(edge, "a") as handle:
        handle.write(_combined("192.0.2.4", RECENT_TS + 2, status=503))
    run = Running(settings, config)
    try:
        run.wait_confirmed(2)
        time.sleep(0.5)
    finally:
        run.stop()
    logs = read_topic(settings, settings.topic(topics.SERVICE_LOGS), 6)
    assert len(logs) == 6 and {"after the restart"} <= {r.get("message") for r in logs}
    assert sorted(r["status"] for r in logs if r["service"] == "edge") == [200, 200, 503]
    assert len(read_topic(settings, settings.topic(topics.DEADLETTER), 3)) == 3


def _json_line(seq: int, message: str = "") -> bytes:
    return orjson.dumps({"ts": RECENT_TS + seq, "message": message or f"line {seq}", "seq": seq}) + b"\n"


BANNER = orjson.dumps({"ts": RECENT_TS, "message": "#Version: 1.0", "banner": True}) + b"\n"


def test_files_with_the_same_first_line_are_all_read_and_a_new_file_does_not_inherit(
        kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    logs = tmp_path / "logs"
    logs.mkdir()
    a, b = logs / "a.log", logs / "b.log"
    a.write_bytes(BANNER + b"".join(_json_line(i) for i in range(0, 100)))
    b.write_bytes(BANNER + b"".join(_json_line(i) for i in range(1000, 1100)))
    config = _config(tmp_path, [{"paths": [str(logs / "*.log")], "service": "w3c"}])
    run = Running(settings, config)
    try:
        run.wait_confirmed(202)
        tailer = run.agent.inputs[0].tailer
        a.unlink()  # rotated away: its descriptor is closed once it is idle (GONE_IDLE_S)
        wait_for(lambda: len(tailer.files) == 1, 20, "the deleted file's descriptor to be closed")
    finally:
        run.stop()
    # while the agent is down, a new a.log (ext4 may give it the deleted file's inode) with the
    # same first line and more bytes than the old offset
    a.write_bytes(BANNER + b"".join(_json_line(i, "n" * 40) for i in range(2000, 2200)))
    run = Running(settings, config)
    try:
        run.wait_confirmed(201)
    finally:
        run.stop()
    records = read_topic(settings, settings.topic(topics.SERVICE_LOGS), 403)
    seqs = sorted(r["seq"] for r in records if "seq" in r)
    assert seqs == list(range(0, 100)) + list(range(1000, 1100)) + list(range(2000, 2200))
    assert sum(1 for r in records if r.get("banner")) == 3 and len(records) == 403


def test_combined_client_ip_is_pseudonymised_in_field_message_and_dead_letter(
        kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.model_copy(update={"privacy": PrivacyConfig(secret=SECRET)})
    edge = tmp_path / "edge.log"
    edge.write_text(_combined("203.0.113.9", RECENT_TS) + _combined("2001:db8::7", RECENT_TS, status=502)
                    + '203.0.113.77 - - [not a time] "GET / HTTP/1.1" 200 5\n')
    run = Running(settings, _config(tmp_path, [{"paths": [str(edge)], "parser": "combined", "service": "edge"}]))
    try:
        run.wait_confirmed(3)
    finally:
        run.stop()
    hasher = Pseudonymizer(settings.privacy)
    records = {r["status"]: r for r in read_topic(settings, settings.topic(topics.SERVICE_LOGS), 2)}
    for status, ip in ((200, "203.0.113.9"), (502, "2001:db8::7")):
        record = records[status]
        assert record["client_ip"] == hasher.ip_pseudonym(ip)
        assert ip not in record["message"] and record["message"].startswith(hasher.ip_pseudonym(ip) + " - - [")
    (dead,) = read_topic(settings, settings.topic(topics.DEADLETTER), 1)
    assert "203.0.113.77" not in dead["original"] and hasher.ip_pseudonym("203.0.113.77") in dead["original"]


def test_without_a_secret_client_ip_is_dropped_and_redacted(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings
    assert settings.privacy.secret is None
    edge = tmp_path / "edge.log"
    edge.write_text(_combined("198.51.100.23", RECENT_TS))
    run = Running(settings, _config(tmp_path, [{"paths": [str(edge)], "parser": "combined", "service": "edge"}]))
    try:
        run.wait_confirmed(1)
    finally:
        run.stop()
    (record,) = read_topic(settings, settings.topic(topics.SERVICE_LOGS), 1)
    assert "client_ip" not in record
    assert "198.51.100.23" not in record["message"] and record["message"].startswith("redacted - - [")


def test_a_record_kafka_refuses_for_good_is_a_dead_letter_and_the_agent_goes_on(
        kafka_settings: Settings, tmp_path: Path) -> None:
    """A topic whose max.message.bytes is below the agent's max_record_bytes: the broker refuses
    the large record for good. It becomes a dead letter with Kafka's reason; the batch is not
    sent again for ever (which would also repeat the records Kafka took), and later lines go."""
    # A topic created with the limit (a limit altered on an existing topic reaches the broker's
    # log a moment later, and a record produced in between is taken): its own prefix, inside the
    # fixture's, so the fixture deletes it too.
    settings = kafka_settings.model_copy(update={"topic_prefix": f"{kafka_settings.topic_prefix}mmb."})
    logs_topic = settings.topic(topics.SERVICE_LOGS)
    admin = AdminClient(admin_config(settings.kafka))
    created = admin.create_topics([NewTopic(logs_topic, 1, 1, config={"max.message.bytes": "4096"})])
    for future in created.values():
        future.result(timeout=30)
    ensure_topics(settings)
    app = tmp_path / "app.log"
    noise = base64.b64encode(os.urandom(30_000)).decode()  # lz4 cannot shrink it below the limit
    app.write_bytes(_json_line(0) + _json_line(1, noise))
    config = _config(tmp_path, [{"paths": [str(app)], "service": "app"}])
    run = Running(settings, config)
    try:
        run.wait_confirmed(2)
        with open(app, "ab") as handle:
            handle.write(b"".join(_json_line(i) for i in range(2, 12)))
        run.wait_confirmed(12)
    finally:
        run.stop()
    records = read_topic(settings, logs_topic, 10)
    dead = read_topic(settings, settings.topic(topics.DEADLETTER), 1)
    shipped = sorted(r["seq"] for r in records)
    refused = sorted(orjson.loads(d["original"])["seq"] for d in dead)
    assert 1 in refused and "Kafka refused it for good" in dead[refused.index(1)]["reason"]
    assert sorted(shipped + refused) == list(range(12)), "each line once: shipped or dead-lettered"
    assert set(range(2, 12)) <= set(shipped)
