"""The agent's fast path for JSON lines gives, line for line, exactly the messages and dead
letters of the general path (parse, complete, validate, clock, pseudonymise, encode): the same
bytes, keys and order, and the same reasons. Driven by hand, no servers needed (the sink is
never used); 300 examples per case, no deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from collectors.agent import agent as agent_module
from collectors.agent.agent import Agent, _Input
from collectors.agent.config import AgentConfig
from collectors.agent.fastpath import JsonFastPath
from collectors.agent.tailer import Chunk
from playscope.config import PrivacyConfig, Settings

NOW_MS = int(time.time() * 1000)
DAY_MS = 86_400_000
AHEAD_MS, BEHIND_MS = Settings().clock_bounds_ms()
EDGES = [NOW_MS + AHEAD_MS, NOW_MS + AHEAD_MS + 1, NOW_MS - BEHIND_MS, NOW_MS - BEHIND_MS - 1]
# inputs as users write them: a default service or none, extra fields or none
INPUTS: list[dict[str, Any]] = [{"service": "svc"}, {}, {"service": "svc", "fields": {"env": "prod", "route": "/r"}}]

texts = st.one_of(st.text(max_size=20), st.sampled_from(["", "a\x00b", "a\u0085b", "x" * 257, "\u2028", "ok"]))
times = st.one_of(st.integers(NOW_MS - 8 * DAY_MS, NOW_MS + 600_000), st.just(NOW_MS), st.just(NOW_MS - 3_600_000),
                  st.sampled_from([0, -1, 10 ** 13 * 30, True, 1.5e12, "2026-01-01T00:00:00Z", None]),
                  st.sampled_from(EDGES))
values = st.one_of(texts, st.integers(-10, 10 ** 13), st.floats(allow_nan=False, allow_infinity=False),
                   st.booleans(), st.none(), st.lists(st.integers(-1000, 1000), max_size=2),
                   st.dictionaries(st.sampled_from(["client_ip", "k"]), st.just("10.0.0.1"), max_size=1))
FIELDS = ["service", "message", "msg", "level", "status", "latency_ms", "host", "route", "method", "trace_id",
          "client_ip", "profile_id", "source_file", "env", "seq"]


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly records the fast path takes, each with a chance of one field made odd."""
    record: dict[str, Any] = {"ts": draw(st.one_of(st.just(NOW_MS - 60_000), times))}
    if draw(st.integers(0, 9)):
        record["message"] = draw(st.one_of(st.just("GET /play 200"), texts))
    if draw(st.booleans()):
        record["level"] = draw(st.sampled_from(["INFO", "ERROR", "warning", "info", "BAD", None, 3]))
    if draw(st.booleans()):
        record["status"] = draw(st.one_of(st.integers(100, 599), st.sampled_from([99, 600, True, 200.0, "200"])))
    if draw(st.booleans()):
        record["latency_ms"] = draw(st.one_of(st.floats(0, 1e4), st.sampled_from([-1, 1e13, 5, "5", False])))
    record.update(draw(st.dictionaries(st.sampled_from(FIELDS), values, max_size=4)))
    return record


def _line(draw: st.DrawFn) -> bytes:
    raw = orjson.dumps(draw(records()))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return raw[: draw(st.integers(0, len(raw)))]  # cut
    if kind == 1:
        return raw.replace(b'"ts":', b'"ts":"', 1)  # broken
    if kind == 2:
        return raw[:-1] + b',"message":"again","ts":' + str(NOW_MS).encode() + b"}"  # keys repeated
    if kind == 3:
        return raw.replace(b"}", b' , "x" : "\\u00e9\\ud83d\\ude00" }', 1)  # spaces and escapes
    if kind == 4:
        return raw[:-1] + b',"bad":"\xff"}'  # not UTF-8
    return raw


lines = st.composite(_line)()


