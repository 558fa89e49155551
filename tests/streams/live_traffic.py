"""Live traffic for tests through real Kafka: sessions planned in event time, and a producer
that sends each event when the wall clock reaches it (so ``ts`` is real time), as players do.

Every session has a ``device`` of its own (its windows can be told apart: see
``spec7_reference.session_sums``); ``cdn`` may change mid-session; a session ends with
``session_end``, with a fatal error, or just goes silent (playing or rebuffering) and idles out.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import orjson
from confluent_kafka import Producer

from playscope import topics
from playscope.config import Settings
from playscope.kafka import producer_config

MIDDLE = ["heartbeat"] * 3 + ["rebuffer_start", "rebuffer_end"] * 2 + [
    "bitrate_change", "pause", "resume", "seek", "playing"]
ENDINGS = ["session_end", "error", "silent-playing", "silent-rebuffering"]


def plan_session(rng: random.Random, sid: str, t0: int, events: int, max_gap_ms: int) -> list[dict[str, Any]]:
    """One session's events in ``ts`` order, starting at ``t0`` (epoch ms)."""
    ending = rng.choice(ENDINGS)
    kinds = ["session_start", "playing", *(rng.choice(MIDDLE) for _ in range(max(0, events - 3)))]
    kinds += {"session_end": ["session_end"], "error": ["error"], "silent-playing": ["playing"],
              "silent-rebuffering": ["rebuffer_start"]}[ending]
    t = t0
    out: list[dict[str, Any]] = []
    cdn = rng.choice(["cdn-a", "cdn-b"])
    for i, kind in enumerate(kinds):
        if i:
            t += rng.randint(100, max_gap_ms)
        e: dict[str, Any] = {"event_id": f"{sid}-{i}", "session_id": sid, "ts": t, "type": kind}
        if i == 0:
            e.update(device=f"dev-{sid}", cdn=cdn, isp=rng.choice(["isp-1", "isp-2"]),
                     country=rng.choice(["FR", "US", "BR"]))
        elif rng.random() < 0.15:
            e["cdn"] = cdn = "cdn-b" if cdn == "cdn-a" else "cdn-a"
        if kind == "bitrate_change":
            e["to_kbps"] = rng.choice([800, 1600, 3200, 6000])
        elif rng.random() < 0.3:
            e["bitrate_kbps"] = rng.choice([800, 1600, 3200, 6000])
        if kind == "error":
            e.update(fatal=True, error_code="E42")
        out.append(e)
    return out


class PacedProducer(threading.Thread):
    """Sends ``(send_at_ms, event)`` pairs when the wall clock reaches ``send_at_ms``, in that
    order, keyed by session; keeps every event it sent, per session, in sending order.

    The producer holds what it cannot deliver (a broker outage) for ``message.timeout.ms``."""

    def __init__(self, settings: Settings, plan: list[tuple[int, dict[str, Any]]], **producer: Any) -> None:
        super().__init__(daemon=True)
        self.topic = settings.topic(topics.PLAYBACK_EVENTS)
        self.producer = Producer(producer_config(settings.kafka, **producer))
        self.plan = sorted(plan, key=lambda p: p[0])
        self.sent: dict[str, list[dict[str, Any]]] = {}
        self.failures: list[str] = []
        self.behind_ms = 0  # how far behind its schedule the sender fell at worst
        self.stop_at_ms: int | None = None  # nothing planned after this is sent (None: everything)

    def run(self) -> None:
        for at, event in self.plan:
            while (wait := at / 1000 - time.time()) > 0:
                time.sleep(min(wait, 0.05))
                self.producer.poll(0)
            if self.stop_at_ms is not None and at > self.stop_at_ms:
                break  # sessions under way just go silent (and idle out)
            self.behind_ms = max(self.behind_ms, int(time.time() * 1000) - at)
            sid = event["session_id"]
            self.producer.produce(self.topic, orjson.dumps(event), key=sid, on_delivery=self._delivered)
            self.sent.setdefault(sid, []).append(event)
            self.producer.poll(0)

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failures.append(str(err))

    def finish(self, timeout: float = 120) -> int:
        """Wait until the plan is sent (up to ``stop_at_ms``) and delivered; the count left undelivered."""
        self.join()
        return self.producer.flush(timeout)


def now_ms() -> int:
    return int(time.time() * 1000)
