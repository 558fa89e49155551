"""Mapping decoded CMCD to SPEC 4 playback events (the table in collectors/README.md).

The mapping is stateless, so any number of collectors can sit behind a load balancer and a
retried report maps to the same event: the event id is a hash of ``sid`` and ``sn`` (v2), or of
the session and the report's content when there is no sequence number (v1).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from collectors.http.cmcd import Item
from playscope.errors import ValidationError
from playscope.events import DIMENSIONS, validate_playback_event

# v2 play states (``sta``) -> SPEC 4 types. ``d`` (preloading) and ``w`` (waiting) are heartbeats.
STATE_TYPES: Final = {
    "s": "session_start",
    "p": "playing",
    "r": "rebuffer_start",
    "k": "seek",
    "a": "pause",
    "e": "session_end",
    "f": "error",
}
# States that are safe to repeat on every report (re-entering them changes nothing in SPEC 6).
# A repeated ``seek`` would count a new seek, so only explicit play-state reports map to it.
_IDEMPOTENT_STATES: Final = frozenset("sprae") | {"f"}

# CMCD key -> SPEC 4 field, for keys copied as they are.
STRING_FIELDS: Final = {"sid": "session_id", "cid": "title_id", "cdn": "cdn"}
# Extra dimensions a player may add next to CMCD (query arguments or JSON keys).
_PASS_THROUGH: Final = tuple(d for d in DIMENSIONS if d not in ("title_id", "cdn"))


def to_event(cmcd: dict[str, Any], received_ms: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One CMCD report -> one validated SPEC 4 event (raises ValidationError)."""
    sid = cmcd.get("sid")
    if sid is None:
        raise ValidationError("sid", "is required (CMCD session id)")
    if not isinstance(sid, str) or not sid:
        raise ValidationError("sid", "must be a non-empty string")
    event: dict[str, Any] = {"session_id": sid}
    for key, target in STRING_FIELDS.items():
        value = cmcd.get(key)
        if key != "sid" and value is not None:
            if not isinstance(value, str):
                raise ValidationError(key, f"must be a string, got {type(value).__name__}")
            event[target] = value
    version = _version(cmcd)
    event["type"] = _event_type(cmcd, version)
    event["ts"] = _ts(cmcd, received_ms)
    bitrate = _number(cmcd, "pb") if "pb" in cmcd else _number(cmcd, "br")
    if bitrate is not None:
        event["bitrate_kbps"] = bitrate
        if event["type"] == "bitrate_change":
            event["to_kbps"] = bitrate
    for key, target in (("bl", "buffer_ms"), ("mtp", "throughput_kbps")):
        value = _number(cmcd, key)
        if value is not None:
            event[target] = value
    if event["type"] == "error":
        event["fatal"] = cmcd.get("sta") == "f"
        code = cmcd.get("ec")
        if code is not None:
            event["error_code"] = _first(code) if isinstance(code, list) else str(code)
    for key in _PASS_THROUGH:
        if extra and isinstance(extra.get(key), str):
            event[key] = extra[key]
    event["cmcd"] = {key: _plain(value) for key, value in cmcd.items()}
    event["cmcd_version"] = version
    event["event_id"] = _event_id(cmcd, sid, extra)
    return validate_playback_event(event)


def _version(cmcd: dict[str, Any]) -> int:
    version = cmcd.get("v", 1)
    if version is True:
        version = 1
    if not isinstance(version, int) or version not in (1, 2):
        raise ValidationError("v", f"unsupported CMCD version {str(version)[:10]!r}")
    return version


def _event_type(cmcd: dict[str, Any], version: int) -> str:
    state = cmcd.get("sta")
    if state is not None and not isinstance(state, str):
        raise ValidationError("sta", "must be a token")
    if version == 1:
        if cmcd.get("bs") is True:
            return "rebuffer_start"
        # v1 has no play state: a request that is neither urgent (su: startup, seek or
        # recovery) nor starving means the player is playing; this also ends a rebuffer.
        return "heartbeat" if cmcd.get("su") is True else "playing"
    kind = cmcd.get("e")
    if kind == "ps":
        return STATE_TYPES.get(state or "", "heartbeat")
    if kind == "bc":
        return "bitrate_change" if ("br" in cmcd or "pb" in cmcd) else "heartbeat"
    if kind == "e" or state == "f":
        return "error"
    if kind is None and state in _IDEMPOTENT_STATES:
        return STATE_TYPES[state]  # v2 request mode: the state in force
    if cmcd.get("bs") is True:
        return "rebuffer_start"
    return "heartbeat"


def _ts(cmcd: dict[str, Any], received_ms: int) -> Any:
    value = cmcd.get("ts")
    if value is None:
        return received_ms
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError("ts", "must be epoch milliseconds")
    return int(value)


def _number(cmcd: dict[str, Any], key: str) -> float | int | None:
    value = cmcd.get(key)
    if value is None:
        return None
    if isinstance(value, list):
        value = _first(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(key, f"must be a number, got {type(value).__name__}")
    if value < 0:
        raise ValidationError(key, "must not be negative")
    return value


def _first(items: list[Any]) -> Any:
    """The video member of an inner list (dash.js tags members ``;v``/``;a``), else the first."""
    if not items:
        return None
    for item in items:
        if isinstance(item, Item) and item.params.get("v") is True:
            return item.value
    head = items[0]
    return head.value if isinstance(head, Item) else head


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [item.value if isinstance(item, Item) else item for item in value]
    return value


def _event_id(cmcd: dict[str, Any], sid: str, extra: dict[str, Any] | None) -> str:
    sn = cmcd.get("sn")
    if isinstance(sn, int) and not isinstance(sn, bool):
        mode = "e" if "e" in cmcd else "r"
        basis = f"{sid}\x1f{mode}\x1f{sn}"
    else:
        parts = sorted(f"{k}={_plain(v)!r}" for k, v in cmcd.items())
        if extra:
            parts += sorted(f"+{k}={v!r}" for k, v in extra.items())
        basis = sid + "\x1f" + "\x1f".join(parts)
    return "cmcd-" + hashlib.blake2b(basis.encode(), digest_size=12).hexdigest()
