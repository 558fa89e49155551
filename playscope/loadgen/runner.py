"""Drive the simulator on the wall clock and hand its events to the senders."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playscope.loadgen.senders import BeaconSender, LogFileWriter, SdkLogShipper
from playscope.loadgen.simulator import Incident, Simulator


@dataclass
class LoadgenOptions:
    collector_url: str = "http://127.0.0.1:8080"
    duration_s: float = 120.0
    sessions_per_s: float = 5.0
    requests_per_s: float = 40.0
    mean_session_s: float = 30.0
    seed: int = 7
    incident: Incident | None = field(default_factory=Incident)
    cmcd_fraction: float = 0.1
    logs_dir: Path | None = None  # services whose logs go to files for the agent
    sdk_services: tuple[str, ...] = ("playback-api", "profile")  # services using the logging handler
    # Share of heartbeats sent malformed (as a buggy player build would), to exercise dead-lettering.
    bad_fraction: float = 0.005
    tick_s: float = 0.25
    drain_s: float = 180.0  # after the run, how long sessions already started may play on


@dataclass
class LoadgenStats:
    events: int = 0
    cmcd_events: int = 0
    log_records: int = 0
    accepted: int = 0
    rejected: int = 0
    failed_requests: int = 0
    sessions: int = 0
    malformed: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


def _sampled(key: str, fraction: float) -> bool:
    """A stable choice of about ``fraction`` of keys (the same key always gets the same answer)."""
    return (zlib.crc32(key.encode()) % 10000) < fraction * 10000


def run_loadgen(options: LoadgenOptions, settings: Any, progress: Callable[[LoadgenStats, float], None] | None = None,
                should_stop: Callable[[], bool] = lambda: False) -> LoadgenStats:
    """Run for ``duration_s`` of wall time, then let open sessions finish (up to ``drain_s``)."""
    start_ms = int(time.time() * 1000)
    sim = Simulator(start_ms, seed=options.seed, sessions_per_s=options.sessions_per_s,
                    incident=options.incident, mean_session_s=options.mean_session_s,
                    requests_per_s=options.requests_per_s)
    beacons = BeaconSender(options.collector_url)
    files = LogFileWriter(options.logs_dir) if options.logs_dir else None
    sdk = SdkLogShipper(settings) if options.sdk_services else None
    stats = LoadgenStats()
    until_ms = start_ms + int(options.duration_s * 1000)
    deadline = until_ms + int(options.drain_s * 1000)
    try:
        while not should_stop():
            now = int(time.time() * 1000)
            due = sim.advance(now, until_ms)
            plain, cmcd = [], []
            for event in due:
                if event.pop("_kind", None) == "log":
                    stats.log_records += 1
                    if sdk and event["service"] in options.sdk_services:
                        sdk.write(event)
                    elif files:
                        files.write(event)
                    elif sdk:
                        sdk.write(event)
                    continue
                stats.events += 1
                if _sampled(event["session_id"], options.cmcd_fraction):
                    cmcd.append(event)
                    continue
                if event["type"] == "heartbeat" and _sampled(event["event_id"], options.bad_fraction):
                    event = {**event, "bitrate_kbps": "HD"}  # a wrong type: the collector dead-letters it
                    stats.malformed += 1
                plain.append(event)
            for start in range(0, len(plain), 500):
                beacons.send_json(plain[start:start + 500])
            beacons.send_cmcd(cmcd)
            stats.cmcd_events += len(cmcd)
            stats.accepted, stats.rejected = beacons.accepted, beacons.rejected
            stats.failed_requests = beacons.failed_requests
            stats.sessions = sim.sessions_started
            if progress:
                progress(stats, (now - start_ms) / 1000)
            if now >= until_ms and (sim.pending == 0 or now >= deadline):
                break
            time.sleep(max(0.0, options.tick_s - (time.time() * 1000 - now) / 1000))
    finally:
        beacons.close()
        if files:
            files.close()
        if sdk:
            sdk.close()
    return stats
