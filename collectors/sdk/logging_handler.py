"""A ``logging.Handler`` that ships records to ``playscope.service.logs`` (SPEC 5).

    handler = KafkaLogHandler(producer, service="checkout", topic=settings.topic(SERVICE_LOGS))
    logging.getLogger().addHandler(handler)

``extra={...}`` fields (route, status, latency_ms, trace_id, ...) become record fields.
``emit`` never blocks and never raises into the service, and does not print tracebacks as
``logging.Handler.handleError`` would: whatever cannot be shipped (a full queue, an oversized or
unencodable record, a broken ``__str__``) is dropped and counted by reason, in ``drops()`` and in
the producer's ``playscope_sdk_discarded_events_total{reason}``. A message whose arguments do
not fit its format is shipped unformatted, with its arguments as text.
"""

from __future__ import annotations

import logging
import socket
import threading
import traceback
from typing import Any

from collectors.sdk.producer import DROP_REASONS, PlayscopeProducer
from playscope import topics

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_LEVELS = {"WARNING": "WARN", "CRITICAL": "FATAL", "NOTSET": "DEBUG"}


class KafkaLogHandler(logging.Handler):
    def __init__(self, producer: PlayscopeProducer, service: str, topic: str = topics.SERVICE_LOGS,
                 host: str | None = None, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.producer = producer
        self.service = service
        self.topic = topic
        self.host = host or socket.gethostname()
        self._drops = dict.fromkeys(DROP_REASONS, 0)
        self._drops_lock = threading.Lock()

    def to_record(self, record: logging.LogRecord) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ts": int(record.created * 1000),
            "service": self.service,
            "level": _LEVELS.get(record.levelname, record.levelname),
            "message": _message(record),
            "host": self.host,
            "logger": record.name,
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_") and key not in doc:
                doc[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            doc["exception"] = "".join(traceback.format_exception(*record.exc_info))
        return doc

    def emit(self, record: logging.LogRecord) -> None:
        try:
            doc = self.to_record(record)
            key = doc.get("service")
            reason = self.producer.try_send(self.topic, key if isinstance(key, str) else self.service, doc)
        except Exception as exc:  # a log call must never break the service
            reason = self.producer.discard("handler_error", f"{type(exc).__name__}: {exc}")
        if reason is not None:
            with self._drops_lock:
                self._drops[reason] += 1

    def drops(self) -> dict[str, int]:
        """Log records this handler dropped, by reason (:data:`DROP_REASONS`)."""
        with self._drops_lock:
            return dict(self._drops)

    @property
    def dropped(self) -> int:
        return sum(self.drops().values())

    def close(self) -> None:
        super().close()


def _message(record: logging.LogRecord) -> str:
    """``record.getMessage()``; when the arguments do not fit the format, the format and the
    arguments as text (what ``logging`` would print as an error)."""
    try:
        return record.getMessage()
    except Exception:
        return f"{record.msg!s} (arguments not formatted: {record.args!r})"
