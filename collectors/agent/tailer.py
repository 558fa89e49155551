"""Following files by glob; a file is its first bytes together with its device and inode.

Identity (collectors/README.md, "File identity", says the same for users):

* A file's key is ``<hash>-<length>-<dev>-<ino>``: the hash of its first ``fingerprint_bytes``
  bytes (fewer when it is shorter at first sight: as many as it has, with at least one complete
  line), its device and its inode. Files that start alike (W3C/IIS ``#Version`` headers,
  banners) are different files: their inodes differ.
* Every position the agent keeps (read offset, checkpoint) comes with the last ``TAIL_BYTES``
  bytes before it. A checkpoint is taken up again only by a file that starts with the same
  bytes *and* holds the same bytes just before the offset: an inode that the filesystem handed
  to a new file after the old one was deleted (ext4 does so at once), or a new file with the
  same header, is read from its start instead of inheriting someone else's offset.
* rename rotation (``app.log`` -> ``app.log.1``): the open descriptor follows the old file to its
  end, also after a restart (the checkpoint names the inode, not the path); the new ``app.log``
  is another file, read from the start.
* copytruncate: the descriptor sees the file shrink below its offset; the rest is read from the
  copy (another inode with the same first bytes and the same bytes before the offset), and the
  truncated file is a new one once it has a line. A file that starts like a followed one, is no
  longer than it and equal to it as far as it goes (``COMPARE_BYTES`` at most) is taken for a
  copy being made and not read on its own; once it is longer or differs, it is a file of its
  own and is read from its start.
* a file that no pattern matches any more (deleted, or renamed outside the globs) is closed once
  it has not grown for ``GONE_IDLE_S`` and holds no complete line left to read (Fluent Bit's
  ``Rotate_Wait``); an incomplete last line left in it is dropped and logged.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from playscope.logs import log_event

log = logging.getLogger("playscope.agent.tailer")

TAIL_BYTES = 64  # bytes before an offset that must match for a checkpoint to be taken up again
COMPARE_BYTES = 1 << 20  # how far a possible copy is compared with the file it may copy
GONE_IDLE_S = 5.0  # how long a deleted or renamed-away file is kept open after it stops growing
LEGACY_FINGERPRINT_BYTES = 256  # the first-line identity of earlier versions (old checkpoints)


@dataclass(slots=True)
class Line:
    fingerprint: str
    path: str
    text: bytes
    end_offset: int  # offset just after this line's newline
    tail: bytes = b""  # the bytes before end_offset (at most TAIL_BYTES)


@dataclass(slots=True)
class Chunk:
    """Complete lines read in one go from one file (the fast path for inputs without
    multi-line joining: no object per line)."""

    fingerprint: str
    path: str
    lines: list[bytes]
    end_offset: int  # offset just after the last line's newline
    tail: bytes = b""  # the bytes before end_offset (at most TAIL_BYTES)


@dataclass
class _Followed:
    fingerprint: str  # the checkpoint key
    path: str
    fd: int
    offset: int
    ino: int
    dev: int
    head: str  # hash of the first head_len bytes
    head_len: int
    tail: bytes = b""  # the bytes before offset (at most TAIL_BYTES)
    size: int = 0  # size at the last look
    seen: float = field(default_factory=time.monotonic)  # last time it grew or was read


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def tail_digest(tail: bytes) -> str:
    """What a checkpoint keeps of the bytes before its offset."""
    return hashlib.blake2b(tail, digest_size=8).hexdigest()


def file_key(head: str, head_len: int, dev: int, ino: int) -> str:
    return f"{head}-{head_len}-{dev}-{ino}"


def parse_key(key: str) -> tuple[str, int, int, int] | None:
    """(head, head_len, dev, ino) of a key; None for the first-line keys of earlier versions.
    A fifth part tells apart two files followed at once with the same key (see ``discover``)."""
    parts = key.split("-")
    if len(parts) not in (4, 5) or not all(p.isdigit() for p in parts[1:]):
        return None
    return parts[0], int(parts[1]), int(parts[2]), int(parts[3])


def _head(fd: int, size_bytes: int) -> tuple[str, int] | None:
    """(hash, length) of the first ``size_bytes`` bytes, or of all the file holds when it is
    shorter and holds a complete line; None before its first complete line."""
    head = os.pread(fd, size_bytes, 0)
    if len(head) < size_bytes and b"\n" not in head:
        return None
    return digest(head), len(head)


def _starts_with(fd: int, head: str, head_len: int) -> bool:
    data = os.pread(fd, head_len, 0)
    return len(data) == head_len and digest(data) == head


def _bytes_before(fd: int, offset: int) -> bytes:
    n = min(TAIL_BYTES, offset)
    return os.pread(fd, n, offset - n) if n else b""


def _same_bytes(fd_a: int, fd_b: int, length: int) -> bool:
    position = 0
    while position < length:
        n = min(64 * 1024, length - position)
        a, b = os.pread(fd_a, n, position), os.pread(fd_b, n, position)
        if a != b or len(a) < n:
            return False
        position += n
    return True


def fingerprint_of(path: str, size_bytes: int) -> str | None:
    """The identity of earlier versions (a hash of the first line), read from old checkpoints."""
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
    def __init__(self, patterns: list[str], fingerprint_bytes: int = 1024, chunk_bytes: int = 1 << 20,
                 max_line_bytes: int = 64 * 1024, start_at_end: bool = False) -> None:
        self.patterns = patterns
        self.fingerprint_bytes = fingerprint_bytes
        self.chunk_bytes = chunk_bytes
        self.max_line_bytes = max_line_bytes
        self.start_at_end = start_at_end
        self.files: dict[str, _Followed] = {}
        # (dev, ino) -> (its size, the key of the file it copies) when found to be a copy
        self._copies: dict[tuple[int, int], tuple[int, str]] = {}
        self._claimed: set[str] = set()  # old first-line checkpoints already taken up

    # -- finding files -----------------------------------------------------------------------
    def discover(self, resume: Mapping[str, int] | None = None, tails: Mapping[str, str] | None = None) -> None:
        """Find matching files; a new one starts at its checkpoint (``resume``: key -> offset,
        ``tails``: key -> digest of the bytes before it), or at 0, or at its end."""
        resume = resume or {}
        tails = tails or {}
        known = {(f.dev, f.ino) for f in self.files.values()}
        present: set[tuple[int, int]] = set()
        unknown: list[tuple[str, tuple[int, int]]] = []
        for path in self._paths():
            try:
                stat = os.stat(path)
            except OSError:
                continue
            ident = (stat.st_dev, stat.st_ino)
            present.add(ident)
            if ident not in known:
                unknown.append((path, ident))
        if len(unknown) > 1 and resume:
            # files a checkpoint names by inode first: a copy of one of them found before it
            # would be taken for a file of its own
            named = {(p[2], p[3]) for p in map(parse_key, resume) if p is not None}
            unknown.sort(key=lambda item: item[1] not in named)
        for path, _ident in unknown:
            self._open(path, known, resume, tails)
        for ident in [i for i in self._copies if i not in present]:
            del self._copies[ident]
        self.forget_gone(present)

    def _open(self, path: str, known: set[tuple[int, int]], resume: Mapping[str, int],
              tails: Mapping[str, str]) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        keep = False
        try:
            stat = os.fstat(fd)
            ident = (stat.st_dev, stat.st_ino)
            if ident in known:  # replaced between stat and open by a file already followed
                return
            head = _head(fd, self.fingerprint_bytes)
            if head is None or self._is_copy(fd, stat, ident):
                return
            key = file_key(head[0], head[1], stat.st_dev, stat.st_ino)
            generation = 0
            while key in self.files:  # the inode of a file whose copy is followed under its key
                generation += 1
                key = f"{file_key(head[0], head[1], stat.st_dev, stat.st_ino)}-{generation}"
            offset = self._resume(fd, stat, path, head, key, resume, tails)
            if offset is None:
                offset = stat.st_size if self.start_at_end else 0
            self.files[key] = _Followed(key, path, fd, offset, stat.st_ino, stat.st_dev, head[0], head[1],
                                        _bytes_before(fd, offset), stat.st_size)
            known.add(ident)
            keep = True
            log_event(log, "agent.file_opened", path=path, fingerprint=key, offset=offset)
        except OSError:
            return
        finally:
            if not keep:
                os.close(fd)

    def _is_copy(self, fd: int, stat: os.stat_result, ident: tuple[int, int]) -> bool:
        """Whether this file is a copy of a followed file (copytruncate, or a copy being made):
        it starts like it, is no longer than it, and is equal to it as far as it goes. A
        followed file already truncated is handed to its copy here (``_check_truncation``)."""
        cached = self._copies.get(ident)
        if cached is not None and cached[0] == stat.st_size and cached[1] in self.files:
            return True
        for followed in list(self.files.values()):
            if followed.head_len > stat.st_size or not _starts_with(fd, followed.head, followed.head_len):
                continue
            size = os.fstat(followed.fd).st_size
            if size < followed.offset:
                self._check_truncation(followed)
                if (followed.dev, followed.ino) == ident:
                    return True
                continue
            if stat.st_size <= size and _same_bytes(fd, followed.fd, min(stat.st_size, COMPARE_BYTES)):
                # valid while this file keeps its size: the followed one only grows
                self._copies[ident] = (stat.st_size, followed.fingerprint)
                return True
        return False

    def _resume(self, fd: int, stat: os.stat_result, path: str, head: tuple[str, int], key: str,
                resume: Mapping[str, int], tails: Mapping[str, str]) -> int | None:
        """The checkpoint this file takes up: one whose file started with the same bytes and
        held the same bytes before its offset (the same inode, or a copy of a file no longer
        there), else a first-line checkpoint of an earlier version (taken up once)."""
        def fits(old: str, offset: int) -> bool:
            tail = tails.get(old)
            return stat.st_size >= offset and tail is not None and tail_digest(_bytes_before(fd, offset)) == tail

        if key in resume and fits(key, resume[key]):
            return resume[key]
        followed = {(f.dev, f.ino): f for f in self.files.values()}
        for old, offset in resume.items():
            parsed = parse_key(old)
            if parsed is None or old in self.files:
                continue
            old_head, old_len, dev, ino = parsed
            other = followed.get((dev, ino)) if (dev, ino) != (stat.st_dev, stat.st_ino) else None
            if other is not None and _starts_with(other.fd, old_head, old_len):
                continue  # that file is still there and followed: this one is at most its copy
            same_start = (old_len == head[1] and old_head == head[0]) or (
                old_len < head[1] and _starts_with(fd, old_head, old_len))
            if same_start and fits(old, offset):
                return offset
        for size_bytes in {LEGACY_FINGERPRINT_BYTES, self.fingerprint_bytes}:
            legacy = fingerprint_of(path, size_bytes)
            if legacy is not None and legacy in resume and legacy not in self._claimed \
                    and stat.st_size >= resume[legacy]:
                self._claimed.add(legacy)
                log_event(log, "agent.checkpoint_migrated", path=path, fingerprint=key, offset=resume[legacy])
                return resume[legacy]
        return None

    def forget_gone(self, present: set[tuple[int, int]] | None = None, now: float | None = None) -> None:
        """Close files no pattern matches any more (deleted, or renamed away) once they have
        not grown for ``GONE_IDLE_S`` and hold no complete line still to be read: their
        descriptors are not kept for ever."""
        if present is None:
            present = set()
            for path in self._paths():
                try:
                    stat = os.stat(path)
                except OSError:
                    continue
                present.add((stat.st_dev, stat.st_ino))
        now = time.monotonic() if now is None else now
        for key, followed in list(self.files.items()):
            if (followed.dev, followed.ino) in present:
                continue
            size = os.fstat(followed.fd).st_size
            if size != followed.size:
                followed.size, followed.seen = size, now
                continue
            if now - followed.seen < GONE_IDLE_S or self._has_line(followed, size):
                continue
            os.close(followed.fd)
            del self.files[key]
            log_event(log, "agent.file_closed", path=followed.path, fingerprint=key, offset=followed.offset,
                      unread_bytes=max(0, size - followed.offset))

    def _has_line(self, followed: _Followed, size: int) -> bool:
        """A complete (or over-long) line is waiting past the read offset."""
        if size <= followed.offset:
            return False
        rest = os.pread(followed.fd, min(size - followed.offset, self.max_line_bytes), followed.offset)
        return b"\n" in rest or len(rest) >= self.max_line_bytes

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
        # copytruncate: finish from the copy (another inode that starts with the same bytes and
        # holds the same bytes before the offset)
        followed_inodes = {(f.dev, f.ino) for f in self.files.values()}
        for path in self._paths():
            try:
                stat = os.stat(path)
            except OSError:
                continue
            if (stat.st_dev, stat.st_ino) in followed_inodes or stat.st_size < followed.offset:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            if _starts_with(fd, followed.head, followed.head_len) and \
                    _bytes_before(fd, followed.offset) == followed.tail:
                os.close(followed.fd)
                stat = os.fstat(fd)
                followed.fd, followed.path, followed.ino, followed.dev = fd, path, stat.st_ino, stat.st_dev
                followed.size = stat.st_size
                self._copies.pop((stat.st_dev, stat.st_ino), None)
                log_event(log, "agent.copytruncate_followed", copy=path, fingerprint=followed.fingerprint)
                return
            os.close(fd)
        log_event(log, "agent.truncated", level=logging.WARNING, path=followed.path, offset=followed.offset)
        followed.offset = size  # no copy found: what was cut is gone; carry on at the new end
        followed.tail = _bytes_before(followed.fd, size)

    # -- reading -----------------------------------------------------------------------------
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
                lines, cut, has_cr, chunk = got
                if cut:
                    consumed = len(lines[0])
                else:
                    consumed = sum(map(len, lines)) + len(lines)
                    limit = self.max_line_bytes
                    if max(map(len, lines)) > limit:
                        lines = [text[:limit] for text in lines]
                    if has_cr:
                        lines = [text.rstrip(b"\r") for text in lines]
                followed.offset += consumed
                tail = chunk[max(0, consumed - TAIL_BYTES):consumed]
                if len(tail) < TAIL_BYTES:
                    tail = (followed.tail + tail)[-TAIL_BYTES:]
                followed.tail = tail
                budget -= len(lines)
                yield Chunk(followed.fingerprint, followed.path, lines, followed.offset, tail)

    def _next_lines(self, followed: _Followed, budget: int) -> tuple[list[bytes], bool, bool, bytes] | None:
        """The complete lines (at most ``budget``) at the read offset, as in the file; with
        whether the one "line" is a cut of an endless one, whether any ``\r`` was seen, and the
        bytes read. None when no complete line is there yet. The offset is left to the caller."""
        chunk = os.pread(followed.fd, self.chunk_bytes, followed.offset)
        if not chunk:
            return None
        followed.seen = time.monotonic()
        last_newline = chunk.rfind(b"\n")
        if last_newline < 0:
            if len(chunk) >= self.max_line_bytes:  # an endless line: cut it
                return [chunk[: self.max_line_bytes]], True, False, chunk
            return None  # an incomplete last line: wait for its newline
        # the complete lines, split in one pass that stops after ``budget`` of them (a chunk
        # holds many more lines than a batch takes): the last part is the rest, never a line
        lines = chunk.split(b"\n", budget)
        del lines[-1]
        return lines, False, b"\r" in chunk, chunk

    def _read_file(self, followed: _Followed, budget: int) -> Iterator[Line]:
        while budget > 0:
            got = self._next_lines(followed, budget)
            if got is None:
                return
            lines, cut, _has_cr, _chunk = got
            if cut:
                followed.offset += len(lines[0])
                followed.tail = (followed.tail + lines[0][-TAIL_BYTES:])[-TAIL_BYTES:]
                yield Line(followed.fingerprint, followed.path, lines[0], followed.offset, followed.tail)
                budget -= 1
                continue
            budget -= len(lines)
            offset = followed.offset
            fingerprint, path, max_bytes = followed.fingerprint, followed.path, self.max_line_bytes
            for text in lines:
                offset += len(text) + 1
                followed.offset = offset
                followed.tail = (followed.tail + text[-TAIL_BYTES:] + b"\n")[-TAIL_BYTES:]
                if len(text) > max_bytes:
                    text = text[:max_bytes]
                yield Line(fingerprint, path, text.rstrip(b"\r"), offset, followed.tail)
