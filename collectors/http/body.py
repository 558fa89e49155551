"""Request bodies: gzip, JSON arrays, NDJSON, and ``text/plain`` (what sendBeacon sends)."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
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
    gzip = "gzip" in encoding
    wbits = 31 if gzip else 15
    out = bytearray()
    data = raw
    while True:  # a gzip body may hold several members (concatenated files): read them all
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise BadBody(f"body is not valid {encoding}: {exc}") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise TooLarge(f"decompressed body larger than {limit} bytes")
        if not inflater.eof:
            raise BadBody(f"body is not valid {encoding}: the stream is cut short")
        data = inflater.unused_data
        if not data.strip(b"\0"):
            return bytes(out)
        if not gzip or data[:2] != b"\x1f\x8b":
            raise BadBody(f"body is not valid {encoding}: {len(data)} bytes of other data after the stream")


@dataclass(slots=True)
class Items:
    """The items of a request, and for NDJSON each item's own line (kept for dead letters).
    Two parallel lists rather than pairs: a 1000-event array then costs no tuple per event.
    For a JSON array the body itself is kept, and an item's own bytes are found only when one
    is to be dead-lettered (SPEC 3 keeps the original bytes, not the parsed value)."""

    values: list[Any]
    raws: list[bytes | None] | None = None  # None: no per-item lines (a JSON array, or mapped items)
    source: bytes | None = None  # the JSON array's text, cut into items on demand
    _spans: list[bytes] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.values)

    def raw(self, index: int) -> bytes | None:
        if self.raws is not None:
            return self.raws[index]
        if self.source is None:
            return None
        if self._spans is None:
            self._spans = array_items(self.source)
        return self._spans[index] if len(self._spans) == len(self.values) else None


_TOKENS = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{},]')


def array_items(text: bytes) -> list[bytes]:
    """The bytes of each element of the JSON array ``text`` (already known to parse), as sent."""
    items: list[bytes] = []
    depth = 0
    start = 0
    for match in _TOKENS.finditer(text):
        char = text[match.start()]
        if char == 0x22:  # a string: skipped whole, brackets and commas in it do not count
            continue
        if char in b"[{":
            depth += 1
            if depth == 1:
                start = match.end()
        elif char in b"]}":
            if depth == 1:
                items.append(text[start:match.start()].strip())
            depth -= 1
        elif depth == 1:  # a comma between elements
            items.append(text[start:match.start()].strip())
            start = match.end()
    return items if items != [b""] else []


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
        return Items(value, source=text)
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
