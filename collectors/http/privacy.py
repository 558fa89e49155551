"""Pseudonymisation of viewer identifiers at the collector, before anything reaches Kafka.

``profile_id`` (and any other configured field) and client IP addresses are replaced by a
keyed hash: HMAC-SHA256 with the ``collector.privacy.secret``, hex, truncated to 128 bits. The
same value under the same secret always gives the same pseudonym, so sessions, per-profile
counts and joins keep working; without the secret nobody reading an index can go back from a
pseudonym to the viewer (a plain hash of an IP address can be reversed by trying all 2^32 of
them; a keyed one cannot).

IP addresses are normalised first (``ipaddress``), so ``::ffff:1.2.3.4`` and ``1.2.3.4`` give
the same pseudonym. Raw IPs are never passed on: with no secret configured, IP fields are
dropped and ``profile_id`` is kept as sent (a warning says so at start-up).

Rotating the secret starts new pseudonyms: the same viewer gets a different ``profile_id``
after the switch, so per-profile continuity across the rotation instant is lost on purpose
(docs/security.md). Window metrics never group by these fields and are unaffected.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from typing import Any

import orjson
from pydantic import Field

from playscope.config import Strict

DIGEST_HEX = 32  # 128 bits: collisions are out of reach for any realistic number of viewers

DEFAULT_IP_FIELDS = ("client_ip", "ip", "ip_address", "remote_addr", "remote_ip", "x_forwarded_for")


class PrivacyConfig(Strict):
    """``collector.privacy``: the key of the hash (from an environment variable or a file:
    ``secret: ${PLAYSCOPE_PRIVACY_SECRET}`` or ``secret_file: /run/secrets/privacy``)."""

    secret: str | None = Field(default=None, repr=False, min_length=16)
    hash_fields: list[str] = ["profile_id"]
    ip_fields: list[str] = list(DEFAULT_IP_FIELDS)


class Pseudonymizer:
    """Replaces identifiers in validated records (dicts), in place, and scrubs raw originals."""

    def __init__(self, config: PrivacyConfig) -> None:
        self.enabled = config.secret is not None
        self._key = (config.secret or "").encode()
        self.hash_fields = tuple(config.hash_fields)
        self.ip_fields = tuple(config.ip_fields)
        self._fields = frozenset((*self.hash_fields, *self.ip_fields))
        names = "|".join(re.escape(f) for f in (*self.hash_fields, *self.ip_fields))
        self._raw_field = re.compile(rb'"(' + names.encode() + rb')"\s*:\s*"([^"\\]*)"') if names else None

    def pseudonym(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:DIGEST_HEX]

    def ip_pseudonym(self, value: str) -> str:
        return self.pseudonym(normalise_ip(value))

    def apply(self, record: dict[str, Any]) -> dict[str, Any]:
        """Pseudonymise ``record`` (a validated event or log record) and return it."""
        if self._fields.isdisjoint(record):
            return record  # the usual case: none of the fields is present (one C-level pass)
        for name in self.hash_fields:
            value = record.get(name)
            if isinstance(value, str) and value and value != "unknown" and self.enabled:
                record[name] = self.pseudonym(value)
        for name in self.ip_fields:
            if name in record:
                value = record[name]
                if self.enabled and isinstance(value, str) and value:
                    record[name] = self.ip_pseudonym(value)
                else:
                    del record[name]
        return record

    def scrub_original(self, original: Any) -> Any:
        """The original of a rejected record, as it will be dead-lettered: fields pseudonymised
        when it is a JSON object, string values of those fields rewritten in raw text."""
        if isinstance(original, dict):
            return self.apply(dict(original))
        if isinstance(original, (bytes, str)) and self._raw_field is not None:
            raw = original.encode() if isinstance(original, str) else original
            if raw.lstrip()[:1] == b"{":
                try:
                    parsed = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    parsed = None
                if isinstance(parsed, dict):
                    return orjson.dumps(self.apply(parsed))
            return self._raw_field.sub(self._raw_sub, raw)
        return original

    def _raw_sub(self, match: re.Match[bytes]) -> bytes:
        name, value = match.group(1).decode(), match.group(2).decode(errors="replace")
        if not self.enabled:
            return b'"' + name.encode() + b'":"redacted"' if name in self.ip_fields else match.group(0)
        hashed = self.ip_pseudonym(value) if name in self.ip_fields else self.pseudonym(value)
        return f'"{name}":"{hashed}"'.encode()


def normalise_ip(value: str) -> str:
    """The canonical text of an IP address (IPv4-mapped IPv6 as IPv4); other text as is."""
    text = value.split(",")[0].strip()  # X-Forwarded-For: the client is the first address
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return addr.compressed
