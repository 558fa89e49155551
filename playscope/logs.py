"""Structured logging: one JSON object per line on stderr, the same shape in every component.

Call ``log_event(logger, "event.name", key=value, ...)``; the event name is stable and greppable,
the keys are data. ``setup_logging`` is called once by the CLI.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        line = orjson.dumps(doc, default=str).decode()
        for secret in _SECRETS:  # configured secrets never reach a log line, whatever logged them
            if secret in line:
                line = line.replace(secret, "***")
        return line


# The configured secrets in their JSON-escaped form (as they would appear inside a log line).
_SECRETS: list[str] = []


def redact_in_logs(values: set[str]) -> None:
    """Mask these values wherever they would appear in a log line (called by the CLI with the
    secrets of the configuration)."""
    escaped = {orjson.dumps(v).decode()[1:-1] for v in values if v}
    _SECRETS[:] = sorted(escaped | {v for v in values if v}, key=len, reverse=True)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "faust", "mode", "elastic_transport", "opensearch", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    from playscope.kafka_health import quiet_client_logs

    quiet_client_logs()


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with ``fields`` as structured keys."""
    logger.log(level, event, extra=fields)
