"""OTLP/HTTP logs in their JSON encoding -> SPEC 5 log records.

``POST /v1/logs`` is also the OTLP logs path, so the collector tells the two apart by shape: an
object with ``resourceLogs`` is OTLP, anything else is playscope's own records.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

_SEVERITY = {range(1, 9): "DEBUG", range(9, 13): "INFO", range(13, 17): "WARN", range(17, 21): "ERROR"}


def is_otlp(value: Any) -> bool:
    return isinstance(value, dict) and "resourceLogs" in value


def to_records(payload: dict[str, Any]) -> list[Any]:
    """Flatten every logRecord; malformed parts become non-dict items that validation rejects."""
    return to_records_with_originals(payload)[0]


def to_records_with_originals(payload: dict[str, Any]) -> tuple[list[Any], list[bytes | None]]:
    """``to_records`` and, for each, the logRecord as sent (JSON), for its dead letter."""
    out: list[Any] = []
    raws: list[bytes | None] = []
    for resource_logs in _list(payload.get("resourceLogs")):
        if not isinstance(resource_logs, dict):
            out.append(resource_logs)
            raws.append(_dumps(resource_logs))
            continue
        resource_obj = resource_logs.get("resource")
        resource = _attributes(resource_obj.get("attributes") if isinstance(resource_obj, dict) else None)
        for scope_logs in _list(resource_logs.get("scopeLogs")):
            records = scope_logs.get("logRecords") if isinstance(scope_logs, dict) else None
            for item in _list(records):
                out.append(_record(item, resource) if isinstance(item, dict) else item)
                raws.append(_dumps(item))
    return out, raws


def _dumps(value: Any) -> bytes | None:
    try:
        return orjson.dumps(value)
    except TypeError:
        return None


def _record(item: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    attrs = _attributes(item.get("attributes"))
    record: dict[str, Any] = {**{k.replace(".", "_"): v for k, v in attrs.items()}}
    if "service.name" in resource:
        record["service"] = resource["service.name"]
    if "host.name" in resource:
        record["host"] = resource["host.name"]
    nanos = item.get("timeUnixNano") or item.get("observedTimeUnixNano")
    if nanos is not None:
        try:
            record["ts"] = int(nanos) // 1_000_000
        except (TypeError, ValueError):
            record["ts"] = nanos
    body = _value(item.get("body"))
    if body is not None:
        # a structured body (kvlistValue, arrayValue) is the message as JSON text
        record["message"] = body if isinstance(body, str) else orjson.dumps(body).decode() \
            if isinstance(body, dict | list) else str(body)
    level = item.get("severityText")
    if isinstance(level, str) and level:
        record["level"] = level
    elif isinstance(item.get("severityNumber"), int):
        number = item["severityNumber"]
        record["level"] = next((name for span, name in _SEVERITY.items() if number in span), "FATAL")
    if isinstance(item.get("traceId"), str) and item["traceId"]:
        record["trace_id"] = item["traceId"]
    return record


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _attributes(raw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in _list(raw):
        if isinstance(attr, dict) and isinstance(attr.get("key"), str):
            out[attr["key"]] = _value(attr.get("value"))
    return out


def _value(any_value: Any, depth: int = 0) -> Any:
    """An OTLP AnyValue as plain JSON: scalars as such, ``kvlistValue`` as an object,
    ``arrayValue`` as a list, ``bytesValue`` as its base64 text."""
    if not isinstance(any_value, dict):
        return any_value
    for kind in ("stringValue", "boolValue", "doubleValue"):
        if kind in any_value:
            return any_value[kind]
    if "intValue" in any_value:
        raw = any_value["intValue"]
        if isinstance(raw, int) or (isinstance(raw, str) and len(raw) <= 20):
            try:
                return int(raw)
            except ValueError:
                pass
        return raw
    if depth > 32:
        return None
    if "kvlistValue" in any_value:
        kv = any_value["kvlistValue"]
        values = kv.get("values") if isinstance(kv, dict) else None
        return {attr["key"]: _value(attr.get("value"), depth + 1) for attr in _list(values)
                if isinstance(attr, dict) and isinstance(attr.get("key"), str)}
    if "arrayValue" in any_value:
        arr = any_value["arrayValue"]
        values = arr.get("values") if isinstance(arr, dict) else None
        return [_value(v, depth + 1) for v in _list(values)]
    if "bytesValue" in any_value:
        raw = any_value["bytesValue"]
        return raw if isinstance(raw, str) else base64.b64encode(bytes(raw)).decode() \
            if isinstance(raw, bytes) else None
    return None
