"""The collector under hostile and odd input, against the real broker: nothing wedges it,
nothing stops it, and every refused item is reported with its reason and dead-lettered."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import httpx
import orjson
from collector_helpers import RECENT_TS, read_topic
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from helpers import running_collector, wait_for

from playscope import topics
from playscope.config import Settings
from playscope.deadletter import original_bytes

TS = RECENT_TS


def _event(i: int, session: str = "s1", **extra: object) -> dict:
    return {"event_id": f"e{i}", "session_id": session, "ts": TS + i, "type": "heartbeat", **extra}


def _big(i: int) -> dict:
    return _event(i, session="big", note="x" * 1_500_000)  # fits the 5 MiB body, not a Kafka record


def test_an_item_too_large_for_kafka_is_refused_per_item_never_spooled(kafka_settings: Settings,
                                                                        tmp_path: Path) -> None:
    """Before: spooled and answered 202, its replay failed forever and every later request
    queued behind it (with a spool); 503 forever, duplicating the others (without)."""
    settings = kafka_settings
    spool = tmp_path / "spool"
    with running_collector(settings, spool_dir=str(spool), produce_timeout_s=5) as url, \
            running_collector(settings, produce_timeout_s=5) as plain:
        for base in (url, plain):
            resp = httpx.post(f"{base}/v1/events", json=[_event(0), _big(1), _event(2)], timeout=30)
            assert resp.status_code == 202, resp.text
            answer = resp.json()
            assert answer["accepted"] == 2 and answer["rejected"] == 1
            assert answer["errors"][0]["index"] == 1 and "max_record_bytes" in answer["errors"][0]["reason"]
        later = httpx.post(f"{url}/v1/events", json=[_event(3)], timeout=30)
        assert later.status_code == 202 and later.json()["accepted"] == 1
        assert not list(spool.glob("spool-*")), "nothing was to be spooled: Kafka is up"
    events = read_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), 5)
    assert sorted(e["event_id"] for e in events) == ["e0", "e0", "e2", "e2", "e3"]
    dead = read_topic(settings, settings.topic(topics.DEADLETTER), 2)
    assert len(dead) == 2 and all(d["original_truncated"] and d["original_size"] > 1_500_000 for d in dead)
    assert all(len(d["original"]) <= 64 * 1024 for d in dead)


def _limit_topic(settings: Settings, topic: str, max_bytes: int) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", str(max_bytes), incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)

    def applied() -> bool:
        described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
        entries = next(iter(described.values())).result(30)
        return entries["max.message.bytes"].value == str(max_bytes)

    wait_for(applied, 30, "the topic's new max.message.bytes")
    time.sleep(1)  # every partition leader applies it


def test_records_kafka_refuses_are_dead_lettered_and_reported_not_retried(kafka_settings: Settings,
                                                                           tmp_path: Path) -> None:
    """The broker refuses a record (the topic's max.message.bytes is below the collector's
    max_record_bytes): the item is reported rejected and dead-lettered with Kafka's reason;
    before, the request got 503 (or was spooled and replayed forever)."""
    settings = kafka_settings
    topic = settings.topic(topics.PLAYBACK_EVENTS)
    _limit_topic(settings, topic, 20_000)
    noise = os.urandom(30_000).hex()  # incompressible: lz4 cannot bring it under the limit
    spool = tmp_path / "spool"
    with running_collector(settings, spool_dir=str(spool), produce_timeout_s=5) as url:
        resp = httpx.post(f"{url}/v1/events", json=[_event(0, session="wide", note=noise)], timeout=30)
        assert resp.status_code == 202, resp.text
        answer = resp.json()
        assert answer == {"accepted": 0, "rejected": 1, "errors": [
            {"index": 0, "field": "", "reason": answer["errors"][0]["reason"]}]}
        assert "Kafka refused" in answer["errors"][0]["reason"]
        after = httpx.post(f"{url}/v1/events", json=[_event(1)], timeout=30)
        assert after.status_code == 202 and after.json()["accepted"] == 1
        assert not list(spool.glob("spool-*"))
    assert [e["event_id"] for e in read_topic(settings, topic, 1)] == ["e1"]
    dead = read_topic(settings, settings.topic(topics.DEADLETTER), 1)
    assert len(dead) == 1 and "Kafka refused" in dead[0]["reason"] and noise in dead[0]["original"]


def test_a_multi_member_gzip_body_is_read_whole(kafka_settings: Settings) -> None:
    """Before: only the first member was read and the rest dropped with a 202."""
    settings = kafka_settings
    first = gzip.compress(b"\n".join(orjson.dumps(_event(i)) for i in range(3)) + b"\n")
    second = gzip.compress(b"\n".join(orjson.dumps(_event(i)) for i in range(3, 6)))
    with running_collector(settings) as url:
        resp = httpx.post(f"{url}/v1/events", content=first + second, headers={"Content-Encoding": "gzip"},
                          timeout=30)
        cut = httpx.post(f"{url}/v1/events", content=(first + second)[:-7],
                         headers={"Content-Encoding": "gzip"}, timeout=30)
    assert resp.status_code == 202 and resp.json()["accepted"] == 6
    assert cut.status_code == 400 and cut.json()["error"] == "bad_body"
    assert len(read_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), 6)) == 6


def test_dead_letters_of_json_array_items_hold_the_original_bytes(kafka_settings: Settings) -> None:
    """Before: the normalised dict (its ts rewritten, keys re-serialised), not what was sent."""
    settings = kafka_settings
    bad = b'{"event_id": "x1", "session_id": "s", "ts": "2020-01-01T00:00:00.000Z" , "type": "warp"}'
    odd = b'"just text, with [brackets] and {braces}"'
    body = b'[ ' + orjson.dumps(_event(0)) + b' ,\n ' + bad + b', ' + odd + b' ]'
    with running_collector(settings) as url:
        resp = httpx.post(f"{url}/v1/events", content=body, timeout=30)
    assert resp.status_code == 202 and resp.json()["rejected"] == 2
    dead = read_topic(settings, settings.topic(topics.DEADLETTER), 2)
    assert sorted(original_bytes(d) for d in dead) == sorted([bad, odd])


def test_otlp_odd_shapes_get_item_answers_not_500(kafka_settings: Settings) -> None:
    """Before: a non-object ``resource`` gave a 500; kvlistValue/arrayValue bodies were
    dead-lettered as 'message is required'."""
    settings = kafka_settings
    now_ns = str(int(time.time() * 1e9))

    def record(body: dict) -> dict:
        return {"timeUnixNano": now_ns, "severityText": "INFO", "body": body}

    payload = {"resourceLogs": [
        {"resource": ["not", "an", "object"], "scopeLogs": [{"logRecords": [record({"stringValue": "a"})]}]},
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
         "scopeLogs": [{"logRecords": [
             record({"kvlistValue": {"values": [{"key": "user", "value": {"stringValue": "u1"}},
                                                {"key": "n", "value": {"intValue": "3"}}]}}),
             record({"arrayValue": {"values": [{"stringValue": "x"}, {"boolValue": True}]}}),
         ]}]},
    ]}
    with running_collector(settings) as url:
        resp = httpx.post(f"{url}/v1/logs", json=payload, timeout=30)
    assert resp.status_code == 200, resp.text  # OTLP/HTTP: 200 and an ExportLogsServiceResponse
    answer = resp.json()["partialSuccess"]
    assert answer["rejectedLogRecords"] == 1
    assert answer["errorMessage"].startswith("record 0: service:")  # no service: a defined rejection
    logs = read_topic(settings, settings.topic(topics.SERVICE_LOGS), 2)
    assert sorted(orjson.loads(r["message"]) == v for r in logs for v in ({"user": "u1", "n": 3}, ["x", True])
                  ).count(True) == 2


def test_rejection_reasons_never_make_new_metric_series(kafka_settings: Settings) -> None:
    """Before: a CMCD decode error's reason label carried the client's key name: one series per
    request with a new key."""
    settings = kafka_settings
    with running_collector(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        for i in range(200):
            resp = client.post("/v1/cmcd", content=f'sid="s{i}",k{i}x=(1'.encode(),
                               headers={"Content-Type": "application/cmcd"})
            assert resp.status_code == 202 and resp.json()["rejected"] == 1
        client.post("/v1/events", json=[{**_event(0), "cdn": 5}, {"nested": {"deep": 1}}])
        exposition = client.get("/metrics").text
    series = [line for line in exposition.splitlines()
              if line.startswith("playscope_collector_rejected_events_total{")]
    assert 1 <= len(series) <= 4, series


def test_a_client_clock_is_corrected_and_the_bounds_apply(kafka_settings: Settings) -> None:
    """X-Playscope-Client-Time shifts the request's ts by the measured offset before the SPEC 4
    bounds (5 min ahead, 7 days behind) apply; items outside them are dead-lettered."""
    settings = kafka_settings
    now = int(time.time() * 1000)
    skew = 3 * 365 * 86_400_000  # a TV three years behind
    with running_collector(settings) as url:
        shifted = httpx.post(f"{url}/v1/events", json=[
            _event(0, ts=now - skew - 1000), _event(1, ts=now - skew)],
            headers={"X-Playscope-Client-Time": str(now - skew)}, timeout=30)
        bounded = httpx.post(f"{url}/v1/events", json=[
            _event(2, ts=now + 3_600_000), _event(3, ts=now - 8 * 86_400_000), _event(4, ts=now)], timeout=30)
        bad = httpx.post(f"{url}/v1/events", json=[_event(5)], headers={"X-Playscope-Client-Time": "²".encode()},
                         timeout=30)
        beacon = httpx.post(f"{url}/v1/events?client_time={now + 600_000}", json=[_event(6, ts=now + 600_000)],
                            timeout=30)
        logs = httpx.post(f"{url}/v1/logs", json=[{"ts": now + 86_400_000, "service": "api", "message": "m"}],
                          timeout=30)
    assert shifted.status_code == 202 and shifted.json()["accepted"] == 2
    assert bounded.status_code == 202 and bounded.json()["accepted"] == 1
    assert [(e["index"], e["field"]) for e in bounded.json()["errors"]] == [(0, "ts"), (1, "ts")]
    assert "ahead" in bounded.json()["errors"][0]["reason"] and "behind" in bounded.json()["errors"][1]["reason"]
    assert bad.status_code == 400 and bad.json()["error"] == "bad_client_time"
    assert beacon.status_code == 202 and beacon.json()["accepted"] == 1
    assert logs.status_code == 202 and logs.json()["rejected"] == 1
    events = {e["event_id"]: e for e in read_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), 4)}
    assert set(events) == {"e0", "e1", "e4", "e6"}
    received = events["e1"]["ts"]
    assert abs(received - now) < 60_000 and events["e1"]["ts"] - events["e0"]["ts"] == 1000
    assert events["e1"]["clock_offset_ms"] >= skew and abs(events["e6"]["ts"] - now) < 60_000
    dead = read_topic(settings, settings.topic(topics.DEADLETTER), 3)
    assert len(dead) == 3 and all(d["field"] == "ts" for d in dead)


def test_healthz_and_metrics_answer_while_requests_wait_for_a_full_queue(kafka_settings: Settings) -> None:
    """Before: a full producer queue made the request coroutine spin on poll() (an 8.8 s stall
    measured), freezing /healthz and /metrics with it."""
    settings = kafka_settings
    # a producer queue of a few records: every request waits for it to drain
    tiny = settings.model_copy(update={"kafka": settings.kafka.model_copy()})
    import collectors.http.app as app_module

    original = app_module.producer_config

    def small_queue(cfg, **overrides):  # type: ignore[no-untyped-def]
        return original(cfg, **{**overrides, "queue.buffering.max.messages": 20, "linger.ms": 200})

    app_module.producer_config = small_queue
    try:
        with running_collector(tiny, produce_timeout_s=5) as url:
            import threading

            answers: list[int] = []

            def post() -> None:
                with httpx.Client(timeout=60) as client:
                    body = [_event(i, session=f"q{i % 5}") for i in range(2000)]
                    answers.append(client.post(f"{url}/v1/events", json=body).status_code)

            threads = [threading.Thread(target=post) for _ in range(3)]
            for thread in threads:
                thread.start()
            time.sleep(0.3)
            worst = 0.0
            with httpx.Client(timeout=10) as client:
                while any(t.is_alive() for t in threads):
                    started = time.perf_counter()
                    assert client.get(f"{url}/healthz").status_code == 200
                    assert client.get(f"{url}/metrics").status_code == 200
                    worst = max(worst, time.perf_counter() - started)
                    time.sleep(0.02)
            for thread in threads:
                thread.join()
    finally:
        app_module.producer_config = original
    assert set(answers) <= {202, 503} and len(answers) == 3
    # not a speed assertion: a blocked loop answers nothing until the requests finish (seconds)
    assert worst < 3.0, f"/healthz took {worst:.2f} s while requests waited for the queue"


def test_load_beyond_the_concurrency_limit_is_shed_with_503(kafka_settings: Settings) -> None:
    settings = kafka_settings
    import threading

    statuses: list[int] = []
    retry_after: list[str] = []
    cors: list[str] = []  # a browser reads the refusal only with the CORS headers
    with running_collector(settings, max_concurrent_requests=2, allowed_origins=["https://app.example"]) as url:
        body = orjson.dumps([_event(i, session=f"c{i % 9}") for i in range(3000)])

        def post() -> None:
            with httpx.Client(timeout=60) as client:
                resp = client.post(f"{url}/v1/events", content=body, headers={"Origin": "https://app.example"})
                statuses.append(resp.status_code)
                if resp.status_code == 503:
                    retry_after.append(resp.headers.get("retry-after", ""))
                    cors.append(resp.headers.get("access-control-allow-origin", ""))

        threads = [threading.Thread(target=post) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert set(statuses) <= {202, 503} and 202 in statuses, statuses
    assert 503 in statuses and set(retry_after) == {"1"}
    assert set(cors) == {"https://app.example"}
    assert 'error_type="overloaded"' in metrics
    wait_for(lambda: True)
