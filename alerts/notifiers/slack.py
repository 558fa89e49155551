"""Slack channel: an incoming-webhook payload (text plus one coloured attachment)."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import Field

from alerts.notifiers.base import ChannelOptions, Notification, Notifier

COLOURS = {"firing": "#d62728", "resolved": "#2ca02c"}


class SlackOptions(ChannelOptions):
    type: Literal["slack"]
    url: str = Field(pattern=r"^https?://")
    channel: str | None = None
    username: str | None = None


def slack_payload(notification: Notification, opts: SlackOptions) -> dict[str, Any]:
    doc = notification.doc
    group = ", ".join(f"{k}={v}" for k, v in doc["group"].items()) or "total"
    mark = "RESOLVED" if doc["status"] == "resolved" else "FIRING"
    fields = [
        {"title": "group", "value": group, "short": True},
        {"title": "severity", "value": str(doc.get("severity", "")), "short": True},
        {"title": "value", "value": str(doc.get("value")), "short": True},
        {"title": "threshold", "value": str(doc.get("threshold")), "short": True},
    ]
    attachment: dict[str, Any] = {
        "color": COLOURS.get(doc["status"], "#7f7f7f"),
        "title": f"[{mark}] {doc['rule']}",
        "text": doc.get("summary", ""),
        "fields": fields,
        "footer": f"dedup {notification.dedup_key}",
    }
    if doc.get("dashboard_url"):
        attachment["title_link"] = doc["dashboard_url"]
    payload: dict[str, Any] = {
        "text": f"[{mark}] {doc.get('summary', doc['rule'])}",
        "attachments": [attachment],
    }
    if opts.channel:
        payload["channel"] = opts.channel
    if opts.username:
        payload["username"] = opts.username
    return payload


class SlackNotifier(Notifier):
    kind = "slack"
    Options = SlackOptions

    async def send(self, notification: Notification) -> None:
        opts = self.options
        assert isinstance(opts, SlackOptions)
        await self._post_json(opts.url, orjson.dumps(slack_payload(notification, opts)))
