"""Line parsers, registered by name in :data:`PARSERS`: text line -> partial SPEC 5 record.

A parser raises :class:`playscope.errors.ValidationError` for a line it cannot read; the agent
dead-letters that line with the reason. Nothing else may escape (fuzzed in tests/fuzz/); numbers
are read only from ASCII digits of bounded length (``"²".isdigit()`` is true and ``int()`` of it
raises, as does ``int()`` of a 5,000-digit string).
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
    r"(?: (?P<request_time>\d+(?:\.\d+)?))?\s*$",
    re.ASCII,
)
MAX_DIGITS = 18
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
    record: dict[str, Any] = {"message": line, "client_ip": groups["client_ip"],
                              "status": _int(groups["status"], "status")}
    try:
        record["ts"] = int(datetime.strptime(groups["time"], _CLF_TIME).timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        raise ValidationError("ts", f"bad time {groups['time'][:40]!r}") from None
    parts = groups["request"].split(" ")
    if len(parts) == 3:
        record["method"] = parts[0]
        record["route"] = parts[1].split("?", 1)[0][:256]
    if groups["bytes"] != "-":
        record["bytes"] = _int(groups["bytes"], "bytes")
    if groups["user"] != "-":
        record["user"] = groups["user"]
    if groups["referer"] not in (None, "-"):
        record["referer"] = groups["referer"]
    if groups["agent"] not in (None, "-"):
        record["user_agent"] = groups["agent"]
    if groups["request_time"]:
        record["latency_ms"] = _float(groups["request_time"], "latency_ms") * 1000.0
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
            except (ValueError, OverflowError, OSError, TypeError):
                raise ValidationError("ts", f"does not match time_format: {record['ts'][:40]!r}") from None
        elif isinstance(record.get("ts"), str) and record["ts"].isdigit():
            if not _is_number(record["ts"]):
                raise ValidationError("ts", f"not epoch milliseconds (at most {MAX_DIGITS} ASCII digits): "
                                            f"{record['ts'][:20]!r}")
            record["ts"] = int(record["ts"])
        return record

    return parse


def _is_number(text: str) -> bool:
    return 0 < len(text) <= MAX_DIGITS and text.isascii() and text.isdigit()


def _int(text: str, field: str) -> int:
    stripped = text.strip()
    body = stripped[1:] if stripped[:1] in ("-", "+") else stripped
    if not _is_number(body):
        raise ValidationError(field, f"not an integer (at most {MAX_DIGITS} ASCII digits): {text[:20]!r}")
    return int(stripped)


def _float(text: str, field: str) -> float:
    if len(text) > 64 or not text.isascii():
        raise ValidationError(field, f"not a number: {text[:20]!r}")
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(field, f"not a number: {text[:20]!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValidationError(field, f"not a finite number: {text[:20]!r}")
    return value


# name -> factory(pattern, time_format) -> parser
PARSERS: dict[str, Callable[[str | None, str | None], Parser]] = {
    "json": lambda _pattern, _fmt: parse_json,
    "combined": lambda _pattern, _fmt: parse_combined,
    "regex": lambda pattern, fmt: regex_parser(pattern or "", fmt),
}
