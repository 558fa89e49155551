"""Slack channel: an incoming-webhook payload (text plus one coloured attachment).

Group values, summaries and dedup keys come from the events (a CDN or ISP name is whatever a
player sent), so every such string is escaped per Slack's mrkdwn rules (``&``, ``<``, ``>`` to
``&amp;``, ``&lt;``, ``&gt;``) before it is placed in the message: a value of ``<!channel>``
would otherwise ping the channel and ``<https://x|click>`` would become a link. Only the markup
this module writes itself (bold keys, the dashboard link) reaches Slack unescaped.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

import orjson
from pydantic import Field

from alerts.notifiers.base import ChannelOptions, Notification, Notifier

COLOURS = {"firing": "#d62728", "resolved": "#2ca02c"}
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


class SlackOptions(ChannelOptions):
    type: Literal["slack"]
    url: str = Field(pattern=r"^https?://")
    channel: str | None = None
    username: str | None = None


def escape(value: object) -> str:
    """``value`` as text that Slack shows as written: no mentions, links or commands."""
    return str(value).translate(_ESCAPES)


def link(url: str, label: str) -> str:
    """A mrkdwn link built here: ``|``, ``<`` and ``>`` in the URL are percent-encoded (they
    would end the URL part), ``&`` escaped; the label is escaped like any other text."""
    safe_url = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._").translate(_ESCAPES)
    return f"<{safe_url}|{escape(label)}>"


def slack_payload(notification: Notification, opts: SlackOptions) -> dict[str, Any]:
    doc = notification.doc
    group = ", ".join(f"*{escape(k)}*={escape(v)}" for k, v in doc["group"].items()) or "total"
    mark = "RESOLVED" if doc["status"] == "resolved" else "FIRING"
    summary = escape(doc.get("summary", ""))
    dashboard = str(doc.get("dashboard_url") or "")
    fields = [
        {"title": "group", "value": group, "short": True},
        {"title": "severity", "value": escape(doc.get("severity", "")), "short": True},
        {"title": "value", "value": escape(doc.get("value")), "short": True},
        {"title": "threshold", "value": escape(doc.get("threshold")), "short": True},
    ]
    attachment: dict[str, Any] = {
        "color": COLOURS.get(doc["status"], "#7f7f7f"),
        "title": f"[{mark}] {escape(doc['rule'])}",
        "text": summary + (f"\n{link(dashboard, 'dashboard')}" if dashboard else ""),
        "fields": fields,
        "footer": f"dedup {escape(notification.dedup_key)}",
        "mrkdwn_in": ["text", "fields"],
    }
    if dashboard:
        attachment["title_link"] = dashboard
    payload: dict[str, Any] = {
        "text": f"[{mark}] {summary or escape(doc['rule'])}",
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
