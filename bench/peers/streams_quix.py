"""Streams peer: Quix Streams doing less than playscope streams (a per-session state function and
one tumbling window per CDN, ``quix_app.py``) over the ``playscope bench`` streams workload,
next to playscope streams' figure from the same run; events/s and the ratio.

Quix Streams goes into a venv of its own under PLAYSCOPE_HOME/peers (pinned in requirements.txt):
it pins confluent-kafka and pydantic below what playscope installs."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka.admin import AdminClient

from bench import streams
from bench.peers.common import PeerError, cache_dir
from playscope import topics
from playscope.config import Settings
from playscope.kafka import admin_config
from playscope.provision import ensure_topics

PEER = "quixstreams"
HERE = Path(__file__).parent
REQUIREMENTS = HERE / "requirements.txt"


def venv(settings: Settings) -> Path:
    """The peer venv's python, made and filled from requirements.txt on first use."""
    pin = next(line for line in REQUIREMENTS.read_text().splitlines() if line.startswith("quixstreams=="))
    home = cache_dir(settings) / pin.replace("==", "-")
    python = home / "bin" / "python"
    if (home / ".complete").exists():
        return python
    for step in ([sys.executable, "-m", "venv", "--clear", str(home)],
                 [str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)]):
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise PeerError(f"{' '.join(step[:4])} failed: {(done.stdout + done.stderr).strip()[-500:]}")
    (home / ".complete").touch()
    return python


def _drop_internal(settings: Settings, group: str) -> None:
    """Quix's changelog and repartition topics are named after the group, not our prefix."""
    admin = AdminClient(admin_config(settings.kafka))
    names = [t for t in admin.list_topics(timeout=30).topics if group in t]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            with contextlib.suppress(Exception):  # best effort: leftovers only cost broker files
                future.result(timeout=30)


def run(settings: Settings, quick: bool, stage: dict[str, Any]) -> dict[str, Any]:
    python = venv(settings)
    ours = stage.get("events_per_s")
    if not ours:  # the streams stage did not run (or failed) in this run: measure it here
        ours = streams.run(settings, quick)["events_per_s"]
    peer = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}quix."})
    ensure_topics(peer)
    values = streams.workload(100_000 if quick else 400_000)
    streams.produce(peer, values)
    group = f"{peer.topic_prefix}group-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="bench-peers-quix-") as tmp:
        command = [str(python), str(HERE / "quix_app.py"), "--broker", settings.kafka.bootstrap,
                   "--topic", peer.topic(topics.PLAYBACK_EVENTS), "--group", group, "--state-dir", tmp,
                   "--expected", str(len(values))]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=300 if quick else 900)
        finally:
            _drop_internal(settings, group)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise PeerError(f"the Quix Streams app failed: {done.stderr.strip()[-800:]}")
    result = orjson.loads(lines[-1])
    if result["events"] < len(values):
        raise PeerError(f"Quix Streams processed {result['events']} of {len(values)} events")
    rate = result["events_per_s"]
    return {"peer_events_per_s": round(rate), "events_per_s": round(ours), "ratio": round(ours / rate, 3),
            "events": len(values), "peer_windows_closed": result["windows"]}
