"""Timestamps: the contract accepts epoch milliseconds or RFC 3339; everything inside is epoch ms."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from playscope.errors import ValidationError

# 2000-01-01 .. 2200-01-01: anything outside is a unit mistake (seconds, microseconds) or garbage.
MIN_TS_MS = 946_684_800_000
MAX_TS_MS = 7_258_118_400_000

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})$"
)


def parse_ts(value: object, field: str = "ts") -> int:
    """Return ``value`` as integer epoch milliseconds, or raise ValidationError naming ``field``."""
    if isinstance(value, bool):
        raise ValidationError(field, "must be epoch milliseconds or an RFC 3339 string, got a boolean")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(field, "must be a finite number")
        ms = int(value)
    elif isinstance(value, str):
        ms = _parse_rfc3339(value, field)
    elif value is None:
        raise ValidationError(field, "is required")
    else:
        raise ValidationError(
            field, f"must be epoch milliseconds or an RFC 3339 string, got {type(value).__name__}"
        )
    if not MIN_TS_MS <= ms < MAX_TS_MS:
        raise ValidationError(field, f"{ms} is out of range (epoch milliseconds between 2000 and 2200)")
    return ms


def parse_ts_text(text: str, field: str) -> int:
    """A time given on a command line: epoch milliseconds (digits) or an RFC 3339 string."""
    stripped = text.strip()
    if stripped.isascii() and stripped.isdigit() and len(stripped) <= 18:
        return parse_ts(int(stripped), field)
    return parse_ts(stripped, field)


def _parse_rfc3339(text: str, field: str) -> int:
    match = _RFC3339.match(text.strip())
    if not match:
        raise ValidationError(field, f"not an RFC 3339 timestamp: {text[:40]!r}")
    iso = text.strip().replace("z", "Z").replace("t", "T")
    frac = match.group(7)
    if frac and len(frac) > 7:  # fromisoformat accepts at most microseconds
        iso = iso.replace(frac, frac[:7], 1)
    try:
        parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(field, f"invalid date: {exc}") from None
    return int(parsed.timestamp() * 1000) if parsed.microsecond else int(parsed.timestamp()) * 1000


def ms_to_rfc3339(ms: int) -> str:
    """Format epoch ms as RFC 3339 UTC with millisecond precision."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def utc_day(ms: int) -> str:
    """The UTC day of ``ms`` as YYYY.MM.DD, the suffix of daily indices."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y.%m.%d")
