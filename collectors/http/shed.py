"""Load shedding in front of the routes: a request that finds the worker at its concurrency limit
is refused with a prebuilt 503 before Starlette builds a request, routes it or reads its body.

Under a surge the refusals are most of the traffic; when each one costs as much as an accepted
request, they take the event loop from the requests being served and goodput collapses. A
refusal here costs a dictionary lookup and two ``send`` calls.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from collectors.http.metrics import CollectorMetrics

# ingest path -> the endpoint label its requests are counted under
INGEST_ENDPOINTS = {"/v1/events": "events", "/v1/logs": "logs", "/v1/cmcd": "cmcd"}
_BODY = b'{"error":"overloaded","message":"too many requests in progress; retry later"}'
_START = {"type": "http.response.start", "status": 503,
          "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode()),
                      (b"retry-after", b"1")]}
_END = {"type": "http.response.body", "body": _BODY}


class LoadShedder:
    """ASGI middleware: 503 with Retry-After for ingest requests while ``busy()`` is true."""

    def __init__(self, app: ASGIApp, busy: Callable[[], bool], metrics: CollectorMetrics) -> None:
        self.app = app
        self.busy = busy
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] != "OPTIONS" and self.busy():
            endpoint = INGEST_ENDPOINTS.get(scope["path"])
            if endpoint is not None:
                self.metrics.errors.labels("overloaded").inc()
                self.metrics.requests.labels(endpoint, "503").inc()
                await send(_START)
                await send(_END)
                return
        await self.app(scope, receive, send)
