"""The chaos run's own load, and the history the checker judges: what was acknowledged.

Two generators run as threads while faults are applied:

* :class:`PlaybackLoad` plays sessions live (event times are the wall clock when each event is
  due) and posts the due events of all sessions every ``tick_s`` to the collector, one request
  per tick. A request that is not answered 202 is retried (same events, same ids) before any
  later one, so a session's events reach Kafka in order. Each session's expected SPEC 6
  summary is computed here, from what was sent, by the arithmetic of its simple script.
* :class:`LogLoad` appends JSON log lines with a unique ``trace_id`` to a file the agent tails;
  a line counts as acknowledged once written and flushed.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

CDNS = ("chaos-a", "chaos-b", "chaos-bad")
INCIDENT_CDN = "chaos-bad"


@dataclass
class SessionScript:
    """One viewer: start, first frame, heartbeats, (during an incident) stalls, end."""

    session_id: str
    cdn: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def expected(self) -> dict[str, Any]:
        """The SPEC 6 summary fields this script must produce (no pauses or seeks in it)."""
        ts = [e["ts"] for e in self.events]
        first_play = next(e["ts"] for e in self.events if e["type"] == "playing")
        stalls = [(a["ts"], b["ts"]) for a, b in zip(self.events, self.events[1:], strict=False)
                  if a["type"] == "rebuffer_start" and b["type"] == "rebuffer_end"]
        rebuffer = sum(end - start for start, end in stalls)
        watched = ts[-1] - ts[0]
        startup = first_play - ts[0]
        return {"session_id": self.session_id, "startup_ms": startup, "rebuffer_ms": rebuffer,
                "rebuffer_count": len(stalls), "watched_ms": watched, "play_ms": watched - startup - rebuffer,
                "event_count": len(self.events), "outcome": "completed", "closed_by": "end", "cdn": self.cdn}


def script_session(session_id: str, cdn: str, start_ms: int, rng: random.Random, length_s: float,
                   stalls: bool) -> SessionScript:
    """Events of one session from ``start_ms``: ids are ``<session_id>-<n>``."""
    script = SessionScript(session_id, cdn)
    t = start_ms

    def add(kind: str, at: int, **extra: Any) -> None:
        script.events.append({"event_id": f"{session_id}-{len(script.events)}", "session_id": session_id,
                              "ts": at, "type": kind, "cdn": cdn, "device": "chaos", "country": "ZZ",
                              "isp": "chaos-isp", **extra})

    add("session_start", t)
    t += rng.randint(300, 1500)
    add("playing", t, bitrate_kbps=3000)
    end = start_ms + int(length_s * 1000)
    while t + 2000 < end:
        if stalls and t + 3500 < end and rng.random() < 0.6:
            t += 1000
            add("rebuffer_start", t)
            t += rng.randint(1500, 2500)
            add("rebuffer_end", t)
        else:
            t += 2000
            add("heartbeat", t, bitrate_kbps=3000, buffer_ms=8000)
    add("session_end", end)
    return script


class PlaybackLoad(threading.Thread):
    """Live sessions into ``POST /v1/events``; records every acknowledged event id."""

    def __init__(self, url: str, run_id: str, sessions_per_s: float, session_s: float = 16.0,
                 tick_s: float = 0.25, seed: int = 7) -> None:
        super().__init__(name="chaos-playback", daemon=True)
        self.url = url.rstrip("/") + "/v1/events"
        self.run_id = run_id
        self.sessions_per_s = sessions_per_s
        self.session_s = session_s
        self.tick_s = tick_s
        self.rng = random.Random(seed)
        self.incident = threading.Event()
        self.stopping = threading.Event()  # no new sessions; the running ones play to their end
        self._lock = threading.Lock()
        self.scripts: dict[str, SessionScript] = {}
        self.acked: set[str] = set()
        self.sent_requests = 0
        self.failed_requests = 0
        self.last_ack = 0.0
        self._due: list[tuple[int, int, dict[str, Any]]] = []
        self._retry: list[dict[str, Any]] = []  # a batch not yet acknowledged: sent again before any other
        self._seq = 0
        self._sessions = 0

    # -- the history the checker reads ---------------------------------------------------------
    def snapshot(self) -> tuple[dict[str, SessionScript], set[str]]:
        with self._lock:
            return dict(self.scripts), set(self.acked)

    def idle(self) -> bool:
        """True once stopping and every scheduled event was acknowledged."""
        with self._lock:
            return self.stopping.is_set() and not self._due and not self._retry

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        next_session = time.monotonic()
        with httpx.Client(timeout=10) as client:
            while True:
                now = time.monotonic()
                if not self.stopping.is_set():
                    while next_session <= now:
                        self._new_session(int(time.time() * 1000))
                        next_session += 1.0 / self.sessions_per_s
                batch = self._retry or self._take_due(int(time.time() * 1000))
                if batch:
                    if self._post(client, batch):
                        with self._lock:
                            self.acked.update(e["event_id"] for e in batch)
                            self._retry = []
                        self.last_ack = time.monotonic()
                    else:
                        with self._lock:
                            self._retry = batch
                        time.sleep(0.5)  # the collector is away: back off, then send the same again
                        continue
                elif self.idle():
                    return
                time.sleep(max(0.0, self.tick_s - (time.monotonic() - now)))

    def _new_session(self, start_ms: int) -> None:
        n = self._sessions
        self._sessions += 1
        cdn = CDNS[n % len(CDNS)]
        stalls = cdn == INCIDENT_CDN and self.incident.is_set()
        script = script_session(f"{self.run_id}-s{n}", cdn, start_ms, self.rng, self.session_s, stalls)
        with self._lock:
            self.scripts[script.session_id] = script
            for event in script.events:
                heapq.heappush(self._due, (event["ts"], self._seq, event))
                self._seq += 1

    def _take_due(self, now_ms: int) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        with self._lock:
            while self._due and self._due[0][0] <= now_ms and len(batch) < 2000:
                batch.append(heapq.heappop(self._due)[2])
        return batch

    def _post(self, client: httpx.Client, batch: list[dict[str, Any]]) -> bool:
        self.sent_requests += 1
        try:
            resp = client.post(self.url, content=orjson.dumps(batch), headers={"Content-Type": "application/json"})
        except httpx.HTTPError:
            self.failed_requests += 1
            return False
        if resp.status_code == 202 and resp.json().get("accepted") == len(batch):
            return True
        self.failed_requests += 1
        return False


class LogLoad(threading.Thread):
    """JSON log lines into a file the agent tails; every line written and flushed counts."""

    def __init__(self, path: Path, run_id: str, lines_per_s: float) -> None:
        super().__init__(name="chaos-logs", daemon=True)
        self.path = path
        self.run_id = run_id
        self.lines_per_s = lines_per_s
        self.stopping = threading.Event()
        self.written: list[str] = []

    def run(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        next_line = time.monotonic()
        with open(self.path, "ab") as out:
            while not self.stopping.is_set():
                lines = []
                while next_line <= time.monotonic():
                    trace_id = f"{self.run_id}-l{n}"
                    lines.append(orjson.dumps({"ts": int(time.time() * 1000), "service": "chaos-svc",
                                               "message": f"GET /item/{n}", "level": "INFO", "status": 200,
                                               "latency_ms": 5 + n % 40, "route": "/item", "trace_id": trace_id}))
                    self.written.append(trace_id)
                    n += 1
                    next_line += 1.0 / self.lines_per_s
                if lines:
                    out.write(b"\n".join(lines) + b"\n")
                    out.flush()
                time.sleep(0.1)
