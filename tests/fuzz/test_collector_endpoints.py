"""Fuzzing the collector's endpoints through its ASGI app, in-process, on the shared broker (the
topics of each test): /v1/events, /v1/logs (SPEC 5 records, OTLP JSON and OTLP protobuf) and
/v1/cmcd take any body, encoding, content type, query and headers and answer with a documented
status (202, or 200 with an ExportLogsServiceResponse for OTLP; 400, 413; never 500), every
refusal a JSON error with a reason, every rejected item reported with its reason (OTLP: counted
in ``partialSuccess``). Afterwards Kafka holds exactly what the 202s accepted, no raw IP in a
record, and one dead letter with its reason and source per rejected item (bounded: 200
requests per test, no deadline)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import re
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from helpers import read_messages
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from starlette.types import ASGIApp

from collectors.http import otlp
from collectors.http.app import create_app
from collectors.http.config import CollectorConfig
from playscope import topics
from playscope.config import PrivacyConfig, Settings
from playscope.events import DIMENSIONS, EVENT_TYPES, MEASURES
from playscope.privacy import Pseudonymizer

NOW_MS = int(time.time() * 1000)
MAX_BODY = 256 * 1024
MAX_ITEMS = 50
MAX_RECORD = 20_000
SECRET = "a-fuzz-secret-of-32-characters!!"
FUZZ = hsettings(max_examples=200, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SOURCES = {"events": "collector.events", "logs": "collector.logs", "cmcd": "collector.cmcd"}
PSEUDONYM = re.compile(r"[0-9a-f]{32}")


class Lifespan:
    """Startup and shutdown through the ASGI lifespan protocol, as a server drives them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __aenter__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        answer = await self.outbox.get()
        assert answer["type"] == "lifespan.startup.complete", answer

    async def __aexit__(self, *_exc: object) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        answer = await self.outbox.get()
        await self.task
        assert answer["type"] == "lifespan.shutdown.complete", answer


