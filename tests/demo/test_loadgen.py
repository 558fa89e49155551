"""The simulator makes valid, reproducible traffic with a visible incident; CMCD lines it sends
decode to the same events in the collector's decoder."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from collectors.http.cmcd import decode
from collectors.http.cmcd_events import to_event
from playscope.events import validate_log_record, validate_playback_event
from playscope.loadgen.senders import combined_line, to_cmcd_line
from playscope.loadgen.simulator import Incident, Simulator

T0 = 1_700_000_000_000


def run(seed: int, incident: Incident | None) -> list[dict[str, Any]]:
    sim = Simulator(T0, seed=seed, sessions_per_s=8, incident=incident, mean_session_s=10)
    events = sim.advance(T0 + 60_000, T0 + 60_000)
    events += sim.advance(T0 + 600_000, T0 + 60_000)
    assert sim.pending == 0
    return events


def test_same_seed_same_traffic() -> None:
    assert run(3, Incident()) == run(3, Incident())
    assert run(3, Incident()) != run(4, Incident())


def test_every_record_is_valid_and_sessions_end() -> None:
    events = run(1, Incident())
    last_type: dict[str, str] = {}
    for event in events:
        record = dict(event)
        if record.pop("_kind", None) == "log":
            validate_log_record(record)
        else:
            validate_playback_event(record)
            last_type[record["session_id"]] = record["type"]
    assert last_type and all(t in ("session_end", "error") for t in last_type.values())


def test_incident_raises_stalls_on_its_cdn_and_errors_on_its_service() -> None:
    incident = Incident(start_s=20, end_s=40, cdn="oca-edge-3", service="license")
    stalls: dict[bool, int] = defaultdict(int)
    errors: dict[tuple[bool, bool], list[int]] = defaultdict(lambda: [0, 0])
    for e in run(2, incident):
        inside = incident.active((e["ts"] - T0) / 1000)
        if e.get("_kind") == "log":
            key = (inside, e["service"] == "license")
            errors[key][0] += e["status"] >= 500
            errors[key][1] += 1
        elif e["type"] == "rebuffer_start" and e["cdn"] == "oca-edge-3":
            stalls[inside] += 1
    assert stalls[True] > 3 * max(1, stalls[False] // 2)  # 20 s of incident vs 40 s of normal
    failing, total = errors[(True, True)]
    assert failing / total > 0.2
    normal_fail, normal_total = errors[(False, True)]
    assert normal_fail / normal_total < 0.05


def test_cmcd_lines_decode_to_the_same_events() -> None:
    checked = 0
    for event in run(5, None):
        if event.get("_kind") == "log" or event["type"] in ("heartbeat", "bitrate_change"):
            continue
        mapped = to_event(decode(to_cmcd_line(event, 7)), received_ms=T0)
        assert mapped["session_id"] == event["session_id"]
        assert mapped["ts"] == event["ts"]
        assert mapped["cdn"] == event["cdn"]
        expected = {"rebuffer_end": "playing", "resume": "playing"}.get(event["type"], event["type"])
        assert mapped["type"] == expected, (event, mapped)
        checked += 1
    assert checked > 100


def test_access_log_line_is_in_combined_format() -> None:
    from collectors.agent.parsers import parse_combined

    record = {"ts": T0, "service": "license", "route": "/v1/license", "method": "POST", "status": 503,
              "latency_ms": 123.4, "host": "license-1", "trace_id": "ab", "message": "/v1/license 503"}
    parsed = parse_combined(combined_line(record))
    assert parsed["status"] == 503
    assert parsed["route"] == "/v1/license"
    assert parsed["ts"] == T0
