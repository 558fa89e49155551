"""CMCD v1 through a session's history: stalls with a
duration, one stall per stall across audio and video, and a first frame that holds for hls.js
and dash.js.

v1 has no play state and no time. What it has, per media request: ``bl`` (the buffer ahead when
the request was made), ``su`` (urgent: startup, seek or recovery) and ``bs`` (the buffer ran dry
since this type's previous request). The collector dates each request at its arrival, so:

* **stall start**: a buffer reported as ``bl`` at arrival ``t`` runs dry at ``t + bl`` unless
  more data comes; players fetch one object per type at a time, so when the next request of a
  type is flagged ``bs`` the data in flight came too late. The start is the latest such
  ``t + bl`` over the session's media types that lies before the flagged request (dash.js
  reports audio and video apart and the element stalls when the last of them is needed;
  hls.js has one muxed type). Without any ``bl`` the stall is counted at the flagged request.
* **stall end**: the first later request that is neither urgent nor starving (it maps to
  ``playing``); the stream processor orders the events by ``ts``, so an estimate that dates
  the start before requests already sent still ends at the right one.
* **one stall**: a ``bs`` on a type whose previous request came before the stall already
  counted was flagged for that stall (dash.js flags both its audio and its video request).
* **first frame**: the first media request that is neither urgent nor starving while every type
  that reports ``bl`` has a non-zero buffer. hls.js sends ``su`` until it plays; dash.js sends
  it on one request per type only, and its first frame needs audio and video both buffered.

All of this needs a session's requests in one process (sticky by ``sid``, or one worker); a
request for a session the process has not seen starts a fresh history (a stall then counts
at its request, without duration). Sessions are kept in a bounded LRU.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Final

from collectors.http.cmcd_events import Ignore, number

# Object types that fill a playback buffer; ``av`` (muxed) counts as video.
_MEDIA_TYPES: Final = {"a": "a", "v": "v", "av": "v"}
_NOT_MEDIA: Final = frozenset({"m", "i", "k", "c", "tt", "o"})
_RECENT: Final = 16  # content hashes remembered per session, to tell a resend from a new request


@dataclass
class V1Session:
    seen_ms: int
    last: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # type -> (arrival, bl)
    played_ms: int | None = None
    stall_flagged_ms: int | None = None  # arrival of the bs request that counted the last stall
    recent: deque[bytes] = field(default_factory=lambda: deque(maxlen=_RECENT))


@dataclass(frozen=True)
class V1Decision:
    """What one v1 request means: its own event's type, and a stall to open (its start) or not."""

    type: str
    stall_start_ms: int | None = None
    stall_estimated: bool = False


class V1Sessions:
    """Per-process memory of v1 sessions (bounded; least recently seen forgotten first)."""

    def __init__(self, max_sessions: int, ttl_ms: int, max_backdate_ms: int) -> None:
        self.max_sessions = max_sessions
        self.ttl_ms = ttl_ms
        # how far before its request a stall start may be dated: the stream processor's allowed
        # lateness, less a margin, so the start is reordered, never "late"
        self.max_backdate_ms = max_backdate_ms
        self._sessions: OrderedDict[str, V1Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def decide(self, sid: str, cmcd: dict[str, Any], received_ms: int, ignore: Ignore) -> V1Decision:
        session = self._session(sid, received_ms)
        urgent = cmcd.get("su") is True
        starving = cmcd.get("bs") is True
        kind = _media_type(cmcd)
        digest = hashlib.blake2b(repr(sorted((k, repr(v)) for k, v in cmcd.items())).encode(),
                                 digest_size=8).digest()
        if digest in session.recent:  # a resend (same content): same event id, no new history
            return V1Decision("heartbeat")
        session.recent.append(digest)
        if kind is None:  # manifests, keys, init segments: say nothing about playback
            return V1Decision("heartbeat")
        bl = number(cmcd, "bl", ignore)
        decision = V1Decision("heartbeat" if urgent or starving else "playing")
        if starving and session.played_ms is not None:
            decision = self._stall(session, kind, received_ms, decision.type)
        elif decision.type == "playing" and session.played_ms is None:
            others = (level for other, (_, level) in session.last.items() if other != kind)
            if bl == 0 or any(level == 0 for level in others):
                decision = V1Decision("heartbeat")  # not every buffer holds data yet: startup
            else:
                session.played_ms = received_ms
        session.last[kind] = (received_ms, None if bl is None else int(bl))
        return decision

    def _stall(self, session: V1Session, kind: str, now: int, own: str) -> V1Decision:
        previous = session.last.get(kind)
        flagged = session.stall_flagged_ms
        if flagged is not None and (previous is None or previous[0] <= flagged):
            return V1Decision(own)  # this type's first request since the stall already counted
        dry = [at + level for at, level in session.last.values() if level is not None and at + level <= now]
        start = max(dry) if dry else now
        floor = max(session.played_ms or 0, flagged or 0) + 1
        start = max(start, floor, now - self.max_backdate_ms)
        start = min(start, now)
        session.stall_flagged_ms = now
        return V1Decision(own, start, bool(dry))

    def _session(self, sid: str, now: int) -> V1Session:
        sessions = self._sessions
        session = sessions.get(sid)
        if session is not None and now - session.seen_ms > self.ttl_ms:
            session = None
        if session is None:
            session = V1Session(now)
            sessions[sid] = session
            while len(sessions) > self.max_sessions:
                sessions.popitem(last=False)
        else:
            session.seen_ms = now
            sessions.move_to_end(sid)
        return session


def _media_type(cmcd: dict[str, Any]) -> str | None:
    ot = cmcd.get("ot")
    if isinstance(ot, str):
        if ot in _MEDIA_TYPES:
            return _MEDIA_TYPES[ot]
        if ot in _NOT_MEDIA:
            return None
    # no (or an unknown) object type: a media request if it reports a buffer
    return "v" if "bl" in cmcd else None
