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
    """One folder for the whole host (per user), whatever ``home`` each process has: the slots
    must be unique among the host's members of a group, and ids are host name plus slot."""
    import tempfile

    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"playscope-members-{os.getuid()}"


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


def leave_group(settings: Settings, group: str, member: str, member_id: str = "",
                timeout_s: float = 10.0) -> bool:
    """Take static member ``member`` out of ``group`` now, so its partitions move at once.

    Neither librdkafka nor aiokafka sends LeaveGroup for a static member on close (a restart
    is meant to take the partitions back), so after a clean stop the others would wait out
    ``kafka.session_timeout_s``. This sends LeaveGroup v3 with the instance id (what the Java
    admin's ``removeMembersFromConsumerGroup`` does); ``member_id`` empty removes whichever
    member holds the id. Returns True when the coordinator confirmed; failures are logged,
    never raised (the session timeout still applies)."""
    import asyncio
    import logging

    from playscope.logs import log_event

    log = logging.getLogger("playscope.membership")
    try:
        error = asyncio.run(asyncio.wait_for(_send_leave(settings, group, member, member_id), timeout_s))
    except Exception as exc:  # the broker is down, or an old one without LeaveGroup v3
        log_event(log, "kafka.leave_failed", logging.WARNING, group=group, member=member, error=repr(exc)[:300])
        return False
    if error:
        log_event(log, "kafka.leave_failed", logging.WARNING, group=group, member=member, error=error)
        return False
    log_event(log, "kafka.left_group", group=group, member=member)
    return True


async def _send_leave(settings: Settings, group: str, member: str, member_id: str) -> str:
    """LeaveGroup v3 to the group's coordinator; the error name, or "" on success."""
    from aiokafka.client import AIOKafkaClient, CoordinationType  # type: ignore[import-untyped]
    from aiokafka.errors import for_code  # type: ignore[import-untyped]

    from playscope.kafka import aiokafka_kwargs

    client = AIOKafkaClient(**aiokafka_kwargs(settings.kafka))
    await client.bootstrap()
    try:
        node = await client.coordinator_lookup(CoordinationType.GROUP, group)
        resp = await client.send(node, _leave_request(group, member_id, member))
    finally:
        await client.close()
    codes = [resp.error_code] + [m[2] for m in resp.members]
    bad = [code for code in codes if code]
    return for_code(bad[0]).__name__ if bad else ""


def _leave_request(group: str, member_id: str, member: str) -> object:
    """A LeaveGroup v3 request (group, [(member id, group instance id)]): aiokafka has v0-v1 only."""
    from aiokafka.protocol.api import Request, RequestStruct, Response  # type: ignore[import-untyped]
    from aiokafka.protocol.types import Array, Int16, Int32, Schema, String  # type: ignore[import-untyped]

    class LeaveGroupResponseV3(Response):
        API_KEY = 13
        API_VERSION = 3
        SCHEMA = Schema(("throttle_time_ms", Int32), ("error_code", Int16),
                        ("members", Array(("member_id", String("utf-8")), ("group_instance_id", String("utf-8")),
                                          ("error_code", Int16))))

    class LeaveGroupRequestV3(RequestStruct):
        API_KEY = 13
        API_VERSION = 3
        RESPONSE_TYPE = LeaveGroupResponseV3
        SCHEMA = Schema(("group", String("utf-8")),
                        ("members", Array(("member_id", String("utf-8")), ("group_instance_id", String("utf-8")))))

    class LeaveStatic(Request[LeaveGroupRequestV3]):
        API_KEY = 13

        def build(self, request_struct_class: type[LeaveGroupRequestV3]) -> LeaveGroupRequestV3:
            return request_struct_class(group, [(member_id, member)])

    return LeaveStatic()
