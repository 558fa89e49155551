"""The ingest endpoints without the framework: POST /v1/events and /v1/logs served straight
from the ASGI scope, every other request passed to the Starlette app behind it.

A player sends one small beacon per POST, so the per-request cost is what sets the collector's
rate. Starlette's middleware stack, routing, ``Request`` and ``Response.__call__`` took about a
fifth of it (profiled under wrk, 64 connections). The pipelines are the same ones the routes run
(``collectors/http/app.py``); this module only gives them a lighter request and writes their
answer itself, with the same CORS headers as :class:`~collectors.http.auth.KeyedCORSMiddleware`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from starlette.datastructures import Address, QueryParams
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from collectors.http.auth import KeyStore, cors_headers

# an ingest endpoint: the request in, the answer to write
Handler = Callable[[Any], Awaitable[Response]]


class RawRequest:
    """What the ingest pipelines read of a request: headers, query, client, body stream.
    Header names arrive lower-cased (ASGI); of a repeated header the first counts, as in
    Starlette's ``Headers.get``."""

    __slots__ = ("_query", "_receive", "headers", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self._receive = receive
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1")
            if key not in headers:
                headers[key] = value.decode("latin-1")
        self.headers: Mapping[str, str] = headers
        self._query: QueryParams | None = None

    @property
    def query_params(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams(self.scope["query_string"])
        return self._query

    @property
    def client(self) -> Address | None:
        client = self.scope.get("client")
        return Address(*client) if client else None

    async def stream(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return


class IngestFastPath:
    """ASGI app: the routes in ``handlers`` for POST, everything else (other methods, other
    paths, preflights, lifespan) to ``app``. Load shedding stays in front of both."""

    def __init__(self, app: ASGIApp, handlers: dict[str, Handler], keys: KeyStore) -> None:
        self.app = app
        self.handlers = handlers
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handlers.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = RawRequest(scope, receive)
        response = await handler(request)
        headers = response.raw_headers
        origin = request.headers.get("origin")
        if origin and self.keys.origin_allowed(origin):
            headers = [*headers, *cors_headers(origin)]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
