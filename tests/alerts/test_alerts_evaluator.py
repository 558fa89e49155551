"""The evaluator's logic on window records (no I/O): for, min_volume, order, duplicates, absent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alerts.evaluator import Evaluator
from alerts.loader import load_rules

HERE = Path(__file__).parent
W = 60_000
T0 = 1_760_000_000_000 // W * W


def qoe(i: int, cdn: str = "oca-7", ratio: float = 0.2, attempts: int = 50, **extra: Any) -> dict[str, Any]:
    start = T0 + i * W
    return {"window_start": start, "window_end": start + W, "group": "cdn", "cdn": cdn,
            "attempts": attempts, "rebuffer_ratio": ratio, **extra}  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def make(clock: Clock | None = None) -> Evaluator:
    return Evaluator(load_rules(HERE / "spec9_rules.yaml"), wall_ms=clock or Clock(), grace_ms=70_000)


def statuses(ev: Evaluator, records: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    out = []
    for r in records:
        out += [(c.doc["rule"], c.doc["status"], c.doc["window_start"]) for c in ev.observe("qoe", r)]
    return out


def test_fires_after_exactly_for_windows_then_resolves() -> None:
    ev = make()
    assert statuses(ev, [qoe(0)]) == []
    assert statuses(ev, [qoe(1)]) == [("cdn-rebuffering", "firing", T0 + W)]
    assert statuses(ev, [qoe(2)]) == []  # still firing: no second notification
    assert statuses(ev, [qoe(3, ratio=0.01)]) == [("cdn-rebuffering", "resolved", T0 + 3 * W)]


def test_below_min_volume_is_skipped_and_breaks_the_run() -> None:
    ev = make()
    assert statuses(ev, [qoe(0), qoe(1, attempts=5), qoe(2)]) == []
    assert statuses(ev, [qoe(3)]) == [("cdn-rebuffering", "firing", T0 + 3 * W)]
    # a quiet window while firing is no evidence the problem is gone
    assert statuses(ev, [qoe(4, attempts=1, ratio=0.0)]) == []


def test_duplicate_window_counts_once() -> None:
    ev = make()
    assert statuses(ev, [qoe(0), qoe(0), qoe(0)]) == []
    assert len(statuses(ev, [qoe(1)])) == 1


def test_windows_judged_in_window_order_not_arrival_order() -> None:
    ev = make()
    # 0 and 2 breach, 1 arrives last and fills the gap: the run 1-2 fires on window 2
    assert statuses(ev, [qoe(0, ratio=0.0), qoe(2)]) == []
    assert statuses(ev, [qoe(1)]) == [("cdn-rebuffering", "firing", T0 + 2 * W)]
    # a late clear window is judged where it belongs: 3 clears, and 4 alone is a run of 1
    assert statuses(ev, [qoe(4)]) == []
    assert statuses(ev, [qoe(3, ratio=0.0)]) == [("cdn-rebuffering", "resolved", T0 + 3 * W)]
    assert statuses(ev, [qoe(5)]) == [("cdn-rebuffering", "firing", T0 + 5 * W)]  # the run 4-5


def test_one_alert_per_group() -> None:
    ev = make()
    got = statuses(ev, [qoe(0, "a"), qoe(0, "b"), qoe(1, "a"), qoe(1, "b"), qoe(2, "a"), qoe(2, "b")])
    assert sorted(got) == [("cdn-rebuffering", "firing", T0 + W)] * 2
    assert {s.group_key for s in ev.firing()} == {"cdn=a", "cdn=b"}


def test_other_groups_are_ignored() -> None:
    ev = make()
    rec = qoe(0) | {"group": "cdn+country", "country": "FR"}
    assert statuses(ev, [rec, rec | {"window_start": T0 + W, "window_end": T0 + 2 * W}]) == []


def test_absent_on_stream_time_fires_in_backfill() -> None:
    ev = make()
    records = [qoe(i, "a", ratio=0) for i in range(3)] + [qoe(i, "b", ratio=0) for i in range(6)]
    got = statuses(ev, records)
    assert got == [("cdn-silent", "firing", T0 + 3 * W)]  # a stopped after window 2; 3 windows later
    doc_groups = [s.group for s in ev.firing()]
    assert doc_groups == [{"cdn": "a"}]
    assert statuses(ev, [qoe(6, "a", ratio=0)]) == [("cdn-silent", "resolved", T0 + 6 * W)]


def test_absent_wall_clock_fallback_when_everything_is_silent() -> None:
    clock = Clock()
    ev = make(clock)
    statuses(ev, [qoe(0, "a", ratio=0)])
    clock.now += 70_000 + 2 * W
    assert ev.tick() == []
    clock.now += W
    assert [(c.doc["rule"], c.doc["status"]) for c in ev.tick()] == [("cdn-silent", "firing")]


def test_time_held_while_cut_off_from_kafka_does_not_count_as_silence() -> None:
    clock = Clock()
    ev = make(clock)
    statuses(ev, [qoe(0, "a", ratio=0)])
    clock.now += 70_000 + 3 * W  # enough silence to fire ...
    ev.hold(2 * W)  # ... but two windows of it the service was not connected or behind
    assert ev.tick() == []
    clock.now += 2 * W
    assert [(c.doc["rule"], c.doc["status"]) for c in ev.tick()] == [("cdn-silent", "firing")]


def test_state_round_trip_keeps_dedup_and_status() -> None:
    ev = make()
    statuses(ev, [qoe(0), qoe(1)])
    saved = [(k, ev.snapshot(k)) for k in ev.take_dirty()]
    again = make()
    again.restore(saved)
    assert statuses(again, [qoe(0), qoe(1)]) == []  # redelivered after a restart: nothing new
    assert statuses(again, [qoe(2, ratio=0.0)]) == [("cdn-rebuffering", "resolved", T0 + 2 * W)]


def test_alert_document_shape() -> None:
    ev = make()
    ev.observe("qoe", qoe(0))
    (change,) = ev.observe("qoe", qoe(1, ratio=0.25))
    doc = change.doc
    for key in ("status", "rule", "severity", "group", "value", "threshold", "window_start",
                "window_end", "summary", "ts", "group_key"):  # fmt: skip
        assert key in doc
    assert doc["group"] == {"cdn": "oca-7"} and doc["value"] == 0.25 and doc["threshold"] == 0.05
    assert "oca-7" in doc["summary"] and doc["severity"] == "critical"


def test_group_values_are_percent_encoded_in_the_dashboard_link() -> None:
    ev = Evaluator(load_rules(HERE / "spec9_rules.yaml"), wall_ms=Clock(), grace_ms=70_000,
                   dashboard_url="https://grafana.example/d/qoe?var-cdn={cdn}&from={window_start}")
    hostile = "a&from=0#x"
    ev.observe("qoe", qoe(0, cdn=hostile))
    (change,) = ev.observe("qoe", qoe(1, cdn=hostile, ratio=0.25))
    assert change.doc["dashboard_url"] == f"https://grafana.example/d/qoe?var-cdn=a%26from%3D0%23x&from={T0 + W}"
