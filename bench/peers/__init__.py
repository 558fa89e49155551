"""``playscope bench --peers``: each stage next to the tool a user would pick instead (SPEC 11).

Every peer module provides ``PEER`` (the tool's name) and ``run(settings, quick, stage) -> dict``
(``stage`` is the playscope stage's figures from the same run, empty when that stage did not
run), installs its tool the way a user would and caches the result under PLAYSCOPE_HOME. A peer
that cannot be installed or run gives ``{"peer": ..., "error": ...}`` for its stage, never a
crash of the whole bench.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from playscope.config import Settings

# SPEC 11 stage -> module providing PEER and run(settings, quick, stage)
PEERS: dict[str, str] = {
    "collector": "bench.peers.collector_otelcol",
    "agent": "bench.peers.agent_rsyslog",
    "streams": "bench.peers.streams_quix",
}


def run(stages: Iterable[str], quick: bool, report: dict[str, Any],
        stage_settings: Callable[[str], Settings], cleanup: Callable[[Settings], None],
        log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> dict[str, Any]:
    """The ``peers`` object for those of ``stages`` that have a peer, each on topics of its own."""
    out: dict[str, Any] = {}
    for stage in stages:
        if stage not in PEERS:
            continue
        log(f"bench peers {stage} ({'quick' if quick else 'full'})")
        started = time.monotonic()
        peer = "?"
        staged = None
        try:
            module = importlib.import_module(PEERS[stage])
            peer = module.PEER
            staged = stage_settings(f"peers-{stage}")
            out[stage] = {"peer": peer, **module.run(staged, quick, report.get(stage) or {})}
        except Exception as exc:  # a missing or broken peer must not hide the other figures
            out[stage] = {"peer": peer, "error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc(file=sys.stderr)
        finally:
            if staged is not None:
                cleanup(staged)
        figures = ", ".join(f"{k}={v}" for k, v in out[stage].items() if not isinstance(v, dict))
        log(f"  {figures}; done in {time.monotonic() - started:.0f} s")
    return out
