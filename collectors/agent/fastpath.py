"""The agent's fast path for JSON lines that already are SPEC 5 records.

Most lines of a JSON log are flat objects with an epoch-ms ``ts``, a ``message`` and plain
fields. For those, the general path (decode to text, parse, complete, validate, bound the
clock, pseudonymise, encode: five calls per line) costs more than the rest of the agent; here
one loop does the same with the checks inlined. It accepts only what the general path
accepts and leaves unchanged, and produces exactly the bytes the general path would (the
parsed record with the same fields added, in the same order, encoded by orjson). Anything else
(invalid UTF-8, no ``message``, an RFC 3339 ``ts``, a level to normalise, an identifier to
pseudonymise, a nested value, a record too large) is handed to ``slow``, which owns every
error message and dead letter.

The original bytes are not reused even when the record needs only the agent's fields added:
a line may repeat a key (orjson keeps the last), the indexer passes the shipped bytes to
Elasticsearch as the document, and Elasticsearch refuses duplicate keys. Proving a line has
none costs as much as encoding the parsed record again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson

from collectors.delivery import Message
from playscope.events import LOG_LEVELS, MAX_DIM_LEN, MAX_ID_LEN, MAX_MEASURE, MAX_MESSAGE_LEN
from playscope.timeparse import MAX_TS_MS, MIN_TS_MS

_NESTED: Final = frozenset({dict, list})
_NEWLINE: Final = orjson.OPT_APPEND_NEWLINE
# playscope.events.LOG_STRING_FIELDS, checked one by one in the loop (a test keeps them equal)
STRING_FIELDS: Final = ("host", "route", "method", "trace_id")


class JsonFastPath:
    """Turns JSON lines into Kafka messages for one input, or hands them to ``slow``."""

    def __init__(self, fields: tuple[tuple[str, str], ...], service: str | None, host: str,
                 privacy_fields: frozenset[str], max_record_bytes: int, ahead_ms: int, behind_ms: int) -> None:
        self.fields = fields
        self.service = service or None
        self.host = host
        self.privacy_fields = privacy_fields
        self.max_record_bytes = max_record_bytes
        self.ahead_ms = ahead_ms
        self.behind_ms = behind_ms

    @classmethod
    def usable(cls, fields: tuple[tuple[str, str], ...], service: str | None, host: str,
               privacy_fields: frozenset[str]) -> bool:
        """Whether the values the agent adds are themselves clean: otherwise every record of
        the input needs the general path (which then refuses or rewrites it)."""
        added = {name for name, _value in fields} | {"service", "host", "source_file"}
        values = [value for _name, value in fields] + [host] + ([service] if service else [])
        return added.isdisjoint(privacy_fields) and all(
            0 < len(value) <= MAX_DIM_LEN and value.isprintable() for value in values)

    def take(self, lines: list[bytes], path: str, received_ms: int, out: list[Message],
             slow: Callable[[bytes], None]) -> None:
        """Append a message to ``out`` for each line it can take, in order; call ``slow`` for
        the others at their place."""
        loads, dumps = orjson.loads, orjson.dumps
        lo = max(MIN_TS_MS, received_ms - self.behind_ms)
        hi = min(MAX_TS_MS - 1, received_ms + self.ahead_ms)
        fields, default_service, agent_host = self.fields, self.service, self.host
        privacy, max_bytes, append = self.privacy_fields, self.max_record_bytes, out.append
        levels = LOG_LEVELS
        for raw in lines:
            try:  # nothing a line does may stop the agent: the general path dead-letters it
                record: Any = loads(raw)
                if type(record) is not dict or "message" not in record:
                    slow(raw)  # not an object, or a "msg" to rename: the general path decides
                    continue
                for name, value in fields:
                    record.setdefault(name, value)
                if default_service is not None:
                    record.setdefault("service", default_service)
                record.setdefault("host", agent_host)
                record["source_file"] = path
                get = record.get
                ts, service, message = get("ts"), get("service"), get("message")
                level, status, latency = get("level"), get("status"), get("latency_ms")
                if (type(ts) is int and lo <= ts <= hi and type(service) is str and 0 < len(service) <= MAX_ID_LEN
                        and service.isprintable() and type(message) is str and len(message) <= MAX_MESSAGE_LEN
                        and (level is None or (type(level) is str and level in levels))
                        and (status is None or (type(status) is int and 100 <= status <= 599))
                        and (latency is None or ((type(latency) is int or type(latency) is float)
                                                 and 0 <= latency <= MAX_MEASURE))
                        and privacy.isdisjoint(record)
                        # no nested value: no second brace and no bracket in the line (in C), else
                        # the values' types (a brace inside a string)
                        and ((raw.find(b"{", 1) < 0 and raw.find(b"[") < 0)
                             or _NESTED.isdisjoint(map(type, record.values())))
                        and ((host := get("host")) is None or _plain(host))
                        and ((route := get("route")) is None or _plain(route))
                        and ((method := get("method")) is None or _plain(method))
                        and ((trace_id := get("trace_id")) is None or _plain(trace_id))):
                    encoded = dumps(record, option=_NEWLINE)[:-1]  # exactly sized: see delivery.encode
                    if len(encoded) <= max_bytes:
                        append({"value": encoded, "key": service.encode()})
                        continue
            except Exception:  # not JSON, or anything odd: the general path says why
                pass
            slow(raw)


def _plain(value: Any) -> bool:
    """A SPEC 5 string field (``STRING_FIELDS``) the general path takes as it is."""
    return type(value) is str and len(value) <= MAX_DIM_LEN and value.isprintable()
