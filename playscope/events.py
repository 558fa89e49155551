"""The event model of SPEC 4 (playback events) and SPEC 5 (service log records).

Validation is hand-written over plain dicts rather than a schema library because it sits on the
collector's and the agent's hot path: a validated record is the same dict, normalised in place
(``ts`` to epoch ms, ``fatal`` defaulted, ``level`` upper-cased), with unknown fields kept.
Every failure raises :class:`playscope.errors.ValidationError` naming the field and the reason.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from playscope.errors import ValidationError
from playscope.timeparse import MAX_TS_MS, MIN_TS_MS, parse_ts

EVENT_TYPES: Final = frozenset(
    {
        "session_start",
        "playing",
        "pause",
        "resume",
        "seek",
        "rebuffer_start",
        "rebuffer_end",
        "bitrate_change",
        "heartbeat",
        "error",
        "session_end",
    }
)
DIMENSIONS: Final = ("device", "os", "app_version", "cdn", "isp", "country", "title_id", "profile_id")
MEASURES: Final = ("bitrate_kbps", "buffer_ms", "position_ms", "throughput_kbps")
UNKNOWN: Final = "unknown"

LOG_LEVELS: Final = frozenset({"DEBUG", "INFO", "WARN", "ERROR", "FATAL"})
_LEVEL_ALIASES: Final = {"WARNING": "WARN", "CRITICAL": "FATAL", "ERR": "ERROR", "TRACE": "DEBUG"}
LOG_STRING_FIELDS: Final = ("host", "route", "method", "trace_id")

MAX_ID_LEN: Final = 256
MAX_DIM_LEN: Final = 256
MAX_MESSAGE_LEN: Final = 64 * 1024
# SPEC 4 bounds: a measure above this is a unit mistake or hostile, and would overflow sums.
MAX_MEASURE: Final = 1e12
# Control characters (C0, DEL, C1) never belong in a dimension: they break keys and displays.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Event types the fast path takes whole; bitrate_change and error have extra rules (slow path).
_PLAIN_TYPES: Final = EVENT_TYPES - {"bitrate_change", "error"}


def _require_id(record: dict[str, Any], field: str) -> None:
    value = record.get(field)
    if value is None:
        raise ValidationError(field, "is required")
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if not value:
        raise ValidationError(field, "must not be empty")
    if len(value) > MAX_ID_LEN:
        raise ValidationError(field, f"longer than {MAX_ID_LEN} characters")


def _check_number(record: dict[str, Any], field: str) -> None:
    value = record.get(field)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, f"must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(field, "must be a finite number")
    if value < 0:
        raise ValidationError(field, "must not be negative")
    if value > MAX_MEASURE:
        raise ValidationError(field, f"above the largest measure accepted ({MAX_MEASURE:.0e})")


def _check_string(record: dict[str, Any], field: str, max_len: int = MAX_DIM_LEN) -> None:
    value = record.get(field)
    if value is None:
        return
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if len(value) > max_len:
        raise ValidationError(field, f"longer than {max_len} characters")
    if not value.isprintable() and _CONTROL.search(value):
        raise ValidationError(field, "contains a control character")


def check_clock(record: dict[str, Any], received_ms: int, ahead_ms: int, behind_ms: int) -> None:
    """SPEC 4 clock bounds: ``ts`` at most ``ahead_ms`` after and ``behind_ms`` before the moment
    the record reached playscope. Outside them a record would move a partition's clock (or
    land in a window long closed) on the say of one device, so it is refused instead."""
    ts = record["ts"]
    if ts > received_ms + ahead_ms:
        raise ValidationError("ts", f"{(ts - received_ms) // 1000} s ahead of the time it was received "
                                    f"(at most {ahead_ms // 1000} s)")
    if ts < received_ms - behind_ms:
        raise ValidationError("ts", f"{(received_ms - ts) // 1000} s behind the time it was received "
                                    f"(at most {behind_ms // 1000} s)")


def validate_playback_event(record: Any) -> dict[str, Any]:
    """Validate one SPEC 4 playback event; returns it normalised (``ts`` as epoch ms)."""
    # Fast path for the common shape (exact str/int/float types, epoch-ms ``ts``, a plain event
    # type): it only accepts what the full check below accepts and changes nothing. Anything
    # else, valid or not, goes through the full check, which owns every error message.
    if type(record) is dict:
        get = record.get
        eid = get("event_id")
        sid = get("session_id")
        ts = get("ts")
        kind = get("type")
        if (type(eid) is str and 0 < len(eid) <= MAX_ID_LEN and type(sid) is str and 0 < len(sid) <= MAX_ID_LEN
                and type(ts) is int and MIN_TS_MS <= ts < MAX_TS_MS and type(kind) is str and kind in _PLAIN_TYPES):
            for dim in DIMENSIONS:
                value = get(dim)
                if value is not None and (type(value) is not str or len(value) > MAX_DIM_LEN
                                          or not value.isprintable()):
                    return _validate_playback_event(record)
            for measure in MEASURES:
                value = get(measure)
                if value is not None:
                    kind_of = type(value)
                    if not ((kind_of is int or kind_of is float) and 0 <= value <= MAX_MEASURE):
                        return _validate_playback_event(record)
            return record
    return _validate_playback_event(record)


def _validate_playback_event(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValidationError("", f"an event must be a JSON object, got {_json_type(record)}")
    _require_id(record, "event_id")
    _require_id(record, "session_id")
    if "ts" not in record:
        raise ValidationError("ts", "is required")
    record["ts"] = parse_ts(record["ts"])
    kind = record.get("type")
    if kind is None:
        raise ValidationError("type", "is required")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        shown = kind if isinstance(kind, str) else type(kind).__name__
        raise ValidationError("type", f"unknown event type {str(shown)[:40]!r}")
    for dim in DIMENSIONS:
        _check_string(record, dim)
    for measure in MEASURES:
        _check_number(record, measure)
    if kind == "bitrate_change":
        _check_number(record, "from_kbps")
        _check_number(record, "to_kbps")
        if record.get("to_kbps") is None and record.get("bitrate_kbps") is None:
            raise ValidationError("to_kbps", "bitrate_change needs to_kbps or bitrate_kbps")
    elif kind == "error":
        _check_string(record, "error_code")
        fatal = record.get("fatal", False)
        if fatal is None:
            fatal = False
        if not isinstance(fatal, bool):
            raise ValidationError("fatal", f"must be a boolean, got {type(fatal).__name__}")
        record["fatal"] = fatal
    return record


def validate_log_record(record: Any) -> dict[str, Any]:
    """Validate one SPEC 5 service log record; returns it normalised."""
    # Fast path, as for playback events: exact types, epoch-ms ``ts``; only ``level`` may be
    # normalised, after every other check passed. Everything else takes the full check.
    if type(record) is dict:
        get = record.get
        ts = get("ts")
        service = get("service")
        message = get("message")
        if (type(ts) is int and MIN_TS_MS <= ts < MAX_TS_MS and type(service) is str
                and 0 < len(service) <= MAX_ID_LEN and type(message) is str and len(message) <= MAX_MESSAGE_LEN):
            if not service.isprintable():
                return _validate_log_record(record)
            for field in LOG_STRING_FIELDS:
                value = get(field)
                if value is not None and (type(value) is not str or len(value) > MAX_DIM_LEN
                                          or not value.isprintable()):
                    return _validate_log_record(record)
            status = get("status")
            if status is not None and not (type(status) is int and 100 <= status <= 599):
                return _validate_log_record(record)
            latency = get("latency_ms")
            if latency is not None:
                kind_of = type(latency)
                if not ((kind_of is int or kind_of is float) and 0 <= latency <= MAX_MEASURE):
                    return _validate_log_record(record)
            level = get("level")
            if level is not None and (type(level) is not str or level not in LOG_LEVELS):
                return _validate_log_record(record)
            return record
    return _validate_log_record(record)


def _validate_log_record(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ValidationError("", f"a log record must be a JSON object, got {_json_type(record)}")
    if "ts" not in record:
        raise ValidationError("ts", "is required")
    record["ts"] = parse_ts(record["ts"])
    _require_id(record, "service")
    _check_string(record, "service", MAX_ID_LEN)
    message = record.get("message")
    if message is None:
        raise ValidationError("message", "is required")
    if not isinstance(message, str):
        raise ValidationError("message", f"must be a string, got {type(message).__name__}")
    if len(message) > MAX_MESSAGE_LEN:
        raise ValidationError("message", f"longer than {MAX_MESSAGE_LEN} characters")
    level = record.get("level")
    if level is not None:
        if not isinstance(level, str):
            raise ValidationError("level", f"must be a string, got {type(level).__name__}")
        upper = level.upper()
        upper = _LEVEL_ALIASES.get(upper, upper)
        if upper not in LOG_LEVELS:
            raise ValidationError("level", f"unknown level {level[:20]!r} (DEBUG, INFO, WARN, ERROR, FATAL)")
        record["level"] = upper
    for field in LOG_STRING_FIELDS:
        _check_string(record, field)
    status = record.get("status")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
        raise ValidationError("status", f"must be an integer, got {type(status).__name__}")
    if status is not None and not 100 <= status <= 599:
        raise ValidationError("status", f"{status} is not an HTTP status (100-599)")
    _check_number(record, "latency_ms")
    return record


def is_error_log(record: dict[str, Any]) -> bool:
    """SPEC 8: status >= 500, or level ERROR/FATAL when there is no status."""
    status = record.get("status")
    if status is not None:
        return bool(status >= 500)
    return record.get("level") in ("ERROR", "FATAL")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return type(value).__name__
