"""Line parsers, registered by name in :data:`PARSERS`: text line -> partial SPEC 5 record.

A parser raises :class:`playscope.errors.ValidationError` for a line it cannot read; the agent
dead-letters that line with the reason. Nothing else may escape (fuzzed in the tests).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from playscope.errors import ValidationError

Parser = Callable[[str], dict[str, Any]]

# nginx/Apache "combined", optionally followed by extra fields (nginx $request_time is common).
_COMBINED = re.compile(
    r'^(?P<client_ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] '
    r'"(?P<request>[^"\\]*(?:\\.[^"\\]*)*)" (?P<status>\d{3}) (?P<bytes>\d+|-)'
    r'(?: "(?P<referer>[^"\\]*(?:\\.[^"\\]*)*)" "(?P<agent>[^"\\]*(?:\\.[^"\\]*)*)")?'
    r"(?: (?P<request_time>\d+(?:\.\d+)?))?\s*$"
)
_CLF_TIME = "%d/%b/%Y:%H:%M:%S %z"


def parse_json(line: str) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValidationError("", f"not a JSON line: {exc}") from None
    if not isinstance(value, dict):
        raise ValidationError("", "a JSON log line must be an object")
    if "message" not in value and isinstance(value.get("msg"), str):
        value["message"] = value.pop("msg")
    return value


def parse_combined(line: str) -> dict[str, Any]:
    match = _COMBINED.match(line)
    if not match:
        raise ValidationError("", "not in combined log format")
    groups = match.groupdict()
    record: dict[str, Any] = {"message": line, "client_ip": groups["client_ip"], "status": int(groups["status"])}
    try:
        record["ts"] = int(datetime.strptime(groups["time"], _CLF_TIME).timestamp() * 1000)
    except ValueError:
        raise ValidationError("ts", f"bad time {groups['time'][:40]!r}") from None
    parts = groups["request"].split(" ")
    if len(parts) == 3:
        record["method"] = parts[0]
        record["route"] = parts[1].split("?", 1)[0][:256]
    if groups["bytes"] != "-":
        record["bytes"] = int(groups["bytes"])
    if groups["user"] != "-":
        record["user"] = groups["user"]
    if groups["referer"] not in (None, "-"):
        record["referer"] = groups["referer"]
    if groups["agent"] not in (None, "-"):
        record["user_agent"] = groups["agent"]
    if groups["request_time"]:
        record["latency_ms"] = float(groups["request_time"]) * 1000.0
    record["level"] = "ERROR" if record["status"] >= 500 else "INFO"
    return record


def regex_parser(pattern: str, time_format: str | None = None) -> Parser:
    """A parser from a regex with named groups (``ts``, ``level``, ``message``, ``status``...)."""
    compiled = re.compile(pattern)

    def parse(line: str) -> dict[str, Any]:
        match = compiled.search(line)
        if not match:
            raise ValidationError("", "line does not match the input's pattern")
        record: dict[str, Any] = {k: v for k, v in match.groupdict().items() if v is not None}
        record.setdefault("message", line)
        for key in ("status",):
            if key in record:
                record[key] = _int(record[key], key)
        if "latency_ms" in record:
            record["latency_ms"] = _float(record["latency_ms"], "latency_ms")
        if "ts" in record and time_format:
            try:
                record["ts"] = int(datetime.strptime(record["ts"], time_format).timestamp() * 1000)
            except ValueError:
                raise ValidationError("ts", f"does not match time_format: {record['ts'][:40]!r}") from None
        elif isinstance(record.get("ts"), str) and record["ts"].isdigit():
            record["ts"] = int(record["ts"])
        return record

    return parse


def _int(text: str, field: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValidationError(field, f"not an integer: {text[:20]!r}") from None


def _float(text: str, field: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValidationError(field, f"not a number: {text[:20]!r}") from None


# name -> factory(pattern, time_format) -> parser
PARSERS: dict[str, Callable[[str | None, str | None], Parser]] = {
    "json": lambda _pattern, _fmt: parse_json,
    "combined": lambda _pattern, _fmt: parse_combined,
    "regex": lambda pattern, fmt: regex_parser(pattern or "", fmt),
}
