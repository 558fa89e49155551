"""Revised windows (SPEC 7) through the evaluator (no I/O): a revision is judged again, can start
or clear a condition, never repeats a notification, and ``for`` counts windows, not revisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from alerts.evaluator import Evaluator
from alerts.loader import load_rules
from alerts.service import parse_window

W = 60_000
T0 = 1_760_000_000_000 // W * W

RULES = """
rules:
  - {name: for1, source: qoe, metric: rebuffer_ratio, group_by: [cdn], op: ">", threshold: 0.05,
     min_volume: 20}
  - {name: for2, source: qoe, metric: rebuffer_ratio, group_by: [cdn], op: ">", threshold: 0.05,
     for: 2, min_volume: 20}
  - {name: for3, source: qoe, metric: rebuffer_ratio, group_by: [cdn], op: ">", threshold: 0.05,
     for: 3, min_volume: 20}
  - {name: silent, type: absent, source: qoe, group_by: [cdn], for: 3}
"""


def qoe(i: int, revision: int | None = None, ratio: float = 0.2, cdn: str = "a", attempts: int = 50
        ) -> dict[str, Any]:
    record: dict[str, Any] = {"window_start": T0 + i * W, "window_end": T0 + (i + 1) * W, "group": "cdn",
                              "cdn": cdn, "attempts": attempts, "rebuffer_ratio": ratio}
    if revision is not None:
        record["revision"] = revision
    return record


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def make(rules_file: Path, **kwargs: Any) -> Evaluator:
    return Evaluator(load_rules(rules_file), wall_ms=lambda: 1_000_000, **kwargs)


def changes(ev: Evaluator, rule: str, *records: dict[str, Any]) -> list[tuple[str, int]]:
    """(status, window index) of the changes of ``rule`` the records cause, in order."""
    out = []
    for record in records:
        out += [(c.doc["status"], (c.doc["window_start"] - T0) // W)
                for c in ev.observe("qoe", record) if c.doc["rule"] == rule]
    return out


CLEAR = 0.01


def test_a_breaching_window_revised_to_clear_resolves_once(rules_file: Path) -> None:
    ev = make(rules_file)
    assert changes(ev, "for1", qoe(0)) == [("firing", 0)]
    assert changes(ev, "for1", qoe(0, 1, ratio=CLEAR)) == [("resolved", 0)]
    assert changes(ev, "for1", qoe(0, 1, ratio=CLEAR)) == []  # the same revision again
    assert changes(ev, "for1", qoe(0, 0)) == []  # a replay of the older revision: stale
    assert ev.states["for1|cdn=a"].status == "ok"


def test_a_revision_can_start_a_condition_and_keeping_it_sends_nothing(rules_file: Path) -> None:
    ev = make(rules_file)
    assert changes(ev, "for1", qoe(0, ratio=CLEAR)) == []
    assert changes(ev, "for1", qoe(0, 1)) == [("firing", 0)]
    assert changes(ev, "for1", qoe(0, 2, ratio=0.3)) == []  # still breaching: no second firing
    # the window the firing rests on turns out too quiet to judge: the firing has no basis left
    assert changes(ev, "for1", qoe(0, 3, attempts=5)) == [("resolved", 0)]


def test_for_counts_windows_not_revisions(rules_file: Path) -> None:
    ev = make(rules_file)
    assert changes(ev, "for3", *(qoe(0, r) for r in range(4))) == []
    assert changes(ev, "for3", qoe(1, 0), qoe(1, 1)) == []
    assert changes(ev, "for3", qoe(2, 0)) == [("firing", 2)]  # the third distinct window
    assert changes(ev, "for3", qoe(2, 1), qoe(1, 2), qoe(0, 4)) == []


def test_revising_an_older_window_rejudges_the_streak(rules_file: Path) -> None:
    ev = make(rules_file)
    assert changes(ev, "for3", qoe(0), qoe(1), qoe(2)) == [("firing", 2)]
    assert changes(ev, "for3", qoe(3, attempts=5)) == []  # a quiet window: no evidence either way
    # window 1 was the firing's basis; corrected, it breaks the run and nothing later makes one
    assert changes(ev, "for3", qoe(1, 1, ratio=CLEAR)) == [("resolved", 1)]
    assert changes(ev, "for3", qoe(1, 2, ratio=CLEAR)) == []
    # corrected back: the run 0-1-2 is whole again, a new firing (a new state, not a repeat)
    assert changes(ev, "for3", qoe(1, 3)) == [("firing", 2)]


def test_revising_an_older_window_that_later_windows_outweigh_sends_nothing(rules_file: Path) -> None:
    ev = make(rules_file)
    assert changes(ev, "for2", qoe(0), qoe(1), qoe(2), qoe(3)) == [("firing", 1)]
    # window 0 was not breaching after all: the run 1-2-3 still holds the alert
    assert changes(ev, "for2", qoe(0, 1, ratio=CLEAR)) == []
    assert changes(ev, "for2", qoe(1, 1, ratio=CLEAR)) == []  # 2-3 still a run of 2
    assert changes(ev, "for2", qoe(2, 1, ratio=CLEAR)) == [("resolved", 2)]  # 3 alone is not


def test_revisions_survive_a_restart(rules_file: Path) -> None:
    ev = make(rules_file)
    changes(ev, "for1", qoe(0), qoe(0, 1, ratio=0.3))
    saved = [(k, ev.snapshot(k)) for k in ev.take_dirty()]
    again = make(rules_file)
    again.restore(saved)
    assert changes(again, "for1", qoe(0, 0), qoe(0, 1, ratio=0.3)) == []  # re-read after the restart
    assert changes(again, "for1", qoe(0, 2, ratio=CLEAR)) == [("resolved", 0)]


def test_state_saved_without_revisions_still_loads(rules_file: Path) -> None:
    ev = make(rules_file)
    changes(ev, "for1", qoe(0))
    (key,) = [k for k in ev.take_dirty() if k.startswith("for1|")]
    old = ev.snapshot(key)
    assert old is not None
    for name in ("base_status", "base_run", "base_end"):
        del old[name]
    old["windows"] = {k: v[:3] for k, v in old["windows"].items()}  # [end, value, verdict]
    again = make(rules_file)
    again.restore([(key, old)])
    assert changes(again, "for1", qoe(0)) == []
    assert changes(again, "for1", qoe(0, 1, ratio=CLEAR)) == [("resolved", 0)]


def test_forgotten_windows_keep_their_verdict_in_the_base(rules_file: Path) -> None:
    ev = make(rules_file, horizon_ms=0)  # remember only the last for + 4 windows
    assert changes(ev, "for1", qoe(0)) == [("firing", 0)]
    # many quiet windows: window 0 is forgotten, yet the alert it raised still stands
    assert changes(ev, "for1", *(qoe(i, attempts=1) for i in range(1, 12))) == []
    state = ev.states["for1|cdn=a"]
    assert 0 not in {(s - T0) // W for s in state.windows} and state.base_status == "firing"
    assert changes(ev, "for1", qoe(0, 1, ratio=CLEAR)) == []  # too old to judge again
    assert changes(ev, "for1", qoe(12, ratio=CLEAR)) == [("resolved", 12)]


def test_the_horizon_keeps_windows_a_revision_can_reach(rules_file: Path) -> None:
    ev = make(rules_file, horizon_ms=10 * W)
    changes(ev, "for1", qoe(0), *(qoe(i, attempts=1) for i in range(1, 11)))
    assert changes(ev, "for1", qoe(0, 1, ratio=CLEAR)) == [("resolved", 0)]  # 10 windows back


def test_for_absent_a_revision_is_not_a_new_window(rules_file: Path) -> None:
    ev = make(rules_file)
    # b reports windows 0-6; a stops after window 2
    records = [qoe(i, cdn="a") for i in range(3)] + [qoe(i, cdn="b") for i in range(7)]
    assert changes(ev, "silent", *records) == [("firing", 3)]  # silent since window 3 (b's window 5)
    assert changes(ev, "silent", qoe(2, 1, cdn="a"), qoe(1, 1, cdn="a")) == []  # revisions: still silent
    # a revision of window 3 shows a was there a little longer: its silence is still 3 windows
    assert changes(ev, "silent", qoe(3, 1, cdn="a")) == []
    # b's revisions do not move the stream on
    assert changes(ev, "silent", qoe(6, 1, cdn="b"), qoe(6, 2, cdn="b")) == []
    assert changes(ev, "silent", qoe(7, cdn="a")) == [("resolved", 7)]


@pytest.mark.parametrize("revision", [-1, 1.5, "2", True, None])
def test_a_bad_revision_is_refused_by_the_service(revision: object) -> None:
    with pytest.raises(ValueError, match="revision"):
        parse_window(orjson.dumps(qoe(0) | {"revision": revision}))


def test_a_window_without_revision_is_revision_0() -> None:
    assert "revision" not in parse_window(orjson.dumps(qoe(0)))
