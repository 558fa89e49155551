"""The agent's config file (``playscope agent -c agent.yaml``), validated once at start-up."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from playscope.config import Strict, describe_validation_error
from playscope.errors import ConfigError
from playscope.secrets import resolve_secrets


class MultilineConfig(Strict):
    # A line matching ``start`` begins a new record; other lines are appended to the current one.
    start: str
    max_lines: int = Field(default=500, ge=1)
    timeout_ms: int = Field(default=1000, ge=1)


class InputConfig(Strict):
    paths: list[str] = Field(min_length=1)  # glob patterns
    parser: str = "json"  # a key of collectors.agent.parsers.PARSERS
    pattern: str | None = None  # regex parser: named groups become fields
    time_format: str | None = None  # strptime format of a parsed ``ts`` (default: epoch ms / RFC 3339)
    service: str | None = None  # default ``service`` for records that carry none
    fields: dict[str, str] = Field(default_factory=dict)  # added to every record
    multiline: MultilineConfig | None = None
    start_at: Literal["beginning", "end"] = "beginning"  # where to start a file seen for the first time

    @model_validator(mode="after")
    def _check(self) -> InputConfig:
        from collectors.agent.parsers import PARSERS

        if self.parser not in PARSERS:
            raise ValueError(f"unknown parser {self.parser!r} (one of {', '.join(sorted(PARSERS))})")
        if self.parser == "regex" and not self.pattern:
            raise ValueError("the regex parser needs 'pattern'")
        for regex in (self.pattern, self.multiline.start if self.multiline else None):
            if regex:
                try:
                    re.compile(regex)
                except re.error as exc:
                    raise ValueError(f"invalid regular expression {regex!r}: {exc}") from None
        return self


class SinkConfig(Strict):
    type: Literal["kafka", "http"] = "kafka"
    url: str = "http://127.0.0.1:8080"  # the HTTP collector (type: http)
    api_key: str | None = Field(default=None, repr=False)
    timeout_s: float = Field(default=30.0, gt=0)
    # type: http. Bodies stay within the collector's limits (its max_body_bytes, 5 MiB, and
    # max_events_per_request, 5000); the collector takes no dead letters, so the agent's own go
    # to this file (NDJSON; past deadletter_max_bytes it becomes <name>.1 and a new one starts).
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_items_per_request: int = Field(default=5000, ge=1)
    deadletter_file: Path = Path(".playscope/agent/deadletter.ndjson")
    deadletter_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)


class AgentConfig(Strict):
    inputs: list[InputConfig] = Field(min_length=1)
    sink: SinkConfig = SinkConfig()
    host: str = Field(default_factory=socket.gethostname)
    checkpoint_file: Path = Path(".playscope/agent/checkpoints.json")
    batch_lines: int = Field(default=2000, ge=1)
    max_in_flight: int = Field(default=4, ge=1)
    poll_interval_ms: int = Field(default=200, ge=10)
    read_chunk_bytes: int = Field(default=1024 * 1024, ge=4096)
    max_line_bytes: int = Field(default=64 * 1024, ge=256)
    # A record larger than this once encoded is dead-lettered (its original cut): Kafka would
    # refuse it for good (the producer's message.max.bytes is 1 MB) and the agent would stall.
    max_record_bytes: int = Field(default=900_000, ge=1024, le=1_000_000)
    fingerprint_bytes: int = Field(default=1024, ge=16)  # first bytes that identify a file (tailer.py)
    metrics_port: int | None = None  # None: 9181; 0: any free port


def load_agent_config(path: str | Path, environ: Mapping[str, str] | None = None) -> AgentConfig:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"agent config not found: {file}")
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: top level must be a mapping")
    # the same ${VAR} and *_file secret rules as playscope.yaml: ``api_key: ${AGENT_KEY}`` or
    # ``api_key_file: /run/secrets/agent-key``, ``host: ${NODE_NAME}`` on Kubernetes
    resolve_secrets(raw, os.environ if environ is None else environ, str(file))
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(describe_validation_error(exc, str(file)))) from None
