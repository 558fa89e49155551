"""`playscope demo`, shortened, end to end on the real stack: every component as its own process,
the incident detected, notified and resolved, data in the indices."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from playscope.stack.manager import StackManager


@pytest.mark.slow
def test_demo_detects_notifies_and_resolves_the_incident(stack: StackManager) -> None:
    cmd = [sys.executable, "-m", "playscope.cli", "demo", "--duration", "50", "--window", "5",
           "--incident-start", "10", "--incident-end", "30", "--rate", "8"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=420,
                          env={**os.environ, "PLAYSCOPE_HOME": str(stack.home)})
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "collector ready" in out
    fired = re.search(r"alerts delivered to the webhook: (\d+) firing, (\d+) resolved", out)
    assert fired, out[-2000:]
    assert int(fired.group(1)) >= 2 and int(fired.group(2)) >= 1, out[-2000:]
    assert re.search(r"firing\s+cdn-rebuffering \(cdn=oca-edge-3\)", out), out[-2000:]
    assert re.search(r"firing\s+service-error-rate \(service=license\)", out), out[-2000:]
    assert not re.search(r"firing\s+cdn-rebuffering \(cdn=(?!oca-edge-3)", out), "a healthy CDN was paged"
    for family in ("playback", "logs", "sessions", "qoe", "service", "alerts", "deadletter"):
        count = re.search(rf"playscope-{family}-\*[\s│|]+([\d,]+)", out)
        assert count and int(count.group(1).replace(",", "")) > 0, family
