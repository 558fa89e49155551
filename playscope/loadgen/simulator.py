"""Simulated viewers and services: realistic SPEC 4 sessions and SPEC 5 request logs.

Pure and deterministic for a seed: the simulator turns a clock into events and never does I/O,
so the same code drives the live demo, the benchmarks and tests. An :class:`Incident` makes one
CDN rebuffer heavily and one service fail often between two instants.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

CDNS = ("oca-edge-1", "oca-edge-2", "oca-edge-3", "akamai-fr", "fastly-us")
ISPS = ("comcast", "orange", "vodafone", "att", "bt")
DEVICES = ("tv", "mobile", "web", "console")
OSES = {"tv": "tizen", "mobile": "android", "web": "chrome", "console": "ps5"}
COUNTRIES = ("US", "FR", "DE", "GB", "BR")
BITRATES = (800, 1800, 3500, 6000, 9000)
SERVICES = {
    "playback-api": ("/v1/play", "/v1/heartbeat", "/v1/stop"),
    "license": ("/v1/license", "/v1/renew"),
    "manifest": ("/v1/manifest", "/v1/manifest/dash"),
    "profile": ("/v1/profile", "/v1/history"),
}


@dataclass(frozen=True)
class Incident:
    """Between ``start_s`` and ``end_s`` after the run starts, sessions on ``cdn`` stall often and
    ``service`` answers 5xx at ``error_rate``."""

    start_s: float = 40.0
    end_s: float = 100.0
    cdn: str = "oca-edge-3"
    service: str = "license"
    rebuffer_probability: float = 0.6
    error_rate: float = 0.35

    def active(self, elapsed_s: float) -> bool:
        return self.start_s <= elapsed_s < self.end_s


@dataclass
class Session:
    """One viewer's playback, advanced step by step on the simulated clock."""

    session_id: str
    dims: dict[str, str]
    next_ms: int
    rng: random.Random
    plan: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    seq: int = 0

    def event(self, ts: int, kind: str, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        return {"event_id": f"{self.session_id}-{self.seq}", "session_id": self.session_id, "ts": ts,
                "type": kind, **self.dims, **fields}


class Simulator:
    """Generates the events of ``sessions_per_s`` new sessions a second, starting at ``start_ms``."""

    def __init__(self, start_ms: int, seed: int = 7, sessions_per_s: float = 5.0,
                 incident: Incident | None = None, mean_session_s: float = 40.0,
                 requests_per_s: float = 40.0) -> None:
        self.start_ms = start_ms
        self.rng = random.Random(seed)
        self.sessions_per_s = sessions_per_s
        self.incident = incident
        self.mean_session_s = mean_session_s
        self.requests_per_s = requests_per_s
        self._pending: list[tuple[int, int, dict[str, Any]]] = []  # (ts, order, event)
        self._order = 0
        self._next_session_ms = start_ms
        self._next_request_ms = start_ms
        self._session_count = 0

    # -- playback ------------------------------------------------------------------------
    def _incident_at(self, ts: int) -> Incident | None:
        """The incident if it is active at ``ts``, else None."""
        if self.incident is not None and self.incident.active((ts - self.start_ms) / 1000):
            return self.incident
        return None

    def _new_session(self, ts: int) -> None:
        rng = self.rng
        self._session_count += 1
        device = rng.choice(DEVICES)
        dims = {"cdn": rng.choice(CDNS), "isp": rng.choice(ISPS), "device": device, "os": OSES[device],
                "country": rng.choice(COUNTRIES), "app_version": rng.choice(("5.1.0", "5.2.0")),
                "title_id": f"title-{rng.randint(1, 200)}", "profile_id": f"profile-{rng.randint(1, 5000)}"}
        sid = f"sim-{rng.getrandbits(48):012x}"
        s = Session(sid, dims, ts, rng)
        for event in self._script(s, ts):
            self._push(event)

    def _script(self, s: Session, t: int) -> Iterator[dict[str, Any]]:
        """One session's events, from start to end, timed from ``t``."""
        rng = s.rng
        yield s.event(t, "session_start")
        roll = rng.random()
        startup = int(rng.lognormvariate(6.7, 0.4))  # ~800 ms median
        if roll < 0.02:  # exit before video start
            yield s.event(t + startup // 2, "session_end")
            return
        if roll < 0.04:  # video start failure
            yield s.event(t + startup, "error", error_code=rng.choice(("DRM-403", "MANIFEST-404")), fatal=True)
            return
        bitrate = rng.choice(BITRATES[1:4])
        t += startup
        yield s.event(t, "playing", bitrate_kbps=bitrate)
        end = t + int(rng.expovariate(1 / self.mean_session_s) * 1000) + 5000
        while t < end:
            t += rng.randint(2000, 5000)
            incident = self._incident_at(t)
            stall_p = (incident.rebuffer_probability
                       if incident is not None and s.dims["cdn"] == incident.cdn
                       else 0.01)
            action = rng.random()
            if action < stall_p:
                yield s.event(t, "rebuffer_start", buffer_ms=0)
                t += rng.randint(800, 3500)
                yield s.event(t, "rebuffer_end", buffer_ms=rng.randint(2000, 8000))
            elif action < stall_p + 0.05:
                new = rng.choice(BITRATES)
                if new != bitrate:
                    yield s.event(t, "bitrate_change", from_kbps=bitrate, to_kbps=new, bitrate_kbps=new)
                    bitrate = new
            elif action < stall_p + 0.07:
                yield s.event(t, "pause")
                t += rng.randint(1000, 6000)
                yield s.event(t, "resume")
            elif action < stall_p + 0.09:
                yield s.event(t, "seek", position_ms=rng.randint(0, 3_600_000))
                t += rng.randint(200, 1500)
                yield s.event(t, "playing", bitrate_kbps=bitrate)
            else:
                yield s.event(t, "heartbeat", bitrate_kbps=bitrate, buffer_ms=rng.randint(4000, 30000),
                              throughput_kbps=bitrate * rng.uniform(1.5, 4))
        if rng.random() < 0.01:
            yield s.event(t, "error", error_code="PLAYER-500", fatal=True)
        else:
            yield s.event(t, "session_end")

    # -- services --------------------------------------------------------------------------
    def _new_request(self, ts: int) -> None:
        rng = self.rng
        service = rng.choice(tuple(SERVICES))
        route = rng.choice(SERVICES[service])
        incident = self._incident_at(ts)
        failing = incident is not None and service == incident.service
        error_p = incident.error_rate if incident is not None and failing else 0.005
        r = rng.random()
        status = rng.choice((500, 502, 503)) if r < error_p else (404 if r < error_p + 0.02 else 200)
        latency = rng.lognormvariate(3.5, 0.5) * (4 if failing else 1)
        level = "ERROR" if status >= 500 else "INFO"
        self._push({"ts": ts, "service": service, "route": route, "method": "GET" if "manifest" in route else "POST",
                    "status": status, "latency_ms": round(latency, 2), "level": level,
                    "host": f"{service}-{rng.randint(1, 3)}", "message": f"{route} {status}",
                    "trace_id": f"{rng.getrandbits(64):016x}", "_kind": "log"})

    # -- clock -----------------------------------------------------------------------------
    def _push(self, event: dict[str, Any]) -> None:
        self._order += 1
        self._pending.append((event["ts"], self._order, event))

    def advance(self, now_ms: int, until_ms: int | None = None) -> list[dict[str, Any]]:
        """Every event with ``ts <= now_ms``, in time order. New sessions and requests start up
        to ``until_ms`` (the end of the run); sessions already started play to their end."""
        stop = now_ms if until_ms is None else min(now_ms, until_ms)
        while self._next_session_ms <= stop:
            self._new_session(self._next_session_ms)
            self._next_session_ms += max(1, int(self.rng.expovariate(self.sessions_per_s) * 1000))
        while self._next_request_ms <= stop:
            self._new_request(self._next_request_ms)
            self._next_request_ms += max(1, int(self.rng.expovariate(self.requests_per_s) * 1000))
        self._pending.sort(key=lambda item: (item[0], item[1]))
        cut = 0
        while cut < len(self._pending) and self._pending[cut][0] <= now_ms:
            cut += 1
        due, self._pending = self._pending[:cut], self._pending[cut:]
        return [event for _ts, _order, event in due]

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def sessions_started(self) -> int:
        return self._session_count
