"""What the demo shows while it runs: the latest closed windows per CDN and per service (read
from the metric topics, as any consumer would), events/s through each stage (from each
component's /metrics) and the alerts the webhook receiver got."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import orjson
from confluent_kafka import Consumer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from playscope import topics
from playscope.config import Settings
from playscope.kafka import consumer_config

# stage -> (component, counter of events leaving or entering that stage)
STAGE_COUNTERS: dict[str, tuple[str, str]] = {
    "collector": ("collector", "playscope_collector_sent_events_total"),
    "agent": ("agent", "playscope_agent_sent_events_total"),
    "streams": ("streams", "playscope_streams_received_events_total"),
    "indexer": ("indexer", "playscope_indexer_sent_events_total"),
    "alerts": ("alerts", "playscope_alerts_notifications_total"),
}


class WindowWatcher:
    """Keeps the newest closed window per CDN and per service, and counts windows seen."""

    def __init__(self, settings: Settings) -> None:
        conf = consumer_config(settings.kafka, f"{settings.group('demo-view')}-{uuid.uuid4().hex[:6]}",
                               **{"enable.auto.commit": True, "auto.offset.reset": "earliest"})
        self.consumer = Consumer(conf)
        self.consumer.subscribe([settings.topic(topics.QOE_METRICS), settings.topic(topics.SERVICE_METRICS)])
        self.cdn: dict[str, dict[str, Any]] = {}
        self.service: dict[str, dict[str, Any]] = {}
        self.windows = 0
        self.peak_rebuffer: dict[str, float] = {}
        self.peak_errors: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="window-watcher")

    def start(self) -> WindowWatcher:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            msg = self.consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            value = msg.value()
            if value is None:
                continue
            try:
                doc = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            self.windows += 1
            group = doc.get("group")
            if group == "cdn":
                self._keep(self.cdn, doc["cdn"], doc)
                self.peak_rebuffer[doc["cdn"]] = max(self.peak_rebuffer.get(doc["cdn"], 0.0),
                                                     float(doc.get("rebuffer_ratio", 0)))
            elif group == "service":
                self._keep(self.service, doc["service"], doc)
                self.peak_errors[doc["service"]] = max(self.peak_errors.get(doc["service"], 0.0),
                                                       float(doc.get("error_rate", 0)))

    @staticmethod
    def _keep(table: dict[str, dict[str, Any]], key: str, doc: dict[str, Any]) -> None:
        if key not in table or table[key]["window_start"] <= doc["window_start"]:
            table[key] = doc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.consumer.close()


class StageRates:
    """events/s per stage from successive counter readings."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[float, float]] = {}
        self.rates: dict[str, float] = {}
        self.totals: dict[str, float] = {}

    def update(self, readings: dict[str, float]) -> None:
        now = time.monotonic()
        for stage, value in readings.items():
            if value != value:  # nan: not reachable right now
                continue
            if stage in self.last:
                t0, v0 = self.last[stage]
                if now > t0:
                    self.rates[stage] = max(0.0, (value - v0) / (now - t0))
            self.last[stage] = (now, value)
            self.totals[stage] = value


def _pct(value: Any) -> str:
    return f"{float(value) * 100:5.1f} %" if value is not None else "-"


def render(elapsed_s: float, phase: str, watcher: WindowWatcher, rates: StageRates,
           alerts: list[dict[str, Any]], incident_cdn: str, incident_service: str) -> Group:
    """The live screen (also printable once, as the final state)."""
    title = Text.assemble(("playscope demo", "bold"), f"  {elapsed_s:5.0f} s  ", (phase, "cyan"))
    cdn = Table(title="QoE by CDN (latest closed window)", expand=True)
    for col in ("cdn", "attempts", "rebuffer ratio", "failure rate", "avg bitrate"):
        cdn.add_column(col)
    for name, doc in sorted(watcher.cdn.items()):
        style = "bold red" if float(doc.get("rebuffer_ratio", 0)) > 0.05 else ""
        mark = " (incident)" if name == incident_cdn else ""
        cdn.add_row(name + mark, str(doc.get("attempts", 0)), _pct(doc.get("rebuffer_ratio")),
                    _pct(doc.get("failure_rate")), f"{float(doc.get('avg_bitrate_kbps') or 0):.0f} kbps", style=style)
    svc = Table(title="Services (latest closed window)", expand=True)
    for col in ("service", "requests", "error rate", "p99 latency"):
        svc.add_column(col)
    for name, doc in sorted(watcher.service.items()):
        style = "bold red" if float(doc.get("error_rate", 0)) > 0.05 else ""
        mark = " (incident)" if name == incident_service else ""
        svc.add_row(name + mark, str(doc.get("requests", 0)), _pct(doc.get("error_rate")),
                    f"{float(doc.get('latency_ms_p99') or 0):.0f} ms", style=style)
    stages = Table(title="Pipeline", expand=True)
    for col in ("stage", "events/s", "total"):
        stages.add_column(col)
    for stage in STAGE_COUNTERS:
        stages.add_row(stage, f"{rates.rates.get(stage, 0):,.0f}", f"{rates.totals.get(stage, 0):,.0f}")
    alert_table = Table(title="Alerts delivered to the webhook", expand=True)
    for col in ("status", "rule", "group", "value", "window"):
        alert_table.add_column(col)
    for note in alerts[-8:]:
        style = "bold red" if note.get("status") == "firing" else "green"
        group = ",".join(f"{k}={v}" for k, v in (note.get("group") or {}).items())
        value = note.get("value")
        alert_table.add_row(str(note.get("status")), str(note.get("rule")), group,
                            f"{value:.3f}" if isinstance(value, int | float) else str(value),
                            _window(note), style=style)
    return Group(title, cdn, svc, stages, alert_table)


def _window(note: dict[str, Any]) -> str:
    start = note.get("window_start")
    if not isinstance(start, int | float):
        return str(start or "")
    return time.strftime("%H:%M:%S", time.localtime(start / 1000))
