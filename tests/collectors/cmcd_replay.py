"""The 2026-12-02 player captures as a collector sees them, and what the players measured.

``deliveries`` turns a run into the requests that reached the collector, in arrival order, each
with its arrival time ``t`` (epoch ms): v1 runs as forwarded media requests (the ``CMCD=`` query
value or the four ``CMCD-*`` headers), v2 runs as the event POST bodies the browser sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from collector_helpers import SAMPLES

PLAYERS = SAMPLES / "players-2026-12-02"
RUNS = ("hlsjs-query", "hlsjs-header", "dashjs-query", "dashjs-header", "hlsjs-v2-event", "dashjs-v2-event")
V1_RUNS = RUNS[:4]


@dataclass(frozen=True)
class Truth:
    """The player's own account (players-2026-12-02/README.md and each run's meta.json)."""

    stalls: int
    stall_ms_low: float
    stall_ms_high: float

    @property
    def stall_ms(self) -> float:
        return (self.stall_ms_low + self.stall_ms_high) / 2


def truth(run: str) -> Truth:
    meta = json.loads((PLAYERS / run / "meta.json").read_text())
    stalls_ms = float(meta["stats"]["stalls_ms"])
    if run == "dashjs-query":  # the player's total includes its startup wait (README)
        return Truth(1, 2800, 3100)
    if run == "dashjs-header":
        return Truth(1, 2600, 2800)
    if run == "dashjs-v2-event":  # 3458 less the 190 ms startup wait it reported as sta=r
        return Truth(1, 3268, 3268)
    return Truth(1, stalls_ms, stalls_ms)


@dataclass(frozen=True)
class Delivery:
    t: int
    query: str | None = None
    headers: dict[str, str] | None = None
    body: str | None = None


def deliveries(run: str) -> list[Delivery]:
    out: list[Delivery] = []
    if run in V1_RUNS:
        for row in _rows(run, "requests.ndjson"):
            raw = row["cmcd_raw"]
            if isinstance(raw, dict):
                out.append(Delivery(row["t"], headers=raw))
            elif isinstance(raw, str):
                out.append(Delivery(row["t"], query=raw))
    else:
        out = [Delivery(row["t"], body=row["body"]) for row in _rows(run, "reports.ndjson")]
    return out


def session_id(run: str) -> str:
    return str(json.loads((PLAYERS / run / "meta.json").read_text())["sid"])


def _rows(run: str, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (PLAYERS / run / name).read_text().splitlines() if line.strip()]
