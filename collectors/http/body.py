"""Request bodies: gzip, JSON arrays, NDJSON, and ``text/plain`` (what sendBeacon sends)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson


class BadBody(Exception):
    """The body cannot be read at all (400)."""


class TooLarge(Exception):
    """The body, once decompressed, exceeds the limit (413)."""


def decompress(raw: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip or deflate), refusing output beyond ``limit`` bytes."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BadBody(f"unsupported Content-Encoding {encoding[:20]!r} (gzip, deflate)")
    wbits = 31 if "gzip" in encoding else 15
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise BadBody(f"body is not valid {encoding}: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"decompressed body larger than {limit} bytes")
    return out


@dataclass(slots=True)
class Items:
    """The items of a request, and for NDJSON each item's own line (kept for dead letters).
    Two parallel lists rather than pairs: a 1000-event array then costs no tuple per event."""

    values: list[Any]
    raws: list[bytes | None] | None = None  # None: no per-item source (a JSON array)

    def __len__(self) -> int:
        return len(self.values)

    def raw(self, index: int) -> bytes | None:
        return self.raws[index] if self.raws is not None else None


def parse_items(body: bytes) -> Items:
    """A JSON array, one JSON object, or NDJSON, as :class:`Items`.

    For NDJSON each line that is not valid JSON becomes a :class:`BadLine` item so it can be
    reported and dead-lettered on its own, instead of failing the whole request.
    """
    text = body.strip()
    if not text:
        raise BadBody("empty body")
    if text[:1] == b"[":
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise BadBody(f"not valid JSON: {exc}") from None
        return Items(value)
    lines = [line for line in text.split(b"\n") if line.strip()]
    if len(lines) == 1:
        try:
            return Items([orjson.loads(lines[0])], list(lines))
        except orjson.JSONDecodeError as exc:
            raise BadBody(f"not valid JSON or NDJSON: {exc}") from None
    values: list[Any] = []
    good = 0
    loads = orjson.loads
    for line in lines:
        try:
            values.append(loads(line))
            good += 1
        except orjson.JSONDecodeError as exc:
            values.append(BadLine(str(exc)))
    if not good:
        raise BadBody("not valid JSON or NDJSON: no line parses")
    return Items(values, list(lines))


class BadLine:
    """Marker for an NDJSON line that is not JSON."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason
