"""The HTTP collector against the real Kafka broker of the local stack."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import httpx
import orjson
from collector_helpers import RECENT_TS, SAMPLES, ndjson_rows, read_topic, tsv_rows
from helpers import running_collector

from playscope import topics
from playscope.config import Settings

TS = RECENT_TS


def _event(i: int, session: str = "s1", **extra: object) -> dict:
    return {"event_id": f"e{i}", "session_id": session, "ts": TS + i, "type": "heartbeat", **extra}


def test_mixed_batch_reports_each_invalid_item_and_dead_letters_it(kafka_settings: Settings) -> None:
    settings = kafka_settings
    body = [
        _event(0),
        {"session_id": "s1", "ts": TS, "type": "playing"},
        _event(2),
        _event(3, type="warp"),
        "not an object",
        _event(5, session="s2", cdn="oca-7"),
    ]
    with running_collector(settings) as url:
        resp = httpx.post(f"{url}/v1/events", json=body, timeout=30)
    assert resp.status_code == 202, resp.text
    answer = resp.json()
    assert answer["accepted"] == 3 and answer["rejected"] == 3
    assert [(e["index"], e["field"]) for e in answer["errors"]] == [(1, "event_id"), (3, "type"), (4, "")]
    events = read_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), 3)
    assert sorted(e["event_id"] for e in events) == ["e0", "e2", "e5"]
    assert {e["event_id"]: e["_key"] for e in events}["e5"] == "s2"
    dead = read_topic(settings, settings.topic(topics.DEADLETTER), 3)
    assert len(dead) == 3
    assert {d["source"] for d in dead} == {"collector.events"}
    assert any(d.get("field") == "type" and "warp" in d["reason"] and "warp" in d["original"] for d in dead)


def test_gzip_ndjson_and_text_plain_beacons(kafka_settings: Settings) -> None:
    settings = kafka_settings
    ndjson = b"\n".join(orjson.dumps(_event(i)) for i in range(50)) + b"\n{broken\n"
    with running_collector(settings) as url:
        gz = httpx.post(
            f"{url}/v1/events",
            content=gzip.compress(ndjson),
            timeout=30,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"},
        )
        beacon = httpx.post(
            f"{url}/v1/events",
            content=json.dumps([_event(100)]),
            timeout=30,
            headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://app.example"},
        )
    assert gz.status_code == 202 and gz.json()["accepted"] == 50 and gz.json()["rejected"] == 1
    assert gz.json()["errors"][0]["index"] == 50
    assert beacon.status_code == 202 and beacon.json()["accepted"] == 1
    assert beacon.headers["access-control-allow-origin"] in ("*", "https://app.example")
    events = read_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), 51)
    assert len(events) == 51
    dead = read_topic(settings, settings.topic(topics.DEADLETTER), 1)
    assert [d["original"] for d in dead] == ["{broken"]


def test_logs_endpoint_own_records_and_otlp_json(kafka_settings: Settings) -> None:
    settings = kafka_settings
    records = [
        {"ts": TS, "service": "api", "message": "ok", "status": 200, "level": "info"},
        {"ts": TS, "message": "no service"},
    ]
    otlp = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "edge"}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(TS * 1_000_000),
                                "severityText": "ERROR",
                                "body": {"stringValue": "boom"},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    with running_collector(settings) as url:
        own = httpx.post(f"{url}/v1/logs", json=records, timeout=30)
        otel = httpx.post(f"{url}/v1/logs", json=otlp, timeout=30)
        proto = httpx.post(  # one empty ResourceLogs: a valid request without records
            f"{url}/v1/logs",
            content=b"\x0a\x00",
            timeout=30,
            headers={"Content-Type": "application/x-protobuf"},
        )
    assert (
        own.status_code == 202
        and own.json()["accepted"] == 1
        and own.json()["errors"][0]["field"] == "service"
    )
    assert otel.status_code == 200 and otel.json() == {}  # OTLP/HTTP: an ExportLogsServiceResponse
    assert proto.status_code == 200 and proto.headers["content-type"] == "application/x-protobuf"
    assert proto.content == b""  # the empty response message: nothing rejected
    logs = read_topic(settings, settings.topic(topics.SERVICE_LOGS), 2)
    by_service = {r["service"]: r for r in logs}
    assert by_service["api"]["level"] == "INFO" and by_service["api"]["_key"] == "api"
    assert by_service["edge"]["message"] == "boom" and by_service["edge"]["level"] == "ERROR"


def test_cmcd_in_all_forms_lands_as_playback_events(kafka_settings: Settings) -> None:
    settings = kafka_settings
    query_rows = tsv_rows("v1-query.txt")[:10]
    header_rows = ndjson_rows("v1-headers.ndjson")[:10]
    bodies = [row["body"] for row in ndjson_rows("v2-event-bodies.ndjson")]
    with running_collector(settings) as url:
        statuses = []
        for _, _, value in query_rows:
            statuses.append(httpx.get(f"{url}/v1/cmcd", params={"CMCD": value, "country": "NO"}, timeout=30))
        for row in header_rows:
            statuses.append(httpx.post(f"{url}/v1/cmcd", headers=row["headers"], timeout=30))
        statuses.append(
            httpx.post(f"{url}/v1/cmcd", json={"sid": "json-1", "br": 900, "bs": True}, timeout=30)
        )
        event_body = "".join(bodies)
        statuses.append(
            httpx.post(
                f"{url}/v1/cmcd", content=event_body, timeout=30, headers={"Content-Type": "application/cmcd"}
            )
        )
        # players resend identical lines after a 429/5xx: same event ids
        statuses.append(
            httpx.post(
                f"{url}/v1/cmcd", content=bodies[0], timeout=30, headers={"Content-Type": "application/cmcd"}
            )
        )
        bad = httpx.post(
            f"{url}/v1/cmcd",
            content='br=300\nsid="ok",br=(1',
            timeout=30,
            headers={"Content-Type": "application/cmcd"},
        )
    assert [r.status_code for r in statuses] == [202] * len(statuses)
    assert bad.status_code == 202 and bad.json() == {
        "accepted": 0,
        "rejected": 2,
        "errors": [
            {"index": 0, "field": "sid", "reason": "is required (CMCD session id)"},
            {"index": 1, "field": "cmcd", "reason": "br: unterminated inner list"},
        ],
    }
    expected = 10 + 10 + 1 + len(bodies) + 1
    events = read_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), expected)
    assert len(events) == expected
    assert len({e["event_id"] for e in events}) == expected - 1  # the resend repeats one id
    assert all(
        e["country"] == "NO"
        for e in events
        if e.get("cmcd_version") == 1 and "cmcd" in e and e["session_id"].startswith("f64c")
    )
    # a session's first report: a bs before any play is startup, not a stall
    assert any(e["session_id"] == "json-1" and e["type"] == "heartbeat" for e in events)
    assert len(read_topic(settings, settings.topic(topics.DEADLETTER), 2)) == 2


def test_refusals_400_413_401_429_and_cors_preflight(kafka_settings: Settings) -> None:
    settings = kafka_settings
    with running_collector(
        settings,
        max_body_bytes=2048,
        max_events_per_request=3,
        api_keys=["k1"],
        rate_limit_per_s=1.0,
        rate_burst=3,
        allowed_origins=["https://app.example"],
    ) as url:
        no_key = httpx.post(f"{url}/v1/events", json=[_event(0)], timeout=30)
        bad_key = httpx.post(f"{url}/v1/events", json=[_event(0)], headers={"X-API-Key": "nope"}, timeout=30)
        h = {"X-API-Key": "k1"}
        not_json = httpx.post(f"{url}/v1/events", content=b"hello", headers=h, timeout=30)
        huge = httpx.post(f"{url}/v1/events", content=b"[" + b" " * 4096 + b"]", headers=h, timeout=30)
        many = httpx.post(
            f"{url}/v1/events", json=[_event(i) for i in range(4)], params={"api_key": "k1"}, timeout=30
        )
        limited = httpx.post(f"{url}/v1/events", json=[_event(0)], headers=h, timeout=30)
        preflight = httpx.options(
            f"{url}/v1/events",
            timeout=30,
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        other_origin = httpx.options(
            f"{url}/v1/events",
            timeout=30,
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        health = httpx.get(f"{url}/healthz", timeout=30)
        ready = httpx.get(f"{url}/readyz", timeout=30)
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert no_key.status_code == 401 and bad_key.status_code == 401
    assert not_json.status_code == 400 and not_json.json()["error"] == "bad_body"
    assert huge.status_code == 413 and many.status_code == 413
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert other_origin.status_code == 400
    assert health.status_code == 200 and ready.status_code == 200
    assert 'playscope_collector_errors_total{error_type="unauthorized"} 2.0' in metrics
    assert 'playscope_collector_errors_total{error_type="rate_limited"} 1.0' in metrics
    assert "playscope_collector_produce_latency_seconds_bucket" in metrics


def test_samples_dir_is_present() -> None:
    assert (SAMPLES / "README.md").is_file() and Path(SAMPLES / "v1-query.txt").stat().st_size > 0
    assert time.time() > 0
