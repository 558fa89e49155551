"""Stable consumer-group member ids (Kafka static membership, ``group.instance.id``).

A consumer killed with SIGKILL leaves its partitions to the group coordinator until its
session times out (45 s by default). A member that comes back with the same
``group.instance.id`` gets them back at once. The id must be stable across restarts of one
process and unique among the live members of a group, so it is either given (``kafka.instance_id``,
e.g. a pod name) or derived from the host name and a slot: the lowest slot number whose lock
file this host's processes of the same group do not hold. A killed process's lock goes with it,
so its replacement claims the same slot, and therefore the same id.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
from pathlib import Path
from typing import IO

from playscope.config import Settings

_held: dict[str, IO[bytes]] = {}  # lock files held for the life of the process


def _slots_dir(settings: Settings) -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or str(Path(settings.home).resolve() / "run")
    return Path(base) / "playscope-members"


def instance_id(settings: Settings, group: str) -> str | None:
    """The ``group.instance.id`` this process uses in ``group`` (None: static membership off)."""
    cfg = settings.kafka
    if not cfg.static_membership:
        return None
    if cfg.instance_id:
        return cfg.instance_id
    if group in _held:
        return _member_name(int(Path(_held[group].name).stem.rsplit("-", 1)[1]))
    folder = _slots_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", group)[:150]
    for slot in range(1024):
        handle = open(folder / f"{safe}-{slot}.lock", "ab")  # noqa: SIM115 - held until exit
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _held[group] = handle
        return _member_name(slot)
    return None  # over a thousand members of one group on one host: fall back to dynamic membership


def release(group: str) -> None:
    """Give the slot back (a clean shutdown; a crash releases it by itself)."""
    handle = _held.pop(group, None)
    if handle is not None:
        with contextlib.suppress(OSError):
            handle.close()


def _member_name(slot: int) -> str:
    return f"{socket.gethostname()}-{slot}"
