"""Turning one Kafka record into one bulk action (or the reason it cannot be one).

The fast path forwards the record's own bytes as the document source: no re-serialisation.
A record is rewritten only when it must be: its time field is an RFC 3339 string (normalised to
epoch ms, so the index date and the stored value agree) or its JSON spans several lines (which
the NDJSON bulk body cannot carry).

Window records (QoE and service) can be emitted again with corrected numbers and ``revision``
one higher (SPEC 7). Their actions carry the revision as an external version
(``version_type: external_gte``), so the index keeps the highest revision whatever order the
writes arrive in: a replay re-sending revision 0 after revision 1 was stored is refused by the
backend (a version conflict, counted as stale), and a re-send of the same revision is accepted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import orjson

from playscope.errors import ValidationError
from playscope.indices import FAMILY_BY_TOPIC, IndexFamily, log_doc_id, window_doc_id
from playscope.timeparse import MAX_TS_MS, MIN_TS_MS, parse_ts, utc_day

MAX_ID_BYTES: Final = 512  # Elasticsearch rejects longer _id values
MAX_REVISION: Final = 2**53  # far beyond any re-emission count; a JSON-safe integer
VERSIONED_FAMILIES: Final = frozenset({"qoe", "service"})  # window documents: version = revision


@dataclass(slots=True)
class Action:
    """One index operation: where, under which id, and the source bytes (one line)."""

    index: str
    doc_id: str
    source: bytes
    family: str
    # Where it came from, for a dead-letter record if the backend refuses it.
    topic: str = ""
    original: bytes = b""
    kafka_ts_ms: int = 0
    # External version (a window's revision); None: the backend's own versioning (last write wins).
    version: int | None = None

    def ndjson(self) -> bytes:
        meta_end = b"}}\n" if self.version is None else _version_suffix(self.version)
        return b"".join((_meta_prefix(self.index), orjson.dumps(self.doc_id), meta_end, self.source, b"\n"))


@lru_cache(maxsize=4096)
def _meta_prefix(index: str) -> bytes:
    return b'{"index":{"_index":' + orjson.dumps(index) + b',"_id":'


@lru_cache(maxsize=64)
def _version_suffix(version: int) -> bytes:
    return b',"version":%d,"version_type":"external_gte"}}\n' % version


@lru_cache(maxsize=4096)
def _day_suffix(day_number: int) -> str:
    return utc_day(day_number * DAY_MS)


DAY_MS: Final = 86_400_000


class Rejected(Exception):
    """A record that can never become a document; it is dead-lettered with ``reason``."""

    def __init__(self, reason: str, field: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


def _required_str(record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value:
        raise Rejected(f"{field} must be a non-empty string (it is the document id)", field)
    return value


def _blake(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def alert_doc_id(record: dict[str, Any]) -> str:
    """One document per rule, group, window and status: a re-sent state change overwrites."""
    group = record.get("group_key")
    if group is None:
        group = orjson.dumps(record.get("group") or {}, option=orjson.OPT_SORT_KEYS).decode()
    parts = [record.get("rule"), group, record.get("window_start"), record.get("window_end")]
    parts.append(record.get("status"))
    if record.get("rule") is None or record.get("status") is None:
        raise Rejected("an alert needs 'rule' and 'status'", "rule")
    return _blake("|".join(str(p) for p in parts).encode())


def revision_of(record: dict[str, Any]) -> int:
    """A window record's revision (SPEC 7); a record without one is revision 0."""
    value = record.get("revision", 0)
    if type(value) is not int or not 0 <= value <= MAX_REVISION:
        raise Rejected(f"revision must be an integer from 0 to {MAX_REVISION}", "revision")
    return value


def _window_id(record: dict[str, Any]) -> str:
    if "group" not in record:
        raise Rejected("a window record needs 'group'", "group")
    return window_doc_id(record)


# family name -> document id of a parsed record (the raw bytes are passed for content hashes)
DocIdFn = Callable[[dict[str, Any], bytes], str]

DOC_IDS: Final[dict[str, DocIdFn]] = {
    "playback": lambda rec, _raw: _required_str(rec, "event_id"),
    "logs": lambda rec, _raw: log_doc_id(rec),
    "sessions": lambda rec, _raw: _required_str(rec, "session_id"),
    "qoe": lambda rec, _raw: _window_id(rec),
    "service": lambda rec, _raw: _window_id(rec),
    "alerts": lambda rec, _raw: alert_doc_id(rec),
    "deadletter": lambda _rec, raw: _blake(raw),
}


class Encoder:
    """Maps (topic, value) to an :class:`Action`; raises :class:`Rejected` with the reason."""

    def __init__(self, topic_to_family: dict[str, IndexFamily], index_prefix: str) -> None:
        self._families = topic_to_family
        self._index_names = {f.name: f"{index_prefix}{f.prefix}" for f in topic_to_family.values()}

    @classmethod
    def for_settings(cls, topic_name: Callable[[str], str], families: tuple[str, ...],
                     index_prefix: str) -> Encoder:
        mapping = {topic_name(t): f for t, f in FAMILY_BY_TOPIC.items() if f.name in families}
        return cls(mapping, index_prefix)

    def family(self, topic: str) -> IndexFamily:
        return self._families[topic]

    def encode(self, topic: str, value: bytes | None, kafka_ts_ms: int = 0) -> Action:
        family = self._families[topic]
        if not value:
            raise Rejected("empty record (no value)")
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise Rejected(f"not valid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise Rejected(f"not a JSON object: {type(record).__name__}")
        raw_ts = record.get(family.time_field)
        if type(raw_ts) is int and MIN_TS_MS <= raw_ts < MAX_TS_MS:  # the common case, inlined
            ts_ms = raw_ts
        else:
            try:
                ts_ms = parse_ts(raw_ts, family.time_field)
            except ValidationError as exc:
                raise Rejected(str(exc), family.time_field) from None
        doc_id = DOC_IDS[family.name](record, value)
        if len(doc_id.encode()) > MAX_ID_BYTES:
            raise Rejected(f"document id longer than {MAX_ID_BYTES} bytes")
        source = value
        if raw_ts != ts_ms or b"\n" in value or b"\r" in value:
            record[family.time_field] = ts_ms
            source = orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS)
        version = revision_of(record) if family.name in VERSIONED_FAMILIES else None
        index = self._index_names[family.name] + _day_suffix(ts_ms // DAY_MS)
        return Action(index, doc_id, source, family.name, topic, value, kafka_ts_ms, version)
