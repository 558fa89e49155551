"""The ingest fast path's request (collectors/http/fastpath.py) reads what Starlette's would. The
answers it serves are checked end to end by the collector tests, which all go through it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from collectors.http.fastpath import RawRequest


def _scope(headers: list[tuple[bytes, bytes]], query: bytes = b"", client: tuple[str, int] | None = None
           ) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/v1/events", "headers": headers, "query_string": query,
            "client": client}


def _receiver(messages: list[dict[str, Any]]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)
    return receive


def test_the_first_of_a_repeated_header_counts_as_in_starlette() -> None:
    request = RawRequest(_scope([(b"x-api-key", b"first"), (b"x-api-key", b"second")]), _receiver([]))
    assert request.headers.get("x-api-key") == "first"
    assert request.headers.get("origin") is None


def test_query_and_client_are_read_from_the_scope() -> None:
    request = RawRequest(_scope([], b"api_key=k1&t=5", ("203.0.113.9", 5000)), _receiver([]))
    assert request.query_params.get("api_key") == "k1"
    assert request.client is not None and request.client.host == "203.0.113.9"
    assert RawRequest(_scope([]), _receiver([])).client is None


def test_the_body_stream_joins_chunks_and_stops_at_the_last() -> None:
    chunks = [{"type": "http.request", "body": b"ab", "more_body": True},
              {"type": "http.request", "body": b"", "more_body": True},
              {"type": "http.request", "body": b"cd", "more_body": False},
              {"type": "http.request", "body": b"never read"}]

    async def read() -> list[bytes]:
        return [chunk async for chunk in RawRequest(_scope([]), _receiver(chunks)).stream()]
    assert asyncio.run(read()) == [b"ab", b"cd"]


def test_a_client_that_leaves_mid_body_is_a_disconnect() -> None:
    chunks = [{"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"}]

    async def read() -> None:
        async for _chunk in RawRequest(_scope([]), _receiver(chunks)).stream():
            pass
    with pytest.raises(ClientDisconnect):
        asyncio.run(read())
