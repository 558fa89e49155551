"""The pipeline under test: every component as its own process, on the run's own names.

Topics carry the prefix ``chaos-<run>.`` and indices ``chaos-<run>-``, so a run never meets an
earlier run's state; configs and component logs are in ``<home>/chaos/<run>/``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from playscope.chaos.load import INCIDENT_CDN
from playscope.config import Settings
from playscope.demo.processes import Component, Supervisor
from playscope.stack.ports import free_port

# The counter each component moves when it does its work: recovery is judged by it.
PROGRESS: dict[str, str] = {
    "collector": "playscope_collector_sent_events_total",
    "agent": "playscope_agent_sent_events_total",
    "streams": "playscope_streams_received_events_total",
    "indexer": "playscope_indexer_sent_events_total",
    "alerts": "playscope_alerts_received_events_total",
}
ORDER = ["collector", "agent", "streams", "indexer", "alerts"]


@dataclass
class RunFiles:
    config: Path
    agent: Path
    rules: Path
    log_file: Path


def rules(webhook_url: str) -> dict[str, Any]:
    """One rule the incident trips: rebuffering on the incident CDN."""
    return {
        "channels": {"chaos-webhook": {"type": "webhook", "url": webhook_url}},
        "rules": [{"name": "chaos-cdn-rebuffering", "source": "qoe", "metric": "rebuffer_ratio",
                   "group_by": ["cdn"], "op": ">", "threshold": 0.1, "for": 2, "min_volume": 2,
                   "severity": "critical", "repeat_interval": "1h", "notify": ["chaos-webhook"],
                   "summary": "CDN {cdn}: rebuffering {value}"}],
    }


def write_files(run_dir: Path, settings: Settings, ports: dict[str, int], webhook_url: str,
                window_s: int) -> RunFiles:
    kafka = settings.kafka.model_dump(exclude_none=True, exclude={"security": {"password"}})
    config = {
        "kafka": {**kafka, "partitions": 3},
        "elasticsearch": settings.elasticsearch.model_dump(exclude_none=True, exclude={"password", "api_key"}),
        "home": str(Path(settings.home).resolve()),
        "topic_prefix": settings.topic_prefix,
        "index_prefix": settings.index_prefix,
        "window_s": window_s,
        "allowed_lateness_s": 10,
        "collector": {"port": ports["collector"], "host": "127.0.0.1", "workers": 2,
                      "spool_dir": str(run_dir / "spool")},
        "streams": {"idle_timeout_s": 60, "tick_interval_s": 0.5, "metrics_port": ports["streams"]},
        "indexer": {"metrics_port": ports["indexer"]},
        "alerts": {"metrics_port": ports["alerts"]},
    }
    files = RunFiles(run_dir / "playscope.yaml", run_dir / "agent.yaml", run_dir / "rules.yaml",
                     run_dir / "service-logs" / "chaos.log")
    files.config.write_text(yaml.safe_dump(config, sort_keys=False))
    agent = {"inputs": [{"paths": [str(files.log_file)], "parser": "json"}],
             "checkpoint_file": str(run_dir / "agent-checkpoints.json"),
             "metrics_port": ports["agent"], "poll_interval_ms": 100}
    files.agent.write_text(yaml.safe_dump(agent, sort_keys=False))
    files.rules.write_text(yaml.safe_dump(rules(webhook_url), sort_keys=False))
    return files


def free_ports() -> dict[str, int]:
    return {name: free_port() for name in ORDER}


def components(files: RunFiles, ports: dict[str, int]) -> list[Component]:
    def metrics(name: str) -> str:
        return f"http://127.0.0.1:{ports[name]}/metrics"

    return [
        Component("collector", ["collector"], metrics("collector")),
        Component("agent", ["agent", "-c", str(files.agent)], metrics("agent")),
        Component("streams", ["streams"], metrics("streams")),
        Component("indexer", ["indexer"], metrics("indexer")),
        Component("alerts", ["alerts", "-r", str(files.rules)], metrics("alerts")),
    ]


class Pipeline:
    """The running components, and the two things faults do to them: kill and start again."""

    def __init__(self, run_dir: Path, files: RunFiles, ports: dict[str, int], env: dict[str, str]) -> None:
        self.files = files
        self.ports = ports
        self.supervisor = Supervisor(run_dir, files.config, env)
        self.incident_cdn = INCIDENT_CDN

    def start_all(self) -> None:
        for comp in components(self.files, self.ports):
            self.supervisor.start(comp)

    def component(self, name: str) -> Component:
        return self.supervisor.components[name]

    def kill(self, name: str) -> int:
        """SIGKILL the component's main process (only that one: its children must cope)."""
        comp = self.component(name)
        if comp.proc is None or comp.proc.poll() is not None:
            raise RuntimeError(f"{name} is not running")
        pid = comp.proc.pid
        os.kill(pid, signal.SIGKILL)
        comp.proc.wait(10)
        return pid

    def restart(self, name: str) -> None:
        comp = self.component(name)
        comp.start(self.supervisor.log_dir, self.supervisor.config)

    def progress(self, name: str) -> float:
        return self.component(name).metric(PROGRESS[name])

    def collector_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['collector']}"

    def collector_ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.collector_url()}/readyz", timeout=1).status_code == 200
        return False

    def wait_started(self, timeout_s: float = 120) -> None:
        """Until the collector is ready and every component serves /metrics."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            dead = self.supervisor.dead()
            if dead:
                raise RuntimeError(f"{dead[0].name} exited during start-up:\n{dead[0].tail()}")
            if self.collector_ready() and all(self.progress(n) == self.progress(n) for n in ORDER):  # not nan
                return
            time.sleep(0.5)
        slow = [n for n in ORDER if self.progress(n) != self.progress(n)]
        raise RuntimeError(f"components not serving /metrics after {timeout_s:.0f} s: {', '.join(slow) or '-'}")

    def stop(self) -> None:
        self.supervisor.stop(ORDER)
