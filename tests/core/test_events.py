"""SPEC 4/5 validation: every rule has a failing and a passing case."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from playscope.errors import ValidationError
from playscope.events import check_clock, is_error_log, validate_log_record, validate_playback_event


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event_id": "e1", "session_id": "s1", "ts": 1_700_000_000_000, "type": "playing"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def test_valid_event_keeps_unknown_fields() -> None:
    out = validate_playback_event(event(cdn="oca-7", custom={"a": 1}, bitrate_kbps=3000))
    assert out["custom"] == {"a": 1}
    assert out["cdn"] == "oca-7"


def test_rfc3339_ts_is_normalised_to_epoch_ms() -> None:
    out = validate_playback_event(event(ts="2023-11-14T22:13:20.123Z"))
    assert out["ts"] == 1_700_000_000_123
    out = validate_playback_event(event(ts="2023-11-14T23:13:20+01:00"))
    assert out["ts"] == 1_700_000_000_000


@pytest.mark.parametrize(
    ("overrides", "field", "reason_part"),
    [
        ({"event_id": _DROP}, "event_id", "required"),
        ({"event_id": 12}, "event_id", "string"),
        ({"event_id": ""}, "event_id", "empty"),
        ({"session_id": None}, "session_id", "required"),
        ({"ts": _DROP}, "ts", "required"),
        ({"ts": "yesterday"}, "ts", "RFC 3339"),
        ({"ts": True}, "ts", "boolean"),
        ({"ts": 1_700_000_000}, "ts", "out of range"),  # seconds, not milliseconds
        ({"type": "teleport"}, "type", "unknown event type"),
        ({"type": _DROP}, "type", "required"),
        ({"cdn": 7}, "cdn", "string"),
        ({"bitrate_kbps": "high"}, "bitrate_kbps", "number"),
        ({"buffer_ms": float("nan")}, "buffer_ms", "finite"),
        ({"throughput_kbps": -1}, "throughput_kbps", "negative"),
        ({"type": "bitrate_change"}, "to_kbps", "to_kbps or bitrate_kbps"),
        ({"type": "error", "fatal": "yes"}, "fatal", "boolean"),
        ({"type": "error", "error_code": 500}, "error_code", "string"),
    ],
)
def test_invalid_events_name_field_and_reason(overrides: dict[str, Any], field: str, reason_part: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_playback_event(event(**overrides))
    assert info.value.field == field
    assert reason_part in info.value.reason


def test_non_object_event_is_rejected() -> None:
    with pytest.raises(ValidationError, match="JSON object, got array"):
        validate_playback_event([1, 2])


def test_error_event_fatal_defaults_false() -> None:
    assert validate_playback_event(event(type="error", error_code="E1"))["fatal"] is False


def test_bitrate_change_accepts_bitrate_kbps() -> None:
    assert validate_playback_event(event(type="bitrate_change", bitrate_kbps=2500))["bitrate_kbps"] == 2500


def log(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"ts": 1_700_000_000_000, "service": "api", "message": "GET /x"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


def test_log_level_normalised() -> None:
    assert validate_log_record(log(level="warning"))["level"] == "WARN"
    assert validate_log_record(log(level="critical"))["level"] == "FATAL"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"service": _DROP}, "service"),
        ({"message": _DROP}, "message"),
        ({"message": 3}, "message"),
        ({"level": "LOUD"}, "level"),
        ({"status": "200"}, "status"),
        ({"status": 999}, "status"),
        ({"latency_ms": "fast"}, "latency_ms"),
        ({"route": ["/a"]}, "route"),
    ],
)
def test_invalid_log_records(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_log_record(log(**overrides))
    assert info.value.field == field


def test_error_classification_prefers_status() -> None:
    assert is_error_log({"status": 503, "level": "INFO"})
    assert not is_error_log({"status": 404, "level": "ERROR"})
    assert is_error_log({"level": "FATAL"})
    assert not is_error_log({"level": "WARN"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(["event_id", "session_id", "ts", "type", "cdn", "fatal",
                                        "bitrate_kbps", "to_kbps", "x"]), json_values))
def test_validator_only_ever_raises_validation_error(record: dict[str, Any]) -> None:
    try:
        validate_playback_event(record)
    except ValidationError as exc:
        assert exc.reason


@pytest.mark.parametrize("field", ["cdn", "isp", "device", "country", "title_id"])
@pytest.mark.parametrize("char", ["\x1f", "\x00", "\n", "\x7f", "\x85"])
def test_a_control_character_in_a_dimension_is_refused(field: str, char: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_playback_event(event(**{field: f"oca{char}7"}))
    assert (info.value.field, info.value.reason) == (field, "contains a control character")


def test_printable_unicode_dimensions_pass() -> None:
    assert validate_playback_event(event(cdn="édge ☁ 東京", isp="Telefónica\u00a0SA"))["cdn"] == "édge ☁ 東京"


@pytest.mark.parametrize("field", ["service", "route", "host"])
def test_a_control_character_in_a_service_dimension_is_refused(field: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_log_record(log(**{field: "a\x1fb"}))
    assert info.value.field == field


@pytest.mark.parametrize("value", [1e308, 1.7e308, 10**13, 1e12 + 1])
def test_measures_above_10_to_the_12_are_refused(value: float) -> None:
    with pytest.raises(ValidationError) as info:
        validate_playback_event(event(bitrate_kbps=value))
    assert info.value.field == "bitrate_kbps"
    with pytest.raises(ValidationError) as info:
        validate_log_record(log(latency_ms=value))
    assert info.value.field == "latency_ms"


def test_a_measure_of_exactly_10_to_the_12_passes() -> None:
    assert validate_playback_event(event(buffer_ms=10**12))["buffer_ms"] == 10**12


@pytest.mark.parametrize(("offset_ms", "ok"), [(0, True), (300_000, True), (300_001, False),
                                               (-7 * 86_400_000, True), (-7 * 86_400_000 - 1, False),
                                               (10 * 365 * 86_400_000, False)])
def test_clock_bounds_against_the_receive_time(offset_ms: int, ok: bool) -> None:
    received = 1_760_000_000_000
    record = {"ts": received + offset_ms}
    if ok:
        check_clock(record, received, 300_000, 7 * 86_400_000)
    else:
        with pytest.raises(ValidationError) as info:
            check_clock(record, received, 300_000, 7 * 86_400_000)
        assert info.value.field == "ts"
        assert ("ahead" if offset_ms > 0 else "behind") in info.value.reason
