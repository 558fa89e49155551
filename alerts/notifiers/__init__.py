"""Notifiers by channel type: the one place a ``type:`` in a rules file is resolved."""

from __future__ import annotations

from alerts.notifiers.alertmanager import AlertmanagerNotifier
from alerts.notifiers.base import ChannelOptions, DeliveryError, Notification, Notifier
from alerts.notifiers.email import EmailNotifier
from alerts.notifiers.slack import SlackNotifier
from alerts.notifiers.webhook import WebhookNotifier

NOTIFIERS: dict[str, type[Notifier]] = {
    n.kind: n for n in (WebhookNotifier, SlackNotifier, EmailNotifier, AlertmanagerNotifier)
}

__all__ = ["NOTIFIERS", "ChannelOptions", "DeliveryError", "Notification", "Notifier"]
