"""From a Kafka record's bytes to a validated record, or a rejection with its reason.

One place decides what the stream stage accepts, so no record can reach a partition's state
or clock without passing it: valid JSON, the SPEC 4/5 rules, and the SPEC 4 clock bounds
against the record's Kafka timestamp (a device clock years off, or one hostile request,
cannot move a partition's clock). Pure: the worker turns a :class:`Rejection` into a dead
letter and a count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from playscope.errors import ValidationError
from playscope.events import check_clock

Validator = Callable[[Any], dict[str, Any]]

# The label values of playscope_streams_errors_total that rejections use (a fixed set).
INVALID_JSON: Final = "invalid_json"
INVALID_RECORD: Final = "invalid_record"
OUT_OF_BOUNDS: Final = "clock_bounds"
PROCESSING_ERROR: Final = "processing_error"
TOO_OLD: Final = "too_old"  # too far behind its session to be checked for duplicates
ERROR_TYPES: Final = (INVALID_JSON, INVALID_RECORD, OUT_OF_BOUNDS, PROCESSING_ERROR, TOO_OLD)


@dataclass(frozen=True)
class Rejection:
    raw: bytes
    reason: str
    error_type: str
    field: str = ""
    exception: str = ""


def decode(
    raw: bytes | None, validate: Validator, received_ms: int, bounds_ms: tuple[int, int]
) -> dict[str, Any] | Rejection:
    """The validated record of ``raw``, or why it is refused. ``received_ms`` is the moment the
    record reached playscope (its Kafka timestamp); ``bounds_ms`` is (ahead, behind)."""
    if raw is None:
        return Rejection(b"", "empty record", INVALID_RECORD)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection(raw, f"not valid JSON: {exc}", INVALID_JSON)
    try:
        record = validate(value)
    except ValidationError as exc:
        return Rejection(raw, str(exc), INVALID_RECORD, exc.field)
    except Exception as exc:  # a validator bug must not stop the worker: refuse this record only
        return failure(raw, exc)
    try:
        check_clock(record, received_ms, *bounds_ms)
    except ValidationError as exc:
        return Rejection(raw, str(exc), OUT_OF_BOUNDS, exc.field)
    return record


def failure(raw: bytes | dict[str, Any], exc: BaseException) -> Rejection:
    """A record whose processing raised: refused alone, with the exception's type."""
    if isinstance(raw, bytes):
        data = raw
    else:
        try:
            data = orjson.dumps(raw, option=orjson.OPT_NON_STR_KEYS, default=str)
        except (TypeError, orjson.JSONEncodeError):
            data = repr(raw).encode()
    kind = type(exc).__name__
    return Rejection(data, f"processing failed: {kind}: {str(exc)[:200]}", PROCESSING_ERROR, exception=kind)
