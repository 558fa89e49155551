"""OTLP/HTTP logs in their protobuf encoding, and the answer OTLP clients expect.

A protobuf ``ExportLogsServiceRequest`` is turned into the dict its OTLP JSON encoding would
decode to, so ``collectors.http.otlp`` maps both encodings with the same code and dead letters
keep the same original (the logRecord as OTLP JSON). The fields are read directly rather than
through ``json_format.MessageToDict``, which costs about 30 us a record (the collector's whole
budget is under 10), and which would give trace and span ids in base64 where OTLP JSON has hex.
"""

from __future__ import annotations

import math
from base64 import b64encode
from typing import Any

import orjson
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# errorMessage names the first rejected records with their reasons, within this many characters
ERROR_MESSAGE_MAX = 2000


class BadProtobuf(Exception):
    """The body is not an ExportLogsServiceRequest (400)."""


def decode_request(data: bytes) -> dict[str, Any]:
    """The request as its OTLP JSON form would decode: ``{"resourceLogs": [...]}``."""
    try:
        request = ExportLogsServiceRequest.FromString(data)
    except DecodeError as exc:
        raise BadProtobuf(f"not an OTLP ExportLogsServiceRequest in protobuf: {exc}") from None
    out: list[dict[str, Any]] = []
    for resource_logs in request.resource_logs:
        item: dict[str, Any] = {}
        if resource_logs.HasField("resource") and resource_logs.resource.attributes:
            item["resource"] = {"attributes": [_key_value(kv) for kv in resource_logs.resource.attributes]}
        item["scopeLogs"] = [{"logRecords": [log_record(r) for r in scope_logs.log_records]}
                             for scope_logs in resource_logs.scope_logs]
        out.append(item)
    return {"resourceLogs": out}


def log_record(record: LogRecord) -> dict[str, Any]:
    """One LogRecord in OTLP JSON: fields left at their default omitted, 64-bit integers as
    strings, enums as numbers, trace and span ids as hex, bytes as base64."""
    out: dict[str, Any] = {}
    if record.time_unix_nano:
        out["timeUnixNano"] = str(record.time_unix_nano)
    if record.observed_time_unix_nano:
        out["observedTimeUnixNano"] = str(record.observed_time_unix_nano)
    if record.severity_number:
        out["severityNumber"] = record.severity_number
    if record.severity_text:
        out["severityText"] = record.severity_text
    if record.HasField("body"):
        out["body"] = _any_value(record.body)
    if record.attributes:
        out["attributes"] = [_key_value(kv) for kv in record.attributes]
    if record.dropped_attributes_count:
        out["droppedAttributesCount"] = record.dropped_attributes_count
    if record.flags:
        out["flags"] = record.flags
    if record.trace_id:
        out["traceId"] = record.trace_id.hex()
    if record.span_id:
        out["spanId"] = record.span_id.hex()
    if record.event_name:
        out["eventName"] = record.event_name
    return out


def _key_value(kv: KeyValue) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if kv.key:
        out["key"] = kv.key
    if kv.HasField("value"):
        out["value"] = _any_value(kv.value)
    if kv.key_strindex:
        out["keyStrindex"] = kv.key_strindex
    return out


def _any_value(value: AnyValue) -> dict[str, Any]:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return {"stringValue": value.string_value}
    if kind == "int_value":
        return {"intValue": str(value.int_value)}
    if kind == "bool_value":
        return {"boolValue": value.bool_value}
    if kind == "double_value":
        number = value.double_value
        return {"doubleValue": number if math.isfinite(number) else
                "NaN" if math.isnan(number) else "Infinity" if number > 0 else "-Infinity"}
    if kind == "kvlist_value":
        pairs = value.kvlist_value.values
        return {"kvlistValue": {"values": [_key_value(kv) for kv in pairs]} if pairs else {}}
    if kind == "array_value":
        values = value.array_value.values
        return {"arrayValue": {"values": [_any_value(v) for v in values]} if values else {}}
    if kind == "bytes_value":
        return {"bytesValue": b64encode(value.bytes_value).decode()}
    if kind == "string_value_strindex":
        return {"stringValueStrindex": value.string_value_strindex}
    return {}


def error_message(errors: list[dict[str, Any]]) -> str:
    """The rejected records and their reasons, as far as ``ERROR_MESSAGE_MAX`` allows."""
    parts: list[str] = []
    size = 0
    for error in errors:
        field = f"{error['field']}: " if error.get("field") else ""
        part = f"record {error['index']}: {field}{error['reason']}"
        if size + len(part) > ERROR_MESSAGE_MAX:
            parts.append(f"and {len(errors) - len(parts)} more")
            break
        parts.append(part)
        size += len(part) + 2
    return "; ".join(parts)


def export_response(errors: list[dict[str, Any]], protobuf: bool) -> tuple[bytes, str]:
    """An ExportLogsServiceResponse in the request's encoding and its content type:
    ``partialSuccess`` with the count and reasons when records were rejected, else empty."""
    if protobuf:
        response = ExportLogsServiceResponse()
        if errors:
            response.partial_success.rejected_log_records = len(errors)
            response.partial_success.error_message = error_message(errors)
        return response.SerializeToString(), PROTOBUF
    body: dict[str, Any] = {}
    if errors:
        body["partialSuccess"] = {"rejectedLogRecords": len(errors), "errorMessage": error_message(errors)}
    return orjson.dumps(body), JSON
