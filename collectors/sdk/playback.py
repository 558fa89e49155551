"""A small client for SPEC 4 playback events from a service (e.g. a server-side player)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from collectors.sdk.producer import PlayscopeProducer
from playscope import topics
from playscope.events import validate_playback_event


class PlaybackClient:
    def __init__(self, producer: PlayscopeProducer, topic: str = topics.PLAYBACK_EVENTS,
                 **dimensions: str) -> None:
        self.producer = producer
        self.topic = topic
        self.dimensions = dimensions  # added to every event (device, os, cdn, ...)

    def event(self, session_id: str, type: str, ts: int | None = None, **fields: Any) -> bool:
        """Validate and queue one event (ValidationError for a malformed one: a caller's bug)."""
        record: dict[str, Any] = {
            **self.dimensions,
            **fields,
            "event_id": fields.get("event_id") or uuid.uuid4().hex,
            "session_id": session_id,
            "ts": ts if ts is not None else int(time.time() * 1000),
            "type": type,
        }
        validate_playback_event(record)
        return self.producer.send(self.topic, session_id, record)
