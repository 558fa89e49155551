"""The nemesis: faults applied one at a time, each restarting what it broke.

A fault is a small class with ``name`` and ``apply(ctx) -> FaultReport``; the run's order is
:data:`FAULTS`, the one registry. ``recovery_s`` is the time from the moment the broken part
is back (the process restarted, the server healthy again) until every component the fault
touched has done work again (its progress counter moved, see ``pipeline.PROGRESS``). A fault
that cannot be applied says why in ``note`` and leaves things as they were.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from playscope.chaos.pipeline import ORDER, Pipeline


@dataclass
class FaultReport:
    fault: str
    applied: bool = False
    recovery_s: float | None = None
    down_s: float = 0.0
    note: str = ""
    recovered: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FaultContext:
    pipeline: Pipeline
    stack: Any  # playscope.stack.manager.StackManager
    say: Callable[[str], None]
    firing: Callable[[], bool]  # an alert of this run is firing now (the webhook heard it)
    broker_down_s: float = 30.0
    search_down_s: float = 20.0
    timeout_s: float = 120.0
    topic: str = ""  # the raw events topic, whose leader the broker fault kills
    extra: dict[str, Any] = field(default_factory=dict)


class Fault(Protocol):
    name: str

    def apply(self, ctx: FaultContext) -> FaultReport: ...


def wait_progress(ctx: FaultContext, names: list[str], restarted: set[str], report: FaultReport,
                  since: float) -> None:
    """Wait until each named component did work after ``since``: a restarted one's counter is
    above 0 (it starts from zero), the others' above their value now."""
    start = {n: ctx.pipeline.progress(n) for n in names if n not in restarted}
    pending = set(names)
    deadline = time.monotonic() + ctx.timeout_s
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            value = ctx.pipeline.progress(name)
            if value == value and value > start.get(name, 0.0):  # a nan (no answer) is no progress
                pending.discard(name)
        if pending:
            time.sleep(0.25)
    if pending:
        report.note = (report.note + "; " if report.note else "") + \
            f"no progress within {ctx.timeout_s:.0f} s: {', '.join(sorted(pending))}"
        return
    report.recovered = True
    report.recovery_s = round(time.monotonic() - since, 2)


class KillComponent:
    """kill -9 of one component's process, then the same command again."""

    def __init__(self, component: str, needs_firing: bool = False) -> None:
        self.component = component
        self.needs_firing = needs_firing
        self.name = f"kill -9 {component}" + (" (while an alert is firing)" if needs_firing else "")
        if component == "collector":
            self.name = "kill -9 collector supervisor"

    def apply(self, ctx: FaultContext) -> FaultReport:
        report = FaultReport(self.name)
        if self.needs_firing and not ctx.firing():
            report.note = "no alert was firing"
            return report
        try:
            killed = ctx.pipeline.kill(self.component)
        except (RuntimeError, ProcessLookupError) as exc:
            report.note = str(exc)
            return report
        report.applied = True
        ctx.say(f"{self.name}: pid {killed} killed")
        killed_at = time.monotonic()
        if self.component == "collector":
            _wait_port_free(ctx.pipeline.ports["collector"], 15)  # its workers go with it (PDEATHSIG)
        ctx.pipeline.restart(self.component)
        restarted_at = time.monotonic()
        report.down_s = round(restarted_at - killed_at, 2)
        wait_progress(ctx, [self.component], {self.component}, report, restarted_at)
        return report


class KillCollectorWorker:
    """kill -9 of one collector worker: the supervisor must replace it, nothing else notices."""

    name = "kill -9 collector worker"

    def apply(self, ctx: FaultContext) -> FaultReport:
        report = FaultReport(self.name)
        comp = ctx.pipeline.component("collector")
        workers = _children(comp.proc.pid) if comp.proc is not None else []
        if not workers:
            report.note = "the collector has no worker processes"
            return report
        os.kill(workers[0], signal.SIGKILL)
        report.applied = True
        ctx.say(f"{self.name}: pid {workers[0]} killed")
        killed_at = time.monotonic()
        deadline = killed_at + ctx.timeout_s
        assert comp.proc is not None
        while time.monotonic() < deadline:
            now = _children(comp.proc.pid)
            if len(now) >= len(workers) and workers[0] not in now:
                break
            time.sleep(0.1)
        wait_progress(ctx, ["collector"], set(), report, killed_at)
        return report


class KillBroker:
    """kill -9 of the broker (with several: the leader of the raw events topic's partition 0),
    down for ``broker_down_s``, then started again."""

    name = "kill -9 kafka broker"

    def apply(self, ctx: FaultContext) -> FaultReport:
        report = FaultReport(self.name)
        try:
            node = broker_to_kill(ctx.stack, ctx.topic)
        except Exception as exc:
            report.note = f"no broker to kill: {exc}"
            return report
        if node.pid() is None:
            report.note = f"{node.name} on :{node.port} was not started by this stack (no pid file); left alone"
            return report
        report.fault = f"{self.name} :{node.port}"
        kill_server(ctx, report, node, ctx.broker_down_s, ORDER)
        return report


class KillSearch:
    """kill -9 of Elasticsearch, down for ``search_down_s``, then started again."""

    name = "kill -9 elasticsearch"

    def apply(self, ctx: FaultContext) -> FaultReport:
        report = FaultReport(self.name)
        server = ctx.stack.elasticsearch
        if server.pid() is None:
            report.note = "elasticsearch was not started by this stack (no pid file); left alone"
            return report
        kill_server(ctx, report, server, ctx.search_down_s, ["indexer"])
        return report


def kill_server(ctx: FaultContext, report: FaultReport, server: Any, down_s: float, touched: list[str]) -> None:
    """SIGKILL a server of the stack, keep it down ``down_s``, start it, wait for its health,
    then for the ``touched`` components to work again."""
    server.kill()
    report.applied = True
    ctx.say(f"{report.fault}: killed, down for {down_s:.0f} s")
    killed_at = time.monotonic()
    time.sleep(down_s)
    server.start()
    server.wait_healthy(timeout_s=240)
    healthy_at = time.monotonic()
    report.down_s = round(healthy_at - killed_at, 2)
    ctx.say(f"{report.fault}: healthy again after {report.down_s:.0f} s")
    wait_progress(ctx, touched, set(), report, healthy_at)


def broker_to_kill(stack: Any, topic: str) -> Any:
    """The single broker, or the leader of ``topic``'s partition 0 in a cluster."""
    nodes = list(getattr(stack, "kafka_nodes", None) or [stack.kafka])
    if len(nodes) == 1:
        return nodes[0]
    cluster = getattr(stack, "cluster", None)
    if cluster is not None and hasattr(cluster, "leader_of"):
        return cluster.leader_of(topic, 0)
    raise RuntimeError("the stack does not tell partition leaders")


# Before the incident: the components one by one; the alert fault needs a firing alert;
# the servers last. The runner starts and ends the incident around the "firing" fault.
BEFORE_INCIDENT: list[Fault] = [
    KillCollectorWorker(), KillComponent("collector"), KillComponent("agent"),
    KillComponent("streams"), KillComponent("indexer"),
]
DURING_INCIDENT: list[Fault] = [KillComponent("alerts", needs_firing=True)]
AFTER_INCIDENT: list[Fault] = [KillBroker(), KillSearch()]


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        return []


def _wait_port_free(port: int, timeout_s: float) -> None:
    from playscope.stack.ports import port_taken

    deadline = time.monotonic() + timeout_s
    with contextlib.suppress(Exception):
        while port_taken(port) and time.monotonic() < deadline:
            time.sleep(0.1)
