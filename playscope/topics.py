"""The Kafka topics of SPEC 3: names, keys and the settings ``stack up`` creates them with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

PLAYBACK_EVENTS: Final = "playscope.playback.events"
SERVICE_LOGS: Final = "playscope.service.logs"
QOE_SESSIONS: Final = "playscope.qoe.sessions"
QOE_METRICS: Final = "playscope.qoe.metrics"
SERVICE_METRICS: Final = "playscope.service.metrics"
ALERTS: Final = "playscope.alerts"
DEADLETTER: Final = "playscope.deadletter"
# Internal: the alert evaluator's per rule and group state (compacted, newest value per key).
ALERT_STATE: Final = "playscope.alerts.state"

DAY_MS: Final = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    config: dict[str, str] = field(default_factory=dict)


TOPICS: Final[tuple[TopicSpec, ...]] = (
    TopicSpec(PLAYBACK_EVENTS, "session_id", {"retention.ms": str(7 * DAY_MS)}),
    TopicSpec(SERVICE_LOGS, "service", {"retention.ms": str(7 * DAY_MS)}),
    TopicSpec(QOE_SESSIONS, "session_id", {"retention.ms": str(30 * DAY_MS)}),
    TopicSpec(QOE_METRICS, "window+group", {"retention.ms": str(30 * DAY_MS)}),
    TopicSpec(SERVICE_METRICS, "window+group", {"retention.ms": str(30 * DAY_MS)}),
    TopicSpec(ALERTS, "rule+group", {"retention.ms": str(90 * DAY_MS)}),
    # Rejected records are kept long enough for someone to look at them after a weekend.
    TopicSpec(DEADLETTER, "none", {"retention.ms": str(14 * DAY_MS)}),
    TopicSpec(
        ALERT_STATE,
        "rule+group",
        {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000", "segment.ms": "3600000"},
    ),
)


def with_prefix(prefix: str) -> dict[str, str]:
    """Topic names with a prefix, so tests can run side by side on one broker."""
    return {spec.name: f"{prefix}{spec.name}" for spec in TOPICS}
