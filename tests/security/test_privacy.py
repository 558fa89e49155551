"""Privacy at the collector: keyed pseudonyms, no raw IPs, and metrics unchanged by hashing."""

from __future__ import annotations

import copy
import random
import time

import httpx
import orjson
from helpers import running_collector
from security_helpers import read_raw_topic

from collectors.http.privacy import PrivacyConfig, Pseudonymizer, normalise_ip
from playscope import topics
from playscope.config import Settings
from playscope.loadgen.simulator import Simulator
from streams.qoe import IngestStats, QoePartition
from streams.windows import qoe_record

# inside SPEC 4's clock bounds (7 days behind the receive time at most)
RECENT_TS = (int(time.time() * 1000) - 3_600_000) // 1000 * 1000

SECRET_A = "a" * 16 + "-first-secret"
SECRET_B = "b" * 16 + "-second-secret"


def test_pseudonyms_are_stable_for_one_secret_and_differ_for_another() -> None:
    a1, a2 = Pseudonymizer(PrivacyConfig(secret=SECRET_A)), Pseudonymizer(PrivacyConfig(secret=SECRET_A))
    b = Pseudonymizer(PrivacyConfig(secret=SECRET_B))
    ids = [f"profile-{i}" for i in range(2000)]
    ha = [a1.pseudonym(i) for i in ids]
    assert ha == [a2.pseudonym(i) for i in ids]  # stable (another instance, same secret)
    assert len(set(ha)) == len(ids)  # no collisions: one pseudonym per profile
    hb = [b.pseudonym(i) for i in ids]
    assert all(x != y for x, y in zip(ha, hb, strict=True))  # rotation gives new pseudonyms
    assert not set(ha) & set(hb)
    assert all(len(h) == 32 and int(h, 16) >= 0 for h in ha)


def test_ips_are_normalised_hashed_or_dropped_never_kept() -> None:
    p = Pseudonymizer(PrivacyConfig(secret=SECRET_A))
    assert normalise_ip("::ffff:203.0.113.9") == "203.0.113.9"
    assert normalise_ip("2001:DB8:0:0::1") == "2001:db8::1"
    rec = p.apply({"client_ip": "::ffff:203.0.113.9", "ip": "203.0.113.9", "profile_id": "alice"})
    assert rec["client_ip"] == rec["ip"] == p.pseudonym("203.0.113.9")
    assert rec["profile_id"] == p.pseudonym("alice")
    # Without a secret, IP fields are dropped (never stored raw); profile_id stays as sent.
    off = Pseudonymizer(PrivacyConfig())
    assert off.apply({"client_ip": "203.0.113.9", "profile_id": "alice"}) == {"profile_id": "alice"}
    # Rejected records are dead-lettered with their identifiers pseudonymised too.
    raw = b'{"profile_id": "alice", "client_ip": "203.0.113.9", "ts": "bad"'
    scrubbed = p.scrub_original(raw)
    assert b"alice" not in scrubbed and b"203.0.113.9" not in scrubbed
    assert orjson.loads(p.scrub_original(b'{"profile_id":"alice"}'))["profile_id"] == p.pseudonym("alice")


def _run_partition(events: list[dict]) -> tuple[list[dict], list]:
    part = QoePartition(window_ms=60_000, lateness_ms=10_000, idle_ms=120_000, tombstone_ms=600_000)
    stats = IngestStats()
    summaries: list[dict] = []
    windows: list = []
    for event in events:
        part.ingest(event, stats)
        out = part.advance()
        summaries += out.summaries
        windows += out.windows
    part.tick(400_000)
    out = part.advance()
    records = [qoe_record(ws, 60_000, key, agg) for ws, groups in windows + out.windows for key, agg in groups.items()]
    return summaries + out.summaries, records


