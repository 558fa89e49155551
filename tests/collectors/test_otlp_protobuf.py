"""OTLP/HTTP logs in protobuf: the OpenTelemetry Python SDK's own OTLP/HTTP exporter sending to a
real collector on the shared broker, mapped as the JSON encoding is, answered with an
ExportLogsServiceResponse; and the protobuf reading checked against protobuf's own JSON form."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import orjson
import requests
from collector_helpers import read_topic
from google.protobuf.json_format import MessageToDict, Parse
from helpers import running_collector
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from collectors.http import otlp_proto
from playscope import topics
from playscope.config import Settings

TRACE_ID = 0x5B8EFFF798038103D269B633813FC60C
SPAN_ID = 0xEEE19B7EC3C1B174


class RecordingSession(requests.Session):
    """The exporter's own HTTP session, keeping each answer so the test can read it."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[requests.Response] = []

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        response = super().request(*args, **kwargs)
        self.answers.append(response)
        return response


def _provider(url: str, session: RecordingSession, batch: bool = False) -> LoggerProvider:
    """An SDK logger provider exporting to the collector: one request per record, or (``batch``)
    all records in one request when the provider shuts down."""
    resource = Resource.create({"service.name": "checkout", "host.name": "web-3"})
    provider = LoggerProvider(resource=resource)
    exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs", session=session, timeout=30)
    processor = BatchLogRecordProcessor(exporter, schedule_delay_millis=60_000) if batch \
        else SimpleLogRecordProcessor(exporter)
    provider.add_log_record_processor(processor)
    return provider


def test_sdk_exporter_protobuf_lands_mapped_like_json(kafka_settings: Settings) -> None:
    settings = kafka_settings
    context = set_span_in_context(NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, is_remote=False,
                                                               trace_flags=TraceFlags(1))))
    now_ns = time.time_ns()
    session = RecordingSession()
    with running_collector(settings) as url:
        provider = _provider(url, session)
        logger = provider.get_logger("playscope.test")
        logger.emit(LogRecord(timestamp=now_ns, context=context, severity_number=SeverityNumber.WARN,
                              severity_text="WARN", body="slow checkout",
                              attributes={"http.route": "/pay", "status": 504, "latency_ms": 812.5,
                                          "retry": True, "tags": ["a", "b"]}))
        logger.emit(LogRecord(timestamp=now_ns, severity_number=SeverityNumber.ERROR, body={"order": 7, "ok": False}))
        provider.shutdown()
    assert [a.status_code for a in session.answers] == [200, 200]
    for answer in session.answers:
        assert answer.headers["content-type"] == "application/x-protobuf"
        assert not ExportLogsServiceResponse.FromString(answer.content).HasField("partial_success")

    logs = read_topic(settings, settings.topic(topics.SERVICE_LOGS), 2)
    assert len(logs) == 2
    by_level = {r["level"]: r for r in logs}
    warn, error = by_level["WARN"], by_level["ERROR"]
    assert warn["service"] == "checkout" and warn["host"] == "web-3" and warn["_key"] == "checkout"
    assert warn["message"] == "slow checkout" and warn["ts"] == now_ns // 1_000_000
    assert warn["http_route"] == "/pay" and warn["status"] == 504 and warn["latency_ms"] == 812.5
    assert warn["retry"] is True and warn["tags"] == ["a", "b"]
    assert warn["trace_id"] == f"{TRACE_ID:032x}"
    # severityText unset: the level comes from severityNumber; a structured body is JSON text
    assert orjson.loads(error["message"]) == {"order": 7, "ok": False} and "trace_id" not in error


