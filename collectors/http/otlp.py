"""OTLP/HTTP logs in their JSON encoding -> SPEC 5 log records.

``POST /v1/logs`` is also the OTLP logs path, so the collector tells the two apart by shape: an
object with ``resourceLogs`` is OTLP, anything else is playscope's own records.
"""

from __future__ import annotations

from typing import Any

_SEVERITY = {range(1, 9): "DEBUG", range(9, 13): "INFO", range(13, 17): "WARN", range(17, 21): "ERROR"}


def is_otlp(value: Any) -> bool:
    return isinstance(value, dict) and "resourceLogs" in value


def to_records(payload: dict[str, Any]) -> list[Any]:
    """Flatten every logRecord; malformed parts become non-dict items that validation rejects."""
    out: list[Any] = []
    for resource_logs in _list(payload.get("resourceLogs")):
        if not isinstance(resource_logs, dict):
            out.append(resource_logs)
            continue
        resource = _attributes((resource_logs.get("resource") or {}).get("attributes"))
        for scope_logs in _list(resource_logs.get("scopeLogs")):
            records = scope_logs.get("logRecords") if isinstance(scope_logs, dict) else None
            for item in _list(records):
                out.append(_record(item, resource) if isinstance(item, dict) else item)
    return out


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
        record["message"] = body if isinstance(body, str) else str(body)
    level = item.get("severityText")
    if isinstance(level, str) and level:
        record["level"] = level
    elif isinstance(item.get("severityNumber"), int):
        number = item["severityNumber"]
        record["level"] = next((name for span, name in _SEVERITY.items() if number in span), "FATAL")
    if item.get("traceId"):
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


def _value(any_value: Any) -> Any:
    if not isinstance(any_value, dict):
        return any_value
    for kind in ("stringValue", "boolValue", "doubleValue"):
        if kind in any_value:
            return any_value[kind]
    if "intValue" in any_value:
        try:
            return int(any_value["intValue"])
        except (TypeError, ValueError):
            return any_value["intValue"]
    return None
