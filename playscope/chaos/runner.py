"""One chaos run from start to report: stack, pipeline, load, faults, drain, check."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playscope import topics
from playscope.chaos import check
from playscope.chaos.faults import AFTER_INCIDENT, BEFORE_INCIDENT, DURING_INCIDENT, FaultContext, FaultReport
from playscope.chaos.load import INCIDENT_CDN, LogLoad, PlaybackLoad
from playscope.chaos.pipeline import Pipeline, free_ports, write_files
from playscope.config import Settings, load_settings
from playscope.demo.receiver import WebhookReceiver

WINDOW_S = 10


@dataclass(frozen=True)
class ChaosOptions:
    brokers: int = 1
    sessions_per_s: float = 8.0
    log_lines_per_s: float = 200.0
    broker_down_s: float = 60.0
    search_down_s: float = 30.0
    keep: bool = False
    settle_s: float = 4.0  # steady traffic between two faults
    incident_wait_s: float = 150.0  # for the alert to fire, then to resolve


class ChaosRun:
    def __init__(self, settings: Settings, options: ChaosOptions, run_id: str, run_dir: Path,
                 say: Callable[[str], None]) -> None:
        self.base = settings
        self.options = options
        self.run_id = run_id
        self.run_dir = run_dir
        self.say = say
        self.faults: list[FaultReport] = []
        self.failures: list[str] = []

    # -- the run ------------------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        from playscope.provision import ensure_topics
        from playscope.stack.manager import StackManager

        started = time.monotonic()
        self.say(f"chaos run {self.run_id}: bringing the stack up ({self.options.brokers} broker(s))")
        stack = StackManager(self.base.home, self.base, **self._stack_kwargs())
        stack.up(progress=_throttled(self.say), **self._up_kwargs())
        settings = self._run_settings(stack)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ensure_topics(settings, partitions=3)
        receiver = WebhookReceiver().start()
        ports = free_ports()
        files = write_files(self.run_dir, settings, ports, receiver.url, WINDOW_S)
        run_settings = load_settings(files.config, environ={})
        pipeline = Pipeline(self.run_dir, files, ports, {})
        playback = PlaybackLoad(pipeline.collector_url(), self.run_id, self.options.sessions_per_s)
        logs = LogLoad(files.log_file, self.run_id, self.options.log_lines_per_s)
        report: dict[str, Any] = {"brokers": self.options.brokers, "run": self.run_id}
        try:
            pipeline.start_all()
            try:
                pipeline.wait_started()
            except RuntimeError as exc:
                self.failures.append(f"the pipeline did not start: {exc}")
                report.update({"faults": [], "failures": self.failures})
                return report
            self.say(f"pipeline up (topics {settings.topic_prefix}*, logs in {self.run_dir})")
            playback.start()
            logs.start()
            time.sleep(self.options.settle_s * 2)
            ctx = FaultContext(pipeline, stack, self.say, lambda: _firing(receiver),
                               broker_down_s=self.options.broker_down_s,
                               search_down_s=self.options.search_down_s,
                               topic=run_settings.topic(topics.PLAYBACK_EVENTS))
            self._apply(BEFORE_INCIDENT, ctx)
            self._incident(playback, receiver, ctx)
            self._apply(AFTER_INCIDENT, ctx)
            self.say("stopping the load; the running sessions play to their end")
            playback.stopping.set()
            logs.stopping.set()
            self._drain(playback, logs, pipeline, run_settings)
            report.update(self._check(run_settings, playback, logs, receiver))
        finally:
            pipeline.stop()
            receiver.stop()
            self._restore_stack(stack)
            if not self.options.keep:
                self._clean(run_settings)
        report["faults"] = [f.as_dict() for f in self.faults]
        for fault in self.faults:
            if not fault.applied:
                self.failures.append(f"{fault.fault}: not applied ({fault.note})")
            elif not fault.recovered:
                self.failures.append(f"{fault.fault}: {fault.note}")
        report["failures"] = self.failures
        report["duration_s"] = round(time.monotonic() - started, 1)
        return report

    # -- stack --------------------------------------------------------------------------------
    def _stack_kwargs(self) -> dict[str, Any]:
        return {"brokers": self.options.brokers}

    def _up_kwargs(self) -> dict[str, Any]:
        return {}

    def _run_settings(self, stack: Any) -> Settings:
        prefix = f"chaos-{self.run_id}"
        kafka = stack.settings.kafka
        return stack.settings.model_copy(update={"topic_prefix": f"{prefix}.", "index_prefix": f"{prefix}-",
                                                 "kafka": kafka, "window_s": WINDOW_S})

    def _restore_stack(self, stack: Any) -> None:
        """Whatever a fault left down is started again: the stack ends as the run found it."""
        for server in stack.wanted():
            if not server.healthy():
                self.say(f"restoring {server.name}")
                try:
                    server.start()
                    server.wait_healthy(timeout_s=240)
                except Exception as exc:
                    self.failures.append(f"could not restore {server.name}: {exc}")

    def _clean(self, settings: Settings) -> None:
        from playscope.provision import delete_prefixed
        from playscope.search import make_client

        try:
            with make_client(settings.elasticsearch, "elasticsearch") as es:
                delete_prefixed(settings, (es,))
        except Exception as exc:
            self.say(f"could not delete the run's topics and indices: {exc}")

    # -- faults -------------------------------------------------------------------------------
    def _apply(self, faults: list[Any], ctx: FaultContext) -> None:
        for fault in faults:
            self.say(f"fault: {fault.name}")
            try:
                result = fault.apply(ctx)
            except Exception as exc:  # a fault that breaks is reported, the run goes on
                result = FaultReport(fault.name, note=f"{type(exc).__name__}: {exc}")
            recovery = f"{result.recovery_s:.1f} s" if result.recovery_s is not None else "-"
            self.say(f"  {result.fault}: applied={result.applied} recovery={recovery} {result.note}")
            self.faults.append(result)
            time.sleep(self.options.settle_s)

    def _incident(self, playback: PlaybackLoad, receiver: WebhookReceiver, ctx: FaultContext) -> None:
        """Rebuffering on the incident CDN until its alert fires; the alert fault runs while it
        fires; then the incident ends and the alert must resolve."""
        self.say(f"incident: CDN {INCIDENT_CDN} starts rebuffering")
        playback.incident.set()
        _wait(lambda: _firing(receiver), self.options.incident_wait_s)
        if not _firing(receiver):
            self.failures.append(f"the incident's alert did not fire within {self.options.incident_wait_s:.0f} s")
        self._apply(DURING_INCIDENT, ctx)
        playback.incident.clear()
        self.say("incident over: waiting for the alert to resolve")
        _wait(lambda: _resolved(receiver), self.options.incident_wait_s)
        if not _resolved(receiver):
            self.failures.append(f"the incident's alert did not resolve within {self.options.incident_wait_s:.0f} s")

    # -- drain and check ----------------------------------------------------------------------
    def _drain(self, playback: PlaybackLoad, logs: LogLoad, pipeline: Pipeline, settings: Settings) -> None:
        from playscope.search import make_client

        if not _wait(playback.idle, 180):
            self.failures.append("the generator could not deliver every event within 180 s")
        logs.join(5)
        _, acked = playback.snapshot()
        pattern = f"{settings.index_prefix}playscope-"
        self.say(f"draining: {len(acked)} events and {len(logs.written)} log lines acknowledged")
        with make_client(settings.elasticsearch, "elasticsearch") as es:
            def settled() -> bool:
                return (check.count_docs(es, f"{pattern}playback-*") >= len(acked)
                        and check.count_docs(es, f"{pattern}logs-*") >= len(logs.written))

            _wait(settled, 180)
        # the last sessions close, and their windows (window + lateness + a tick) are emitted
        time.sleep(WINDOW_S + 10 + 8)
        stable_since = time.monotonic()
        give_up = stable_since + 120
        last: tuple[float, ...] = ()
        while time.monotonic() - stable_since < 8 and time.monotonic() < give_up:
            now = (pipeline.progress("indexer"), pipeline.progress("streams"))
            if now != last:
                last, stable_since = now, time.monotonic()
            time.sleep(1)

    def _check(self, settings: Settings, playback: PlaybackLoad, logs: LogLoad,
               receiver: WebhookReceiver) -> dict[str, Any]:
        from playscope.search import make_client

        scripts, acked = playback.snapshot()
        pattern = f"{settings.index_prefix}playscope-"
        with make_client(settings.elasticsearch, "elasticsearch") as es:
            for family in ("playback", "logs", "sessions", "qoe"):
                es.indices.refresh(index=f"{pattern}{family}-*", ignore_unavailable=True, allow_no_indices=True)
            events = check.check_events(acked, check.scan_ids(es, f"{pattern}playback-*"))
            lines = check.check_logs(logs.written, check.scan_ids(es, f"{pattern}logs-*", "trace_id"))
            sessions, mismatches = check.check_sessions(scripts, acked, check.session_docs(es, f"{pattern}sessions-*"))
            attempts = check.window_attempts(es, f"{pattern}qoe-*")
        alerts = check.check_alerts(receiver.notifications(), incidents=1)
        totals = {
            "acknowledged": events["acknowledged"], "indexed": events["indexed"],
            "lost": events["lost"] + lines["log_lines_lost"],
            "duplicated": events["duplicated"] + lines["log_lines_duplicated"] + sessions["sessions_duplicated"]
            + alerts["alerts_duplicated"],
            "log_lines": lines["log_lines"], "log_lines_indexed": lines["log_lines_indexed"],
            "sessions_expected": sessions["sessions_expected"], "sessions_exact": sessions["sessions_exact"],
            "windows_attempts": attempts, "sessions_started": sessions["sessions_started"],
            "alerts_firing": alerts["alerts_firing"], "alerts_resolved": alerts["alerts_resolved"],
            "alerts_redelivered": alerts["alerts_redelivered"],
            "unacknowledged_indexed": events["unacknowledged_indexed"],
            "requests_failed": playback.failed_requests, "requests": playback.sent_requests,
        }
        if totals["lost"]:
            self.failures.append(f"{totals['lost']} acknowledged records lost")
        if totals["duplicated"]:
            self.failures.append(f"{totals['duplicated']} records or notifications duplicated")
        if totals["sessions_exact"] != totals["sessions_expected"]:
            self.failures.append(f"{totals['sessions_expected'] - totals['sessions_exact']} session summaries "
                                 "differ from the reference")
        if totals["windows_attempts"] != totals["sessions_started"]:
            self.failures.append(f"window attempts {totals['windows_attempts']} != sessions started "
                                 f"{totals['sessions_started']}")
        out: dict[str, Any] = {"totals": totals}
        if mismatches:
            out["session_mismatches"] = mismatches
        return out


def _firing(receiver: WebhookReceiver) -> bool:
    return any(n.get("status") == "firing" for n in receiver.notifications())


def _resolved(receiver: WebhookReceiver) -> bool:
    return any(n.get("status") == "resolved" for n in receiver.notifications())


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def _throttled(say: Callable[[str], None], every_s: float = 10.0) -> Callable[[str], None]:
    """The stack's progress lines, its health polls at most once per ``every_s`` per server."""
    last: dict[str, float] = {}

    def progress(message: str) -> None:
        if "waiting for health" in message:
            server = message.split(":")[0]
            if time.monotonic() - last.get(server, 0.0) < every_s:
                return
            last[server] = time.monotonic()
        say(f"  {message}")

    return progress
