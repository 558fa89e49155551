"""Webhook channel: the alert document as one JSON POST, optionally signed with HMAC-SHA256.

With ``secret`` set, the header ``X-Playscope-Signature: sha256=<hex>`` carries
HMAC-SHA256(secret, raw body), so the receiver can check who sent it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

import orjson
from pydantic import Field

from alerts.notifiers.base import ChannelOptions, Notification, Notifier

SIGNATURE_HEADER = "X-Playscope-Signature"


class WebhookOptions(ChannelOptions):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret: str | None = Field(default=None, repr=False)
    headers: dict[str, str] = Field(default_factory=dict)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookNotifier(Notifier):
    kind = "webhook"
    Options = WebhookOptions

    async def send(self, notification: Notification) -> None:
        opts = self.options
        assert isinstance(opts, WebhookOptions)
        body = orjson.dumps({**notification.doc, "dedup_key": notification.dedup_key,
                             "notification_id": notification.notification_id,
                             "repeat": notification.repeat})  # fmt: skip
        headers = dict(opts.headers)
        if opts.secret:
            headers[SIGNATURE_HEADER] = sign(opts.secret, body)
        await self._post_json(opts.url, body, headers)
