"""Demo-like documents in the shapes of SPEC 6-9, written into the real cluster.

Window records are derived from per-cell counts (cdn x isp x device x country per window) so
every group is consistent with the others, the way the streams worker produces them. CDN
``oca-7`` rebuffers heavily and fails more in the incident windows; service ``api`` returns
5xx in the same windows. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from playscope.indices import FAMILIES, window_doc_id

CDNS = ("oca-7", "akam-2", "fastly-1")
ISPS = ("comcast", "orange", "vodafone")
DEVICES = ("web", "android", "tv")
COUNTRIES = ("US", "FR", "DE")
QOE_GROUPS = (("cdn",), ("isp",), ("device",), ("country",), ("cdn", "country"), ())
SERVICES = {"api": ("/v1/play", "/v1/catalog"), "auth": ("/login", "/token"), "origin": ("/seg",)}


@dataclass
class DemoData:
    start_ms: int
    end_ms: int
    window_ms: int
    docs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # family -> docs

    def count(self, family: str) -> int:
        return len(self.docs.get(family, []))


def _cell_counts(rng: random.Random, window: int, incident: range, cdn: str) -> dict[str, float]:
    attempts = rng.randint(2, 6)
    plays = max(1, attempts - rng.randint(0, 1))
    watched = plays * rng.randint(40_000, 58_000)
    bad = window in incident and cdn == "oca-7"
    rebuffer = int(watched * (rng.uniform(0.08, 0.15) if bad else rng.uniform(0.0, 0.02)))
    ended = rng.randint(1, attempts)
    vsf = 1 if bad and rng.random() < 0.6 else (1 if rng.random() < 0.05 else 0)
    vpf = 1 if bad and rng.random() < 0.3 else 0
    vsf, vpf = min(vsf, ended), min(vpf, max(0, ended - vsf))
    ebvs = 1 if ended - vsf - vpf > 1 and rng.random() < 0.2 else 0
    return {
        "attempts": attempts, "plays": plays, "ended": ended, "vsf": vsf, "vpf": vpf, "ebvs": ebvs,
        "completed": ended - vsf - vpf - ebvs, "watched_ms": watched, "rebuffer_ms": rebuffer,
        "play_ms": watched - rebuffer - rng.randint(500, 2000), "rebuffer_count": rng.randint(1, 3) if rebuffer else 0,
        "late_events": rng.randint(0, 1), "startup": rng.uniform(600, 1500) * (2.5 if bad else 1.0),
        "bitrate": rng.uniform(2500, 6000) * (0.5 if bad else 1.0),
    }


def _qoe_windows(rng: random.Random, start_ms: int, windows: int, window_ms: int, incident: range
                 ) -> list[dict[str, Any]]:
    docs = []
    dims = ("cdn", "isp", "device", "country")
    for w in range(windows):
        ws = start_ms + w * window_ms
        cells = [(dict(zip(dims, combo, strict=True)), _cell_counts(rng, w, incident, combo[0]))
                 for combo in product(CDNS, ISPS, DEVICES, COUNTRIES) if rng.random() < 0.5]
        for group in QOE_GROUPS:
            merged: dict[tuple[str, ...], list[dict[str, float]]] = {}
            for values, counts in cells:
                merged.setdefault(tuple(values[d] for d in group), []).append(counts)
            for key, parts in merged.items():
                total = {k: sum(p[k] for p in parts) for k in parts[0]}
                startups = sorted(p["startup"] for p in parts)
                doc: dict[str, Any] = {
                    "window_start": ws, "window_end": ws + window_ms, "group": "+".join(group) or "total",
                    **dict(zip(group, key, strict=True)),
                    **{k: int(v) for k, v in total.items() if k not in ("startup", "bitrate")},
                    "startup_ms_p50": round(startups[len(startups) // 2], 1),
                    "startup_ms_p95": round(startups[min(len(startups) - 1, int(len(startups) * 0.95))], 1),
                    "avg_bitrate_kbps": round(sum(p["bitrate"] * p["play_ms"] for p in parts)
                                              / max(1, sum(p["play_ms"] for p in parts)), 1),
                }
                doc["rebuffer_ratio"] = doc["rebuffer_ms"] / doc["watched_ms"] if doc["watched_ms"] else 0.0
                doc["failure_rate"] = (doc["vsf"] + doc["vpf"]) / doc["ended"] if doc["ended"] else 0.0
                docs.append(doc)
    return docs


def _service_windows(rng: random.Random, start_ms: int, windows: int, window_ms: int, incident: range
                     ) -> list[dict[str, Any]]:
    docs = []
    for w in range(windows):
        ws = start_ms + w * window_ms
        for service, routes in SERVICES.items():
            route_docs = []
            for route in routes:
                requests = rng.randint(200, 600)
                bad = w in incident and service == "api"
                s5 = int(requests * (rng.uniform(0.1, 0.25) if bad else rng.uniform(0.0, 0.01))) + 1
                s4 = rng.randint(1, 10)
                s3 = rng.randint(1, 5)
                p50 = rng.uniform(10, 40) * (3 if bad else 1)
                route_docs.append({
                    "window_start": ws, "window_end": ws + window_ms, "group": "service+route",
                    "service": service, "route": route, "requests": requests, "errors": s5,
                    "error_rate": s5 / requests, "latency_ms_p50": round(p50, 2),
                    "latency_ms_p95": round(p50 * 3.1, 2), "latency_ms_p99": round(p50 * 6.3, 2),
                    "by_status": {"2xx": requests - s5 - s4 - s3, "3xx": s3, "4xx": s4, "5xx": s5},
                })
            req = sum(d["requests"] for d in route_docs)
            err = sum(d["errors"] for d in route_docs)
            docs += route_docs
            docs.append({
                "window_start": ws, "window_end": ws + window_ms, "group": "service", "service": service,
                "requests": req, "errors": err, "error_rate": err / req,
                **{f"latency_ms_{q}": max(d[f"latency_ms_{q}"] for d in route_docs) for q in ("p50", "p95", "p99")},
                "by_status": {c: sum(d["by_status"][c] for d in route_docs) for c in ("2xx", "3xx", "4xx", "5xx")},
            })
    return docs


def _sessions(rng: random.Random, start_ms: int, end_ms: int, count: int) -> list[dict[str, Any]]:
    docs = []
    for i in range(count):
        st = rng.randint(start_ms, end_ms - 60_000)
        cdn = rng.choice(CDNS)
        outcome = rng.choices(("completed", "ebvs", "vsf", "vpf"), weights=(80, 8, 7, 5))[0]
        played = outcome in ("completed", "vpf")
        watched = rng.randint(20_000, 600_000) if played else rng.randint(1000, 8000)
        rebuffer = int(watched * rng.uniform(0, 0.12 if cdn == "oca-7" else 0.02)) if played else 0
        docs.append({
            "session_id": f"s-{i:05d}", "start_ts": st, "end_ts": st + watched + rng.randint(0, 30_000),
            "startup_ms": rng.randint(400, 4000) if played else None,
            "play_ms": watched - rebuffer if played else 0, "rebuffer_ms": rebuffer, "seek_ms": 0,
            "paused_ms": rng.randint(0, 10_000), "watched_ms": watched, "rebuffer_count": 1 if rebuffer else 0,
            "seek_count": 0, "rebuffer_ratio": rebuffer / watched, "avg_bitrate_kbps": 4200.0 if played else None,
            "bitrate_switches": rng.randint(0, 4), "outcome": outcome,
            "error_code": "MEDIA_ERR_NETWORK" if outcome in ("vsf", "vpf") else None,
            "event_count": rng.randint(5, 80), "closed_by": "error" if outcome in ("vsf", "vpf") else "end",
            "cdn": cdn, "isp": rng.choice(ISPS), "device": rng.choice(DEVICES), "country": rng.choice(COUNTRIES),
            "os": "linux", "app_version": "1.2.3", "title_id": f"t{rng.randint(1, 20)}", "profile_id": "p1",
        })
    return docs


def _alerts(start_ms: int, window_ms: int, incident: range) -> list[dict[str, Any]]:
    fire_ws = start_ms + (incident.start + 1) * window_ms
    resolve_ws = start_ms + incident.stop * window_ms
    docs = []
    for rule, source, metric, severity, group, value, threshold in (
        ("cdn-rebuffering", "qoe", "rebuffer_ratio", "critical", {"cdn": "oca-7"}, 0.11, 0.05),
        ("service-errors", "service", "error_rate", "warning", {"service": "api"}, 0.18, 0.05),
    ):
        key = ",".join(f"{k}={v}" for k, v in group.items())
        for status, ws, val in (("firing", fire_ws, value), ("resolved", resolve_ws, threshold / 4)):
            docs.append({
                "ts": ws + window_ms + 10_000, "status": status, "rule": rule, "severity": severity,
                "source": source, "metric": metric, "group": group, "group_key": key, "value": val,
                "threshold": threshold, "window_start": ws, "window_end": ws + window_ms,
                "summary": f"{'RESOLVED ' if status == 'resolved' else ''}{rule}: {key} {metric}={val:.3f}",
            })
    return docs


def build(start_ms: int, windows: int = 12, window_ms: int = 60_000, seed: int = 7) -> DemoData:
    rng = random.Random(seed)
    incident = range(windows // 3, windows // 3 + 4)
    end_ms = start_ms + windows * window_ms
    data = DemoData(start_ms, end_ms, window_ms)
    data.docs["qoe"] = _qoe_windows(rng, start_ms, windows, window_ms, incident)
    data.docs["service"] = _service_windows(rng, start_ms, windows, window_ms, incident)
    data.docs["sessions"] = _sessions(rng, start_ms, end_ms, 150)
    data.docs["alerts"] = _alerts(start_ms, window_ms, incident)
    return data


def _doc_id(family: str, doc: dict[str, Any]) -> str:
    if family in ("qoe", "service"):
        return window_doc_id(doc)
    if family == "sessions":
        return str(doc["session_id"])
    return f"{doc['rule']}|{doc['group_key']}|{doc['window_start']}|{doc['status']}"


def index(client: Any, data: DemoData, index_prefix: str) -> None:
    """Bulk-write every document into its daily index (with the test's prefix) and refresh."""
    if type(client).__module__.startswith("opensearchpy"):
        from opensearchpy import helpers
    else:
        from elasticsearch import helpers  # type: ignore[no-redef]

    actions = [
        {"_index": FAMILIES[family].index_for(doc, index_prefix), "_id": _doc_id(family, doc), "_source": doc}
        for family, docs in data.docs.items() for doc in docs
    ]
    ok, errors = helpers.bulk(client, actions, raise_on_error=False, refresh="wait_for")
    assert not errors, errors[:3]
    assert ok == len(actions)
