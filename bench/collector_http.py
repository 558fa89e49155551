"""A minimal keep-alive HTTP/1.1 load client (asyncio), light enough not to be the bottleneck."""

from __future__ import annotations

import asyncio
import time


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_retry_after = ""  # the Retry-After header of the last answer, if any

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, float]:
        """POST and read the whole answer; returns (status, latency seconds)."""
        assert self.reader is not None and self.writer is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        started = time.perf_counter()
        self.writer.write(head + body)
        await self.writer.drain()
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length = 0
        self.last_retry_after = ""
        for line in header.split(b"\r\n"):
            lowered = line.lower()
            if lowered.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif lowered.startswith(b"retry-after:"):
                self.last_retry_after = line.split(b":", 1)[1].strip().decode()
        if length:
            await self.reader.readexactly(length)
        return status, time.perf_counter() - started

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
