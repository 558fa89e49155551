"""Beacon peer: the OpenTelemetry Collector (otlp http receiver -> kafka exporter, acks all, no
batch processor and no sending queue, so it answers only after Kafka's ack: playscope's
guarantee) next to ``playscope collector`` with 2 workers, both driven by wrk with 64
connections posting the same one-record OTLP JSON log body; requests/s, p99 and the ratio.

The collector is built from its Go modules (``otelcol/``: a pinned go.mod/go.sum and main.go)
once per source digest and cached under PLAYSCOPE_HOME."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from bench.collector import start_collector
from bench.peers.common import EndOffsets, PeerError, cache_dir, ensure_apt
from playscope import topics
from playscope.config import Settings
from playscope.provision import ensure_topics
from playscope.stack.ports import free_port

PEER = "otelcol-otlp-kafka"
SOURCE = Path(__file__).parent / "otelcol"
CONNECTIONS = 64
WORKERS = 2

LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}}\\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def otlp_body() -> bytes:
    """One OTLP log record, as an instrumented service's SDK sends it, dated now."""
    attr = [{"key": "service.name", "value": {"stringValue": "checkout"}},
            {"key": "host.name", "value": {"stringValue": "web-1"}}]
    record = {"timeUnixNano": str(time.time_ns() - 60_000_000_000), "severityNumber": 9, "severityText": "INFO",
              "body": {"stringValue": "GET /play 200 12 ms"},
              "attributes": [{"key": "route", "value": {"stringValue": "/play"}},
                             {"key": "status", "value": {"intValue": "200"}}]}
    return orjson.dumps({"resourceLogs": [{"resource": {"attributes": attr},
                                           "scopeLogs": [{"scope": {"name": "bench"}, "logRecords": [record]}]}]})


def event_body() -> bytes:
    """One playback event, as a player posts it to /v1/events."""
    return orjson.dumps({"event_id": "peer-1", "session_id": "s1", "ts": int(time.time() * 1000) - 60_000,
                         "type": "heartbeat", "cdn": "oca-7", "device": "tv", "bitrate_kbps": 3000})


def build(settings: Settings) -> Path:
    """The collector binary for this source digest, built with ``go build`` on first use."""
    digest = hashlib.sha256(b"".join((SOURCE / n).read_bytes() for n in ("go.mod", "go.sum", "main.go")))
    binary = cache_dir(settings) / f"otelcol-{digest.hexdigest()[:12]}"
    if binary.exists():
        return binary
    go = shutil.which("go") or next((p for p in ("/usr/local/go/bin/go",) if Path(p).exists()), None)
    if go is None:
        raise PeerError("the Go toolchain (go 1.26+) is needed to build the OpenTelemetry Collector")
    partial = binary.with_suffix(".partial")
    done = subprocess.run([go, "build", "-trimpath", "-o", str(partial), "."], cwd=SOURCE, capture_output=True,
                          text=True, timeout=1800, env={**os.environ, "GOFLAGS": "-mod=readonly"})
    if done.returncode != 0:
        raise PeerError(f"go build of the OpenTelemetry Collector failed: {done.stderr.strip()[-500:]}")
    partial.rename(binary)
    for stale in binary.parent.glob("otelcol-*"):  # builds of an older go.mod or main.go
        if stale != binary:
            stale.unlink(missing_ok=True)
    return binary


def _otelcol_config(settings: Settings, port: int, topic: str) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{port}"}}}},
        "exporters": {"kafka": {
            "brokers": settings.kafka.bootstrap.split(","),
            "logs": {"topic": topic, "encoding": "otlp_json"},
            # the same durability as playscope's producer: every in-sync replica, lz4, 5 ms linger
            "producer": {"required_acks": -1, "compression": "lz4", "linger": "5ms"},
            "sending_queue": {"enabled": False},  # export in the request: answer after Kafka's ack
        }},
        "service": {"pipelines": {"logs": {"receivers": ["otlp"], "exporters": ["kafka"]}},
                    "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}}},
    }


