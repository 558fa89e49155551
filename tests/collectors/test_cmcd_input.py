"""Bad and odd CMCD input: every case gets a defined answer (a value ignored and counted, or the
report refused with a reason), and metric labels stay within fixed sets."""

from __future__ import annotations

import random
import string
from typing import Any

from test_cmcd_players import make_ingest

from collectors.http.cmcd_ingest import CmcdIngest, TextReport
from collectors.http.cmcd_metrics import KNOWN_KEYS, REASONS
from playscope.errors import ValidationError

NOW = 1_796_200_000_000
FIELDS = {"cmcd", "sid", "v", "ts", ""}  # the field of a refusal: the rejected-events label


def run(ingest: CmcdIngest, *lines: str, at: int = NOW, extra: dict[str, str] | None = None) -> list[Any]:
    return ingest.map_reports([TextReport(line) for line in lines], at, extra or {})


def labels(ingest: CmcdIngest) -> set[tuple[str, str]]:
    return {(s.labels["key"], s.labels["reason"]) for m in ingest.metrics.ignored.collect() for s in m.samples
            if s.name.endswith("_total")}


def test_malformed_strings_are_refused_with_a_fixed_field_and_the_key_in_the_reason() -> None:
    ingest = make_ingest()
    rng = random.Random(7)
    keys = ["".join(rng.choices(string.ascii_lowercase, k=12)) for _ in range(300)]
    got = run(ingest, *[f'sid="s",{key}=(1' for key in keys], 'sid="unterminated', "BR=1", "")
    assert all(isinstance(r, ValidationError) and r.field in FIELDS for r in got)
    assert {r.field for r in got[:-1]} == {"cmcd"} and got[-1].field == "sid"  # "" has no sid
    assert keys[0] in got[0].reason  # the client learns which key, the metrics do not


def test_unknown_keys_are_kept_under_cmcd_and_absurd_values_ignored_and_counted() -> None:
    ingest = make_ingest()
    got = run(ingest, 'sid="s",v=2,e=ps,sta=p,sn=1,ts=123456789012345678901,bl=-5,br=(300),'
                      'com.example-x="y",zz=?1,sta2=q,ttfb=1796172871008')
    (event,) = got[0]
    assert event["ts"] == NOW  # a 20-digit ts is ignored: the receive time
    assert "buffer_ms" not in event and event["bitrate_kbps"] == 300 and event["type"] == "playing"
    assert event["cmcd"]["com.example-x"] == "y" and event["cmcd"]["zz"] is True
    seen = labels(ingest)
    assert {("ts", "out_of_range"), ("bl", "negative"), ("ttfb", "epoch_value")} <= seen
    assert all(key in KNOWN_KEYS | {"other"} and reason in REASONS for key, reason in seen)


def test_v1_ts_is_ignored_the_receive_time_dates_it() -> None:
    ingest = make_ingest()
    (event,) = run(ingest, 'sid="v1",ot=av,bl=3000,ts=1000000000000')[0]
    assert event["ts"] == NOW and ("ts", "v1_ts") in labels(ingest)


def test_a_body_mixing_sessions_gives_each_session_its_own_clock() -> None:
    ingest = make_ingest()
    ahead = NOW + 3 * 3600_000  # a device three hours fast
    got = run(ingest, f'sid="fast",v=2,e=ps,sta=s,sn=1,ts={ahead - 500}',
              f'sid="fast",v=2,e=ps,sta=p,sn=2,ts={ahead}',
              f'sid="right",v=2,e=ps,sta=p,sn=1,ts={NOW - 40}')
    fast_start, fast_play, right = (r[0] for r in got)
    assert fast_play["ts"] == NOW and fast_start["ts"] == NOW - 500  # spacing kept
    assert fast_play["clock_offset_ms"] == -3 * 3600_000
    assert right["ts"] == NOW - 40 and "clock_offset_ms" not in right
    # the next report of the fast device keeps the same shift, despite 30 ms more transit
    (later,) = run(ingest, f'sid="fast",v=2,e=ps,sta=r,sn=3,ts={ahead + 5000}', at=NOW + 5030)[0]
    assert later["ts"] == NOW + 5000


def test_a_client_time_out_of_bounds_after_the_shift_is_refused_with_the_reason() -> None:
    ingest = make_ingest()
    old = NOW - 8 * 86400_000
    got = run(ingest, f'sid="a",v=2,e=ps,sta=p,sn=1,ts={NOW}', f'sid="a",v=2,e=t,sn=2,ts={old}')
    assert isinstance(got[0], list)
    assert isinstance(got[1], ValidationError) and got[1].field == "ts" and "behind" in got[1].reason


def test_sn_repeats_and_gaps() -> None:
    ingest = make_ingest()
    line = f'sid="r",v=2,e=ps,sta=p,sn=7,ts={NOW}'
    first = run(ingest, line)[0][0]
    resent = run(ingest, line, at=NOW + 4000)[0][0]
    reused = run(ingest, f'sid="r",v=2,e=t,sn=7,ts={NOW + 9000}')[0][0]
    gap = run(ingest, f'sid="r",v=2,e=ps,sta=r,sn=90,ts={NOW + 9500}')[0][0]
    assert resent["event_id"] == first["event_id"] and resent["ts"] == first["ts"]  # dropped downstream
    assert reused["event_id"] != first["event_id"]  # another event that reused the number: kept
    assert gap["type"] == "rebuffer_start"  # order comes from ts, a gap changes nothing


def test_dimensions_from_query_headers_and_the_host_map() -> None:
    ingest = make_ingest(cdn_hosts={"*.cdn-a.example": "cdn-a"}, cdn_keys=["com.example-cdn"])
    extra = ingest.dimensions.for_request({"cdn": "from-query", "device": "tv", "country": "x\x01"},
                                          {"X-Playscope-Cdn": "from-edge", "CF-IPCountry": "NO"},
                                          ingest.metrics.ignore)
    assert extra == {"cdn": "from-edge", "device": "tv", "country": "NO"}
    assert ("dimension", "invalid") in labels(ingest)
    (plain,) = run(ingest, 'sid="d",v=2,e=t,sn=1,cid="t1",sf=d,st=v', extra=extra)[0]
    assert plain["cdn"] == "from-edge" and plain["title_id"] == "t1"
    assert plain["streaming_format"] == "dash" and plain["stream_type"] == "vod"
    (mapped,) = run(ingest, f'sid="d",v=2,e=rr,sn=2,ts={NOW},url="https://e1.cdn-a.example/seg.m4s"',
                    extra=extra)[0]
    assert mapped["cdn"] == "cdn-a"  # the media host beats the request's own dimensions
    (keyed,) = run(ingest, 'sid="d",ot=v,bl=100,com.example-cdn="akamai"', extra=extra)[0]
    assert keyed["cdn"] == "akamai"


def test_a_report_that_raises_anything_is_refused_not_a_500() -> None:
    ingest = make_ingest()
    got = ingest.map_reports([{"sid": "j", "v": 2, "e": "ps", "sta": ["p"], "bl": {"a": 1}}, 42], NOW, {})
    assert isinstance(got[0], list) and got[0][0]["type"] == "heartbeat"  # sta not a token: ignored
    assert isinstance(got[1], ValidationError) and got[1].field == "cmcd"
