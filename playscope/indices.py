"""The search indices of SPEC 10: daily index names, document ids and composable templates.

Mappings are explicit and ``dynamic: false``: unknown fields stay in ``_source`` (searchable
by reading, not by querying) so a noisy log field can never hit the field limit or reject a
document. Both Elasticsearch and OpenSearch accept these templates as written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

import orjson

from playscope import topics
from playscope.timeparse import utc_day

KEYWORD: Final = {"type": "keyword", "ignore_above": 1024}
DATE: Final = {"type": "date", "format": "epoch_millis||strict_date_optional_time"}
LONG: Final = {"type": "long"}
DOUBLE: Final = {"type": "double"}
BOOL: Final = {"type": "boolean"}
TEXT: Final = {"type": "text"}
OBJECT_NOT_INDEXED: Final = {"type": "object", "enabled": False}

# Dimension fields that identify a window group (SPEC 7-8).
WINDOW_KEY_FIELDS: Final = ("cdn", "isp", "device", "country", "service", "route")

_EVENT_DIMS = ("device", "os", "app_version", "cdn", "isp", "country", "title_id", "profile_id")
_DIMS = {d: KEYWORD for d in _EVENT_DIMS}

PLAYBACK_PROPS: Final = {
    "event_id": KEYWORD,
    "session_id": KEYWORD,
    "ts": DATE,
    "type": KEYWORD,
    **_DIMS,
    "bitrate_kbps": DOUBLE,
    "buffer_ms": DOUBLE,
    "position_ms": DOUBLE,
    "throughput_kbps": DOUBLE,
    "from_kbps": DOUBLE,
    "to_kbps": DOUBLE,
    "error_code": KEYWORD,
    "fatal": BOOL,
    "client_ip": KEYWORD,
}

LOG_PROPS: Final = {
    "ts": DATE,
    "service": KEYWORD,
    "message": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 256}}},
    "level": KEYWORD,
    "host": KEYWORD,
    "route": KEYWORD,
    "method": KEYWORD,
    "status": {"type": "short"},
    "latency_ms": DOUBLE,
    "trace_id": KEYWORD,
    "source_file": KEYWORD,
}

SESSION_PROPS: Final = {
    "session_id": KEYWORD,
    "start_ts": DATE,
    "end_ts": DATE,
    "startup_ms": LONG,
    "play_ms": LONG,
    "rebuffer_ms": LONG,
    "seek_ms": LONG,
    "paused_ms": LONG,
    "watched_ms": LONG,
    "rebuffer_count": LONG,
    "seek_count": LONG,
    "rebuffer_ratio": DOUBLE,
    "avg_bitrate_kbps": DOUBLE,
    "bitrate_switches": LONG,
    "outcome": KEYWORD,
    "error_code": KEYWORD,
    "event_count": LONG,
    "closed_by": KEYWORD,
    **_DIMS,
}

# `revision` (SPEC 7): 0 on a window's first emission, one higher on each corrected re-emission.
_WINDOW = {"window_start": DATE, "window_end": DATE, "group": KEYWORD, "revision": LONG}

QOE_PROPS: Final = {
    **_WINDOW,
    "cdn": KEYWORD,
    "isp": KEYWORD,
    "device": KEYWORD,
    "country": KEYWORD,
    "attempts": LONG,
    "plays": LONG,
    "rebuffer_count": LONG,
    "ended": LONG,
    "completed": LONG,
    "vsf": LONG,
    "vpf": LONG,
    "ebvs": LONG,
    "play_ms": LONG,
    "rebuffer_ms": LONG,
    "watched_ms": LONG,
    "startup_ms_p50": DOUBLE,
    "startup_ms_p95": DOUBLE,
    "rebuffer_ratio": DOUBLE,
    "failure_rate": DOUBLE,
    "avg_bitrate_kbps": DOUBLE,
    "late_events": LONG,
}

SERVICE_PROPS: Final = {
    **_WINDOW,
    "service": KEYWORD,
    "route": KEYWORD,
    "requests": LONG,
    "errors": LONG,
    "error_rate": DOUBLE,
    "latency_ms_p50": DOUBLE,
    "latency_ms_p95": DOUBLE,
    "latency_ms_p99": DOUBLE,
    "by_status": {
        "type": "object",
        "properties": {k: LONG for k in ("1xx", "2xx", "3xx", "4xx", "5xx")},
    },
}

ALERT_PROPS: Final = {
    "ts": DATE,
    "status": KEYWORD,
    "rule": KEYWORD,
    "severity": KEYWORD,
    "source": KEYWORD,
    "metric": KEYWORD,
    "group": {"type": "object", "properties": {k: KEYWORD for k in WINDOW_KEY_FIELDS}},
    "group_key": KEYWORD,
    "value": DOUBLE,
    "threshold": DOUBLE,
    "window_start": DATE,
    "window_end": DATE,
    "summary": TEXT,
}

DEADLETTER_PROPS: Final = {
    "ts": DATE,
    "reason": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
    "source": KEYWORD,
    "field": KEYWORD,
    "topic": KEYWORD,
    "original": {"type": "text", "index": False},
    "original_b64": {"type": "binary"},
}


# A template's settings on its first install; later installs keep what is there (merge_template).
DEFAULT_SHARDS: Final = 1
DEFAULT_REPLICAS: Final = 0  # one node locally; a cluster sets indices.*.replicas

# Keys the cluster adds to a stored template, refused (or meaningless) in a PUT.
_SERVER_KEYS: Final = ("created_date", "created_date_millis", "modified_date", "modified_date_millis")


@dataclass(frozen=True)
class IndexFamily:
    """One family of daily indices, fed by one topic."""

    name: str  # e.g. "playback"
    topic: str
    time_field: str  # the record's own time, whose UTC day names the index
    properties: dict[str, Any]

    @property
    def prefix(self) -> str:
        return f"playscope-{self.name}-"

    @property
    def pattern(self) -> str:
        return f"{self.prefix}*"

    def index_for(self, record: dict[str, Any], prefix: str = "") -> str:
        return f"{prefix}{self.prefix}{utc_day(int(record[self.time_field]))}"

    def template(self, prefix: str = "", shards: int = DEFAULT_SHARDS,
                 replicas: int = DEFAULT_REPLICAS) -> dict[str, Any]:
        """Composable index template body (``PUT _index_template/<name>``)."""
        return {
            "index_patterns": [f"{prefix}{self.pattern}"],
            "priority": 200,
            "template": {
                "settings": {
                    "number_of_shards": shards,
                    "number_of_replicas": replicas,
                    "refresh_interval": "1s",
                },
                "mappings": {"dynamic": False, "properties": self.properties},
            },
            "_meta": {"managed_by": "playscope", "topic": self.topic},
        }

    def template_name(self, prefix: str = "") -> str:
        return f"{prefix}playscope-{self.name}"


FAMILIES: Final[dict[str, IndexFamily]] = {
    f.name: f
    for f in (
        IndexFamily("playback", topics.PLAYBACK_EVENTS, "ts", PLAYBACK_PROPS),
        IndexFamily("logs", topics.SERVICE_LOGS, "ts", LOG_PROPS),
        IndexFamily("sessions", topics.QOE_SESSIONS, "start_ts", SESSION_PROPS),
        IndexFamily("qoe", topics.QOE_METRICS, "window_start", QOE_PROPS),
        IndexFamily("service", topics.SERVICE_METRICS, "window_start", SERVICE_PROPS),
        IndexFamily("alerts", topics.ALERTS, "ts", ALERT_PROPS),
        IndexFamily("deadletter", topics.DEADLETTER, "ts", DEADLETTER_PROPS),
    )
}

FAMILY_BY_TOPIC: Final = {f.topic: f for f in FAMILIES.values()}


def flat_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Index settings as dotted keys without the ``index.`` prefix: the cluster answers
    ``{"index": {"number_of_replicas": "1"}}`` for what was put as ``{"number_of_replicas": 1}``."""
    flat: dict[str, Any] = {}

    def walk(node: dict[str, Any], path: str) -> None:
        for key, value in node.items():
            dotted = f"{path}.{key}" if path else key
            if isinstance(value, dict):
                walk(value, dotted)
            else:
                flat[dotted.removeprefix("index.")] = value

    walk(settings, "")
    return flat


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on top: mappings are merged key by key, ``over`` wins a conflict."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def merge_template(installed: dict[str, Any] | None, wanted: dict[str, Any],
                   explicit: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The template to put when ``installed`` (the stored body, or None) is already there.

    The rule, so a restart never undoes an operator's change: a setting the installed template
    has is kept unless it is in ``explicit`` (set in playscope's configuration); a setting it
    lacks gets playscope's value; mappings are merged, so new fields arrive, playscope's
    definitions win for its fields and fields an operator added stay; the index patterns, the
    priority and ``_meta.managed_by`` are playscope's; anything else an operator added (aliases,
    ``composed_of``, other settings) stays."""
    if not installed:
        return wanted
    body = {k: v for k, v in installed.items() if k not in _SERVER_KEYS}
    have_tpl = body.get("template") or {}
    want_tpl = wanted["template"]
    have = flat_settings(have_tpl.get("settings") or {})
    settings = {**have, **{k: v for k, v in want_tpl["settings"].items() if k in explicit or k not in have}}
    template = {**have_tpl, "settings": settings,
                "mappings": deep_merge(have_tpl.get("mappings") or {}, want_tpl["mappings"])}
    return {**body, "index_patterns": wanted["index_patterns"], "priority": wanted["priority"],
            "template": template, "_meta": {**(body.get("_meta") or {}), **wanted["_meta"]}}


def log_doc_id(record: dict[str, Any]) -> str:
    """SPEC 10: a deterministic hash of a log record, so a replay overwrites instead of adding."""
    canonical = orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def window_doc_id(record: dict[str, Any]) -> str:
    """SPEC 7: a window record's id derives from its window and group (and the group's values)."""
    parts = [str(record["window_start"]), str(record.get("window_end", "")), str(record["group"])]
    parts += [f"{k}={record[k]}" for k in WINDOW_KEY_FIELDS if k in record]
    return "|".join(parts)
