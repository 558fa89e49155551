"""The window merger: complete only when every partition has passed the window."""

from __future__ import annotations

from streams.merge import WindowMerger, chunk_partial
from streams.windows import QoeWindows

W = 2000


def partial(attempts: int) -> dict:
    win = QoeWindows(W)
    for _ in range(attempts):
        win.count(0, "attempts", ("a", "i", "d", "c"))
    return chunk_partial(win.pop_closed(W)[0][1])[0]


def total(records: list[dict]) -> int:
    return sum(r["attempts"] for r in records if r["group"] == "total")


def test_waits_for_every_partition_and_merges() -> None:
    m = WindowMerger("qoe", W)
    m.add_partial(0, 0, 0, partial(2))
    assert m.mark(0, 2, W) == []  # partition 1 has not reported
    m.add_partial(1, 0, 0, partial(3))
    out = m.mark(1, 2, W)
    assert total(out) == 5
    assert {r["group"] for r in out} == {"cdn", "isp", "device", "country", "cdn+country", "total"}


def test_resent_partial_replaces_itself() -> None:
    m = WindowMerger("qoe", W)
    m.add_partial(0, 0, 0, partial(2))
    m.add_partial(0, 0, 0, partial(2))  # replayed after a restart
    assert total(m.mark(0, 1, W)) == 2


def test_empty_partition_never_overtaken_by_a_stale_report() -> None:
    m = WindowMerger("qoe", W)
    assert m.mark(1, 2, None) == []  # partition 1 empty, partition 0 not heard yet
    m.add_partial(0, 0, 0, partial(1))
    assert m.mark(0, 2, W) == []  # partition 1's None predates window 0's end
    assert total(m.mark(1, 2, None)) == 1  # reported empty again after it: window 0 complete


def test_state_round_trip_keeps_everything() -> None:
    import orjson

    m = WindowMerger("qoe", W)
    m.mark(1, 2, None)
    m.add_partial(0, 0, 0, partial(4))
    m.mark(0, 2, W)
    restored = WindowMerger("qoe", W)
    restored.load(orjson.loads(orjson.dumps(m.to_dict())))
    assert restored.to_dict() == m.to_dict()
    assert total(restored.mark(1, 2, None)) == 4