class InProcess:
    """The collector's ASGI app with its lifespan (producer, delivery reports) on an event loop
    of its own thread; requests go through httpx's ASGI transport, so nothing listens on a port."""

    def __init__(self, app: ASGIApp) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-collector", daemon=True)
        self.thread.start()
        self.lifespan = Lifespan(app)
        self._run(self.lifespan.__aenter__())
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        self.client = httpx.AsyncClient(transport=transport, base_url="http://collector", timeout=60)

    def _run(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(90)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self._run(self.client.request(method, path, **kwargs))
        return response

    def close(self) -> None:
        try:
            self._run(self.client.aclose())
            self._run(self.lifespan.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.loop.close()


@dataclass
class Tally:
    """What the collector's answers promised, to compare with what Kafka holds afterwards."""

    accepted: int = 0
    rejected: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    protobuf_answers: int = 0  # OTLP answers in protobuf with records accepted


@pytest.fixture
def collector(kafka_settings: Settings) -> Iterator[tuple[InProcess, Settings]]:
    settings = kafka_settings.model_copy(update={"privacy": PrivacyConfig(secret=SECRET)})
    config = CollectorConfig(max_body_bytes=MAX_BODY, max_events_per_request=MAX_ITEMS, max_record_bytes=MAX_RECORD)
    app = InProcess(create_app(settings, config))
    try:
        yield app, settings
    finally:
        app.close()


def _check_answer(response: httpx.Response, allowed: set[int], tally: Tally, items: int | None = None) -> None:
    """A documented status, a JSON body; a 202 reports each rejected item with its reason."""
    status = response.status_code
    assert status in allowed, f"status {status}: {response.text[:300]}"
    tally.statuses[status] = tally.statuses.get(status, 0) + 1
    if status == 200:
        _check_otlp_answer(response, tally, items)
        return
    body = response.json()
    if status != 202:
        assert isinstance(body.get("error"), str) and body["error"], body
        assert isinstance(body.get("message"), str) and body["message"], body
        return
    accepted, rejected = body["accepted"], body["rejected"]
    errors = body.get("errors", [])
    assert len(errors) == min(rejected, 1000)
    for error in errors:
        assert isinstance(error["index"], int) and isinstance(error["field"], str), error
        assert isinstance(error["reason"], str) and error["reason"], error
        assert not error["reason"].startswith("cannot be processed"), f"not a ValidationError: {error}"
    if items is not None:
        assert accepted + rejected == items, f"{items} items, {accepted} accepted + {rejected} rejected"
    tally.accepted += accepted
    tally.rejected += rejected


def _check_otlp_answer(response: httpx.Response, tally: Tally, items: int | None) -> None:
    """An ExportLogsServiceResponse in the request's encoding; the records not counted as
    rejected in ``partialSuccess`` are the accepted ones."""
    assert items is not None, "an OTLP answer to a body whose records the test cannot count"
    if response.headers["content-type"] == "application/x-protobuf":
        partial = ExportLogsServiceResponse.FromString(response.content).partial_success
        rejected, message = partial.rejected_log_records, partial.error_message
        tally.protobuf_answers += items > rejected
    else:
        assert response.headers["content-type"] == "application/json", response.headers
        partial_json = response.json().get("partialSuccess", {})
        rejected, message = partial_json.get("rejectedLogRecords", 0), partial_json.get("errorMessage", "")
    assert 0 <= rejected <= items and bool(rejected) == bool(message), (rejected, message)
    assert "cannot be processed" not in message, f"not a ValidationError: {message}"
    tally.accepted += items - rejected
    tally.rejected += rejected


def _check_kafka(settings: Settings, topic: str, endpoint: str, tally: Tally) -> None:
    """Kafka holds what the 202s accepted, with no raw IP, and a dead letter per rejected item."""
    records = read_topic(settings, settings.topic(topic), tally.accepted, timeout_s=60) if tally.accepted else []
    assert len(records) == tally.accepted, f"{tally.accepted} accepted, {len(records)} in Kafka"
    ip_fields = Pseudonymizer(PrivacyConfig(secret=SECRET)).ip_fields
    for record in records:
        for key, value in _walk(record):
            if key in ip_fields:
                assert isinstance(value, str) and PSEUDONYM.fullmatch(value), f"a raw IP passed: {key}={value!r}"
    dead = read_topic(settings, settings.topic(topics.DEADLETTER), tally.rejected, timeout_s=60) \
        if tally.rejected else []
    assert len(dead) == tally.rejected, f"{tally.rejected} rejected, {len(dead)} dead letters"
    for letter in dead:
        assert letter["reason"] and letter["source"] == SOURCES[endpoint], letter
        assert "original" in letter or "original_b64" in letter, letter


def read_topic(settings: Settings, topic: str, expected: int, timeout_s: float) -> list[dict[str, Any]]:
    return [orjson.loads(msg.value() or b"null") for msg in read_messages(settings, topic, expected, timeout_s)]


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


# -- bodies -------------------------------------------------------------------------------------
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 63), 2 ** 64 - 1),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_any = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)
odd_text = st.one_of(
    st.text(max_size=20), st.text(st.characters(categories=["Cc", "Cf", "Zl", "Co", "So"]), max_size=6),
    st.sampled_from(["x" * 257, "\u202e\u0000", "😀" * 70, "${jndi:ldap://x}", "<!channel>", "'; DROP --"]),
    st.integers(1, 4).map(lambda n: "y" * (MAX_RECORD * n // 2)))  # over max_record_bytes once encoded
deep = st.integers(1, 40).map(lambda n: {"a": n} if n < 2 else orjson.loads("[" * n + "]" * n))
ips = st.one_of(st.ip_addresses().map(str), st.sampled_from(["::ffff:1.2.3.4", "999.1.1.1", "", "-"]))
times = st.one_of(st.integers(NOW_MS - 3_600_000, NOW_MS + 60_000), st.just(NOW_MS),
                  st.just("2026-11-21T10:00:00Z"), st.integers(NOW_MS - 30 * 86_400_000, NOW_MS + 86_400_000),
                  json_leaf)


@st.composite
def beacons(draw: st.DrawFn) -> Any:
    """A SPEC 4 event that passes, then with fields made odd, deep or huge; or any JSON."""
    if draw(st.integers(0, 7)) == 0:
        return draw(json_any)
    event: dict[str, Any] = {"event_id": f"e{draw(st.integers(0, 10 ** 9))}", "session_id": draw(
        st.sampled_from(["s1", "s2", "s\u00e9"])), "ts": draw(st.integers(NOW_MS - 3_600_000, NOW_MS)),
        "type": draw(st.sampled_from(sorted(EVENT_TYPES)))}
    names = sorted({"event_id", "session_id", "ts", "type", *DIMENSIONS, *MEASURES, "client_ip", "fatal",
                    "to_kbps", "error_code", "extra"})
    for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        event[name] = draw(st.one_of(odd_text, json_any, deep, ips, times) if name != "ts" else times)
    return event


@st.composite
def log_records(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 7)) == 0:
        return draw(json_any)
    record: dict[str, Any] = {"ts": draw(st.integers(NOW_MS - 3_600_000, NOW_MS)), "service": "svc",
                              "message": draw(st.text(max_size=40))}
    names = ["ts", "service", "message", "level", "status", "latency_ms", "host", "route", "client_ip",
             "x_forwarded_for", "remoteAddr", "nested"]
    for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        record[name] = draw(st.one_of(odd_text, json_any, deep, ips, times,
                                      ips.map(lambda ip: {"client.address": ip, "list": [{"ip": ip}]})))
    return record


def any_values(depth: int = 0) -> st.SearchStrategy[Any]:
    """OTLP AnyValue objects: every kind, structured ones nested, and shapes that are wrong."""
    leaves = st.one_of(
        st.text(max_size=20).map(lambda t: {"stringValue": t}), st.booleans().map(lambda b: {"boolValue": b}),
        st.one_of(st.integers(), st.text(max_size=25), st.just("9" * 30)).map(lambda i: {"intValue": i}),
        st.floats(allow_nan=False, allow_infinity=False).map(lambda f: {"doubleValue": f}),
        st.binary(max_size=10).map(lambda b: {"bytesValue": base64.b64encode(b).decode()}),
        json_any, st.just({}), st.just({"unknownValue": 1}))
    if depth >= 2:
        return leaves
    inner = st.deferred(lambda: any_values(depth + 1))
    pairs = st.lists(st.fixed_dictionaries({"key": st.text(max_size=8) | json_leaf, "value": inner}), max_size=3)
    return st.one_of(leaves, pairs.map(lambda v: {"kvlistValue": {"values": v}}),
                     st.lists(inner, max_size=3).map(lambda v: {"arrayValue": {"values": v}}),
                     json_any.map(lambda v: {"kvlistValue": v}), json_any.map(lambda v: {"arrayValue": v}))


attr_keys = st.sampled_from(["service.name", "host.name", "client.address", "net.peer.ip", "http.client_ip",
                             "http.route", "http.status_code", "status", "latency_ms", "level", "ts"])
attributes = st.one_of(
    st.lists(st.fixed_dictionaries({"key": attr_keys | st.text(max_size=8), "value": any_values(1)
                                    | ips.map(lambda ip: {"stringValue": ip})}), max_size=4),
    json_any)
otlp_records = st.one_of(
    st.fixed_dictionaries({}, optional={
        "timeUnixNano": st.one_of(st.just(str(NOW_MS * 1_000_000)), st.integers(0, 2 ** 64).map(str),
                                  st.just("9" * 40), st.just("1e18"), json_leaf),
        "observedTimeUnixNano": st.just(str(NOW_MS * 1_000_000)),
        "body": any_values(), "attributes": attributes, "severityText": st.text(max_size=8) | json_leaf,
        "severityNumber": st.integers(-5, 30) | json_leaf, "traceId": st.text(max_size=32) | json_leaf}),
    json_any)
resources = st.one_of(st.fixed_dictionaries({"attributes": attributes}), st.just(
    {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]}), json_any)
otlp_payloads = st.fixed_dictionaries({"resourceLogs": st.one_of(st.lists(st.one_of(
    st.fixed_dictionaries({}, optional={"resource": resources, "scopeLogs": st.one_of(st.lists(st.one_of(
        st.fixed_dictionaries({}, optional={"logRecords": st.lists(otlp_records, max_size=4) | json_any}),
        json_any), max_size=3), json_any)}), json_any), max_size=3), json_any)})


@st.composite
def protobuf_bodies(draw: st.DrawFn, payload: dict[str, Any]) -> bytes:
    """``payload`` in protobuf when protobuf's JSON form can read it, else (and at random) one
    plain record; as serialised, cut short, or with bytes of garbage after it."""
    request = ExportLogsServiceRequest()
    parsed = draw(st.booleans())
    if parsed:
        try:
            json_format.ParseDict(payload, request, ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError, TypeError, RecursionError):
            parsed = False
    if not parsed:
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        attribute = resource_logs.resource.attributes.add()
        attribute.key, attribute.value.string_value = "service.name", draw(st.sampled_from(["svc", ""]))
        record = resource_logs.scope_logs.add().log_records.add()
        record.time_unix_nano = draw(st.sampled_from([NOW_MS, NOW_MS + 86_400_000, 0])) * 1_000_000
        record.body.string_value = draw(odd_text)
        record.trace_id = draw(st.binary(max_size=16))
        address = record.attributes.add()
        address.key, address.value.string_value = "client.address", draw(ips)
    data = request.SerializeToString()
    how = draw(st.sampled_from(["whole", "whole", "whole", "cut", "garbage"]))
    if how == "cut" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "garbage":
        return data + draw(st.binary(min_size=1, max_size=8))
    return data


def _otlp_count(raw: bytes, protobuf: bool) -> int | None:
    """The records of an OTLP body as the collector will count them; None when it cannot be read."""
    if protobuf:
        try:
            request = ExportLogsServiceRequest.FromString(raw)
        except DecodeError:
            return None
        return sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return len(otlp.to_records(value)) if otlp.is_otlp(value) else None


@st.composite
def bodies(draw: st.DrawFn, items: st.SearchStrategy[Any]) -> tuple[bytes, int | None]:
    """A body and, when it is well-formed, the number of items in it."""
    shape = draw(st.sampled_from(["array", "array", "array", "object", "ndjson", "ndjson", "ndjson-bad", "bytes",
                                  "empty", "deep", "huge"]))
    values = draw(st.lists(items, min_size=1, max_size=MAX_ITEMS + 5))
    if shape == "array":
        return orjson.dumps(values), len(values)
    if shape == "object":
        value = values[0]
        return orjson.dumps(value), (1 if not isinstance(value, list) else len(value))
    if shape == "ndjson":
        lines = [orjson.dumps(v) for v in values if not isinstance(v, list)] or [b"{}"]
        return b"\n".join(lines) + draw(st.sampled_from([b"", b"\n", b"\r\n"])), len(lines)
    if shape == "ndjson-bad":
        lines = [orjson.dumps(v) for v in values] + [draw(st.binary(min_size=1, max_size=30)), b"{\"cut\": "]
        return b"\n".join(lines), None
    if shape == "bytes":
        return draw(st.binary(max_size=200)), None
    if shape == "empty":
        return draw(st.sampled_from([b"", b"   ", b"\n\n", b"[]", b"{}", b"null"])), None
    if shape == "deep":
        depth = draw(st.sampled_from([100, 1023, 1025, 5000]))
        return b"[" * depth + b"]" * depth, None
    return b"[" + b",".join([b'{"event_id":"e","note":"' + b"z" * 1000 + b'"}'] * 300) + b"]", None  # over the limit


@st.composite
def encoded(draw: st.DrawFn, body: bytes) -> tuple[bytes, dict[str, str], bool]:
    """The body under a Content-Encoding, right or wrong; True when it still decodes as sent."""
    how = draw(st.sampled_from(["none"] * 6 + ["gzip", "gzip", "gzip2", "deflate", "gzip-cut", "gzip-lie", "br",
                                               "bomb"]))
    if how == "none":
        return body, {}, True
    if how == "gzip":
        return gzip.compress(body), {"Content-Encoding": "gzip"}, True
    if how == "gzip2":
        half = len(body) // 2
        return gzip.compress(body[:half]) + gzip.compress(body[half:]), {"Content-Encoding": "x-gzip"}, True
    if how == "deflate":
        return zlib.compress(body), {"Content-Encoding": "Deflate"}, True
    if how == "gzip-cut":
        data = gzip.compress(body)
        return data[: draw(st.integers(0, len(data) - 1))], {"Content-Encoding": "gzip"}, False
    if how == "gzip-lie":
        return body, {"Content-Encoding": "gzip"}, False
    if how == "br":
        return body, {"Content-Encoding": draw(st.sampled_from(["br", "gzip, deflate", "\u00e9"]))}, False
    return gzip.compress(b" " * (MAX_BODY * 4)), {"Content-Encoding": "gzip"}, False  # decompresses over the limit


content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                 "application/x-ndjson", "", "multipart/form-data; boundary=x", "application/cmcd",
                                 "application/x-protobuf", "text/html\u00e9"])
