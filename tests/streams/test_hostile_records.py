"""No record, however its fields are set, stops the stream stage or touches another session.

Arbitrary JSON goes through the whole per-record path: the intake gate (JSON, SPEC 4 rules,
clock bounds), the partition (ingest, advance), a state save through orjson and a restore into
a fresh partition that carries on. Nothing may raise; every record is either accepted or
refused with a reason; a well-formed session fed beside the hostile records stays exact.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from spec6_reference import summarise
from streams_scenarios import FULL_EXPECTED, T0, assert_matches, full_session

from playscope.events import validate_playback_event
from streams.intake import Rejection, decode
from streams.qoe import IngestStats, QoePartition

BOUNDS = (300_000, 7 * 86_400_000)
RECEIVED = T0 + 30_000
IDLE_MS = 120_000

hostile_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, 1.7e308, -0.0, 10**400]),
    st.text(max_size=40), st.sampled_from(["\x1f", "a\x1fb", "\x00", "NaN", "Infinity", "1e309", "²", "x" * 300]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
FIELDS = ["event_id", "session_id", "ts", "type", "cdn", "isp", "device", "country", "title_id", "bitrate_kbps",
          "buffer_ms", "to_kbps", "from_kbps", "fatal", "error_code", "_late", "position_ms"]


@st.composite
def hostile_record(draw: st.DrawFn) -> bytes:
    base: dict[str, Any] = {"event_id": f"h-{draw(st.integers(0, 10**6))}", "session_id": draw(
        st.sampled_from(["h-1", "h-2", "s-full"])), "ts": T0 + draw(st.integers(0, 60_000)),
        "type": draw(st.sampled_from(["heartbeat", "playing", "rebuffer_start", "bitrate_change", "error"]))}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=5)):
        base[name] = draw(hostile_values)
    if draw(st.booleans()):
        base["ts"] = draw(st.sampled_from([T0 + 10 * 365 * 86_400_000, T0 - 30 * 86_400_000, 10**20, -5]))
    try:
        return orjson.dumps(base, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return repr(base).encode()  # not JSON at all


def feed(part: QoePartition, raws: list[bytes], stats: IngestStats, refused: list[Rejection]) -> None:
    for raw in raws:
        got = decode(raw, validate_playback_event, RECEIVED, BOUNDS)
        if isinstance(got, Rejection):
            assert got.reason
            refused.append(got)
        else:
            part.ingest(got, stats)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_record(), max_size=25), st.integers(0, 12))
def test_hostile_records_never_escape_and_leave_other_sessions_exact(raws: list[bytes], cut: int) -> None:
    good = [orjson.dumps(e) for e in full_session("s-good")]
    stream = good[:cut] + raws + good[cut:]
    part = QoePartition(window_ms=10_000, lateness_ms=1000, idle_ms=IDLE_MS, tombstone_ms=3_600_000)
    stats, refused = IngestStats(), []
    half = len(stream) // 2
    feed(part, stream[:half], stats, refused)
    summaries = part.advance().summaries
    blob = orjson.dumps(part.to_dict(), option=orjson.OPT_NON_STR_KEYS)  # must serialise
    restored = QoePartition(window_ms=10_000, lateness_ms=1000, idle_ms=IDLE_MS, tombstone_ms=3_600_000)
    restored.load(orjson.loads(blob))
    feed(restored, stream[half:], stats, refused)
    out = restored.advance()
    summaries += out.summaries
    restored.tick(IDLE_MS + 20_000)
    out2 = restored.advance()
    summaries += out2.summaries
    for kept in (out.rejected, out2.rejected):
        assert all(isinstance(exc, Exception) for _, exc in kept)
    orjson.dumps(restored.to_dict(), option=orjson.OPT_NON_STR_KEYS)
    by_id = {s["session_id"]: s for s in summaries}
    events = [orjson.loads(r) for r in good]
    assert_matches(by_id["s-good"], {**FULL_EXPECTED, "start_ts": T0, "end_ts": T0 + 20_000})
    assert by_id["s-good"]["play_ms"] == summarise(events, IDLE_MS)["play_ms"]


def test_a_ten_years_ahead_ts_is_refused_and_moves_no_clock() -> None:
    part = QoePartition(window_ms=10_000, lateness_ms=1000, idle_ms=IDLE_MS, tombstone_ms=3_600_000)
    refused: list[Rejection] = []
    stats = IngestStats()
    ahead = orjson.dumps({"event_id": "x", "session_id": "x", "ts": RECEIVED + 10 * 365 * 86_400_000,
                          "type": "heartbeat"})
    feed(part, [*[orjson.dumps(e) for e in full_session("s-a")][:3], ahead], stats, refused)
    assert [r.error_type for r in refused] == ["clock_bounds"]
    assert part.clock is not None and part.clock <= RECEIVED
    assert len(part.advance().windows) < 10
