"""One decoded CMCD report -> one SPEC 4 playback event (the tables in collectors/README.md).

This part is stateless: the v2 event type comes from the report alone, and the event id is a
hash of ``sid`` with ``sn``, ``e`` and ``ts`` (v2), or of the report's content (v1), so a report
a player resends after a 429 maps to the same id. What needs a session's history (v1 stalls and
first frame, see ``cmcd_v1``) and a report's clock (``cmcd_clock``) is decided by the caller and
passed in. A value that cannot be used is ignored and counted through ``ignore``; only a report
without a usable ``sid`` or version is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Final

from collectors.http.cmcd import Item, OutOfRange
from collectors.http.cmcd_dims import valid_dimension
from playscope.errors import ValidationError
from playscope.events import MAX_MEASURE, validate_playback_event
from playscope.timeparse import MAX_TS_MS, MIN_TS_MS

Ignore = Callable[[str, str], None]

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
KNOWN_STATES: Final = frozenset(STATE_TYPES) | {"d", "w"}
# States a report may repeat harmlessly (re-entering them changes nothing in SPEC 6). A repeated
# ``seek`` would count a new seek, so only a ``ps`` event maps to it.
_IDEMPOTENT_STATES: Final = frozenset("sprae") | {"f"}
STREAMING_FORMATS: Final = {"d": "dash", "h": "hls", "s": "smooth", "o": "other"}
STREAM_TYPES: Final = {"v": "vod", "l": "live"}
# A ``ttfb``/``ttlb`` above this is a time of day (dash.js sends ``ttfb`` as one), not a duration.
_MAX_DURATION_MS: Final = 3_600_000


def _noop(_key: str, _reason: str) -> None:
    return None


def version_of(cmcd: dict[str, Any]) -> int:
    version = cmcd.get("v", 1)
    if version is True:
        version = 1
    if isinstance(version, bool) or not isinstance(version, int) or version not in (1, 2):
        raise ValidationError("v", f"unsupported CMCD version {str(version)[:10]!r}")
    return version


def session_id(cmcd: dict[str, Any]) -> str:
    sid = cmcd.get("sid")
    if sid is None:
        raise ValidationError("sid", "is required (CMCD session id)")
    if not isinstance(sid, str) or not sid:
        raise ValidationError("sid", "must be a non-empty string")
    if len(sid) > 256:
        raise ValidationError("sid", "longer than 256 characters")
    return sid


def number(cmcd: dict[str, Any], key: str, ignore: Ignore = _noop, video: bool = True) -> float | int | None:
    """A measure, or None (and counted) when it is absent or unusable."""
    value = cmcd.get(key)
    if value is None:
        return None
    if isinstance(value, list):
        value = first_member(value) if video else None
        if value is None:
            return None
    if isinstance(value, OutOfRange):
        ignore(key, "out_of_range")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        ignore(key, "wrong_type")
        return None
    if value < 0:
        ignore(key, "negative")
        return None
    if value > MAX_MEASURE:
        ignore(key, "out_of_range")
        return None
    return value


def token(cmcd: dict[str, Any], key: str, known: frozenset[str] | dict[str, str], ignore: Ignore = _noop) -> str | None:
    value = cmcd.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or value not in known:
        ignore(key, "unknown_value" if isinstance(value, str) else "wrong_type")
        return None
    return value


def client_ts(cmcd: dict[str, Any], ignore: Ignore = _noop) -> int | None:
    """The report's own ``ts`` (epoch ms by the device's clock), None when absent or unusable."""
    value = cmcd.get("ts")
    if value is None:
        return None
    if isinstance(value, OutOfRange):
        ignore("ts", "out_of_range")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        ignore("ts", "wrong_type")
        return None
    if not MIN_TS_MS <= value < MAX_TS_MS:
        ignore("ts", "out_of_range")
        return None
    return int(value)


def duration(cmcd: dict[str, Any], key: str, ignore: Ignore = _noop) -> int | None:
    raw = cmcd.get(key)
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw > _MAX_DURATION_MS:
        ignore(key, "epoch_value")
        return None
    value = number(cmcd, key, ignore)
    return None if value is None else int(value)


def v2_type(cmcd: dict[str, Any], ignore: Ignore = _noop) -> str:
    """The SPEC 4 type of a v2 report: play states from ``sta`` on ``ps`` (and ``t``) events only.

    ``bs`` never opens a rebuffer: dash.js puts it on the ``rr`` event of the request after a
    stall, after it already reported ``sta=p``. An ``rr`` event's ``sta`` is not used either:
    dash.js gives the state at the request's start (its ``ts``), hls.js the state when the
    response ended, so neither the ``ts`` nor the ``sn`` order places it right for both.
    A ``t`` (interval) event is sent at its ``ts`` with the state then in force, so it can only
    repeat what ``ps`` events said (idempotent in SPEC 6), or stand in when ``ps`` is not sent.
    """
    state = token(cmcd, "sta", KNOWN_STATES, ignore)
    kind = cmcd.get("e")
    if kind is not None and not isinstance(kind, str):
        ignore("e", "wrong_type")
        kind = None
    if kind == "e" or state == "f":
        return "error"
    if kind == "ps":
        return STATE_TYPES.get(state or "", "heartbeat")
    if kind == "bc":
        return "bitrate_change" if ("br" in cmcd or "pb" in cmcd) else "heartbeat"
    if kind in (None, "t") and state in _IDEMPOTENT_STATES:
        return STATE_TYPES[state]  # request mode and interval events: the state in force
    return "heartbeat"


def event_time(cmcd: dict[str, Any], ignore: Ignore = _noop) -> int | None:
    """When a v2 event happened by the client's clock: ``rr`` carries the request's start as
    ``ts``, and the response (the event) came ``ttlb`` later."""
    ts = client_ts(cmcd, ignore)
    if ts is not None and cmcd.get("e") == "rr":
        ttlb = duration(cmcd, "ttlb", ignore)
        if ttlb is not None:
            return ts + ttlb
    return ts


def to_event(
    cmcd: dict[str, Any],
    received_ms: int,
    extra: dict[str, Any] | None = None,
    ignore: Ignore = _noop,
    *,
    v1_type: str | None = None,
    shift_ms: int = 0,
    cdn: str | None = None,
) -> dict[str, Any]:
    """One CMCD report -> one validated SPEC 4 event (raises ValidationError).

    ``v1_type`` is the type the session's history gives a v1 report (default: ``playing``
    unless the request is urgent or starving); v1 is dated at ``received_ms``. A v2 event is
    dated at its own time plus ``shift_ms`` (the clock offset of its report), else at
    ``received_ms``. ``extra`` holds the request's dimensions; ``cdn`` the report's own.
    """
    sid = session_id(cmcd)
    version = version_of(cmcd)
    event: dict[str, Any] = {"session_id": sid}
    if extra:
        for key, value in extra.items():
            if valid_dimension(value):
                event[key] = value
    for key, target in (("cid", "title_id"),):
        value = cmcd.get(key)
        if value is not None:
            if valid_dimension(value):
                event[target] = value
            else:
                ignore(key, "wrong_type" if not isinstance(value, str) else "invalid")
    own_cdn = cdn if cdn is not None else cmcd.get("cdn")
    if own_cdn is not None:
        if valid_dimension(own_cdn):
            event["cdn"] = own_cdn
        else:
            ignore("cdn", "invalid")
    if version == 1:
        event["type"] = v1_type or ("heartbeat" if cmcd.get("su") is True or cmcd.get("bs") is True else "playing")
        if "ts" in cmcd:
            ignore("ts", "v1_ts")
        event["ts"] = received_ms
    else:
        event["type"] = v2_type(cmcd, ignore)
        at = event_time(cmcd, ignore)
        event["ts"] = received_ms if at is None else at + shift_ms
    rr = cmcd.get("e") == "rr"
    # rr's br is the bitrate of the object fetched (it plays later); pb is what plays now.
    bitrate = number(cmcd, "pb", ignore) if "pb" in cmcd or rr else number(cmcd, "br", ignore)
    if bitrate is not None:
        event["bitrate_kbps"] = bitrate
        if event["type"] == "bitrate_change":
            event["to_kbps"] = bitrate
    for key, target in (("bl", "buffer_ms"), ("mtp", "throughput_kbps")):
        value = number(cmcd, key, ignore)
        if value is not None:
            event[target] = value
    if event["type"] == "error":
        event["fatal"] = cmcd.get("sta") == "f"
        code = cmcd.get("ec")
        if isinstance(code, list):
            code = first_member(code)
        if isinstance(code, str | int) and not isinstance(code, bool):
            event["error_code"] = str(code)[:256]
    for key, names, target in (("sf", STREAMING_FORMATS, "streaming_format"), ("st", STREAM_TYPES, "stream_type")):
        value = token(cmcd, key, names, ignore)
        if value is not None:
            event[target] = names[value]
    duration(cmcd, "ttfb", ignore)  # counted when it is dash.js's time of day; kept as sent
    event["cmcd"] = {key: plain(value) for key, value in cmcd.items()}
    event["cmcd_version"] = version
    event["event_id"] = event_id(cmcd, sid, extra)
    return validate_playback_event(event)


def first_member(items: list[Any]) -> Any:
    """The video member of an inner list (dash.js tags members ``;v``/``;a``), else the first."""
    if not items:
        return None
    for item in items:
        if isinstance(item, Item) and item.params.get("v") is True:
            return item.value
    head = items[0]
    return head.value if isinstance(head, Item) else head


def plain(value: Any) -> Any:
    if isinstance(value, list):
        return [plain(item.value if isinstance(item, Item) else item) for item in value]
    if isinstance(value, OutOfRange):
        return value.text
    return value


def event_id(cmcd: dict[str, Any], sid: str, extra: dict[str, Any] | None = None, suffix: str = "") -> str:
    """Stable per report: the same report resent maps to the same id, a reused ``sn`` with other
    content does not (it is another event)."""
    sn = cmcd.get("sn")
    if isinstance(sn, int) and not isinstance(sn, bool):
        mode = "e" if "e" in cmcd else "r"
        basis = f"{sid}\x1f{mode}\x1f{sn}\x1f{plain(cmcd.get('e'))}\x1f{plain(cmcd.get('ts'))}"
    else:
        parts = sorted(f"{k}={plain(v)!r}" for k, v in cmcd.items())
        if extra:
            parts += sorted(f"+{k}={v!r}" for k, v in extra.items())
        basis = sid + "\x1f" + "\x1f".join(parts)
    return "cmcd-" + hashlib.blake2b((basis + suffix).encode(), digest_size=12).hexdigest()
