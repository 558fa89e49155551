"""Load shedding in front of the routes: a request that finds the worker at its concurrency limit
is refused with a prebuilt 503 before Starlette builds a request, routes it or reads its body.

Under a surge the refusals are most of the traffic; when each one costs as much as an accepted
request, they take the event loop from the requests being served and goodput collapses. A
refusal here costs a dictionary lookup and two ``send`` calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from collectors.http.auth import KeyStore, cors_headers
from collectors.http.metrics import CollectorMetrics

# ingest path -> the endpoint label its requests are counted under
INGEST_ENDPOINTS = {"/v1/events": "events", "/v1/logs": "logs", "/v1/cmcd": "cmcd"}
_BODY = b'{"error":"overloaded","message":"too many requests in progress; retry later"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode()),
            (b"retry-after", b"1")]
_START: dict[str, Any] = {"type": "http.response.start", "status": 503, "headers": _HEADERS}
_END = {"type": "http.response.body", "body": _BODY}


class LoadShedder:
    """ASGI middleware: 503 with Retry-After for ingest requests while ``busy()`` is true. It is
    the outermost layer, so a refusal to an origin ``keys`` allows carries the CORS headers
    (a browser can read the 503 and its Retry-After)."""

    def __init__(self, app: ASGIApp, busy: Callable[[], bool], metrics: CollectorMetrics,
                 keys: KeyStore | None = None) -> None:
        self.app = app
        self.busy = busy
        self.metrics = metrics
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] != "OPTIONS" and self.busy():
            endpoint = INGEST_ENDPOINTS.get(scope["path"])
            if endpoint is not None:
                self.metrics.errors.labels("overloaded").inc()
                self.metrics.requests.labels(endpoint, "503").inc()
                await send(self._start(scope))
                await send(_END)
                return
        await self.app(scope, receive, send)

    def _start(self, scope: Scope) -> dict[str, Any]:
        if self.keys is None:
            return _START
        origin = next((value for name, value in scope["headers"] if name == b"origin"), None)
        if not origin or not self.keys.origin_allowed(origin.decode("latin-1")):
            return _START
        return {**_START, "headers": [*_HEADERS, *cors_headers(origin.decode("latin-1"))]}
