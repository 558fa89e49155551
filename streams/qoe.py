"""One partition of playback events: sessions (SPEC 6) and their QoE window partials (SPEC 7).

Pure logic, no Kafka: the worker feeds decoded events with :meth:`QoePartition.ingest` and then
moves the event-time clock with :meth:`advance`. Events wait in a per-session reorder buffer
until the watermark (clock minus allowed lateness) passes them, so each session sees its events
in ``ts`` order (ties by arrival). On each advance: buffered events are applied, idle sessions
close, and only then the windows that the advance closes are cut, so an idle close is counted
in an open window.

Only time that happened counts (SPEC 7): a session's time between two events is credited when
the later event is known, to the windows it spans, closed ones included (a window closing while
a session's next event waits in the reorder buffer gets that session's time up to its end). A closed window
that receives time or a count is reported again (``Output.windows`` carries it once more; the
merger gives it the next revision). Closed windows are kept for revisions while an open session
can still reach them: no session stays open longer than ``idle_ms`` after its last event.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from streams.session import ENDED, Session
from streams.windows import QoeWindows, window_start


@dataclass
class Output:
    """What an advance produced: session summaries and closed window partials."""

    summaries: list[dict[str, Any]] = field(default_factory=list)
    # (window_start, groups): windows that closed, and closed windows revised since reported
    windows: list[tuple[int, dict[str, dict[str, Any]]]] = field(default_factory=list)
    # events whose application raised, with the exception: refused alone, the rest goes on
    rejected: list[tuple[dict[str, Any], BaseException]] = field(default_factory=list)
    after_close: int = 0


@dataclass
class IngestStats:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    after_close: int = 0
    # events too far behind their session to be checked for duplicates: refused, with the reason
    refused: list[tuple[dict[str, Any], str]] = field(default_factory=list)


class QoePartition:
    def __init__(
        self, window_ms: int, lateness_ms: int, idle_ms: int, tombstone_ms: int, dedup_ms: int = 600_000
    ) -> None:
        self.window_ms = window_ms
        self.lateness_ms = lateness_ms
        self.idle_ms = idle_ms
        self.tombstone_ms = tombstone_ms
        # Event ids are remembered for this long behind their session's newest event; an event
        # older than that cannot be checked for duplicates and is refused rather than guessed.
        self.dedup_ms = max(dedup_ms, lateness_ms)
        self.clock: int | None = None
        self.frontier: int | None = None  # every window ending at or before this is closed
        # Window of the earliest event buffered when the frontier was set: empty windows before
        # it are not reported (which ones would depend on how the first batch was cut).
        self.origin: int | None = None
        self.offsets: dict[str, int] = {}
        self.seq = 0
        self.sessions: dict[str, Session] = {}
        self.ids: dict[str, dict[str, int]] = {}  # session -> event id -> ts
        self.pending: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}
        self.tombstones: dict[str, int] = {}
        self.windows = QoeWindows(window_ms)
        self._due: list[tuple[int, int, str]] = []  # (ts, seq, sid) of buffered events
        self._idle: list[tuple[int, str]] = []  # (deadline, sid)
        # Sessions touched since the last snapshot: only their state entries are written again.
        self._dirty: set[str] = set()

    # -- input -----------------------------------------------------------------------------
    def ingest(self, event: dict[str, Any], stats: IngestStats) -> None:
        """Buffer one validated event (``ts`` in epoch ms) and move the clock to its ``ts``."""
        sid = event["session_id"]
        ts = int(event["ts"])
        if sid in self.tombstones:
            stats.after_close += 1
            return
        eid = event["event_id"]
        seen = self.ids.get(sid)
        if seen is None:
            seen = self.ids[sid] = {}
        elif eid in seen:
            stats.duplicates += 1
            return
        else:
            session = self.sessions.get(sid)
            if session is not None and ts < session.last_ts - self.dedup_ms:
                stats.refused.append((event, f"{(session.last_ts - ts) // 1000} s behind its session's newest "
                                             f"event, beyond the duplicate check ({self.dedup_ms // 1000} s)"))
                return
        seen[eid] = ts
        self._dirty.add(sid)
        stats.accepted += 1
        late = self.frontier is not None and ts < self.frontier
        stats.late += late
        event["_late"] = late  # ours: a client's own "_late" field is overwritten
        self.seq += 1
        heapq.heappush(self.pending.setdefault(sid, []), (ts, self.seq, event))
        heapq.heappush(self._due, (ts, self.seq, sid))
        if self.clock is None or ts > self.clock:
            self.clock = ts

    def tick(self, advance_ms: int) -> None:
        """A quiet partition's clock moves on by the wall time that passed."""
        if self.clock is not None and advance_ms > 0:
            self.clock += advance_ms

    # -- clock -----------------------------------------------------------------------------
    def advance(self) -> Output:
        out = Output()
        if self.clock is None:
            return out
        watermark = self.clock - self.lateness_ms
        if self.frontier is None:
            earliest = self._earliest_due(watermark)
            self.frontier = self.windows.frontier = window_start(min(watermark, earliest), self.window_ms)
            self.origin = window_start(earliest, self.window_ms)
        self._release(watermark, out)
        self._close_idle(watermark, out)
        self._close_windows(watermark, out)
        out.windows.extend(self.windows.pop_revised())
        self.windows.expire(watermark - self.idle_ms)
        self._purge_tombstones(watermark)
        return out

    def _earliest_due(self, default: int) -> int:
        return self._due[0][0] if self._due else default

    def _release(self, watermark: int, out: Output) -> None:
        while self._due and self._due[0][0] <= watermark:
            _, _, sid = heapq.heappop(self._due)
            queue = self.pending.get(sid)
            while queue and queue[0][0] <= watermark:
                ts, _, event = heapq.heappop(queue)
                try:
                    self._apply(sid, ts, event, out)
                except Exception as exc:  # one event must not stop the partition
                    event.pop("_late", None)
                    out.rejected.append((event, exc))
            if queue is not None and not queue:
                del self.pending[sid]

    def _apply(self, sid: str, ts: int, event: dict[str, Any], out: Output) -> None:
        if sid in self.tombstones:
            out.after_close += 1  # buffered behind the event that closed the session
            return
        session = self.sessions.get(sid)
        if session is not None and ts - session.last_ts > self.idle_ms:
            # The session idled out before this event (SPEC 6), whatever order the batch came in.
            session.close_idle(self.idle_ms, self.windows)
            self._finish(session, out)
            return
        new = session is None
        if session is None:
            session = self.sessions[sid] = Session(sid)
        # Beyond the allowed lateness, order can no longer be restored: the event is applied at
        # the session's position, and never before the oldest window still open to revisions.
        horizon = self.windows.oldest_open_to_contributions()
        if horizon is None:
            horizon = ts
        floor = max(session.pos, session.last_ts, horizon) if session.start_ts is not None else horizon
        effective = ts
        if ts < floor:
            effective = floor
            event = {**event, "ts": effective}
        self._dirty.add(sid)
        session.apply(event, self.windows)
        if event.get("_late"):
            self.windows.count(effective, "late_events", session.wdims)
        if session.state == ENDED:
            self._finish(session, out)
        elif new:
            # One idle entry per session; _close_idle re-queues it when the session moved on.
            heapq.heappush(self._idle, (session.last_ts + self.idle_ms, sid))

    def _close_idle(self, watermark: int, out: Output) -> None:
        while self._idle and self._idle[0][0] <= watermark:
            deadline, sid = heapq.heappop(self._idle)
            session = self.sessions.get(sid)
            if session is None:
                continue
            due = session.last_ts + self.idle_ms
            if due != deadline:
                heapq.heappush(self._idle, (due, sid))
                continue
            session.close_idle(self.idle_ms, self.windows)
            self._finish(session, out)

    def _finish(self, session: Session, out: Output) -> None:
        self._dirty.add(session.sid)
        out.summaries.append(session.summary())
        del self.sessions[session.sid]
        self.ids.pop(session.sid, None)
        self.tombstones[session.sid] = int(session.end_ts or session.last_ts)

    def _close_windows(self, watermark: int, out: Output) -> None:
        assert self.frontier is not None
        while self.frontier + self.window_ms <= watermark:
            end = self.frontier + self.window_ms
            self._accrue_known(end)
            if self.origin is None or self.frontier >= self.origin:
                self.windows.windows.setdefault(self.frontier, {})  # reported even when empty
            out.windows.extend(self.windows.pop_closed(end))
            self.frontier = self.windows.frontier = end

    def _accrue_known(self, end: int) -> None:
        """Credit a closing window with the time of sessions whose next event is already here.

        Everything up to the watermark has been applied, so a session with a buffered event at
        or after ``end`` stays in its current state until ``end``: an event before it would be
        late. That time happened; crediting it now spares a revision. A session with no later
        event buffered gets nothing (it may have gone silent), nor one whose next event comes
        after its idle timeout (it closes before that event)."""
        for sid, queue in self.pending.items():
            session = self.sessions.get(sid)
            if session is not None and queue and queue[0][0] >= end and queue[0][0] - session.last_ts <= self.idle_ms:
                session.accrue_to(end, self.windows)
                self._dirty.add(sid)

    def _purge_tombstones(self, watermark: int) -> None:
        if len(self.tombstones) > 0:
            horizon = watermark - self.tombstone_ms
            stale = [sid for sid, end in self.tombstones.items() if end < horizon]
            for sid in stale:
                del self.tombstones[sid]
            self._dirty.update(stale)

    # -- state -----------------------------------------------------------------------------
    # The state is one small meta value per partition (clock, offsets, windows) and one entry per
    # session (its state, event ids, buffered events, or its tombstone), so a batch writes only
    # what it changed: the meta and the entries of the sessions it touched.
    def encode_session(self, sid: str) -> dict[str, Any] | None:
        """The state entry of one session, or None when there is nothing left to keep."""
        end = self.tombstones.get(sid)
        if end is not None:
            return {"tombstone": end}
        session = self.sessions.get(sid)
        queue = self.pending.get(sid)
        if session is None and not queue:
            return None
        ids = self.ids.get(sid)
        if ids and session is not None and session.start_ts is not None:
            horizon = session.last_ts - self.dedup_ms
            if len(ids) > 16 and min(ids.values()) < horizon:
                self.ids[sid] = ids = {e: t for e, t in ids.items() if t >= horizon}
        return {
            "session": None if session is None else session.to_dict(),
            "ids": ids or {},
            "pending": [list(p) for p in queue or ()],
        }

    def session_changes(self) -> list[tuple[str, dict[str, Any] | None]]:
        """Entries of the sessions touched since the last call (None: delete the entry)."""
        changes = [(sid, self.encode_session(sid)) for sid in self._dirty]
        self._dirty.clear()
        return changes

    def meta_dict(self) -> dict[str, Any]:
        return {
            "clock": self.clock,
            "frontier": self.frontier,
            "origin": self.origin,
            "offsets": self.offsets,
            "seq": self.seq,
            "windows": self.windows.to_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole state in one value (tests, tools); the worker writes meta and entries apart."""
        self._dirty.clear()
        sids = set(self.sessions) | set(self.pending) | set(self.tombstones)
        entries = {sid: self.encode_session(sid) for sid in sorted(sids)}
        return {**self.meta_dict(), "sessions": {sid: e for sid, e in entries.items() if e is not None}}

    def load(self, raw: dict[str, Any]) -> None:
        """Restore from :meth:`to_dict`'s shape: the meta plus ``sessions``, sid -> entry."""
        self.clock = raw["clock"]
        self.frontier = raw["frontier"]
        self.origin = raw.get("origin")
        self.offsets = dict(raw["offsets"])
        self.seq = raw["seq"]
        entries: dict[str, dict[str, Any]] = raw.get("sessions") or {}
        self._dirty = set()
        self.tombstones = dict(raw.get("tombstones") or {})  # state written before entries held them
        self.sessions, self.ids, self.pending = {}, {}, {}
        for sid, entry in entries.items():
            if "tombstone" in entry:
                self.tombstones[sid] = entry["tombstone"]
                continue
            if entry.get("session") is not None:
                self.sessions[sid] = Session.from_dict(entry["session"])
            ids = entry.get("ids")
            if ids:
                self.ids[sid] = dict(ids) if isinstance(ids, dict) else dict.fromkeys(ids, 0)
            if entry.get("pending"):
                queue = [(p[0], p[1], p[2]) for p in entry["pending"]]
                heapq.heapify(queue)
                self.pending[sid] = queue
        self.windows.load(raw["windows"])
        self.windows.frontier = self.frontier
        self._due = [(p[0], p[1], sid) for sid, q in self.pending.items() for p in q]
        heapq.heapify(self._due)
        self._idle = [(s.last_ts + self.idle_ms, sid) for sid, s in self.sessions.items() if s.start_ts]
        heapq.heapify(self._idle)
