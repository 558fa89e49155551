"""Following files by glob, identified by a fingerprint of their first line, not by path or inode.

* rename rotation (``app.log`` -> ``app.log.1``): the open descriptor keeps following the old
  file to its end; the new ``app.log`` has another fingerprint and is read from the start.
* copytruncate: the descriptor sees the file shrink below its offset; the rest is read from the
  copy (a file with the same fingerprint), and the truncated file is a new one once it has a line.
* a file is fingerprinted only once it holds a complete first line (or ``fingerprint_bytes``).
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

from playscope.logs import log_event

log = logging.getLogger("playscope.agent.tailer")


@dataclass(slots=True)
class Line:
    fingerprint: str
    path: str
    text: bytes
    end_offset: int  # offset just after this line's newline


@dataclass(slots=True)
class Chunk:
    """Complete lines read in one go from one file (the fast path for inputs without
    multi-line joining: no object per line)."""

    fingerprint: str
    path: str
    lines: list[bytes]
    end_offset: int  # offset just after the last line's newline


@dataclass
class _Followed:
    fingerprint: str
    path: str
    fd: int
    offset: int
    ino: int


def fingerprint_of(path: str, size_bytes: int) -> str | None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(size_bytes)
    except OSError:
        return None
    newline = head.find(b"\n")
    if newline >= 0:
        head = head[: newline + 1]
    elif len(head) < size_bytes:
        return None  # no complete first line yet
    return hashlib.blake2b(head, digest_size=12).hexdigest()


class Tailer:
    def __init__(self, patterns: list[str], fingerprint_bytes: int = 256, chunk_bytes: int = 1 << 20,
                 max_line_bytes: int = 64 * 1024, start_at_end: bool = False) -> None:
        self.patterns = patterns
        self.fingerprint_bytes = fingerprint_bytes
        self.chunk_bytes = chunk_bytes
        self.max_line_bytes = max_line_bytes
        self.start_at_end = start_at_end
        self.files: dict[str, _Followed] = {}

    def discover(self, resume: dict[str, int] | None = None) -> None:
        """Find matching files; a new fingerprint starts at its checkpoint (or 0, or the end)."""
        for path in self._paths():
            fp = fingerprint_of(path, self.fingerprint_bytes)
            if fp is None or fp in self.files:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            stat = os.fstat(fd)
            offset = (resume or {}).get(fp)
            if offset is None:
                offset = stat.st_size if self.start_at_end else 0
            self.files[fp] = _Followed(fp, path, fd, offset, stat.st_ino)
            log_event(log, "agent.file_opened", path=path, fingerprint=fp, offset=offset)

    def read(self, max_lines: int) -> Iterator[Line]:
        """Complete lines past each file's read offset, at most ``max_lines`` in all."""
        budget = max_lines
        for followed in list(self.files.values()):
            if budget <= 0:
                return
            self._check_truncation(followed)
            for line in self._read_file(followed, budget):
                budget -= 1
                yield line

    def read_chunks(self, max_lines: int) -> Iterator[Chunk]:
        """The same lines as :meth:`read`, a chunk of lines of one file at a time."""
        budget = max_lines
        for followed in list(self.files.values()):
            if budget <= 0:
                return
            self._check_truncation(followed)
            while budget > 0:
                got = self._next_lines(followed, budget)
                if got is None:
                    break
                lines, cut, has_cr = got
                if cut:
                    followed.offset += len(lines[0])
                else:
                    followed.offset += sum(map(len, lines)) + len(lines)
                    limit = self.max_line_bytes
                    if max(map(len, lines)) > limit:
                        lines = [text[:limit] for text in lines]
                    if has_cr:
                        lines = [text.rstrip(b"\r") for text in lines]
                budget -= len(lines)
                yield Chunk(followed.fingerprint, followed.path, lines, followed.offset)

    def seek(self, fingerprint: str, offset: int) -> None:
        """Move a file's read offset back (a batch is to be re-read after a failed delivery)."""
        if fingerprint in self.files:
            self.files[fingerprint].offset = offset

    def forget_gone(self) -> None:
        """Close files no glob matches any more once they have been read to the end."""
        present = {fingerprint_of(p, self.fingerprint_bytes) for p in self._paths()}
        for fp, followed in list(self.files.items()):
            if fp not in present and followed.offset >= os.fstat(followed.fd).st_size:
                os.close(followed.fd)
                del self.files[fp]

    def close(self) -> None:
        for followed in self.files.values():
            os.close(followed.fd)
        self.files.clear()

    def _paths(self) -> list[str]:
        seen: list[str] = []
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern)):
                if path not in seen and os.path.isfile(path):
                    seen.append(path)
        return seen

    def _check_truncation(self, followed: _Followed) -> None:
        size = os.fstat(followed.fd).st_size
        if size >= followed.offset:
            return
        # copytruncate: find the copy (same fingerprint, another inode) to finish reading from.
        for path in self._paths():
            try:
                stat = os.stat(path)
            except OSError:
                continue
            if stat.st_ino != followed.ino and stat.st_size >= followed.offset and \
                    fingerprint_of(path, self.fingerprint_bytes) == followed.fingerprint:
                os.close(followed.fd)
                followed.fd = os.open(path, os.O_RDONLY)
                followed.path, followed.ino = path, stat.st_ino
                log_event(log, "agent.copytruncate_followed", copy=path, fingerprint=followed.fingerprint)
                return
        log_event(log, "agent.truncated", level=logging.WARNING, path=followed.path, offset=followed.offset)
        followed.offset = size  # no copy found: what was cut is gone; carry on at the new end

    def _next_lines(self, followed: _Followed, budget: int) -> tuple[list[bytes], bool, bool] | None:
        """The complete lines (at most ``budget``) at the read offset, as in the file; with
        whether the one "line" is a cut of an endless one, and whether any ``\r`` was seen.
        None when no complete line is there yet. The offset is left to the caller."""
        chunk = os.pread(followed.fd, self.chunk_bytes, followed.offset)
        if not chunk:
            return None
        last_newline = chunk.rfind(b"\n")
        if last_newline < 0:
            if len(chunk) >= self.max_line_bytes:  # an endless line: cut it
                return [chunk[: self.max_line_bytes]], True, False
            return None  # an incomplete last line: wait for its newline
        lines = chunk[:last_newline].split(b"\n")  # the complete lines, split in one pass
        if len(lines) > budget:
            del lines[budget:]
        return lines, False, b"\r" in chunk

    def _read_file(self, followed: _Followed, budget: int) -> Iterator[Line]:
        while budget > 0:
            got = self._next_lines(followed, budget)
            if got is None:
                return
            lines, cut, _has_cr = got
            if cut:
                followed.offset += len(lines[0])
                yield Line(followed.fingerprint, followed.path, lines[0], followed.offset)
                budget -= 1
                continue
            budget -= len(lines)
            offset = followed.offset
            fingerprint, path, max_bytes = followed.fingerprint, followed.path, self.max_line_bytes
            for text in lines:
                offset += len(text) + 1
                followed.offset = offset
                if len(text) > max_bytes:
                    text = text[:max_bytes]
                yield Line(fingerprint, path, text.rstrip(b"\r"), offset)
