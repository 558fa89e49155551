"""Fuzzing how the collector reads a body before any item is validated: ``decompress`` and
``parse_items`` give bytes within the limit and items, or BadBody / TooLarge with a message,
never another exception; each item of a JSON array, however the array is spaced and whatever
its strings hold (brackets, commas, escaped quotes), is found again as the bytes it was sent as
(SPEC 3 dead letters keep the original); OTLP payloads of any shape flatten to one original per
record (bounded: 300 examples per test, no deadline; no servers)."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import orjson
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from collectors.http import otlp
from collectors.http.body import BadBody, BadLine, TooLarge, decompress, parse_items

LIMIT = 4096
tricky = st.sampled_from(['[', ']', '{', '}', ',', '"', '\\', '\\"', '",', '"]', '\n', '\u2028', '😀'])
strings = st.lists(tricky | st.text(max_size=4), max_size=6).map("".join)
leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 63), 2 ** 64 - 1),
                 st.floats(allow_nan=False, allow_infinity=False), strings)
values = st.recursive(leaf, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(strings, inner, max_size=3), max_leaves=10)


@hsettings(max_examples=300, deadline=None)
@given(items=st.lists(values, max_size=8), indent=st.sampled_from([None, 0, 1, 4, "\t"]),
       spaced=st.booleans(), pad=st.sampled_from(["", " ", "\n", " \r\n\t"]))
def test_each_array_item_is_found_again_as_the_bytes_it_was_sent_as(items: list[Any], indent: int | str | None,
                                                                     spaced: bool, pad: str) -> None:
    separators = (" , ", " :  ") if spaced else (",", ":")
    text = pad + json.dumps(items, indent=indent, separators=separators, ensure_ascii=False) + pad
    parsed = parse_items(text.encode())
    assert parsed.values == items
    for index, value in enumerate(items):
        raw = parsed.raw(index)
        assert raw is not None and orjson.loads(raw) == value, (index, raw)
        assert raw.decode() in text


bodies = st.one_of(st.binary(max_size=300), values.map(orjson.dumps),
                   st.lists(values.map(orjson.dumps) | st.binary(max_size=20), max_size=6).map(b"\n".join))


@hsettings(max_examples=300, deadline=None)
@given(body=bodies)
def test_any_body_parses_to_items_or_raises_bad_body(body: bytes) -> None:
    try:
        parsed = parse_items(body)
    except BadBody as exc:
        assert str(exc)
        return
    assert parsed.values is not None
    for index, value in enumerate(parsed.values):
        if isinstance(value, BadLine):
            assert value.reason
        raw = parsed.raw(index)
        assert raw is None or isinstance(raw, bytes)


@st.composite
def encoded(draw: st.DrawFn) -> tuple[bytes, str]:
    data = draw(st.binary(max_size=LIMIT * 2) | st.just(b"\0" * (LIMIT * 3)))
    how = draw(st.sampled_from(["gzip", "x-gzip", "deflate", "identity", "", "br", "GZIP "]))
    if how in ("gzip", "x-gzip", "GZIP "):
        data = b"".join(gzip.compress(part) for part in draw(st.lists(st.just(data) | st.binary(max_size=50),
                                                                      min_size=1, max_size=3)))
    elif how == "deflate":
        data = zlib.compress(data)
    cut = draw(st.sampled_from(["none", "none", "cut", "trailer", "zeros"]))
    if cut == "cut" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif cut == "trailer":
        data += draw(st.binary(min_size=1, max_size=10))
    elif cut == "zeros":
        data += b"\0" * draw(st.integers(1, 10))
    return data, how


@hsettings(max_examples=300, deadline=None)
@given(case=encoded())
def test_any_encoded_body_decompresses_within_the_limit_or_raises_a_defined_error(case: tuple[bytes, str]) -> None:
    data, encoding = case
    try:
        out = decompress(data, encoding, LIMIT)
    except (BadBody, TooLarge) as exc:
        assert str(exc)
        return
    assert len(out) <= LIMIT or encoding.strip().lower() in ("", "identity")


json_any = st.recursive(leaf, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(["resource", "attributes", "scopeLogs", "logRecords",
                                                           "body", "key", "value", "kvlistValue", "arrayValue",
                                                           "values", "stringValue", "intValue", "timeUnixNano"])
                                          | strings, inner, max_size=4), max_leaves=25)


@hsettings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(st.just("resourceLogs") | strings, json_any, min_size=1, max_size=2))
def test_any_otlp_payload_flattens_to_one_original_per_record(payload: dict[str, Any]) -> None:
    records, originals = otlp.to_records_with_originals(payload)
    assert len(records) == len(originals)
    orjson.dumps(records)  # what the collector validates and encodes
