"""Where simulated telemetry goes: beacons and CMCD to the HTTP collector, service logs to
files (tailed by the agent) or through the logging handler, as real players and services do."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

# SPEC 4 type -> CMCD v2 play state (``e=ps,sta=...``); the rest travel as other report kinds.
_PLAY_STATES = {"session_start": "s", "playing": "p", "rebuffer_start": "r", "rebuffer_end": "p",
                "resume": "p", "pause": "a", "seek": "k", "session_end": "e", "error": "f"}
_CMCD_DIMS = ("isp", "device", "country", "os", "app_version", "profile_id")


def _cmcd_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_cmcd_line(event: dict[str, Any], sn: int) -> str:
    """One SPEC 4 event as a CMCD v2 event-mode report (what a CMCD v2 player would send)."""
    kind = event["type"]
    items = [f"sid={_cmcd_string(event['session_id'])}", f"sn={sn}", f"ts={event['ts']}", "v=2"]
    if "title_id" in event:
        items.append(f"cid={_cmcd_string(event['title_id'])}")
    if "cdn" in event:
        items.append(f"cdn={_cmcd_string(event['cdn'])}")
    if kind == "bitrate_change":
        items.append("e=bc")
    elif kind == "heartbeat":
        items.append("e=t")
    else:
        items += ["e=ps", f"sta={_PLAY_STATES[kind]}"]
    if kind == "error" and event.get("error_code"):
        items.append(f"ec=({_cmcd_string(event['error_code'])})")
    bitrate = event.get("to_kbps", event.get("bitrate_kbps"))
    if bitrate is not None:
        items.append(f"br=({int(bitrate)})")
    if event.get("buffer_ms") is not None:
        items.append(f"bl=({int(event['buffer_ms'])})")
    if event.get("throughput_kbps") is not None:
        items.append(f"mtp=({int(event['throughput_kbps'])})")
    return ",".join(sorted(items))


class BeaconSender:
    """Posts batches of events to the collector: JSON arrays to /v1/events, CMCD v2 reports to
    /v1/cmcd (dimensions CMCD has no key for travel as query arguments)."""

    def __init__(self, collector_url: str, timeout_s: float = 10.0) -> None:
        self.url = collector_url.rstrip("/")
        self.client = httpx.Client(timeout=timeout_s)
        self.accepted = 0
        self.rejected = 0
        self.failed_requests = 0
        self._sn: dict[str, int] = {}

    def send_json(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        self._post("/v1/events", orjson.dumps(events), {"Content-Type": "application/json"})

    def send_cmcd(self, events: list[dict[str, Any]]) -> None:
        by_session: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            by_session.setdefault(event["session_id"], []).append(event)
        for sid, evs in by_session.items():
            lines = []
            for event in evs:
                sn = self._sn.get(sid, 0)
                self._sn[sid] = sn + 1
                lines.append(to_cmcd_line(event, sn))
            dims = {k: evs[0][k] for k in _CMCD_DIMS if k in evs[0]}
            self._post("/v1/cmcd", "\n".join(lines).encode() + b"\n",
                       {"Content-Type": "application/cmcd"}, params=dims)
            if evs[-1]["type"] in ("session_end", "error"):
                self._sn.pop(sid, None)

    def _post(self, path: str, body: bytes, headers: dict[str, str], params: dict[str, str] | None = None) -> None:
        for attempt in range(5):  # a 503 (broker away) or 429 is retried, as a player would
            try:
                resp = self.client.post(self.url + path, content=body, headers=headers, params=params)
            except httpx.HTTPError:
                self.failed_requests += 1
                time.sleep(0.2 * 2**attempt)
                continue
            if resp.status_code in (429, 503):
                time.sleep(float(resp.headers.get("Retry-After", 0.5 * 2**attempt)))
                continue
            if resp.status_code in (200, 202):
                answer = resp.json()
                self.accepted += int(answer.get("accepted", 0))
                self.rejected += int(answer.get("rejected", 0))
            else:
                self.failed_requests += 1
            return
        self.failed_requests += 1

    def close(self) -> None:
        self.client.close()


def combined_line(record: dict[str, Any]) -> str:
    """A service request as an nginx "combined" access-log line with $request_time appended."""
    when = datetime.fromtimestamp(record["ts"] / 1000, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return (f'10.0.{hash(record["host"]) % 250}.{hash(record["trace_id"]) % 250} - - [{when}] '
            f'"{record["method"]} {record["route"]} HTTP/1.1" {record["status"]} {1000 + len(record["message"])} '
            f'"-" "player/5.2" {record["latency_ms"] / 1000:.3f}\n')


class LogFileWriter:
    """Appends each service's requests to ``<dir>/<service>/access.log`` for the agent to tail."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lines = 0
        self._files: dict[str, Any] = {}

    def write(self, record: dict[str, Any]) -> None:
        handle = self._files.get(record["service"])
        if handle is None:
            folder = self.directory / record["service"]
            folder.mkdir(parents=True, exist_ok=True)
            handle = open(folder / "access.log", "a", buffering=1)  # noqa: SIM115 - kept open
            self._files[record["service"]] = handle
        handle.write(combined_line(record))
        self.lines += 1
        if self.lines % 997 == 0:  # now and then a line no parser knows, as real logs have
            handle.write(f"upstream prematurely closed connection while reading response header ({record['host']})\n")
            self.lines += 1

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()


class SdkLogShipper:
    """Services that embed the producer SDK: the standard logging API, records to Kafka."""

    def __init__(self, settings: Any) -> None:
        from collectors.sdk.logging_handler import KafkaLogHandler
        from collectors.sdk.producer import PlayscopeProducer
        from playscope.topics import SERVICE_LOGS

        self.producer = PlayscopeProducer(settings.kafka)
        self.topic = settings.topic(SERVICE_LOGS)
        self._handler_cls = KafkaLogHandler
        self._loggers: dict[str, logging.Logger] = {}
        self.records = 0

    def _logger(self, service: str) -> logging.Logger:
        logger = self._loggers.get(service)
        if logger is None:
            logger = logging.getLogger(f"playscope.loadgen.service.{service}")
            logger.propagate = False
            logger.setLevel(logging.INFO)
            logger.addHandler(self._handler_cls(self.producer, service=service, topic=self.topic,
                                                host=f"{service}-sdk"))
            self._loggers[service] = logger
        return logger

    def write(self, record: dict[str, Any]) -> None:
        level = logging.ERROR if record["status"] >= 500 else logging.INFO
        extra = {k: record[k] for k in ("route", "method", "status", "latency_ms", "trace_id")}
        self._logger(record["service"]).log(level, record["message"], extra=extra)
        self.records += 1

    def close(self) -> None:
        for logger in self._loggers.values():
            for handler in logger.handlers:
                handler.close()
        self.producer.close()
