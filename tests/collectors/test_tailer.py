"""The tailer's two ways of reading (a line at a time, a chunk at a time) give the same lines
and leave the same offsets: CRLF endings, over-long lines, an endless line, a partial last line."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.agent.tailer import Tailer

MAX_LINE = 64


def _by_line(path: Path, budget: int, chunk_bytes: int) -> tuple[list[bytes], list[int]]:
    tailer = Tailer([str(path)], chunk_bytes=chunk_bytes, max_line_bytes=MAX_LINE)
    tailer.discover()
    lines: list[bytes] = []
    offsets: list[int] = []
    while True:
        got = list(tailer.read(budget))
        if not got:
            break
        lines += [line.text for line in got]
        offsets.append(next(iter(tailer.files.values())).offset)
    tailer.close()
    return lines, offsets


def _by_chunk(path: Path, budget: int, chunk_bytes: int) -> tuple[list[bytes], list[int]]:
    tailer = Tailer([str(path)], chunk_bytes=chunk_bytes, max_line_bytes=MAX_LINE)
    tailer.discover()
    lines: list[bytes] = []
    offsets: list[int] = []
    while True:
        got = []
        for chunk in tailer.read_chunks(budget):  # the offset moves as each chunk is handed out
            assert chunk.end_offset == next(iter(tailer.files.values())).offset
            got.append(chunk)
        if not got:
            break
        for chunk in got:
            lines += chunk.lines
        offsets.append(got[-1].end_offset)
    tailer.close()
    return lines, offsets


def test_crlf_long_and_endless_lines(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    partial = b"last, no newline"
    path.write_bytes(b"first line\r\nsecond\n" + b"y" * (MAX_LINE + 10) + b"\r\n" + b"x" * 300 + b"\n" + partial)
    lines, offsets = _by_chunk(path, 1000, chunk_bytes=4096)
    # CR dropped, over-long lines truncated, the partial last line left for later
    assert lines == [b"first line", b"second", b"y" * MAX_LINE, b"x" * MAX_LINE]
    assert offsets[-1] == path.stat().st_size - len(partial)
    assert (lines, offsets[-1:]) == (_by_line(path, 1000, 4096)[0], _by_line(path, 1000, 4096)[1][-1:])
    # a line longer than one read with no newline in sight is cut into pieces, both ways alike
    pieces, piece_offsets = _by_chunk(path, 1000, chunk_bytes=MAX_LINE)
    assert b"x" * MAX_LINE in pieces and max(map(len, pieces)) == MAX_LINE
    assert (pieces, piece_offsets[-1:]) == (_by_line(path, 1000, MAX_LINE)[0], _by_line(path, 1000, MAX_LINE)[1][-1:])


@settings(max_examples=60, deadline=None)
@given(
    body=st.lists(st.binary(max_size=150).map(lambda b: b.replace(b"\n", b"")), max_size=40),
    crlf=st.booleans(),
    partial=st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")),
    budget=st.integers(1, 50),
    chunk_bytes=st.sampled_from([MAX_LINE, 100, 4096]),
)
def test_chunks_equal_lines(tmp_path_factory: object, body: list[bytes], crlf: bool, partial: bytes,
                            budget: int, chunk_bytes: int) -> None:
    path = Path(str(tmp_path_factory.mktemp("tail"))) / "f.log"  # type: ignore[attr-defined]
    ending = b"\r\n" if crlf else b"\n"
    first = b"header" + ending  # a complete first line, so the file gets a fingerprint
    path.write_bytes(first + b"".join(line + ending for line in body) + partial)
    by_line = _by_line(path, budget, chunk_bytes)
    by_chunk = _by_chunk(path, budget, chunk_bytes)
    assert by_chunk[0] == by_line[0]
    assert by_chunk[1][-1:] == by_line[1][-1:]
