"""Ports: is one taken, and by which process (so the error can say who to stop)."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    """True if something listens on ``port`` (or it cannot be bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        if sock.connect_ex((host, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A port that is free right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(inode)
    return inodes


def port_owner(port: int) -> str | None:
    """'pid 123 (java ...)' for the process listening on ``port``, when /proc can tell."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        fd_dir = Path("/proc") / pid / "fd"
        try:
            for fd in fd_dir.iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    cmd = (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ")
                    return f"pid {pid} ({cmd.decode(errors='replace').strip()[:80]})"
        except OSError:
            continue
    return None


def free_port_range(count: int, attempts: int = 50) -> int:
    """The first of ``count`` consecutive ports that are all free right now (for a cluster whose
    ports derive from one base port, as ``stack up --brokers N`` makes them)."""
    import random

    for _ in range(attempts):
        base = random.randrange(20000, 60000 - count)
        if not any(port_taken(port) for port in range(base, base + count)):
            return base
    raise OSError(f"no {count} consecutive free ports found in {attempts} attempts")