@pytest.fixture(scope="module", params=[None, "a-fuzz-secret-of-32-characters!!"], ids=["no-secret", "secret"])
def agent(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    home = Path(str(tmp_path_factory.mktemp("fastpath")))
    settings = Settings(privacy=PrivacyConfig(secret=request.param))
    inputs = [{"paths": [str(home / f"in-{i}.log")], **extra} for i, extra in enumerate(INPUTS)]
    config = AgentConfig.model_validate({
        "inputs": inputs, "checkpoint_file": home / "ckpt.json", "metrics_port": 0, "host": "h1",
        "max_record_bytes": 1024,
        "sink": {"type": "http", "url": "http://127.0.0.1:9", "deadletter_file": str(home / "dl")}})
    built = Agent(settings, config)
    yield built
    built.sink.close(1)


class _Clock:
    """Both paths see the same moment of reading (records at the clock bounds)."""

    monotonic = staticmethod(time.monotonic)

    @staticmethod
    def time() -> float:
        return NOW_MS / 1000


def _through(agent: Agent, source: _Input, batch: list[bytes], fast: JsonFastPath | None) -> tuple[list[Any], ...]:
    source.fast = fast
    agent._logs, agent._dead, agent._offsets, agent._lines = [], [], {}, 0
    real, agent_module.time = agent_module.time, _Clock  # type: ignore[assignment]
    try:
        agent._add(source, Chunk("fp", "/logs/app.log", batch, 1))
    finally:
        agent_module.time = real
    dead = [orjson.loads(m["value"]) for m in agent._dead]
    for letter in dead:
        letter.pop("ts")  # when it was written
    return [(m["key"], m["value"]) for m in agent._logs], dead


def test_every_json_input_gets_the_fast_path(agent: Agent) -> None:
    assert all(source.fast is not None for source in agent.inputs)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(lines, min_size=1, max_size=6))
def test_the_fast_path_gives_the_general_paths_bytes(agent: Agent, batch: list[bytes]) -> None:
    for source in agent.inputs:
        fast = source.fast
        assert fast is not None
        try:
            fast_logs, fast_dead = _through(agent, source, batch, fast)
            slow_logs, slow_dead = _through(agent, source, batch, None)
        finally:
            source.fast = fast
        assert fast_logs == slow_logs
        assert fast_dead == slow_dead
        assert len(fast_logs) + len(fast_dead) == len(batch)


def test_clean_lines_take_the_fast_path_and_odd_ones_the_general_path(agent: Agent) -> None:
    """The fast path is really used (the general path is called only for what needs it)."""
    source = agent.inputs[0]
    assert source.fast is not None
    good = orjson.dumps({"ts": NOW_MS - 1000, "level": "INFO", "status": 200, "latency_ms": 1.5, "message": "m"})
    odd = [orjson.dumps({"ts": NOW_MS, "message": "m", "level": "warning"}),  # level to normalise
           orjson.dumps({"ts": NOW_MS, "message": "m", "client_ip": "10.1.2.3"}),  # to pseudonymise
           orjson.dumps({"ts": NOW_MS - 8 * DAY_MS, "message": "m"}),  # beyond the clock bound
           b"not json"]
    handed: list[bytes] = []
    out: list[Any] = []
    source.fast.take([good, *odd, good], "/p", NOW_MS, out, handed.append)
    assert handed == odd
    assert [orjson.loads(m["value"]) for m in out] == [
        {**orjson.loads(good), "service": "svc", "host": "h1", "source_file": "/p"}] * 2
    assert all(m["key"] == b"svc" for m in out)


def test_added_values_that_need_the_general_path_switch_the_fast_path_off() -> None:
    assert JsonFastPath.usable((), "svc", "h1", frozenset({"client_ip"}))
    assert not JsonFastPath.usable((("client_ip", "1.2.3.4"),), "svc", "h1", frozenset({"client_ip"}))
    assert not JsonFastPath.usable((), "svc", "h\x00", frozenset())
    assert not JsonFastPath.usable((("env", "x" * 300),), None, "h1", frozenset())


def test_the_fast_path_checks_every_spec5_string_field() -> None:
    from collectors.agent.fastpath import STRING_FIELDS
    from playscope.events import LOG_STRING_FIELDS

    assert STRING_FIELDS == LOG_STRING_FIELDS
