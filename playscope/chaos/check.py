"""The checker: the recorded history (what was acknowledged) against the final indices.

It judges only what the load generators recorded and what Elasticsearch holds at the end:

* raw events: every acknowledged ``event_id`` must be indexed (``lost`` otherwise); an id held
  by more than one document is ``duplicated``; ids indexed but never acknowledged (a request
  that failed after Kafka took part of it) are counted apart: the client sent them again;
* log lines: every ``trace_id`` written must be indexed;
* sessions: each fully acknowledged session's summary must exist once and equal the expected
  fields computed from its script (``sessions_exact``);
* windows: the ``attempts`` of the ``total`` windows must add up to the sessions started;
* alerts: one firing and one resolved notification per incident, none twice.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

from playscope.chaos.load import SessionScript

SESSION_FIELDS = ("startup_ms", "rebuffer_ms", "rebuffer_count", "watched_ms", "play_ms", "event_count",
                  "outcome", "closed_by", "cdn")


def scroll(es: Any, index: str, source: list[str] | bool) -> Iterator[dict[str, Any]]:
    """Every hit of ``index`` (``_source`` limited to ``source``), a scroll page at a time."""
    resp = es.search(index=index, scroll="2m", ignore_unavailable=True, allow_no_indices=True,
                     query={"match_all": {}}, size=5000, sort=["_doc"], source=source)
    scroll_id = resp.get("_scroll_id")
    try:
        while resp["hits"]["hits"]:
            yield from resp["hits"]["hits"]
            resp = es.scroll(scroll_id=scroll_id, scroll="2m")
            scroll_id = resp.get("_scroll_id", scroll_id)
    finally:
        if scroll_id:  # best effort: a scroll that found nothing is already gone (404)
            with contextlib.suppress(Exception):
                es.clear_scroll(scroll_id=scroll_id)


def scan_ids(es: Any, index: str, field: str | None = None) -> Counter[str]:
    """How many documents hold each id (``_id``, or a keyword ``field``) in ``index``."""
    counts: Counter[str] = Counter()
    for hit in scroll(es, index, [field] if field else False):
        value = hit["_source"].get(field) if field else hit["_id"]
        if value is not None:
            counts[str(value)] += 1
    return counts


def count_docs(es: Any, index: str) -> int:
    es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
    return int(es.count(index=index, ignore_unavailable=True, allow_no_indices=True)["count"])


def check_events(acked: set[str], indexed: Counter[str]) -> dict[str, int]:
    return {
        "acknowledged": len(acked),
        "indexed": sum(1 for event_id in acked if event_id in indexed),
        "lost": sum(1 for event_id in acked if event_id not in indexed),
        "duplicated": sum(n - 1 for n in indexed.values() if n > 1),
        "unacknowledged_indexed": sum(1 for event_id in indexed if event_id not in acked),
    }


def check_logs(written: list[str], indexed: Counter[str]) -> dict[str, int]:
    return {
        "log_lines": len(written),
        "log_lines_indexed": sum(1 for trace_id in written if trace_id in indexed),
        "log_lines_lost": sum(1 for trace_id in written if trace_id not in indexed),
        "log_lines_duplicated": sum(n - 1 for n in indexed.values() if n > 1),
    }


def check_sessions(scripts: dict[str, SessionScript], acked: set[str],
                   summaries: dict[str, list[dict[str, Any]]]) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Sessions whose every event was acknowledged, against their summaries; a few mismatches
    are returned for the report."""
    expected = [s for s in scripts.values() if all(e["event_id"] in acked for e in s.events)]
    exact = 0
    duplicated = 0
    mismatches: list[dict[str, Any]] = []
    for script in expected:
        docs = summaries.get(script.session_id, [])
        duplicated += max(0, len(docs) - 1)
        want = script.expected()
        got = docs[0] if docs else None
        diff = {k: {"expected": want[k], "got": None if got is None else got.get(k)}
                for k in SESSION_FIELDS if got is None or got.get(k) != want[k]}
        if not diff:
            exact += 1
        elif len(mismatches) < 5:
            mismatches.append({"session_id": script.session_id, **diff})
    started = sum(1 for s in scripts.values() if s.events[0]["event_id"] in acked)
    return {"sessions_expected": len(expected), "sessions_exact": exact, "sessions_started": started,
            "sessions_duplicated": duplicated}, mismatches


def session_docs(es: Any, index: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for hit in scroll(es, index, ["session_id", *SESSION_FIELDS]):
        out.setdefault(str(hit["_source"].get("session_id")), []).append(hit["_source"])
    return out


def window_attempts(es: Any, index: str) -> int:
    resp = es.search(index=index, size=0, ignore_unavailable=True, allow_no_indices=True,
                     query={"term": {"group": "total"}}, aggs={"attempts": {"sum": {"field": "attempts"}}})
    return int(resp["aggregations"]["attempts"]["value"] or 0) if resp.get("aggregations") else 0


def check_alerts(notifications: list[dict[str, Any]], incidents: int) -> dict[str, int]:
    """State changes per rule and group: each status at most once per incident.

    A notification names its state change by rule, group, status and the change's instant
    (``ts``). The same change delivered again after a crash (the evaluator died between the
    channel's answer and recording it) is a redelivery, counted apart: receivers drop it by
    ``dedup_key`` and ``ts``. A second state change for one incident is a duplicate alert."""
    deliveries: Counter[tuple[str, str, str, str]] = Counter()
    for note in notifications:
        group = note.get("group_key") or note.get("group") or {}
        key = ",".join(f"{k}={v}" for k, v in sorted(group.items())) if isinstance(group, dict) else str(group)
        deliveries[(str(note.get("rule")), key, str(note.get("status")), str(note.get("ts")))] += 1
    changes: Counter[tuple[str, str, str]] = Counter(k[:3] for k in deliveries)
    return {
        "alerts_firing": sum(n for (_, _, status), n in changes.items() if status == "firing"),
        "alerts_resolved": sum(n for (_, _, status), n in changes.items() if status == "resolved"),
        "alerts_duplicated": sum(max(0, n - incidents) for n in changes.values()),
        "alerts_redelivered": sum(n - 1 for n in deliveries.values() if n > 1),
    }
