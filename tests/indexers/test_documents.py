"""Encoding records into bulk actions: ids, index names, rejections (pure logic)."""

from __future__ import annotations

import orjson
import pytest

from indexers.documents import Encoder, Rejected, alert_doc_id
from playscope import topics
from playscope.indices import FAMILIES, log_doc_id, window_doc_id

TS = 1_700_000_000_000  # 2023-11-14T22:13:20Z


@pytest.fixture
def encoder() -> Encoder:
    return Encoder.for_settings(lambda name: f"x.{name}", tuple(FAMILIES), "p-")


def enc(encoder: Encoder, topic: str, record: object) -> tuple[str, str, dict]:
    action = encoder.encode(f"x.{topic}", orjson.dumps(record), 5)
    return action.index, action.doc_id, orjson.loads(action.source)


def test_playback_uses_event_id_and_daily_index(encoder: Encoder) -> None:
    index, doc_id, source = enc(encoder, topics.PLAYBACK_EVENTS,
                                {"event_id": "e1", "session_id": "s", "ts": TS, "type": "playing"})
    assert (index, doc_id) == ("p-playscope-playback-2023.11.14", "e1")
    assert source["ts"] == TS


def test_fast_path_forwards_the_original_bytes(encoder: Encoder) -> None:
    raw = b'{"event_id":"e1","ts":1700000000000,"extra":{"a":[1,2]}}'
    action = encoder.encode(f"x.{topics.PLAYBACK_EVENTS}", raw)
    assert action.source is raw
    assert action.original is raw


def test_rfc3339_time_is_normalised_to_epoch_ms(encoder: Encoder) -> None:
    index, _, source = enc(encoder, topics.SERVICE_LOGS,
                           {"ts": "2024-02-29 23:59:59.5+00:00", "service": "api", "message": "m"})
    assert index == "p-playscope-logs-2024.02.29"
    assert source["ts"] == 1_709_251_199_500


def test_multiline_json_is_rewritten_to_one_line(encoder: Encoder) -> None:
    raw = b'{\n  "event_id": "e2",\n  "ts": 1700000000000\n}\n'
    action = encoder.encode(f"x.{topics.PLAYBACK_EVENTS}", raw)
    assert b"\n" not in action.source
    assert orjson.loads(action.source) == {"event_id": "e2", "ts": TS}


def test_log_id_is_the_content_hash(encoder: Encoder) -> None:
    record = {"ts": TS, "service": "api", "message": "hello", "status": 200}
    _, doc_id, _ = enc(encoder, topics.SERVICE_LOGS, record)
    assert doc_id == log_doc_id(record)
    _, other, _ = enc(encoder, topics.SERVICE_LOGS, {**record, "status": 500})
    assert other != doc_id


def test_session_window_alert_and_deadletter_ids(encoder: Encoder) -> None:
    _, sid, _ = enc(encoder, topics.QOE_SESSIONS, {"session_id": "s9", "start_ts": TS})
    assert sid == "s9"
    window = {"window_start": TS, "window_end": TS + 60_000, "group": "cdn", "cdn": "c1"}
    index, wid, _ = enc(encoder, topics.QOE_METRICS, window)
    assert wid == window_doc_id(window)
    assert index.startswith("p-playscope-qoe-")
    alert = {"ts": TS, "rule": "r", "status": "firing", "group": {"cdn": "c1"}, "window_start": TS}
    _, aid, _ = enc(encoder, topics.ALERTS, alert)
    assert aid == alert_doc_id(alert)
    assert aid != alert_doc_id({**alert, "status": "resolved"})
    dl = {"ts": TS, "reason": "bad", "source": "collector", "original": "x"}
    _, d1, _ = enc(encoder, topics.DEADLETTER, dl)
    _, d2, _ = enc(encoder, topics.DEADLETTER, {**dl, "original": "y"})
    assert d1 != d2


@pytest.mark.parametrize(
    ("topic", "raw", "needle"),
    [
        (topics.PLAYBACK_EVENTS, b"{not json", "not valid JSON"),
        (topics.PLAYBACK_EVENTS, b"[1,2]", "not a JSON object"),
        (topics.PLAYBACK_EVENTS, b"", "empty"),
        (topics.PLAYBACK_EVENTS, b'{"event_id":"e","session_id":"s"}', "ts: is required"),
        (topics.PLAYBACK_EVENTS, b'{"event_id":"e","ts":"yesterday"}', "RFC 3339"),
        (topics.PLAYBACK_EVENTS, b'{"event_id":"e","ts":1700000000}', "out of range"),
        (topics.PLAYBACK_EVENTS, b'{"ts":1700000000000}', "event_id"),
        (topics.QOE_SESSIONS, b'{"session_id":"s","ts":1700000000000}', "start_ts"),
        (topics.QOE_METRICS, b'{"window_start":1700000000000}', "group"),
        (topics.ALERTS, b'{"ts":1700000000000,"rule":"r"}', "status"),
    ],
)
def test_rejections_name_the_reason(encoder: Encoder, topic: str, raw: bytes, needle: str) -> None:
    with pytest.raises(Rejected) as info:
        encoder.encode(f"x.{topic}", raw)
    assert needle in info.value.reason


def test_ndjson_line_pair() -> None:
    enc_ = Encoder.for_settings(lambda n: n, ("playback",), "")
    action = enc_.encode(topics.PLAYBACK_EVENTS, b'{"event_id":"a\\"b","ts":1700000000000}')
    meta, source, tail = action.ndjson().split(b"\n")
    assert orjson.loads(meta) == {"index": {"_index": "playscope-playback-2023.11.14", "_id": 'a"b'}}
    assert orjson.loads(source)["event_id"] == 'a"b'
    assert tail == b""


@pytest.mark.parametrize("topic", [topics.QOE_METRICS, topics.SERVICE_METRICS])
def test_window_actions_carry_the_revision_as_an_external_version(topic: str) -> None:
    enc_ = Encoder.for_settings(lambda n: n, ("qoe", "service"), "")
    window = {"window_start": TS, "window_end": TS + 60_000, "group": "total"}
    first = enc_.encode(topic, orjson.dumps(window))  # no revision: revision 0
    revised = enc_.encode(topic, orjson.dumps({**window, "revision": 3}))
    assert first.doc_id == revised.doc_id == window_doc_id(window)  # the revision is not in the id
    assert orjson.loads(first.ndjson().split(b"\n")[0])["index"] == {
        "_index": first.index, "_id": first.doc_id, "version": 0, "version_type": "external_gte"}
    assert orjson.loads(revised.ndjson().split(b"\n")[0])["index"]["version"] == 3


def test_other_families_are_not_versioned(encoder: Encoder) -> None:
    action = encoder.encode(f"x.{topics.QOE_SESSIONS}", orjson.dumps({"session_id": "s", "start_ts": TS,
                                                                       "revision": 2}))
    assert action.version is None
    assert "version" not in orjson.loads(action.ndjson().split(b"\n")[0])["index"]


@pytest.mark.parametrize("revision", [-1, 1.5, "1", True, None, 2**53 + 1, [1]])
def test_a_revision_that_is_not_a_small_non_negative_integer_is_rejected(encoder: Encoder,
                                                                         revision: object) -> None:
    window = {"window_start": TS, "window_end": TS + 60_000, "group": "cdn", "cdn": "c", "revision": revision}
    with pytest.raises(Rejected) as info:
        encoder.encode(f"x.{topics.QOE_METRICS}", orjson.dumps(window))
    assert info.value.field == "revision"