def test_sdk_exporter_rejected_records_counted_in_partial_success(kafka_settings: Settings) -> None:
    settings = kafka_settings
    session = RecordingSession()
    context = set_span_in_context(NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, is_remote=False)))
    with running_collector(settings) as url:
        provider = _provider(url, session, batch=True)
        logger = provider.get_logger("playscope.test")
        # one export of three records: a good one, one a day ahead (SPEC 4 bounds), one without a body
        now_ns = time.time_ns()
        logger.emit(LogRecord(timestamp=now_ns, body="kept", severity_text="INFO"))
        logger.emit(LogRecord(timestamp=now_ns + 86_400 * 10**9, body="from tomorrow", severity_text="INFO",
                              context=context))
        logger.emit(LogRecord(timestamp=now_ns, severity_text="INFO"))
        provider.shutdown()
    assert [a.status_code for a in session.answers] == [200]
    answer = ExportLogsServiceResponse.FromString(session.answers[0].content)
    assert answer.partial_success.rejected_log_records == 2
    message = answer.partial_success.error_message
    assert "record 1: ts:" in message and "record 2: message:" in message, message

    assert [r["message"] for r in read_topic(settings, settings.topic(topics.SERVICE_LOGS), 1)] == ["kept"]
    dead = read_topic(settings, settings.topic(topics.DEADLETTER), 2)
    assert len(dead) == 2 and {d["source"] for d in dead} == {"collector.logs"}
    # the dead letter keeps the logRecord as the JSON encoding would have sent it (trace id in hex)
    originals = {d["field"]: orjson.loads(d["original"]) for d in dead}
    assert originals["ts"]["body"] == {"stringValue": "from tomorrow"}
    assert originals["ts"]["traceId"] == f"{TRACE_ID:032x}" and originals["ts"]["spanId"] == f"{SPAN_ID:016x}"
    assert originals["ts"]["timeUnixNano"] == str(now_ns + 86_400 * 10**9)
    assert originals["message"].get("body", {}) == {}  # the SDK sends an unset AnyValue


def test_bad_protobuf_is_400_and_otlp_json_gets_its_json_answer(kafka_settings: Settings) -> None:
    settings = kafka_settings
    good = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "e"}}]},
                              "scopeLogs": [{"logRecords": [
                                  {"timeUnixNano": str(time.time_ns()), "body": {"stringValue": "ok"}},
                                  {"timeUnixNano": str(time.time_ns())}]}]}]}
    whole = ExportLogsServiceRequest()
    record = whole.resource_logs.add().scope_logs.add().log_records.add()
    record.body.string_value = "x" * 50
    with running_collector(settings) as url:
        def post(body: bytes, ctype: str) -> httpx.Response:
            return httpx.post(f"{url}/v1/logs", content=body, timeout=30, headers={"Content-Type": ctype})

        garbage = post(b"\xff\xff\xff\xff", "application/x-protobuf")
        cut = post(whole.SerializeToString()[:-10], "application/x-protobuf; charset=binary")
        json_as_proto = post(orjson.dumps(good), "application/x-protobuf")
        otel_json = post(orjson.dumps(good), "application/json")
        empty = post(b"", "application/x-protobuf")
        own = post(orjson.dumps([{"ts": int(time.time() * 1000), "service": "api", "message": "m"}]),
                   "application/json")
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert 'playscope_collector_requests_total{endpoint="logs",status="200"} 2.0' in metrics  # not "other"
    for bad in (garbage, cut, json_as_proto):
        assert bad.status_code == 400 and bad.json()["error"] == "bad_body", bad.text
        assert "ExportLogsServiceRequest" in bad.json()["message"]
    assert otel_json.status_code == 200 and otel_json.headers["content-type"] == "application/json"
    parsed = Parse(otel_json.content, ExportLogsServiceResponse())  # the official JSON form reads it
    assert parsed.partial_success.rejected_log_records == 1
    assert otel_json.json()["partialSuccess"]["errorMessage"].startswith("record 1: message:")
    assert empty.status_code == 200 and empty.content == b""  # no records: an empty response message
    assert own.status_code == 202 and own.json() == {"accepted": 1, "rejected": 0}  # SPEC 5 bodies unchanged
    assert sorted(r["message"] for r in read_topic(settings, settings.topic(topics.SERVICE_LOGS), 2)) == ["m", "ok"]


