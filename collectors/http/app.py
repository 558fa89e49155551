"""The HTTP beacon collector: an ASGI app (Starlette) in front of a durable Kafka producer.

Every accepting answer (202; 200 with an ``ExportLogsServiceResponse`` for OTLP/HTTP logs) is sent
only after Kafka acknowledged the accepted items *and* the dead-letter records of the rejected
ones (or, with a spool configured, after they were written to disk). Anything else gets a
defined error: 400 unreadable body, 401 unknown key, 413 too large, 429 too fast, 503 broker
unavailable or overloaded (with Retry-After).

No item can stop a request or the process: whatever a validator or a mapping raises becomes that
item's rejection (dead-lettered with the reason), and records Kafka can never take (too large,
not authorised) are refused per item, never spooled or retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from collectors.delivery import (
    BatchResult,
    BrokerUnavailable,
    DeliveryProducer,
    Message,
    Record,
    Run,
    encode,
    to_records,
)
from collectors.http import otlp, otlp_proto
from collectors.http.auth import KeyedCORSMiddleware, KeyStore
from collectors.http.body import BadBody, BadLine, Items, TooLarge, decompress, parse_items
from collectors.http.clock import CLIENT_TIME_HEADER, CLIENT_TIME_PARAM, BadClientTime, Clock, client_offset
from collectors.http.cmcd_ingest import CmcdIngest
from collectors.http.cmcd_metrics import CmcdMetrics
from collectors.http.config import CollectorConfig
from collectors.http.fastpath import IngestFastPath, RawRequest
from collectors.http.metrics import REASON_CLASSES, CollectorMetrics
from collectors.http.ratelimit import RateLimiter
from collectors.http.shed import LoadShedder
from collectors.http.spool import Spool, SpoolWriteError
from playscope import topics
from playscope.config import Settings
from playscope.deadletter import deadletter_record
from playscope.errors import ValidationError
from playscope.events import validate_log_record, validate_playback_event
from playscope.kafka import producer_config
from playscope.logs import log_event
from playscope.privacy import Pseudonymizer, resolve_privacy

log = logging.getLogger("playscope.collector")

Validator = Callable[[Any], dict[str, Any]]
# the ingest pipelines run on Starlette's request (the routes) or the fast path's (fastpath.py)
IngestRequest = Request | RawRequest
# The original bytes kept in a dead letter: an item too large for Kafka is cut to this much
# (``original_truncated``, ``original_size``), so its dead letter always fits.
DEADLETTER_ORIGINAL_MAX = 64 * 1024


class HttpError(Exception):
    def __init__(self, status: int, error_type: str, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.retry_after = retry_after


class Collector:
    """State shared by the endpoints: producer, limits, metrics, topic names."""

    def __init__(self, settings: Settings, config: CollectorConfig, metrics: CollectorMetrics | None = None,
                 worker: int | None = None):
        self.settings = settings
        self.config = config
        self.metrics = metrics or CollectorMetrics()
        # the Kafka client's name in log lines: one per worker process
        self.client = "collector" if worker is None else f"collector-{worker}"
        self._produce_failures = _Throttle(30.0)
        self.limiter = RateLimiter(config.rate_limit_per_s, config.rate_burst)
        self.keys = KeyStore(config.applications, config.api_keys, config.keys_file, config.allowed_origins,
                             config.rate_limit_per_s, config.rate_burst)
        privacy = resolve_privacy(settings, config.privacy, alias_set="privacy" in config.model_fields_set)
        self.privacy = Pseudonymizer(privacy)  # identifiers hashed before anything is produced
        self.clock_bounds = settings.clock_bounds_ms()
        self.active = 0  # ingest requests being served (max_concurrent_requests)
        self._item_failures = _Throttle(30.0)
        self.topic_events = settings.topic(topics.PLAYBACK_EVENTS)
        self.topic_logs = settings.topic(topics.SERVICE_LOGS)
        self.topic_deadletter = settings.topic(topics.DEADLETTER)
        self.producer: DeliveryProducer | None = None
        self.spool: Spool | None = None
        self.cmcd = CmcdIngest(settings, config.cmcd, CmcdMetrics(self.metrics.registry))

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        timeout_ms = int(self.config.produce_timeout_s * 1000)
        conf = producer_config(self.settings.kafka, **{"message.timeout.ms": timeout_ms})
        self.producer = DeliveryProducer(conf, client=self.client, on_broker_change=self._broker_changed)
        self._broker_changed(self.producer.broker_up)
        if self.config.spool_dir is not None:
            self.spool = Spool(self.config.spool_dir, self.config.spool_max_bytes, self.producer,
                               on_replayed=self.metrics.replayed.inc, on_quarantined=self.metrics.quarantined.inc)
            self.spool.start()
        log_event(log, "collector.started", bootstrap=self.settings.kafka.bootstrap)
        if not self.privacy.enabled:
            log_event(log, "collector.privacy_disabled", level=logging.WARNING,
                      detail="privacy.secret is not set: profile_id is stored as sent, IP fields dropped")

    def _broker_changed(self, up: bool) -> None:
        """Written at each change, so every worker's value is current in the summed metrics."""
        self.metrics.broker_up.set(1 if up else 0)

    def stop(self) -> None:
        if self.spool is not None:
            self.spool.stop()
        if self.producer is not None:
            left = self.producer.close(timeout_s=self.config.produce_timeout_s)
            log_event(log, "collector.stopped", undelivered=left)
            self.producer = None

    # -- the request pipeline -------------------------------------------------------------
    def overloaded(self) -> bool:
        """At the concurrency limit: new ingest requests are shed (collectors/http/shed.py)."""
        return self.active >= self.config.max_concurrent_requests

    def admit(self, request: IngestRequest) -> None:
        """API key and rate limit, before reading the body. Limits are per client address:
        with API keys, per application and address (one browser holding a public key cannot
        use up its application's budget), plus the application's total when it sets one."""
        client = request.client.host if request.client else "unknown"
        who = client
        limiter = self.limiter
        if self.keys.enabled:
            key = _api_key(request)
            if not key:
                raise HttpError(401, "unauthorized", "an API key is required (X-API-Key)")
            application = self.keys.lookup(key)
            if application is None:
                raise HttpError(401, "unauthorized", "unknown API key")
            origin = request.headers.get("origin")
            if origin and not application.allows(origin):
                raise HttpError(403, "origin_not_allowed", "this API key is not allowed from this origin")
            who, limiter = f"{application.name}|{client}", application.limiter or self.limiter
            if application.total_limiter is not None:
                wait = application.total_limiter.check(application.name)
                if wait > 0:
                    raise HttpError(429, "rate_limited", "too many requests for this application",
                                    RateLimiter.retry_after(wait))
        if limiter.enabled:
            wait = limiter.check(who)
            if wait > 0:
                raise HttpError(429, "rate_limited", "too many requests", RateLimiter.retry_after(wait))

    def clock(self, request: IngestRequest) -> Clock:
        """The request's receive time, its client's clock offset (``X-Playscope-Client-Time``)
        and the SPEC 4 bounds (collectors/http/clock.py)."""
        received_ms = int(time.time() * 1000)
        header = request.headers.get(CLIENT_TIME_HEADER) or (
            request.query_params.get(CLIENT_TIME_PARAM) if request.scope["query_string"] else None)
        try:
            offset = client_offset(header, received_ms)
        except BadClientTime as exc:
            raise HttpError(400, "bad_client_time", str(exc)) from None
        ahead, behind = self.clock_bounds
        return Clock(received_ms, offset, ahead, behind)

    async def read_body(self, request: IngestRequest) -> bytes:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise HttpError(413, "too_large", f"body larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, "too_large", f"body larger than {limit} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            return decompress(raw, request.headers.get("content-encoding", ""), limit)
        except TooLarge as exc:
            raise HttpError(413, "too_large", str(exc)) from None
        except BadBody as exc:
            raise HttpError(400, "bad_body", str(exc)) from None

    def check_count(self, count: int) -> None:
        if count > self.config.max_events_per_request:
            raise HttpError(
                413, "too_many_items",
                f"{count} items; at most {self.config.max_events_per_request} per request",
            )

    def split(
        self,
        items: Items,
        validate: Validator,
        key_field: str,
        source: str,
        map_item: Callable[[Any], Any] | None = None,
        clock: Clock | None = None,
    ) -> tuple[list[Message], list[dict[str, Any]], list[Message]]:
        """Validate items: messages to produce, per-item errors, and their dead-letter messages.
        The first list is an :class:`Accepted` (it knows each message's item index). Nothing an
        item does escapes: any exception of a validator or mapping rejects that item only."""
        good = Accepted()
        errors: list[dict[str, Any]] = []
        dead: list[Message] = []
        dumps = encode  # orjson.dumps, sized for records kept until the batch is produced
        pseudonymize = self.privacy.apply
        append = good.append
        indices = good.indices
        max_bytes = self.config.max_record_bytes
        check = clock.apply if clock is not None else None
        for index, value in enumerate(items.values):
            try:
                if isinstance(value, BadLine):
                    raise ValidationError("", f"line is not JSON: {value.reason}")
                record = validate(map_item(value) if map_item else value)
                if check is not None:
                    check(record)
                record = pseudonymize(record)
                data = dumps(record)
                if len(data) > max_bytes:
                    raise ValidationError("", f"{len(data)} bytes once encoded; at most {max_bytes} per record "
                                              "(collector.max_record_bytes)")
                key = record.get(key_field)
            except ValidationError as exc:
                self._reject(items, index, value, exc.field, exc.reason, source, errors, dead)
                continue
            except Exception as exc:  # one item must never fail the request
                reason = f"cannot be processed: {type(exc).__name__}: {str(exc)[:200]}"
                self.metrics.errors.labels("item_exception").inc()
                self._item_failures.log(log, "collector.item_failed", records=1, source=source,
                                        error=type(exc).__name__)
                self._reject(items, index, value, "", reason, source, errors, dead)
                continue
            append({"value": data, "key": key.encode() if type(key) is str else None})
            indices.append(index)
        return good, errors, dead

    def _reject(self, items: Items, index: int, value: Any, field: str, reason: str, source: str,
                errors: list[dict[str, Any]], dead: list[Message]) -> None:
        """Report item ``index`` and dead-letter its original bytes (identifiers scrubbed)."""
        errors.append({"index": index, "field": field, "reason": reason})
        try:
            raw = items.raw(index)
            original: Any = raw if raw is not None else (value if not isinstance(value, BadLine) else b"")
            original = self.privacy.scrub_original(original)
            dead.append({"value": encode(self._deadletter(original, reason, source, field)), "key": None})
        except Exception as exc:  # an original that cannot even be encoded
            doc = deadletter_record(b"", reason, source, field=field, original_error=type(exc).__name__)
            dead.append({"value": encode(doc), "key": None})

    def _deadletter(self, original: Any, reason: str, source: str, field: str = "") -> dict[str, Any]:
        """A dead-letter document whose original fits in Kafka whatever its size."""
        if not isinstance(original, bytes | str):
            original = orjson.dumps(original, option=orjson.OPT_NON_STR_KEYS)
        raw = original.encode(errors="surrogateescape") if isinstance(original, str) else original
        extra: dict[str, Any] = {}
        if len(raw) > DEADLETTER_ORIGINAL_MAX:
            extra = {"original_truncated": True, "original_size": len(raw)}
            raw = raw[:DEADLETTER_ORIGINAL_MAX].decode("utf-8", errors="ignore").encode()
        return deadletter_record(raw, reason, source, field=field, **extra)

    async def publish(self, endpoint: str, topic: str, good: list[Message], errors: list[dict[str, Any]],
                      dead: list[Message]) -> Response:
        """Deliver (or spool) accepted and dead-letter records, then answer 202. Records Kafka
        refuses for good are reported per item and dead-lettered instead; only a failure a
        retry may cure (an outage, a timeout, a full queue) spools the request or answers 503."""
        assert self.producer is not None
        indices = good.indices if isinstance(good, Accepted) else list(range(len(good)))
        runs: list[Run] = [(topic, good), (self.topic_deadletter, dead)]
        size = len(good) + len(dead)
        metrics = self.metrics
        metrics.received.labels(endpoint).inc(len(good) + len(errors))
        for error in errors:
            metrics.rejected.labels(endpoint, reason_class(error)).inc()
        accepted = len(good)
        if size:
            if not self.producer.broker_up or (self.spool is not None and self.spool.pending):
                await self._spool_or_refuse(to_records(runs))
                metrics.spooled.inc(size)
            else:
                started = time.perf_counter()
                metrics.in_flight.inc()
                try:
                    result = await self.producer.deliver_runs(runs, self.config.produce_timeout_s + 1)
                except BrokerUnavailable:
                    result = None
                finally:
                    metrics.in_flight.dec()
                metrics.produce_latency.observe(time.perf_counter() - started)
                if result is not None and not result.ok and not result.transient:
                    accepted -= await self._refused(endpoint, topic, result, good, indices, errors)
                elif result is None or not result.ok:
                    reason = "timeout" if result is None else result.failed[0]
                    metrics.produce_failed.inc(size)
                    # at an outage every request in flight fails at once: one line, then a count
                    self._produce_failures.log(log, "collector.produce_failed", reason=reason, records=size)
                    # Records that did reach Kafka keep their event ids, so the client's retry
                    # is deduplicated downstream; the spool keeps this path lossless too.
                    refused = {record for record, _reason in result.refused} if result is not None else set()
                    await self._spool_or_refuse([r for r in to_records(runs) if r not in refused])
                    metrics.spooled.inc(size)
        metrics.sent.labels(endpoint).inc(accepted)
        body: dict[str, Any] = {"accepted": accepted, "rejected": len(errors)}
        if errors:
            errors.sort(key=lambda e: e["index"])
            body["errors"] = errors[:1000]
        return _json(202, body)

    async def _refused(self, endpoint: str, topic: str, result: BatchResult, good: list[Message],
                       indices: list[int], errors: list[dict[str, Any]]) -> int:
        """Kafka refused some records for good (every other one is acknowledged): report each as
        a rejected item and dead-letter it. Returns how many accepted items that took back."""
        assert self.producer is not None
        where: dict[bytes, list[int]] = {}
        for position, message in enumerate(good):
            where.setdefault(message["value"], []).append(position)
        letters: list[Message] = []
        taken = 0
        for (record_topic, _key, value), reason in result.refused:
            if record_topic != topic:  # a dead letter of this request that Kafka refused
                self.metrics.errors.labels("deadletter_refused").inc()
                log_event(log, "collector.deadletter_refused", level=logging.ERROR, reason=reason[:300])
                continue
            positions = where.get(value)
            index = indices[positions.pop(0)] if positions else -1
            text = f"Kafka refused the record: {reason}"
            errors.append({"index": index, "field": "", "reason": text})
            self.metrics.rejected.labels(endpoint, "kafka_refused").inc()
            letters.append({"value": encode(self._deadletter(value, text, f"collector.{endpoint}")), "key": None})
            taken += 1
        log_event(log, "collector.records_refused", level=logging.WARNING, endpoint=endpoint, records=taken,
                  reason=result.refused[0][1][:300])
        if letters:
            try:
                letter_result = await self.producer.deliver_runs([(self.topic_deadletter, letters)],
                                                                 self.config.produce_timeout_s + 1)
                delivered = letter_result.ok
            except BrokerUnavailable:
                delivered = False
            if not delivered:
                self.metrics.errors.labels("deadletter_failed").inc()
                log_event(log, "collector.deadletter_failed", level=logging.ERROR, records=len(letters))
        return taken

    async def _spool_or_refuse(self, batch: list[Record]) -> None:
        if self.spool is None:
            raise HttpError(503, "broker_unavailable", "Kafka is unavailable; retry later",
                            str(self.config.retry_after_s))
        try:
            appended = await self.spool.append(batch)
        except SpoolWriteError as exc:
            raise HttpError(503, "spool_write_failed", f"Kafka is unavailable and {exc}",
                            str(self.config.retry_after_s)) from None
        if not appended:
            raise HttpError(503, "spool_full", "Kafka is unavailable and the spool is full",
                            str(self.config.retry_after_s))


def create_app(
    settings: Settings, config: CollectorConfig, metrics: CollectorMetrics | None = None,
    worker: int | None = None,
) -> ASGIApp:
    """The collector's ASGI app; ``worker`` is the worker process's index (``--workers`` > 1)."""
    collector = Collector(settings, config, metrics, worker)

    async def events(request: IngestRequest) -> Response:
        return await _handle(collector, request, "events", _events_pipeline)

    async def logs(request: IngestRequest) -> Response:
        return await _handle(collector, request, "logs", _logs_pipeline)

    async def cmcd(request: Request) -> Response:
        return await _handle(collector, request, "cmcd", _cmcd_pipeline)

    async def healthz(_request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def readyz(_request: Request) -> Response:
        up = collector.producer is not None and collector.producer.broker_up
        collector.metrics.broker_up.set(1 if up else 0)
        if up:
            return _json(200, {"status": "ready", "broker": "up"})
        spool = collector.spool is not None
        return _json(200 if spool else 503, {"status": "degraded" if spool else "unavailable",
                                             "broker": "down", "spool": spool})

    async def metrics_endpoint(_request: Request) -> Response:
        up = collector.producer is not None and collector.producer.broker_up
        collector.metrics.broker_up.set(1 if up else 0)
        return Response(generate_latest(collector.metrics.exposition), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        collector.start()
        assert collector.producer is not None
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # main thread only
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, collector.keys.reload)
        poller = asyncio.create_task(collector.producer.poll_forever())
        try:
            yield
        finally:
            collector.stop()
            await poller

    routes = [
        Route("/v1/events", events, methods=["POST"]),
        Route("/v1/logs", logs, methods=["POST"]),
        Route("/v1/cmcd", cmcd, methods=["POST", "GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    middleware = [Middleware(KeyedCORSMiddleware, store=collector.keys)]  # CORS per application key
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.collector = collector
    # single-event beacons are most requests: their POSTs skip the framework (fastpath.py); the
    # routes above still answer other methods on those paths (405 with Allow)
    fast = IngestFastPath(app, {"/v1/events": events, "/v1/logs": logs}, collector.keys)
    return LoadShedder(fast, busy=collector.overloaded, metrics=collector.metrics, keys=collector.keys)


Pipeline = Callable[[Collector, IngestRequest], Any]


class _Throttle:
    """Logs the first of a run of like warnings at once and then at most one per ``interval_s``,
    with the number held back (``suppressed``) and the records they carried."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last = -interval_s
        self._held = 0
        self._held_records = 0

    def log(self, logger: logging.Logger, event: str, records: int, **fields: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            self._held += 1
            self._held_records += records
            return
        extra = {"suppressed": self._held, "suppressed_records": self._held_records} if self._held else {}
        log_event(logger, event, level=logging.WARNING, records=records, **fields, **extra)
        self._last, self._held, self._held_records = now, 0, 0


class Accepted(list[Message]):
    """The messages a request will produce, with the index of the item each one came from
    (so a record Kafka refuses is reported against its item)."""

    __slots__ = ("indices",)

    def __init__(self) -> None:
        super().__init__()
        self.indices: list[int] = []


async def _handle(collector: Collector, request: IngestRequest, endpoint: str, pipeline: Pipeline) -> Response:
    collector.active += 1  # LoadShedder refuses ingest requests beyond max_concurrent_requests
    try:
        collector.admit(request)
        response: Response = await pipeline(collector, request)
    except HttpError as exc:
        collector.metrics.errors.labels(exc.error_type).inc()
        headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
        response = _json(exc.status, {"error": exc.error_type, "message": str(exc)}, headers)
    except Exception as exc:  # answered and logged, never a bare traceback
        collector.metrics.errors.labels("internal").inc()
        log_event(log, "collector.request_failed", level=logging.ERROR, endpoint=endpoint,
                  error=f"{type(exc).__name__}: {str(exc)[:300]}")
        response = _json(500, {"error": "internal", "message": "the request could not be processed"})
    finally:
        collector.active -= 1
    collector.metrics.requests.labels(endpoint, _status_class(response.status_code)).inc()
    return response


async def _json_items(collector: Collector, request: IngestRequest) -> Items:
    body = await collector.read_body(request)
    try:
        items = parse_items(body)
    except BadBody as exc:
        raise HttpError(400, "bad_body", str(exc)) from None
    return items


async def _events_pipeline(collector: Collector, request: IngestRequest) -> Response:
    clock = collector.clock(request)
    items = await _json_items(collector, request)
    collector.check_count(len(items))
    good, errors, dead = collector.split(items, validate_playback_event, "session_id", "collector.events",
                                         clock=clock)
    del items  # encoded now: the decoded events need not live while the request waits for Kafka
    return await collector.publish("events", collector.topic_events, good, errors, dead)


async def _logs_pipeline(collector: Collector, request: IngestRequest) -> Response:
    """SPEC 5 records or OTLP/HTTP logs; the content type tells protobuf from JSON, the shape
    (``resourceLogs``) OTLP JSON from playscope's records. OTLP is answered as OTLP asks: 200
    and an ExportLogsServiceResponse in the request's encoding, rejections in ``partialSuccess``."""
    protobuf = _media_type(request) == otlp_proto.PROTOBUF
    clock = collector.clock(request)
    if protobuf:
        try:
            payload: Any = otlp_proto.decode_request(await collector.read_body(request))
        except otlp_proto.BadProtobuf as exc:
            raise HttpError(400, "bad_body", str(exc)) from None
        is_otlp = True
    else:
        items = await _json_items(collector, request)
        payload = items.values[0] if len(items) == 1 else None
        is_otlp = otlp.is_otlp(payload)
    if is_otlp:
        values, raws = otlp.to_records_with_originals(payload)
        items = Items(values, raws)
    del payload
    collector.check_count(len(items))
    good, errors, dead = collector.split(items, validate_log_record, "service", "collector.logs", clock=clock)
    del items
    response = await collector.publish("logs", collector.topic_logs, good, errors, dead)
    if not is_otlp:
        return response
    # ``errors`` now also holds the records Kafka refused for good (publish reports them there)
    content, media_type = otlp_proto.export_response(sorted(errors, key=lambda e: e["index"]), protobuf)
    return Response(content, status_code=200, media_type=media_type)


async def _cmcd_pipeline(collector: Collector, request: IngestRequest) -> Response:
    assert isinstance(request, Request)  # /v1/cmcd (GET and POST) is served by its route only
    return await collector.cmcd.handle(collector, request)


def _identity(value: Any) -> dict[str, Any]:
    return value


def _media_type(request: IngestRequest) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _api_key(request: IngestRequest) -> str:
    key = request.headers.get("x-api-key", "")
    if not key:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
    return key or request.query_params.get("api_key", "")


def reason_class(error: dict[str, Any]) -> str:
    """The ``reason`` label of a rejected item: its field when that is a field of the contract,
    else ``other`` (a client's own key names never become label values)."""
    field = error.get("field") or "record"
    return field if field in REASON_CLASSES else "other"


_STATUS_CLASSES = frozenset({"200", "202", "400", "401", "403", "413", "415", "429", "500", "503"})


def _status_class(status: int) -> str:
    text = str(status)
    return text if text in _STATUS_CLASSES else "other"


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


__all__ = ["Collector", "HttpError", "JSONResponse", "create_app"]
