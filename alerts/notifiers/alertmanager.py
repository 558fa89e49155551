"""Alertmanager channel: POST /api/v2/alerts, one alert labelled by rule and group.

Alertmanager groups, silences and routes from there. A firing alert carries ``endsAt`` =
now + ``ttl`` (so it expires if the evaluator disappears) and each repeat refreshes it; a
resolved notification sets ``endsAt`` to now.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson
from pydantic import Field

from alerts.durations import parse_duration_s
from alerts.notifiers.base import ChannelOptions, Notification, Notifier
from playscope.timeparse import ms_to_rfc3339


class AlertmanagerOptions(ChannelOptions):
    type: Literal["alertmanager"]
    url: str = Field(pattern=r"^https?://")
    ttl: str | float = "24h"
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def ttl_s(self) -> float:
        return parse_duration_s(self.ttl)


def am_alert(notification: Notification, opts: AlertmanagerOptions, now_ms: int) -> dict[str, Any]:
    doc = notification.doc
    labels = {
        "alertname": doc["rule"],
        "severity": str(doc.get("severity", "")),
        "source": str(doc.get("source", "")),
        "group_key": str(doc.get("group_key", "")),
        **{k: str(v) for k, v in doc["group"].items()},
        **doc.get("labels", {}),
        **opts.labels,
    }
    annotations = {
        "summary": str(doc.get("summary", "")),
        "value": str(doc.get("value")),
        "threshold": str(doc.get("threshold")),
        "window_start": str(doc.get("window_start")),
        "window_end": str(doc.get("window_end")),
    }
    started = int(doc.get("since_ms") or now_ms)
    alert: dict[str, Any] = {"labels": labels, "annotations": annotations, "startsAt": ms_to_rfc3339(started)}
    if doc.get("dashboard_url"):
        alert["generatorURL"] = doc["dashboard_url"]
    ends = now_ms + int(opts.ttl_s * 1000) if notification.firing else now_ms
    alert["endsAt"] = ms_to_rfc3339(max(ends, started))
    return alert


class AlertmanagerNotifier(Notifier):
    kind = "alertmanager"
    Options = AlertmanagerOptions

    async def send(self, notification: Notification) -> None:
        opts = self.options
        assert isinstance(opts, AlertmanagerOptions)
        body = orjson.dumps([am_alert(notification, opts, int(time.time() * 1000))])
        await self._post_json(opts.url.rstrip("/") + "/api/v2/alerts", body)