client_times = st.one_of(st.none(), st.none(), st.none(), st.just(str(NOW_MS - 7_200_000)), st.just(str(NOW_MS)),
                         st.sampled_from(["", "abc", "1" * 17, "\u0661\u0662", "-5", str(10 ** 15)]))


def _headers(data: st.DataObject, extra: dict[str, str]) -> dict[str, Any]:
    headers: dict[str, Any] = {name: value.encode("utf-8") for name, value in extra.items()}
    ctype = data.draw(content_types)
    if ctype:
        headers["Content-Type"] = ctype.encode("utf-8")
    client_time = data.draw(client_times)
    if client_time is not None:
        headers["X-Playscope-Client-Time"] = client_time.encode("utf-8")
    return headers


def _post(app: InProcess, data: st.DataObject, path: str, items: st.SearchStrategy[Any]) -> tuple[httpx.Response,
                                                                                                int | None]:
    raw, count = data.draw(bodies(items))
    body, extra, intact = data.draw(encoded(raw))
    headers = _headers(data, extra)
    response = app.request("POST", path, content=body, headers=headers)
    return response, count if intact else None


# -- the endpoints --------------------------------------------------------------------------------
def test_events_endpoint_answers_every_body_with_a_documented_status(
        collector: tuple[InProcess, Settings]) -> None:
    app, settings = collector
    tally = Tally()

    @FUZZ
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        response, count = _post(app, data, "/v1/events", beacons())
        _check_answer(response, {202, 400, 413}, tally, count if response.status_code == 202 else None)

    check()
    assert tally.statuses.get(202) and tally.accepted and tally.rejected, tally
    _check_kafka(settings, topics.PLAYBACK_EVENTS, "events", tally)


