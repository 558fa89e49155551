"""Fuzzing every agent parser, alone and through the agent's record loop: only ValidationError
(with a field and a reason) escapes a parser or the validation, and every line the loop takes
ends as a record or as a dead letter with its reason, never as an exception (bounded: 200
examples per test, no deadline; no servers needed)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from collectors.agent.agent import Agent, _Input
from collectors.agent.config import AgentConfig
from collectors.agent.parsers import PARSERS
from collectors.agent.tailer import Chunk
from playscope.config import PrivacyConfig, Settings
from playscope.errors import ValidationError
from playscope.events import check_clock, validate_log_record

NOW_MS = int(time.time() * 1000)  # records near now pass the clock bounds and reach privacy
CLF_NOW = datetime.fromtimestamp(NOW_MS / 1000, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
PATTERN = (r"^(?P<ts>\S+) (?P<level>\S+) (?:(?P<status>\S+) )?(?:(?P<latency_ms>\S+) )?"
           r"(?:(?P<client_ip>\S+) )?(?P<message>.*)$")
# every registered parser, the regex one with and without a time format
PARSER_CASES = [(name, fmt) for name in sorted(PARSERS) for fmt in ((None, "%Y-%m-%dT%H:%M:%S%z")
                                                                  if name == "regex" else (None,))]

# Text that has broken number parsing: non-ASCII digits ("²".isdigit() is true), digit strings
# far beyond int()'s 4,300-digit limit, signs, exponents, infinities, NaN.
odd_numbers = st.one_of(
    st.sampled_from(["\u00b2", "\u00b3\u00b9", "\u2460", "\u0661\u0662", "-", "+1", "-0", "1e309", "inf", "nan",
                     "1_000", "0x10", " 7", "1.5", ""]),
    st.sampled_from([1, 3, 18, 19, 4300, 4301, 5000]).map(lambda n: "9" * n),
    st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=8),
    st.integers(-(10 ** 30), 10 ** 30).map(str),
)
words = st.text(max_size=30)
huge_digits = st.sampled_from([19, 4301, 5000]).map(lambda n: "9" * n)
tokens = st.text(min_size=1, max_size=12).filter(lambda w: not any(c.isspace() for c in w))
ips = st.one_of(st.ip_addresses().map(str), st.sampled_from(["-", "::ffff:1.2.3.4", "999.1.1.1", "host.example"]))


@st.composite
def combined_lines(draw: st.DrawFn) -> str:
    """Mostly well-formed combined lines with one field or another odd, so the numbers get read."""
    when = draw(st.one_of(st.just(CLF_NOW), st.just(CLF_NOW), words.filter(lambda w: "]" not in w),
                          st.sampled_from(["31/Feb/2026:00:00:00 +0000", "01/Jan/9999:23:59:59 -2359",
                                           "01/Jan/0001:00:00:00 +2400"])))
    status = draw(st.one_of(st.integers(100, 599).map(str), st.integers(100, 599).map(str),
                            st.sampled_from(["000", "999", "\u0663\u0660\u0660", "\u00b2\u00b2\u00b2"]), odd_numbers))
    size = draw(st.one_of(st.just("512"), st.just("-"), huge_digits, odd_numbers))
    tail = draw(st.one_of(st.just(""), st.just(' "-" "curl/8"'), st.just(' "r" "ua" 0.250'),
                          st.one_of(huge_digits, odd_numbers).map(lambda n: f' "ref" "ua" {n}')))
    user = draw(st.one_of(st.just("-"), tokens))
    request = draw(st.one_of(st.just("GET /a?b=1 HTTP/1.1"), words.filter(lambda w: '"' not in w and "\\" not in w)))
    return f'{draw(ips)} - {user} [{when}] "{request}" {status} {size}{tail}'


@st.composite
def regex_lines(draw: st.DrawFn) -> str:
    ts = draw(st.one_of(odd_numbers, huge_digits, st.just(str(NOW_MS)), words, st.just(CLF_NOW)))
    level = draw(st.one_of(st.sampled_from(["INFO", "warning", "ERR", "x"]), tokens))
    parts = [ts, level]
    parts += draw(st.lists(st.one_of(odd_numbers, words, ips), max_size=3))
    return " ".join(parts)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 63 - 1) | st.floats(allow_nan=False) | words,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(words, inner, max_size=4), max_leaves=12)


@st.composite
def json_lines(draw: st.DrawFn) -> str:
    record = draw(st.dictionaries(st.sampled_from(["ts", "service", "message", "msg", "level", "status",
                                                   "latency_ms", "client_ip", "host", "route"]) | words,
                                  json_values | odd_numbers, max_size=8))
    if draw(st.booleans()):
        record.setdefault("ts", draw(st.one_of(st.just(NOW_MS), odd_numbers, json_values)))
    text = orjson.dumps(record).decode()
    return text if draw(st.booleans()) else text[: draw(st.integers(0, len(text)))]  # cut JSON too


lines = st.one_of(st.text(max_size=300), combined_lines(), regex_lines(), json_lines())
# each parser mostly gets lines shaped for it (where its numbers are read), and any text
LINES_FOR = {"combined": st.one_of(combined_lines(), st.text(max_size=300)),
             "json": st.one_of(json_lines(), st.text(max_size=300)),
             "regex": st.one_of(regex_lines(), st.text(max_size=300))}


def _parse_and_validate(name: str, fmt: str | None, line: str) -> None:
    parse = PARSERS[name](PATTERN, fmt)
    try:
        record = parse(line)
        record.setdefault("service", "svc")
        check_clock(validate_log_record(record), NOW_MS, 300_000, 7 * 86_400_000)
    except ValidationError as exc:
        assert exc.reason, f"{name}: a refusal without a reason for {line[:80]!r}"


@pytest.mark.parametrize("name,fmt", PARSER_CASES)
def test_parsers_raise_only_validation_errors_with_a_reason(name: str, fmt: str | None) -> None:
    assert set(LINES_FOR) == set(PARSERS), "a new parser needs its line shapes here"

    @hsettings(max_examples=200, deadline=None)
    @given(line=LINES_FOR[name])
    def check(line: str) -> None:
        _parse_and_validate(name, fmt, line)

    check()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    """An agent whose loop is driven by hand (its sink is never used): one input per parser."""
    home = Path(str(tmp_path_factory.mktemp("fuzz-agent")))
    settings = Settings(privacy=PrivacyConfig(secret="a-fuzz-secret-of-32-characters!!"))
    inputs = [{"paths": [str(home / f"{name}-{i}.log")], "parser": name, "service": "svc", "pattern": PATTERN,
               "time_format": fmt} for i, (name, fmt) in enumerate(PARSER_CASES)]
    config = AgentConfig.model_validate({
        "inputs": inputs, "checkpoint_file": home / "ckpt.json", "metrics_port": 0,
        "sink": {"type": "http", "url": "http://127.0.0.1:9", "deadletter_file": str(home / "dl")}})
    built = Agent(settings, config)
    yield built
    built.sink.close(1)


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(lines.map(lambda s: s.encode("utf-8", errors="surrogatepass")) | st.binary(max_size=200),
                      min_size=1, max_size=8))
def test_every_line_is_a_record_or_a_dead_letter_with_its_reason(agent: Agent, batch: list[bytes]) -> None:
    source: _Input
    for source in agent.inputs:
        agent._logs, agent._dead = [], []
        agent._add(source, Chunk("fp", "/fuzz.log", batch, 1))
        assert len(agent._logs) + len(agent._dead) == len(batch)
        for message in agent._dead:
            letter = orjson.loads(message["value"])
            assert letter["reason"] and letter["source"] == "agent"
            assert not letter["reason"].startswith("cannot be processed"), \
                f"{source.config.parser}: an exception other than ValidationError: {letter}"
        for message in agent._logs:
            record = orjson.loads(message["value"])
            assert "client_ip" not in record or len(record["client_ip"]) == 32  # pseudonymised
    agent._offsets, agent._lines = {}, 0
