"""Run each playscope component as its own process, the way it is deployed, and stop them all
cleanly (SIGTERM, so each flushes and commits) when the demo ends or is interrupted."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Component:
    name: str
    args: list[str]
    metrics_url: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def start(self, log_dir: Path, config: Path) -> None:
        self.log_path = log_dir / f"{self.name}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        cmd = [sys.executable, "-m", "playscope.cli", *self.args[:1], "--config", str(config), *self.args[1:]]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env={**os.environ, **self.env}, start_new_session=True)
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def metric(self, name: str) -> float:
        """Sum of a counter or gauge over all label sets ('nan' when unreachable)."""
        if not self.metrics_url:
            return float("nan")
        try:
            text = httpx.get(self.metrics_url, timeout=1).text
        except httpx.HTTPError:
            return float("nan")
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                with contextlib.suppress(ValueError):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def tail(self, lines: int = 15) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Supervisor:
    """Starts components, notices when one dies, stops all of them."""

    def __init__(self, log_dir: Path, config: Path, env: dict[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.config = config
        self.env = env or {}
        self.components: dict[str, Component] = {}

    def start(self, component: Component) -> Component:
        component.env = {**self.env, **component.env}
        component.start(self.log_dir, self.config)
        self.components[component.name] = component
        return component

    def dead(self) -> list[Component]:
        return [c for c in self.components.values() if c.proc is not None and c.proc.poll() is not None]

    def stop(self, order: list[str] | None = None, grace_s: float = 20) -> None:
        names = order or list(self.components)
        for name in names:
            comp = self.components.get(name)
            if comp and comp.alive():
                assert comp.proc is not None
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(comp.proc.pid, signal.SIGTERM)
                deadline = time.monotonic() + grace_s
                while comp.alive() and time.monotonic() < deadline:
                    time.sleep(0.1)
                if comp.alive():
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(comp.proc.pid, signal.SIGKILL)
                    comp.proc.wait(5)