def test_logs_endpoint_answers_every_body_and_otlp_shape_with_a_documented_status(
        collector: tuple[InProcess, Settings]) -> None:
    app, settings = collector
    tally = Tally()

    @FUZZ
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(["records", "records", "otlp-json", "otlp-protobuf"]))
        if kind == "records":
            response, count = _post(app, data, "/v1/logs", log_records())
        else:  # OTLP/HTTP, sometimes compressed, cut or mislabelled: the content type decides
            payload = data.draw(otlp_payloads)
            raw = orjson.dumps(payload) if kind == "otlp-json" else data.draw(protobuf_bodies(payload))
            body, extra, intact = data.draw(encoded(raw))
            headers = _headers(data, extra)
            if kind == "otlp-protobuf" and data.draw(st.integers(0, 3)):  # mostly labelled as it is
                headers["Content-Type"] = data.draw(st.sampled_from([b"application/x-protobuf",
                                                                     b"Application/X-Protobuf; proto=v1"]))
            protobuf = headers.get("Content-Type", b"").split(b";")[0].strip().lower() == b"application/x-protobuf"
            count = _otlp_count(raw, protobuf) if intact else None
            response = app.request("POST", "/v1/logs", content=body, headers=headers)
        _check_answer(response, {200, 202, 400, 413}, tally, count if response.status_code in (200, 202) else None)

    check()
    assert tally.statuses.get(202) and tally.statuses.get(200) and tally.protobuf_answers, tally
    assert tally.accepted and tally.rejected, tally
    _check_kafka(settings, topics.SERVICE_LOGS, "logs", tally)


