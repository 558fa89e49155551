"""The notifier interface: one small class per channel type, each with its own options model.

A notifier turns one :class:`Notification` into one delivery. ``send`` raises
:class:`DeliveryError` when the channel did not accept it; retries, backoff and counting are
the dispatcher's job, so a notifier stays a few lines of protocol.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict

from playscope.errors import PlayscopeError


class DeliveryError(PlayscopeError):
    """A channel refused or could not take a notification (the dispatcher retries)."""


class ChannelOptions(BaseModel):
    """Keys of one channel in a rules file; ``type`` picks the notifier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str


@dataclass(frozen=True)
class Notification:
    """What every channel is told: the alert document (SPEC 9) plus delivery context."""

    doc: dict[str, Any]  # status, rule, severity, group, value, threshold, window_*, summary, ...
    dedup_key: str  # rule|group_key: the same for firing, repeats and resolved
    repeat: bool = False

    @property
    def notification_id(self) -> str:
        """Same for every send of one state change (retries, a re-send after a crash), so a
        receiver can drop exact duplicates; repeats and the resolve get new ids."""
        suffix = f"|repeat@{self.doc.get('ts')}" if self.repeat else ""
        return f"{self.dedup_key}|{self.doc['status']}@{self.doc.get('since_ms')}{suffix}"

    @property
    def firing(self) -> bool:
        return self.doc["status"] == "firing"


class Notifier(ABC):
    """Base of every notifier. Subclasses set ``kind`` and ``Options`` and implement ``send``."""

    kind: ClassVar[str]
    Options: ClassVar[type[ChannelOptions]]

    def __init__(self, name: str, options: ChannelOptions, http: httpx.AsyncClient) -> None:
        self.name = name
        self.options = options
        self.http = http

    @abstractmethod
    async def send(self, notification: Notification) -> None:
        """Deliver ``notification`` or raise DeliveryError."""

    def get_info(self) -> dict[str, Any]:
        """What to log about this channel (never secrets)."""
        return {"channel": self.name, "type": self.kind}

    async def _post_json(
        self, url: str, body: bytes, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        try:
            response = await self.http.post(
                url, content=body, headers={"content-type": "application/json", **(headers or {})}
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.kind} {self.name}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 300:
            detail = response.text[:200]
            raise DeliveryError(f"{self.kind} {self.name}: HTTP {response.status_code}: {detail}")
        return response