def _start_otelcol(binary: Path, config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(binary), "--config", str(config)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            httpx.post(f"http://127.0.0.1:{port}/v1/logs", content=otlp_body(),
                       headers={"Content-Type": "application/json"}, timeout=5).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise PeerError(f"the OpenTelemetry Collector did not answer: {log.read_text()[-800:]}")


def wrk(url: str, body: bytes, seconds: float, tmp: Path) -> dict[str, Any]:
    """wrk (2 threads, 64 connections) posting ``body``: 2xx answers/s, p50/p99 and refusals."""
    script = tmp / "post.lua"
    script.write_text(LUA.format(body=body.decode()))
    done = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", "--timeout", "10s", "--latency",
                           "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 60)
    found = re.search(r"^WRK (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or found is None:
        raise PeerError(f"wrk failed: {(done.stdout + done.stderr).strip()[-500:]}")
    raw = orjson.loads(found.group(1))
    ok = raw["requests"] - raw["non_2xx"]
    return {"requests_per_s": round(ok / (raw["duration_us"] / 1e6)), "p50_ms": round(raw["p50_us"] / 1000, 2),
            "p99_ms": round(raw["p99_us"] / 1000, 2), "answered_2xx": ok, "non_2xx": raw["non_2xx"],
            "socket_errors": raw["socket_errors"]}


def _measure(url: str, body: bytes, seconds: float, tmp: Path, counter: EndOffsets) -> dict[str, Any]:
    """A 1 s warm-up, then the timed run; ``in_kafka`` is what the topic gained in the timed run."""
    wrk(url, body, 1, tmp)
    before = counter.total()
    figures = wrk(url, body, seconds, tmp)
    time.sleep(1)  # answers are sent after the ack, but the watermark may lag by a moment
    figures["in_kafka"] = counter.total() - before
    return figures


def run(settings: Settings, quick: bool, stage: dict[str, Any]) -> dict[str, Any]:
    ensure_apt(["wrk"], lambda: shutil.which("wrk") is not None)
    binary = build(settings)
    ensure_topics(settings)
    seconds = 5.0 if quick else 15.0
    body = otlp_body()
    with tempfile.TemporaryDirectory(prefix="bench-peers-collector-") as name:
        tmp = Path(name)
        logs_topic = settings.topic(topics.SERVICE_LOGS)
        counter = EndOffsets(settings, logs_topic)
        events = EndOffsets(settings, settings.topic(topics.PLAYBACK_EVENTS))
        proc, port = start_collector(settings, WORKERS, log=tmp / "collector.log")
        try:
            ours = _measure(f"http://127.0.0.1:{port}/v1/logs", body, seconds, tmp, counter)
            single = _measure(f"http://127.0.0.1:{port}/v1/events", event_body(), seconds, tmp, events)
        finally:
            proc.terminate()
            proc.wait(60)
            counter.close()
            events.close()
        peer = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}otelcol."})
        ensure_topics(peer)
        peer_topic = peer.topic(topics.SERVICE_LOGS)
        peer_port = free_port()
        config = tmp / "otelcol.yaml"
        config.write_text(yaml.safe_dump(_otelcol_config(settings, peer_port, peer_topic)))
        counter = EndOffsets(peer, peer_topic)
        otel = _start_otelcol(binary, config, peer_port, tmp / "otelcol.log")
        try:
            theirs = _measure(f"http://127.0.0.1:{peer_port}/v1/logs", body, seconds, tmp, counter)
        finally:
            otel.terminate()
            otel.wait(60)
            counter.close()
    return {"peer_requests_per_s": theirs["requests_per_s"], "requests_per_s": ours["requests_per_s"],
            "ratio": round(ours["requests_per_s"] / max(theirs["requests_per_s"], 1), 3),
            "peer_p99_ms": theirs["p99_ms"], "p99_ms": ours["p99_ms"], "connections": CONNECTIONS,
            "workers": WORKERS, "seconds": seconds, "otlp_logs": ours, "peer_otlp_logs": theirs,
            "single_event_v1_events": single}