cmcd_values = st.one_of(st.integers(-5, 50_000).map(str), st.just("9" * 20), st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12).map(lambda t: '"' + t.replace("\\", "\\\\")
                                                                            .replace('"', '\\"') + '"'),
    st.sampled_from(["(450;v 32;a)", "()", "(1", "?1", "?3", "ps", "rr", "p", "r", "e", "f", "d", '"http://[::1/x"',
                     '"https://edge-1.example.net/s"']), st.text(max_size=6))
cmcd_keys = st.sampled_from(["br", "bl", "bs", "cid", "e", "sta", "su", "ot", "sf", "st", "mtp", "pb", "sn", "ttlb",
                             "ttfb", "ec", "nor", "url", "cdn", "ts", "v", "com.example-cdn"]) | st.text(max_size=4)


CMCD_SIDS = ['"v1-a"', '"v2-b"', '"c"', "tok", '""']


@st.composite
def cmcd_texts(draw: st.DrawFn) -> str:
    """A CMCD member list, v1 or v2, with a session, odd values and now and then a cut."""
    members = [f"sid={draw(st.sampled_from(CMCD_SIDS))}"]
    if draw(st.booleans()):
        members += ["v=2", f"ts={draw(st.integers(NOW_MS - 600_000, NOW_MS + 600_000))}"]
    members += [f"{draw(cmcd_keys)}={draw(cmcd_values)}" if draw(st.integers(0, 4)) else draw(cmcd_keys)
                for _ in range(draw(st.integers(0, 6)))]
    text = ",".join(members)
    return text if draw(st.integers(0, 5)) else text[: draw(st.integers(0, len(text)))]


