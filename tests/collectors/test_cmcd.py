"""CMCD decoding and mapping, against the real hls.js / dash.js captures."""

from __future__ import annotations

import pytest
from collector_helpers import NOW, ndjson_rows, tsv_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.http.cmcd import CmcdError, Item, decode, merge_headers
from collectors.http.cmcd_events import to_event
from playscope.errors import ValidationError


def test_decode_v1_bare_booleans_strings_and_tokens() -> None:
    got = decode('bl=2000,br=167,bs,cid="title-demo-hls",ot=av,sid="abc",su,tb=530')
    assert got == {
        "bl": 2000,
        "br": 167,
        "bs": True,
        "cid": "title-demo-hls",
        "ot": "av",
        "sid": "abc",
        "su": True,
        "tb": 530,
    }


def test_decode_v2_inner_lists_with_object_type_parameters() -> None:
    got = decode('br=(450;v 32;a),bl=(0;v),lb=(167.2),nor=("seg_1.ts"),v=2')
    assert got["br"] == [Item(450, {"v": True}), Item(32, {"a": True})]
    assert got["bl"] == [Item(0, {"v": True})]
    assert got["lb"] == [Item(167.2, {})]
    assert got["nor"] == [Item("seg_1.ts", {})]


@pytest.mark.parametrize("bad", ['sid="unterminated', "br=(1 2", "BR=1", "br=1;", 'sid="a\\x"', "br=1 x"])
def test_decode_rejects_malformed_payloads_with_cmcd_error(bad: str) -> None:
    with pytest.raises(CmcdError):
        decode(bad)


def test_every_v1_query_sample_maps_to_a_valid_event() -> None:
    rows = tsv_rows("v1-query.txt")
    events = [to_event(decode(value), NOW) for _, _, value in rows]
    assert len(events) == len(rows) == 40
    assert {e["type"] for e in events} == {"heartbeat", "playing"}
    # one report alone cannot date a stall: its start comes from the session's history (cmcd_v1)
    starved = [e for e, (_, _, v) in zip(events, rows, strict=True) if ",bs," in f",{v},"]
    assert starved and all(e["type"] == "heartbeat" for e in starved)
    first = events[1]
    assert first["title_id"] == "title-demo-hls" and first["bitrate_kbps"] == 310
    assert first["throughput_kbps"] == 500 and first["buffer_ms"] == 0 and first["ts"] == NOW


def test_v1_header_form_equals_query_form() -> None:
    for row in ndjson_rows("v1-headers.ndjson"):
        merged = merge_headers(row["headers"])
        assert "sid" in merged
        event = to_event(merged, NOW)
        assert event["session_id"] == merged["sid"]


def test_v2_request_mode_prefers_video_member_and_maps_state() -> None:
    rows = tsv_rows("v2-request-mode.txt")
    events = [to_event(decode(value), NOW) for _, _, value in rows]
    dash = [e for e, r in zip(events, rows, strict=True) if r[0] == "dash.js" and "br" in e["cmcd"]]
    assert dash and all(e["bitrate_kbps"] in (450, 120, 250) for e in dash if e["cmcd"]["ot"] == "v")
    sta = {r[2].split("sta=")[1].split(",")[0]: e["type"] for e, r in zip(events, rows, strict=True)}
    assert sta["s"] == "session_start" and sta["p"] == "playing" and sta["r"] == "rebuffer_start"


def test_v2_event_mode_reports_map_with_stable_ids() -> None:
    lines = [line for row in ndjson_rows("v2-event-bodies.ndjson") for line in row["body"].splitlines()]
    events = [to_event(decode(line), NOW) for line in lines]
    assert len({e["event_id"] for e in events}) == len(events)  # sid+sn are unique per report
    by_sn = {(e["session_id"], e["cmcd"]["sn"]): e for e in events}
    again = [to_event(decode(line), NOW + 5000) for line in lines]  # a resend, later
    assert [e["event_id"] for e in again] == [e["event_id"] for e in events]
    # report time, not arrival time; an rr event happened when its response ended (ts + ttlb)
    assert all(e["ts"] == e["cmcd"]["ts"] + (e["cmcd"].get("ttlb", 0) if e["cmcd"]["e"] == "rr" else 0)
               for e in events)
    assert any(e["cmcd"]["e"] == "rr" and e["cmcd"].get("ttlb") for e in events)
    kinds = {e["type"] for e in events}
    assert {"session_start", "playing", "rebuffer_start", "bitrate_change", "heartbeat"} <= kinds
    bc = next(e for e in events if e["type"] == "bitrate_change")
    assert bc["to_kbps"] == bc["bitrate_kbps"]
    assert len(by_sn) == len(events)


def test_v2_state_mapping_table() -> None:
    base = 'sid="s1",v=2,e=ps,ts=1795307712002,sn=1,sta='
    expected = {
        "s": "session_start",
        "p": "playing",
        "r": "rebuffer_start",
        "k": "seek",
        "a": "pause",
        "e": "session_end",
        "f": "error",
        "d": "heartbeat",
        "w": "heartbeat",
    }
    for sta, kind in expected.items():
        assert to_event(decode(base + sta), NOW)["type"] == kind, sta
    fatal = to_event(decode(base + 'f,ec=("E42")'), NOW)
    assert fatal["fatal"] is True and fatal["error_code"] == "E42"


def test_missing_sid_is_a_validation_error_naming_sid() -> None:
    with pytest.raises(ValidationError) as info:
        to_event(decode("br=300,bl=100"), NOW)
    assert info.value.field == "sid"


def test_json_form_and_extra_dimensions() -> None:
    event = to_event({"sid": "x1", "br": 3000, "bs": True, "cid": "t9"}, NOW, {"country": "NO", "cdn": "c1"})
    assert event["type"] == "heartbeat" and event["country"] == "NO" and event["title_id"] == "t9"
    assert event["cdn"] == "c1"


_cmcd_chars = st.sampled_from(list('abcdefghijklmnopqrstuvwxyz0123456789=,;()" ?.-\\*v'))


@settings(max_examples=400, deadline=None)
@given(st.text(_cmcd_chars, max_size=80) | st.text(max_size=60))
def test_fuzz_decoder_only_raises_validation_errors(text: str) -> None:
    try:
        cmcd = decode(text)
        to_event(cmcd, NOW)
    except ValidationError:
        pass


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=True),
    st.text(max_size=10),
    st.lists(st.integers(0, 10**6), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["sid", "sn", "ts", "v", "e", "sta", "br", "pb", "bl", "mtp", "cid", "ec", "bs", "su", "cdn"]
        ),
        _values,
        max_size=10,
    )
)
def test_fuzz_json_form_only_raises_validation_errors(report: dict) -> None:
    try:
        event = to_event(report, NOW)
    except ValidationError:
        return
    assert event["event_id"].startswith("cmcd-") and event["session_id"] == report["sid"]
