"""Pseudonymisation at the collector: the shared implementation in :mod:`playscope.privacy`
(one ``privacy:`` section for the collector, the agent and the SDK), re-exported here."""

from __future__ import annotations

from playscope.config import DEFAULT_IP_FIELDS, PrivacyConfig
from playscope.privacy import DIGEST_HEX, Pseudonymizer, normalise_ip

__all__ = ["DEFAULT_IP_FIELDS", "DIGEST_HEX", "PrivacyConfig", "Pseudonymizer", "normalise_ip"]