header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=20)


def test_cmcd_endpoint_answers_every_query_header_and_body_with_a_documented_status(
        collector: tuple[InProcess, Settings]) -> None:
    app, settings = collector
    tally = Tally()

    @FUZZ
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        params: dict[str, str] = {}
        if data.draw(st.booleans()):
            params["CMCD"] = data.draw(cmcd_texts() | st.text(max_size=40))
        for name in data.draw(st.lists(st.sampled_from(["cdn", "device", "country", "isp", "client_time",
                                                        "api_key", "other"]), max_size=3, unique=True)):
            params[name] = data.draw(st.text(max_size=12) | st.just("x" * 300))
        headers: dict[str, Any] = {}
        for name in data.draw(st.lists(st.sampled_from(["CMCD-Request", "CMCD-Object", "CMCD-Session",
                                                        "CMCD-Status", "X-Playscope-Cdn", "CF-IPCountry"]),
                                       max_size=3, unique=True)):
            headers[name] = data.draw(cmcd_texts().map(str.encode) | header_text.map(lambda t: t.encode("latin-1")))
        if data.draw(st.booleans()):
            response = app.request("GET", "/v1/cmcd", params=params, headers=headers)
        else:
            form = data.draw(st.sampled_from(["lines", "json", "array", "bytes", "none"]))
            if form == "lines":
                body = "\n".join(data.draw(st.lists(cmcd_texts(), max_size=6))).encode()
                headers["Content-Type"] = b"application/cmcd"
            elif form in ("json", "array"):
                reports = data.draw(st.lists(st.one_of(st.dictionaries(cmcd_keys, json_any | st.integers(
                    -5, 50_000), max_size=6).map(lambda r: {"sid": "json-s", **r}), json_any), min_size=1,
                    max_size=MAX_ITEMS + 3))
                body = orjson.dumps(reports[0] if form == "json" else reports)
            elif form == "bytes":
                body = data.draw(st.binary(max_size=100))
            else:
                body = b""
            body, extra, _intact = data.draw(encoded(body))
            headers.update(_headers(data, extra))
            response = app.request("POST", "/v1/cmcd", params=params, headers=headers, content=body)
        _check_answer(response, {202, 400, 413}, tally)

    check()
    assert tally.statuses.get(202) and tally.accepted and tally.rejected, tally
    _check_kafka(settings, topics.PLAYBACK_EVENTS, "cmcd", tally)
