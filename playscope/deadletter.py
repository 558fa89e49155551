"""Dead-letter records (SPEC 3): every rejected record, with the reason, its source and the
original bytes, so nothing a client sent disappears without a trace."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson


def deadletter_record(
    original: bytes | str | Any,
    reason: str,
    source: str,
    field: str = "",
    ts_ms: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build the dead-letter document for one rejected record.

    ``original`` is kept as text when it is valid UTF-8 (readable in Kibana), else base64.
    A parsed JSON value is re-serialised so the original content survives either way.
    """
    if isinstance(original, bytes):
        raw = original
    elif isinstance(original, str):
        raw = original.encode()
    else:
        raw = orjson.dumps(original, option=orjson.OPT_NON_STR_KEYS)
    record: dict[str, Any] = {
        "ts": ts_ms if ts_ms is not None else int(time.time() * 1000),
        "reason": reason,
        "source": source,
    }
    if field:
        record["field"] = field
    try:
        record["original"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["original_b64"] = base64.b64encode(raw).decode()
    record.update(extra)
    return record


def original_bytes(record: dict[str, Any]) -> bytes:
    """The exact bytes a dead-letter record holds."""
    if "original_b64" in record:
        return base64.b64decode(record["original_b64"])
    return str(record.get("original", "")).encode()
