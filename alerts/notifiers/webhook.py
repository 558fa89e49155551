"""Webhook channel: the alert document as one JSON POST, optionally signed with HMAC-SHA256.

With ``secret`` set, two headers sign the raw body:

* ``X-Playscope-Signature-256: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``
  binds the signature to the moment it was made, so a receiver can refuse a replayed request
  (:func:`verify_signature`, tolerance 300 s by default). Every attempt, retries included, is
  signed afresh with its own ``t``. The scheme follows Stripe's; a later scheme would add ``v2=``.
* ``X-Playscope-Signature: sha256=<hex HMAC-SHA256(secret, body)>``, the older header, kept for
  receivers that check it: it proves the sender but not when the request was made.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Literal

import orjson
from pydantic import Field

from alerts.notifiers.base import ChannelOptions, Notification, Notifier

SIGNATURE_HEADER = "X-Playscope-Signature"
TIMESTAMPED_SIGNATURE_HEADER = "X-Playscope-Signature-256"
DEFAULT_TOLERANCE_S = 300.0


class WebhookOptions(ChannelOptions):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret: str | None = Field(default=None, repr=False)
    headers: dict[str, str] = Field(default_factory=dict)


def sign(secret: str, body: bytes) -> str:
    """The older ``X-Playscope-Signature`` value (no timestamp)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_timestamped(secret: str, body: bytes, t: int) -> str:
    """The ``X-Playscope-Signature-256`` value for ``body`` sent at unix second ``t``."""
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify_signature(
    header: object, body: bytes, secret: str, now: float | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether ``header`` (an ``X-Playscope-Signature-256`` value) signs ``body`` with ``secret``
    at a time within ``tolerance_s`` of ``now``. Anything else, a malformed header included, is
    False, never an exception: the receiver answers 401 and moves on. (alerts/README.md shows the
    same check for receivers that do not import playscope.)"""
    if not isinstance(header, str) or not isinstance(body, bytes) or len(header) > 4096:
        return False
    pairs = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in pairs if key == "t"]
    signatures = [value for key, _, value in pairs if key == "v1"]
    if len(stamps) != 1 or not signatures:
        return False
    t = stamps[0]
    if not (t.isascii() and t.isdigit() and len(t) <= 12):
        return False
    current = time.time() if now is None else now
    if abs(current - int(t)) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(s.isascii() and hmac.compare_digest(expected, s) for s in signatures)


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
            headers[TIMESTAMPED_SIGNATURE_HEADER] = sign_timestamped(opts.secret, body, int(time.time()))
        await self._post_json(opts.url, body, headers)
