"""A ``logging.Handler`` that ships records to ``playscope.service.logs`` (SPEC 5).

    handler = KafkaLogHandler(producer, service="checkout", topic=settings.topic(SERVICE_LOGS))
    logging.getLogger().addHandler(handler)

``extra={...}`` fields (route, status, latency_ms, trace_id, ...) become record fields.
``emit`` never blocks and never raises into the service: a full queue counts a drop.
"""

from __future__ import annotations

import logging
import socket
import traceback
from typing import Any

from collectors.sdk.producer import PlayscopeProducer
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

    def to_record(self, record: logging.LogRecord) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ts": int(record.created * 1000),
            "service": self.service,
            "level": _LEVELS.get(record.levelname, record.levelname),
            "message": record.getMessage(),
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
            self.producer.send(self.topic, str(doc.get("service") or self.service), doc)
        except Exception:  # a log call must never break the service
            self.handleError(record)

    def close(self) -> None:
        super().close()
