"""Helpers for collector tests: the CMCD samples, and a real Kafka reader (decoded records)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import orjson
from helpers import read_messages

from playscope.config import Settings

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "cmcd"
if not SAMPLES.is_dir():
    SAMPLES = Path("/work/shared/samples/cmcd")
NOW = 1_795_307_700_000
# Event times an hour before the test run: inside SPEC 4's clock bounds (5 min ahead, 7 days behind).
RECENT_TS = (int(time.time() * 1000) - 3_600_000) // 1000 * 1000


def tsv_rows(name: str) -> list[tuple[str, str, str]]:
    rows = []
    for line in (SAMPLES / name).read_text().splitlines():
        if line.strip():
            player, path, value = line.split("\t")
            rows.append((player, path, value))
    return rows


def ndjson_rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (SAMPLES / name).read_text().splitlines() if line.strip()]


def read_topic(
    settings: Settings, topic: str, expected: int, timeout_s: float = 20.0, settle_s: float = 1.0
) -> list[dict[str, Any]]:
    """Read a topic from the beginning until ``expected`` records (then a little longer, so
    extra records are seen too) or the timeout; returns the decoded values with their keys."""
    out: list[dict[str, Any]] = []
    for msg in read_messages(settings, topic, expected, timeout_s, settle_s):
        value = orjson.loads(msg.value())
        key = msg.key()
        value["_key"] = key.decode() if key else None
        out.append(value)
    return out
