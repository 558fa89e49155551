"""File identity without servers: files that start alike are different files, a checkpoint is
taken up only by the file it belongs to (not by a new file on a reused inode, nor by a new file
with the same header), and descriptors of deleted or renamed-away files are closed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from collectors.agent import tailer as tailer_module
from collectors.agent.checkpoint import Checkpoints
from collectors.agent.tailer import Tailer

HEADER = b"#Version: 1.0\n"


def _lines(prefix: str, start: int, count: int) -> bytes:
    return b"".join(f"{prefix} line {i}\n".encode() for i in range(start, start + count))


def _texts(prefix: str, start: int, count: int) -> list[bytes]:
    return _lines(prefix, start, count).split(b"\n")[:-1]


def _read_all(tailer: Tailer) -> list[bytes]:
    out: list[bytes] = []
    while True:
        got = [line for chunk in tailer.read_chunks(1000) for line in chunk.lines]
        if not got:
            return out
        out += got


def _checkpoint(tailer: Tailer, checkpoints: Checkpoints) -> None:
    """What the agent does once a batch is confirmed: every file's position, with its tail."""
    for key, followed in tailer.files.items():
        checkpoints.advance(key, followed.offset, followed.tail)
    checkpoints.save(sync=True)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_files_sharing_a_first_line_are_both_read_fully(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    # seen first when they hold only the header: the same first bytes, the same length
    a.write_bytes(HEADER)
    b.write_bytes(HEADER)
    tailer = Tailer([str(tmp_path / "*.log")])
    tailer.discover()
    with open(a, "ab") as handle:
        handle.write(_lines("a", 0, 30))
    with open(b, "ab") as handle:
        handle.write(_lines("b", 0, 20))
    tailer.discover()
    lines = _read_all(tailer)
    tailer.discover()
    lines += _read_all(tailer)
    assert sorted(lines) == sorted([HEADER.strip()] * 2 + _texts("a", 0, 30)
                                   + _texts("b", 0, 20))
    assert len(tailer.files) == 2
    tailer.close()


def test_longer_shared_header_and_a_later_file(tmp_path: Path) -> None:
    """Files sharing their first 1024 bytes and more (a long banner) are still two files; one that
    appears later with the same banner is read from its start."""
    banner = b"".join(b"# banner line %d of a long fixed header\n" % i for i in range(40))  # > 1024 bytes
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(banner + _lines("a", 0, 5))
    tailer = Tailer([str(tmp_path / "*.log")])
    tailer.discover()
    first = _read_all(tailer)
    b.write_bytes(banner + _lines("b", 0, 7))
    tailer.discover()
    second = _read_all(tailer)
    assert len(first) == 45 and len(second) == 47 and second[-1] == b"b line 6"
    tailer.close()


@pytest.mark.parametrize("first_sight", ["whole", "header-only"])
@pytest.mark.parametrize("rotation", ["delete", "rename-away"])
def test_after_a_restart_a_new_file_at_the_path_does_not_inherit_the_old_offset(tmp_path: Path, rotation: str,
                                                                                 first_sight: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "access.log"
    old = HEADER + _lines("old", 0, 50)
    # header-only: the file was found when it held only its header, so its identity is the
    # header's bytes and its inode, which the new file may share
    path.write_bytes(HEADER if first_sight == "header-only" else old)
    checkpoints = Checkpoints(tmp_path / "ckpt.json")
    tailer = Tailer([str(path)])
    tailer.discover(checkpoints.offsets, checkpoints.tails)
    path.write_bytes(old)
    assert len(_read_all(tailer)) == 51
    _checkpoint(tailer, checkpoints)
    old_ino = path.stat().st_ino
    tailer.close()
    # the agent is down; the file is rotated away and a new one, with the same header and more
    # bytes than the old offset, takes its path
    if rotation == "delete":
        path.unlink()  # ext4 hands the freed inode to the next file at once
    else:
        path.rename(tmp_path / "access.log.1")  # outside the glob
    new = HEADER + _lines("new", 0, 80)
    path.write_bytes(new)
    assert len(new) > len(old)
    restarted = Checkpoints(tmp_path / "ckpt.json")
    tailer = Tailer([str(path)])
    tailer.discover(restarted.offsets, restarted.tails)
    followed = next(iter(tailer.files.values()))
    assert followed.offset == 0, f"inherited the old offset (inode reused: {path.stat().st_ino == old_ino})"
    lines = _read_all(tailer)
    assert lines[0] == HEADER.strip() and lines[-1] == b"new line 79" and len(lines) == 81
    tailer.close()


def test_after_a_restart_the_same_file_resumes_also_renamed_and_its_copy_resumes(tmp_path: Path) -> None:
    """The rules that must still hold: a file renamed while the agent was down resumes where it
    was (its inode), and a copytruncate done while it was down finishes from the copy."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app, edge = logs / "app.log", logs / "edge.log"
    app.write_bytes(HEADER + _lines("app", 0, 10))
    edge.write_bytes(HEADER + _lines("edge", 0, 10))
    checkpoints = Checkpoints(tmp_path / "ckpt.json")
    tailer = Tailer([str(logs / "*.log*")])
    tailer.discover(checkpoints.offsets, checkpoints.tails)
    assert len(_read_all(tailer)) == 22
    _checkpoint(tailer, checkpoints)
    tailer.close()
    with open(app, "ab") as handle:
        handle.write(_lines("app", 10, 5))
    app.rename(logs / "app.log.1")
    app.write_bytes(HEADER + _lines("app-new", 0, 3))
    with open(edge, "ab") as handle:
        handle.write(_lines("edge", 10, 5))
    shutil.copyfile(edge, logs / "edge.log.1")
    with open(edge, "r+b") as handle:
        handle.truncate(0)
    edge.write_bytes(HEADER + _lines("edge-new", 0, 2))
    restarted = Checkpoints(tmp_path / "ckpt.json")
    tailer = Tailer([str(logs / "*.log*")])
    tailer.discover(restarted.offsets, restarted.tails)
    lines = sorted(_read_all(tailer))
    expected = sorted(_texts("app", 10, 5) + _texts("edge", 10, 5)
                      + [HEADER.strip()] * 2 + _texts("app-new", 0, 3)
                      + _texts("edge-new", 0, 2))
    assert lines == expected
    tailer.close()


def test_copytruncate_of_files_with_a_shared_header_while_running(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    a, b = logs / "a.log", logs / "b.log"
    a.write_bytes(HEADER + _lines("a", 0, 10))
    b.write_bytes(HEADER + _lines("b", 0, 10))
    tailer = Tailer([str(logs / "*.log*")])
    tailer.discover()
    assert len(_read_all(tailer)) == 22
    with open(a, "ab") as handle:
        handle.write(_lines("a", 10, 5))
    shutil.copyfile(a, logs / "a.log.1")
    tailer.discover()  # the copy, seen before the truncation, is not a file of its own
    with open(a, "r+b") as handle:
        handle.truncate(0)
    a.write_bytes(HEADER + _lines("a-new", 0, 4))
    lines = _read_all(tailer)
    tailer.discover()
    lines += _read_all(tailer)
    assert sorted(lines) == sorted([*_texts("a", 10, 5), HEADER.strip(), *_texts("a-new", 0, 4)])
    tailer.close()


@pytest.mark.parametrize("rotation", ["delete", "rename-away"])
def test_descriptors_of_gone_files_are_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              rotation: str) -> None:
    monkeypatch.setattr(tailer_module, "GONE_IDLE_S", 0.0, raising=False)
    logs = tmp_path / "logs"
    logs.mkdir()
    before = _open_fds()
    tailer = Tailer([str(logs / "app.log")])
    for generation in range(5):  # five rotations: no descriptor may pile up
        path = logs / "app.log"
        path.write_bytes(HEADER + _lines(f"g{generation}", 0, 3))
        tailer.discover()
        assert len(_read_all(tailer)) == 4
        if rotation == "delete":
            path.unlink()
        else:
            path.rename(tmp_path / f"app.log.{generation}")
        tailer.discover()  # gone: stopped growing, read to the end
        tailer.discover()
        assert tailer.files == {}, f"generation {generation} still open"
    assert _open_fds() == before
    tailer.close()


def test_a_gone_file_with_lines_left_to_read_stays_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tailer_module, "GONE_IDLE_S", 0.0, raising=False)
    path = tmp_path / "app.log"
    path.write_bytes(HEADER + _lines("x", 0, 3))
    tailer = Tailer([str(path)])
    tailer.discover()
    path.unlink()
    for _ in range(3):
        tailer.discover()  # not read yet (the agent was busy): kept open
    assert len(tailer.files) == 1
    assert len(_read_all(tailer)) == 4
    tailer.discover()
    tailer.discover()
    assert tailer.files == {}
