"""Email channel: one plain-text message over SMTP, with optional STARTTLS and login.

smtplib is blocking, so the send runs in a worker thread with the channel's timeout and never
holds up the evaluator.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from typing import Literal

from pydantic import Field

from alerts.notifiers.base import ChannelOptions, DeliveryError, Notification, Notifier


class EmailOptions(ChannelOptions):
    type: Literal["email"]
    host: str = "localhost"
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(default="playscope@localhost", alias="from")
    to: list[str] = Field(min_length=1)
    starttls: bool = False
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    ca_file: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)


def build_message(notification: Notification, opts: EmailOptions) -> EmailMessage:
    doc = notification.doc
    message = EmailMessage()
    message["From"] = opts.sender
    message["To"] = ", ".join(opts.to)
    message["Subject"] = f"[{doc['status'].upper()}] {doc['rule']} ({doc.get('severity', '')})"
    message["X-Playscope-Dedup-Key"] = notification.dedup_key
    lines = [doc.get("summary", ""), ""]
    lines += [f"{key}: {doc.get(key)}" for key in ("status", "rule", "severity", "group", "value",
                                                     "threshold", "window_start", "window_end")]  # fmt: skip
    if doc.get("dashboard_url"):
        lines.append(f"dashboard: {doc['dashboard_url']}")
    message.set_content("\n".join(lines) + "\n")
    return message


class EmailNotifier(Notifier):
    kind = "email"
    Options = EmailOptions

    async def send(self, notification: Notification) -> None:
        opts = self.options
        assert isinstance(opts, EmailOptions)
        message = build_message(notification, opts)
        try:
            await asyncio.to_thread(self._deliver, opts, message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"email {self.name}: {type(exc).__name__}: {exc}") from None

    @staticmethod
    def _deliver(opts: EmailOptions, message: EmailMessage) -> None:
        with smtplib.SMTP(opts.host, opts.port, timeout=opts.timeout_s) as smtp:
            if opts.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=opts.ca_file))
            if opts.username:
                smtp.login(opts.username, opts.password or "")
            smtp.send_message(message)