# -- the protobuf reading equals protobuf's own OTLP JSON form (trace ids in hex) ---------------
def _any(depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    leaves = st.one_of(
        st.text(max_size=8).map(lambda v: {"string_value": v}), st.booleans().map(lambda v: {"bool_value": v}),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: {"int_value": v}),
        st.floats().map(lambda v: {"double_value": v}), st.binary(max_size=8).map(lambda v: {"bytes_value": v}),
        st.just({}))
    if depth >= 2:
        return leaves
    inner = st.deferred(lambda: _any(depth + 1))
    pairs = st.lists(st.fixed_dictionaries({"key": st.text(max_size=6)}, optional={"value": inner}), max_size=3)
    return st.one_of(leaves, pairs.map(lambda v: {"kvlist_value": {"values": v}}),
                     st.lists(inner, max_size=3).map(lambda v: {"array_value": {"values": v}}))


_attrs = st.lists(st.fixed_dictionaries({"key": st.text(max_size=6)}, optional={"value": _any(1)}), max_size=3)
_records = st.fixed_dictionaries({}, optional={
    "time_unix_nano": st.integers(0, 2**64 - 1), "observed_time_unix_nano": st.integers(0, 2**64 - 1),
    "severity_number": st.integers(0, 24), "severity_text": st.text(max_size=6), "body": _any(),
    "attributes": _attrs, "dropped_attributes_count": st.integers(0, 2**32 - 1), "flags": st.integers(0, 2**32 - 1),
    "trace_id": st.binary(max_size=16), "span_id": st.binary(max_size=8), "event_name": st.text(max_size=6)})


def _build(value: Any, message: Any) -> Any:
    for name, item in value.items():
        if isinstance(item, dict):
            _build(item, getattr(message, name))
            if not item:
                getattr(message, name).SetInParent()
        elif isinstance(item, list):
            for element in item:
                _build(element, getattr(message, name).add())
        else:
            setattr(message, name, item)
    return message


@hsettings(max_examples=300, deadline=None)
@given(payload=st.lists(st.fixed_dictionaries({}, optional={
    "resource": st.fixed_dictionaries({"attributes": _attrs}),
    "scope_logs": st.lists(st.fixed_dictionaries({"log_records": st.lists(_records, max_size=3)}), max_size=2)}),
    max_size=2))
def test_protobuf_reads_as_its_otlp_json_form(payload: list[dict[str, Any]]) -> None:
    request = _build({"resource_logs": payload}, ExportLogsServiceRequest())
    ours = otlp_proto.decode_request(request.SerializeToString())
    expected = MessageToDict(request, use_integers_for_enums=True)
    for resource in expected.get("resourceLogs", []):
        for scope in resource.get("scopeLogs", []):
            scope.pop("scope", None)
            scope.pop("schemaUrl", None)
            for record in scope.get("logRecords", []):  # OTLP JSON: ids in hex, not protobuf's base64
                for key in ("traceId", "spanId"):
                    if key in record:
                        record[key] = base64.b64decode(record[key]).hex()
    assert len(ours["resourceLogs"]) == len(expected.get("resourceLogs", []))
    for mine, theirs in zip(ours["resourceLogs"], expected.get("resourceLogs", []), strict=True):
        assert mine.get("resource", {}).get("attributes", []) == theirs.get("resource", {}).get("attributes", [])
        assert mine["scopeLogs"] == [{"logRecords": s.get("logRecords", [])} for s in theirs.get("scopeLogs", [])]


def test_an_unset_any_value_and_empty_lists_read_as_json_does() -> None:
    value = AnyValue()
    value.kvlist_value.SetInParent()
    assert otlp_proto._any_value(value) == MessageToDict(value) == {"kvlistValue": {}}
    assert otlp_proto._any_value(AnyValue()) == MessageToDict(AnyValue()) == {}
