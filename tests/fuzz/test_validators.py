"""Fuzzing the SPEC 4/5 validators with arbitrary JSON values: each gives a valid record or a
ValidationError naming a contract field (or the record) with a reason, never another
exception; a valid record encodes to JSON and, read back, re-validates to itself; the fast path
and the full check agree on every record (bounded: 300 examples per test, no deadline)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from playscope.errors import ValidationError
from playscope.events import (
    DIMENSIONS,
    EVENT_TYPES,
    LOG_LEVELS,
    LOG_STRING_FIELDS,
    MEASURES,
    _validate_log_record,
    _validate_playback_event,
    validate_log_record,
    validate_playback_event,
)
from playscope.timeparse import MAX_TS_MS, MIN_TS_MS

EVENT_FIELDS = frozenset({"event_id", "session_id", "ts", "type", *DIMENSIONS, *MEASURES, "from_kbps", "to_kbps",
                          "error_code", "fatal"})
LOG_FIELDS = frozenset({"ts", "service", "message", "level", "status", "latency_ms", *LOG_STRING_FIELDS})

# What orjson.loads can return: no NaN or infinities, integers within 64 bits, no lone surrogates.
json_ints = st.integers(-(2 ** 63), 2 ** 64 - 1)
json_floats = st.floats(allow_nan=False, allow_infinity=False)
json_scalars = st.none() | st.booleans() | json_ints | json_floats | st.text(max_size=40)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=10)

# digits that are not ASCII ("٢", "²"): the RFC 3339 pattern's \d matches some of them
digits = st.one_of(st.characters(min_codepoint=0x30, max_codepoint=0x39), st.characters(categories=["Nd"]))


@st.composite
def rfc3339ish(draw: st.DrawFn) -> str:
    """Timestamps shaped like RFC 3339, with out-of-range parts and odd digits now and then."""
    def part(width: int, low: int, high: int) -> str:
        if draw(st.integers(0, 9)) == 0:
            return "".join(draw(st.lists(digits, min_size=width, max_size=width)))
        return f"{draw(st.integers(low, high)):0{width}d}"

    date = f"{part(4, 0, 9999)}-{part(2, 0, 13)}-{part(2, 0, 32)}"
    time = f"{part(2, 0, 25)}:{part(2, 0, 60)}:{part(2, 0, 61)}"
    fraction = draw(st.sampled_from(["", ".5", ".123", ".1234567", ".123456789012", "."]))
    zone = draw(st.sampled_from(["Z", "z", "+00:00", "-23:59", "+2400", "+99:99", "", "+1"]))
    sep = draw(st.sampled_from(["T", "t", " ", "_"]))
    return f"{date}{sep}{time}{fraction}{zone}"


timestamps = st.one_of(
    st.integers(MIN_TS_MS - 2, MIN_TS_MS + 2), st.integers(MAX_TS_MS - 2, MAX_TS_MS + 2),
    st.integers(MIN_TS_MS, MAX_TS_MS), json_ints, json_floats, rfc3339ish(), st.text(max_size=30), json_values)
texts = st.one_of(
    st.text(max_size=30), st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Co", "Cn"]), max_size=5),
    st.integers(250, 260).map(lambda n: "d" * n), st.just(""))
numbers = st.one_of(json_ints, json_floats, st.integers(-3, 3), st.sampled_from([1e12, 1e12 + 1, 10 ** 12, -0.0]),
                    st.booleans(), st.text(max_size=5))


@st.composite
def _shaped(draw: st.DrawFn, good: dict[str, st.SearchStrategy[Any]], odd: dict[str, st.SearchStrategy[Any]]) -> Any:
    """A record that passes (``good`` values for the required fields, ``odd`` ones for some
    optional fields), then with up to three fields made odd or any JSON, or dropped."""
    record: dict[str, Any] = {name: draw(strategy) for name, strategy in good.items()}
    for name in draw(st.lists(st.sampled_from(sorted(odd)), max_size=4, unique=True)):
        record[name] = draw(odd[name])
    record.update(draw(st.dictionaries(st.text(max_size=12), json_values, max_size=2)))
    for name in draw(st.lists(st.sampled_from(sorted({*good, *odd})), max_size=3, unique=True)):
        change = draw(st.integers(0, 2))
        if change == 0:
            record.pop(name, None)
        else:
            record[name] = draw(odd[name] if change == 1 and name in odd else json_values)
    return record


def _records(good: dict[str, st.SearchStrategy[Any]], odd: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Mostly records shaped for the contract, sometimes any JSON value at all."""
    return st.one_of(_shaped(good, odd), _shaped(good, odd), _shaped(good, odd), json_values)


good_ids = st.text(min_size=1, max_size=20)
good_ts = st.one_of(st.integers(MIN_TS_MS, MAX_TS_MS - 1), st.just(1_795_307_700_000),
                    st.just("2026-11-21T10:00:00.123Z"))
ids = st.one_of(good_ids, texts)
events = _records(
    {"event_id": good_ids, "session_id": good_ids, "ts": good_ts, "type": st.sampled_from(sorted(EVENT_TYPES))},
    {"event_id": ids, "session_id": ids, "ts": timestamps, "type": st.sampled_from(sorted(EVENT_TYPES))
     | st.text(max_size=12), **{dim: texts for dim in DIMENSIONS}, **{measure: numbers for measure in MEASURES},
     "from_kbps": numbers, "to_kbps": numbers, "error_code": texts, "fatal": st.booleans() | json_scalars},
)
logs = _records(
    {"ts": good_ts, "service": good_ids, "message": st.text(max_size=40)},
    {"ts": timestamps, "service": ids, "message": st.text(max_size=40) | st.just("m" * 65_537),
     "level": st.sampled_from(sorted(LOG_LEVELS | {"warning", "Critical", "err", "trace"})) | st.text(max_size=8),
     "status": st.integers(98, 601) | numbers, "latency_ms": numbers, **{name: texts for name in LOG_STRING_FIELDS}},
)


def _outcome(validate: Callable[[Any], dict[str, Any]], record: Any) -> tuple[str, Any]:
    try:
        return "valid", validate(copy.deepcopy(record))
    except ValidationError as exc:
        return "refused", (exc.field, exc.reason)


def _check(validate: Callable[[Any], dict[str, Any]], full: Callable[[Any], dict[str, Any]],
           fields: frozenset[str], record: Any) -> None:
    kind, result = _outcome(validate, record)
    if kind == "refused":
        field, reason = result
        assert reason, f"a refusal without a reason for {record!r:.200}"
        assert field == "" or field in fields, f"the refusal names no contract field: {field!r}"
    else:
        assert type(result["ts"]) is int and MIN_TS_MS <= result["ts"] < MAX_TS_MS
        again = orjson.loads(orjson.dumps(result))  # as it travels through Kafka
        assert validate(again) == result, "a valid record does not re-validate to itself"
    assert _outcome(full, record) == (kind, result), "the fast path and the full check disagree"


@hsettings(max_examples=300, deadline=None)
@given(record=events)
def test_playback_events_are_valid_or_refused_with_a_field_and_reason(record: Any) -> None:
    _check(validate_playback_event, _validate_playback_event, EVENT_FIELDS, record)


@hsettings(max_examples=300, deadline=None)
@given(record=logs)
def test_log_records_are_valid_or_refused_with_a_field_and_reason(record: Any) -> None:
    _check(validate_log_record, _validate_log_record, LOG_FIELDS, record)
