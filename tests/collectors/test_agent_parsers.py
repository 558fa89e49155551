"""Agent parsers: the formats they read and the numbers they refuse (fuzzed in tests/fuzz/)."""

from __future__ import annotations

import pytest

from collectors.agent.config import InputConfig
from collectors.agent.parsers import parse_combined, parse_json, regex_parser
from playscope.errors import ValidationError
from playscope.events import validate_log_record

COMBINED = ('203.0.113.9 - alice [22/Nov/2026:01:02:03 +0000] "GET /api/play?id=7 HTTP/1.1" 503 1234 '
            '"https://ref.example/" "Mozilla/5.0 (X11)" 0.250')


def test_combined_line_becomes_a_valid_log_record() -> None:
    record = parse_combined(COMBINED)
    record["service"] = "edge"
    record = validate_log_record(record)
    assert record["ts"] == 1795309323000
    assert (record["method"], record["route"], record["status"]) == ("GET", "/api/play", 503)
    assert record["latency_ms"] == 250.0 and record["level"] == "ERROR" and record["bytes"] == 1234
    assert record["user_agent"] == "Mozilla/5.0 (X11)" and record["client_ip"] == "203.0.113.9"


def test_common_log_format_without_referer_is_accepted() -> None:
    record = parse_combined('10.0.0.1 - - [01/Jan/2026:00:00:00 +0100] "POST /x HTTP/2.0" 200 -')
    assert record["status"] == 200 and "bytes" not in record and record["ts"] == 1767222000000


def test_json_and_regex_parsers() -> None:
    assert parse_json('{"ts": 1, "msg": "hi"}')["message"] == "hi"
    parse = regex_parser(r"^(?P<ts>\S+ \S+) (?P<level>\w+) (?P<service>[\w-]+) (?P<message>.*)$",
                         "%Y-%m-%d %H:%M:%S%z")
    record = parse("2026-11-22 01:02:03+0000 WARNING auth-svc token expired")
    assert validate_log_record(record)["level"] == "WARN" and record["ts"] == 1795309323000


@pytest.mark.parametrize("line", ["", "{", "[1]", '"text"', "null"])
def test_json_parser_rejects_with_validation_error(line: str) -> None:
    with pytest.raises(ValidationError):
        parse_json(line)


@pytest.mark.parametrize("ts", ["\u00b2", "7" * 5000, "\u0661\u0662\u0663", "1" * 19])
def test_regex_ts_that_int_cannot_read_is_refused_with_a_reason(ts: str) -> None:
    """``"²".isdigit()`` is true and ``int()`` of it raises, as does ``int()`` of a 5,000-digit
    string: such a ``ts`` used to escape as ValueError and stop the agent for good."""
    parse = regex_parser(r"^(?P<ts>\S+) (?P<message>.*)$")
    with pytest.raises(ValidationError) as caught:
        validate_log_record({**parse(f"{ts} hello"), "service": "svc"})
    assert caught.value.field == "ts" and caught.value.reason


@pytest.mark.parametrize("field,line", [
    ("bytes", COMBINED.replace(" 1234 ", f" {'9' * 5000} ")),
    ("bytes", COMBINED.replace(" 1234 ", f" {'9' * 19} ")),
    ("status", r"(?P<status>.+) (?P<message>.*)"),
])
def test_numbers_beyond_bounds_are_validation_errors(field: str, line: str) -> None:
    if line.startswith("(?P"):
        with pytest.raises(ValidationError) as caught:
            regex_parser(line)("\u00b2\u00b3\u00b9 hi")
    else:
        with pytest.raises(ValidationError) as caught:
            parse_combined(line)
    assert caught.value.field == field and "not an integer" in caught.value.reason


def test_config_rejects_unknown_parser_and_bad_regex() -> None:
    with pytest.raises(ValueError, match="unknown parser"):
        InputConfig(paths=["x"], parser="xml")
    with pytest.raises(ValueError, match="invalid regular expression"):
        InputConfig(paths=["x"], parser="regex", pattern="(")