def test_summaries_and_window_metrics_are_unchanged_by_hashing() -> None:
    """The pseudonym is injective on the identifiers (checked above, and 128 bits make a
    collision negligible), sessions are keyed by session_id and no window groups by
    profile_id or IP: so hashing maps every summary to itself with profile_id renamed, and
    leaves every window record exactly as it was. Checked here on the streams' pure logic."""
    start = RECENT_TS
    sim = Simulator(start, seed=11, sessions_per_s=4, mean_session_s=30)
    events = [e for e in sim.advance(start + 600_000, until_ms=start + 240_000) if "session_id" in e]
    rng = random.Random(3)
    for e in events:
        e["client_ip"] = f"198.51.100.{rng.randint(1, 254)}"
    assert len({e["session_id"] for e in events}) > 200
    p = Pseudonymizer(PrivacyConfig(secret=SECRET_A))
    hashed = [p.apply(copy.deepcopy(e)) for e in events]
    assert all(h["profile_id"] != e["profile_id"] for h, e in zip(hashed, events, strict=True))

    plain_summaries, plain_windows = _run_partition(events)
    hashed_summaries, hashed_windows = _run_partition(hashed)
    assert len(plain_summaries) > 200 and plain_windows
    assert hashed_windows == plain_windows
    mapped = [{**s, "profile_id": p.pseudonym(s["profile_id"])} for s in plain_summaries]
    assert hashed_summaries == mapped


def test_collector_sends_only_pseudonyms_to_kafka(settings: Settings) -> None:
    p = Pseudonymizer(PrivacyConfig(secret=SECRET_A))
    event = {"event_id": "priv-1", "session_id": "s-priv", "ts": RECENT_TS, "type": "session_start",
             "profile_id": "alice@example.com", "client_ip": "203.0.113.77"}
    bad = {**event, "event_id": "priv-2", "type": "nope"}
    with running_collector(settings, privacy={"secret": SECRET_A}) as url:
        resp = httpx.post(f"{url}/v1/events", json=[event, bad], timeout=30)
        assert resp.status_code == 202, resp.text
        cmcd = httpx.get(f"{url}/v1/cmcd", params={"CMCD": 'sid="s-cmcd",sta=s', "profile_id": "bob"}, timeout=30)
        assert cmcd.status_code == 202, cmcd.text
    raw = read_raw_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), 2)
    dead = read_raw_topic(settings, settings.topic(topics.DEADLETTER), 1)
    blob = b"\n".join(raw + dead)
    for secret in (b"alice@example.com", b"203.0.113.77", b"bob"):
        assert secret not in blob
    docs = {d["session_id"]: d for d in map(orjson.loads, raw)}
    assert docs["s-priv"]["profile_id"] == p.pseudonym("alice@example.com")
    assert docs["s-priv"]["client_ip"] == p.pseudonym("203.0.113.77")
    assert docs["s-cmcd"]["profile_id"] == p.pseudonym("bob")


def test_ip_fields_at_any_depth_and_otel_attributes_never_reach_kafka(settings: Settings) -> None:
    p = Pseudonymizer(PrivacyConfig(secret=SECRET_A))
    event = {"event_id": "priv-deep", "session_id": "s-deep", "ts": RECENT_TS, "type": "heartbeat",
             "ctx": {"net": {"remote_addr": "198.51.100.21"}, "hops": [{"ip": "198.51.100.22"}]}}
    otlp = {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "edge"}}]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": str(RECENT_TS * 1_000_000), "severityText": "INFO",
                                       "body": {"stringValue": "served"}, "attributes": [
            {"key": "client.address", "value": {"stringValue": "198.51.100.23"}},
            {"key": "net.peer.ip", "value": {"stringValue": "198.51.100.24"}}]}]}]}]}
    with running_collector(settings, privacy={"secret": SECRET_A}) as url:
        assert httpx.post(f"{url}/v1/events", json=[event], timeout=30).status_code == 202
        answer = httpx.post(f"{url}/v1/logs", json=otlp, timeout=30)
        assert answer.status_code == 200 and answer.json() == {}, answer.text  # OTLP: all accepted
    events = read_raw_topic(settings, settings.topic(topics.PLAYBACK_EVENTS), 1)
    logs = read_raw_topic(settings, settings.topic(topics.SERVICE_LOGS), 1)
    blob = b"\n".join(events + logs)
    for address in (b"198.51.100.21", b"198.51.100.22", b"198.51.100.23", b"198.51.100.24"):
        assert address not in blob, address
    doc = orjson.loads(events[0])
    assert doc["ctx"]["net"]["remote_addr"] == p.ip_pseudonym("198.51.100.21")
    assert doc["ctx"]["hops"][0]["ip"] == p.ip_pseudonym("198.51.100.22")
    assert p.ip_pseudonym("198.51.100.23").encode() in logs[0]
