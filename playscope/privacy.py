"""Pseudonymisation of viewer identifiers, in one place for the collector, the agent and the SDK.

``profile_id`` (and any other configured field) and client IP addresses are replaced by a
keyed hash: HMAC-SHA256 with the ``privacy.secret``, hex, truncated to 128 bits. The same value
under the same secret always gives the same pseudonym, so sessions, per-profile counts and joins
keep working; without the secret nobody reading an index can go back from a pseudonym to the
viewer (a plain hash of an IP address can be reversed by trying all 2^32 of them; a keyed one
cannot).

IP fields are found by name at any depth of a record (nested objects and arrays too), under
the usual spellings (``client_ip``, ``client.address``, ``clientIp``, ``net.peer.ip``...); when
a record's ``message`` holds the raw line (the agent's ``combined`` parser), the client address
in it is replaced as well. IP addresses are normalised first (``ipaddress``), so
``::ffff:1.2.3.4`` and ``1.2.3.4`` give the same pseudonym. Raw IPs are never passed on: with no
secret configured, IP fields are dropped, addresses in ``message`` become ``redacted``, and
``profile_id`` is kept as sent (a warning says so at start-up).

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

from playscope.config import PrivacyConfig, Settings
from playscope.errors import ConfigError

DIGEST_HEX = 32  # 128 bits: collisions are out of reach for any realistic number of viewers
REDACTED = "redacted"
MAX_DEPTH = 64
_NESTED = frozenset({dict, list})


def name_variants(name: str) -> set[str]:
    """The spellings of a field name: ``client_ip``, ``client.ip``, ``client-ip``, ``clientIp``,
    ``ClientIp``, ``clientIP`` (names written with any separator give all of them)."""
    words = [w for w in re.split(r"[._\-]", name) if w]
    if not words:
        return {name}
    lower = [w.lower() for w in words]
    out = {name, "_".join(lower), ".".join(lower), "-".join(lower),
           lower[0] + "".join(w.capitalize() for w in lower[1:]),
           "".join(w.capitalize() for w in lower)}
    if len(lower) > 1:
        out.add(lower[0] + "".join(w.capitalize() for w in lower[1:-1]) + lower[-1].upper())
    return out


class Pseudonymizer:
    """Replaces identifiers in records (dicts), in place, and scrubs raw originals."""

    def __init__(self, config: PrivacyConfig) -> None:
        self.enabled = config.secret is not None
        self._key = (config.secret or "").encode()
        self.hash_fields = tuple(config.hash_fields)
        self.ip_fields = frozenset(v for name in config.ip_fields for v in name_variants(name))
        self._fields = frozenset((*self.hash_fields, *self.ip_fields))
        names = "|".join(re.escape(f) for f in sorted(self._fields, key=len, reverse=True))
        self._raw_field = re.compile(rb'"(' + names.encode() + rb')"\s*:\s*"([^"\\]*)"') if names else None

    def pseudonym(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:DIGEST_HEX]

    def ip_pseudonym(self, value: str) -> str:
        return self.pseudonym(normalise_ip(value))

    def apply(self, record: dict[str, Any]) -> dict[str, Any]:
        """Pseudonymise ``record`` (a validated event or log record) and return it."""
        if self._fields.isdisjoint(record) and _NESTED.isdisjoint(map(type, record.values())):
            return record  # the usual case: flat, and none of the fields present (C-level passes)
        if self.enabled:
            for name in self.hash_fields:
                value = record.get(name)
                if isinstance(value, str) and value and value != "unknown":
                    record[name] = self.pseudonym(value)
        seen: list[str] = []
        self._scrub(record, seen, 0)
        message = record.get("message")
        if seen and isinstance(message, str):
            record["message"] = self._replace_in_text(message, seen)
        return record

    def _scrub(self, node: dict[str, Any] | list[Any], seen: list[str], depth: int) -> None:
        """IP fields of ``node`` and everything under it: pseudonymised, or dropped."""
        if depth > MAX_DEPTH:
            return
        if isinstance(node, list):
            for item in node:
                if isinstance(item, dict | list):
                    self._scrub(item, seen, depth + 1)
            return
        for name in [k for k in node if k in self.ip_fields]:
            value = node[name]
            if isinstance(value, str) and value:
                seen.append(value)
            if self.enabled and isinstance(value, str) and value:
                node[name] = self.ip_pseudonym(value)
            else:
                del node[name]
        for value in node.values():
            if isinstance(value, dict | list):
                self._scrub(value, seen, depth + 1)

    def _replace_in_text(self, text: str, addresses: list[str]) -> str:
        for address in sorted(set(addresses), key=len, reverse=True):
            if len(address) >= 3 and address in text:
                text = text.replace(address, self.ip_pseudonym(address) if self.enabled else REDACTED)
        return text

    def scrub_text(self, text: bytes, addresses: list[str]) -> bytes:
        """Raw bytes (a dead-lettered line) with the given client addresses replaced."""
        if not addresses:
            return text
        return self._replace_in_text(text.decode("utf-8", errors="surrogateescape"), addresses).encode(
            "utf-8", errors="surrogateescape")

    def apply_copy(self, record: dict[str, Any]) -> dict[str, Any]:
        """:meth:`apply` without touching ``record``: a scrubbed copy when something in it is to
        be replaced (the SDK's callers keep their own dicts), else ``record`` itself. Values
        JSON cannot hold are turned into text (``str``) in the copy."""
        if self._fields.isdisjoint(record) and _NESTED.isdisjoint(map(type, record.values())):
            return record
        copy = orjson.loads(orjson.dumps(record, default=str, option=orjson.OPT_NON_STR_KEYS))
        return self.apply(copy)

    def scrub_original(self, original: Any) -> Any:
        """The original of a rejected record, as it will be dead-lettered: fields pseudonymised
        when it is a JSON object, string values of those fields rewritten in raw text."""
        if isinstance(original, dict):
            try:
                copy = orjson.loads(orjson.dumps(original, option=orjson.OPT_NON_STR_KEYS))
            except (TypeError, orjson.JSONDecodeError):
                return {}
            return self.apply(copy)
        if isinstance(original, (bytes, str)) and self._raw_field is not None:
            raw = original.encode() if isinstance(original, str) else original
            if raw.lstrip()[:1] == b"{":
                try:
                    parsed = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    parsed = None
                if isinstance(parsed, dict):
                    scrubbed = self.apply(orjson.loads(raw))
                    # the bytes as sent, unless an identifier had to be replaced in them
                    return raw if scrubbed == parsed else orjson.dumps(scrubbed)
            return self._raw_field.sub(self._raw_sub, raw)
        return original

    def _raw_sub(self, match: re.Match[bytes]) -> bytes:
        name, value = match.group(1).decode(), match.group(2).decode(errors="replace")
        if not self.enabled:
            return b'"' + name.encode() + b'":"' + REDACTED.encode() + b'"' if name in self.ip_fields \
                else match.group(0)
        hashed = self.ip_pseudonym(value) if name in self.ip_fields else self.pseudonym(value)
        return f'"{name}":"{hashed}"'.encode()


_ADDRESS_LIKE = re.compile(r"[0-9A-Fa-f:.]{3,}")


def addresses_in(text: str) -> list[str]:
    """The IPv4 and IPv6 addresses written in free text (an IPv4 ``address:port`` gives the
    address): for lines no parser could read, whose client address is not in a field."""
    found: list[str] = []
    for match in _ADDRESS_LIKE.finditer(text):
        token = match.group(0).rstrip(".:").lstrip(".")
        if token.startswith(":") and not token.startswith("::"):
            token = token[1:]
        if "." not in token and ":" not in token:
            continue
        for candidate in (token, token.rsplit(":", 1)[0] if token.count(":") == 1 else ""):
            if not candidate:
                continue
            try:
                ipaddress.ip_address(candidate)
            except ValueError:
                continue
            found.append(candidate)
            break
    return found


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


def privacy_of(settings: Settings) -> PrivacyConfig:
    """The ``privacy:`` section for the agent and the SDK: the top-level one, or the collector's
    older ``collector.privacy`` alias when only that is written (as the collector reads it)."""
    raw = settings.raw("collector").get("privacy")
    if raw is None:
        return settings.privacy
    if not isinstance(raw, dict):
        raise ConfigError(f"{settings.source_file or 'configuration'}: collector.privacy must be a mapping")
    try:
        alias = PrivacyConfig.model_validate(raw)
    except ValueError as exc:
        raise ConfigError(f"{settings.source_file or 'configuration'}: collector.privacy: {exc}") from None
    return resolve_privacy(settings, alias, alias_set=True)


def resolve_privacy(settings: Settings, alias: PrivacyConfig | None = None, alias_name: str = "collector.privacy",
                    alias_set: bool = False) -> PrivacyConfig:
    """The ``privacy:`` section in force: the top-level one, or the older ``collector.privacy``
    alias when only that is written; both written differently is a configuration error."""
    top_set = "privacy" in settings.model_fields_set
    if alias is not None and alias_set:
        if top_set and alias != settings.privacy:
            raise ConfigError(f"{settings.source_file or 'configuration'}: {alias_name}: "
                              "set privacy: (top level) or its alias collector.privacy, not both")
        return alias
    return settings.privacy
