"""``GET``/``POST /v1/cmcd``: CMCD reports in every form -> SPEC 4 events -> Kafka.

A request carries reports in a ``CMCD=`` query argument, in ``CMCD-*`` headers, and in the body
(a JSON object or array of CMCD keys, or v2 report lines). Each report maps to one event (v1:
two when it reveals a stall, whose start is dated before it); a report that cannot be read or
has no ``sid`` is dead-lettered with the reason and answered in ``errors`` by its index. The
``field`` of such an error is one of a fixed set (``cmcd``, ``sid``, ``v``, ``ts`` or a SPEC 4
field), the offending client key is named in the reason text only, so metric labels stay fixed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from collectors.delivery import Message, encode
from collectors.http import cmcd as cmcd_codec
from collectors.http.body import BadBody, Items, parse_items
from collectors.http.cmcd_clock import CLIENT_TIME_HEADER, CLIENT_TIME_PARAM, SessionClocks, explicit_shift
from collectors.http.cmcd_config import CmcdConfig
from collectors.http.cmcd_dims import Dimensions
from collectors.http.cmcd_events import event_id, session_id, to_event, version_of
from collectors.http.cmcd_metrics import CmcdMetrics
from collectors.http.cmcd_v1 import V1Sessions
from playscope.config import Settings
from playscope.deadletter import deadletter_record
from playscope.errors import ValidationError
from playscope.events import check_clock

if TYPE_CHECKING:
    from collectors.http.app import Collector

SOURCE = "collector.cmcd"
_BACKDATE_MARGIN_MS = 2000
# A CMCD text payload is at most 16 KiB; an event this large came from an abusive JSON report.
MAX_EVENT_BYTES = 64 * 1024


class CmcdIngest:
    """The CMCD endpoint's state in one process: config, v1 session memory, counters."""

    def __init__(self, settings: Settings, config: CmcdConfig, metrics: CmcdMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.dimensions = Dimensions(config)
        self.ahead_ms, self.behind_ms = settings.clock_bounds_ms()
        self.tolerance_ms = int(config.clock_tolerance_s * 1000)
        backdate = max(0, settings.allowed_lateness_s * 1000 - _BACKDATE_MARGIN_MS)
        self.v1 = V1Sessions(config.max_sessions, int(config.session_ttl_s * 1000), backdate)
        self.clocks = SessionClocks(config.max_sessions, self.tolerance_ms)

    async def handle(self, collector: Collector, request: Request) -> Response:
        from collectors.http.app import HttpError  # the app's error type; imported late (cycle)

        received_ms = int(time.time() * 1000)
        query = {k: v for k, v in request.query_params.items() if k not in ("CMCD", "api_key")}
        extra = self.dimensions.for_request(query, request.headers, self.metrics.ignore)
        values: list[Any] = []
        raws: list[bytes | None] = []
        cmcd_query = request.query_params.get("CMCD")
        if cmcd_query is not None:
            values.append(TextReport(cmcd_query))
            raws.append(cmcd_query.encode())
        header_names = {name.lower() for name in cmcd_codec.CMCD_HEADERS}
        headers = {k: v for k, v in request.headers.items() if k.lower() in header_names}
        if headers:
            values.append(TextReport(headers))
            raws.append(orjson.dumps(headers))
        if request.method == "POST":
            body = await collector.read_body(request)
            if body.strip():
                try:
                    parsed = _body_items(body, _media_type(request))
                except BadBody as exc:
                    raise HttpError(400, "bad_body", str(exc)) from None
                values += parsed.values
                raws += parsed.raws if parsed.raws is not None else [None] * len(parsed)
        if not values:
            raise HttpError(400, "bad_body", "no CMCD data (CMCD= query, CMCD-* headers or a body)")
        collector.check_count(len(values))
        client_time = request.headers.get(CLIENT_TIME_HEADER) or request.query_params.get(CLIENT_TIME_PARAM)
        try:
            explicit = explicit_shift(client_time, received_ms)
        except ValueError as exc:
            raise HttpError(400, "bad_client_time", str(exc)) from None
        mapped = self.map_reports(values, received_ms, extra, explicit)
        good, errors, dead = _messages(collector, Items(values, raws), mapped)
        return await collector.publish("cmcd", collector.topic_events, good, errors, dead)

    def map_reports(self, values: list[Any], received_ms: int, extra: dict[str, str],
                    explicit: int | None = None) -> list[list[dict[str, Any]] | ValidationError]:
        """Each report -> its events, or the error that refuses it (same order as ``values``).
        ``explicit``: the shift from a client time the request carries (None: derive per session)."""
        decoded: list[dict[str, Any] | ValidationError] = [_decode(value) for value in values]
        shifts = self._clock_shifts(decoded, received_ms, explicit)
        out: list[list[dict[str, Any]] | ValidationError] = []
        for cmcd in decoded:
            if isinstance(cmcd, ValidationError):
                out.append(cmcd)
                continue
            try:
                out.append(self._events(cmcd, received_ms, extra, shifts))
            except ValidationError as exc:
                out.append(exc)
            except Exception as exc:  # a report must never fail the request
                out.append(ValidationError("", f"cannot be processed: {type(exc).__name__}"))
        return out

    def _events(self, cmcd: dict[str, Any], received_ms: int, extra: dict[str, str],
                shifts: dict[str, int]) -> list[dict[str, Any]]:
        ignore = self.metrics.ignore
        sid = session_id(cmcd)
        version = version_of(cmcd)
        cdn = self.dimensions.cdn_of_report(cmcd)
        if version == 1:
            decision = self.v1.decide(sid, cmcd, received_ms, ignore)
            event = to_event(cmcd, received_ms, extra, ignore, v1_type=decision.type, cdn=cdn)
            if decision.stall_start_ms is None:
                return [event]
            self.metrics.stalls.labels("estimated" if decision.stall_estimated else "unknown").inc()
            stall = {key: value for key, value in event.items() if key not in ("cmcd", "cmcd_version")}
            stall.update(type="rebuffer_start", ts=decision.stall_start_ms, cmcd_version=1,
                         event_id=event_id(cmcd, sid, extra, suffix="\x1fstall"), cmcd_estimated=True)
            return [stall, event]
        shift = shifts.get(sid, 0)
        event = to_event(cmcd, received_ms, extra, ignore, shift_ms=shift, cdn=cdn)
        if shift:
            event["clock_offset_ms"] = shift
        check_clock(event, received_ms, self.ahead_ms, self.behind_ms)
        return [event]

    def _clock_shifts(self, decoded: list[dict[str, Any] | ValidationError], received_ms: int,
                      explicit: int | None) -> dict[str, int]:
        """Per session in this request: the shift of its v2 lines (see cmcd_clock)."""
        by_sid: dict[str, list[dict[str, Any]]] = {}
        for cmcd in decoded:
            if isinstance(cmcd, dict) and cmcd.get("v") == 2 and isinstance(cmcd.get("sid"), str):
                by_sid.setdefault(cmcd["sid"], []).append(cmcd)
        shifts = {}
        for sid, lines in by_sid.items():
            shift = explicit if explicit is not None else self.clocks.shift(sid, lines, received_ms)
            if shift:
                shifts[sid] = shift
                self.metrics.clock_shifted.inc()
        return shifts


class TextReport:
    """A CMCD text payload (or header set) still to decode, so decoding errors become item errors."""

    __slots__ = ("payload",)

    def __init__(self, payload: str | dict[str, str]) -> None:
        self.payload = payload


def _decode(item: Any) -> dict[str, Any] | ValidationError:
    try:
        if isinstance(item, TextReport):
            if isinstance(item.payload, dict):
                return cmcd_codec.merge_headers(item.payload)
            return cmcd_codec.decode(item.payload)
        if isinstance(item, dict):  # the JSON form
            return item
        return ValidationError("cmcd", "a CMCD JSON report must be an object")
    except cmcd_codec.CmcdError as exc:
        key = f"{exc.field[:20]}: " if exc.field else ""
        return ValidationError("cmcd", f"{key}{exc.reason}")


def _messages(collector: Collector, items: Items,
              mapped: list[list[dict[str, Any]] | ValidationError]) -> tuple[list[Message], list[dict[str, Any]],
                                                                         list[Message]]:
    """Like ``Collector.split``, for reports that map to any number of events."""
    good: list[Message] = []
    errors: list[dict[str, Any]] = []
    dead: list[Message] = []
    pseudonymize = collector.privacy.apply
    for index, result in enumerate(mapped):
        if isinstance(result, ValidationError):
            errors.append({"index": index, "field": result.field, "reason": result.reason})
            raw = items.raw(index)
            original = raw if raw is not None else b""
            doc = deadletter_record(collector.privacy.scrub_original(original), result.reason, SOURCE,
                                    field=result.field)
            dead.append({"value": encode(doc), "key": None})
            continue
        encoded = [(event, encode(pseudonymize(event))) for event in result]
        if any(len(data) > MAX_EVENT_BYTES for _, data in encoded):
            result = ValidationError("cmcd", f"the report maps to an event over {MAX_EVENT_BYTES} bytes")
            mapped[index] = result
            errors.append({"index": index, "field": result.field, "reason": result.reason})
            raw = items.raw(index)
            doc = deadletter_record(b"" if raw is None else raw[:MAX_EVENT_BYTES], result.reason, SOURCE,
                                    field=result.field)
            dead.append({"value": encode(doc), "key": None})
            continue
        for event, data in encoded:
            good.append({"value": data, "key": event["session_id"].encode()})
    return good, errors, dead


def _body_items(body: bytes, media_type: str) -> Items:
    stripped = body.lstrip()
    if media_type != "application/cmcd" and stripped[:1] in (b"{", b"["):
        return parse_items(body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("CMCD body is not UTF-8 text") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return Items([TextReport(line) for line in lines], [line.encode() for line in lines])


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()
