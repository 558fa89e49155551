"""``playscope chaos``: the fault matrix as a command (SPEC 12).

Kept apart as Jepsen keeps them: a generator (``load``) drives steady traffic and records what
was acknowledged, a nemesis (``faults``) kills one thing at a time and restarts it, and a
checker (``check``) judges the recorded history against what the indices hold once the
pipeline has drained. Progress goes to stderr; the one JSON report goes to stdout. The exit
status is 0 only when nothing acknowledged was lost or duplicated, every fault was applied and
recovered from, and the sessions, windows and alerts agree with what was sent.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from playscope.config import Settings

log = logging.getLogger("playscope.chaos")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="shorter outages and load (under 10 minutes)")
    parser.add_argument("--brokers", type=int, default=1, help="Kafka brokers of the local stack (1 or 3)")
    parser.add_argument("--rate", type=float, default=None, help="new sessions per second (default 8, quick 6)")
    parser.add_argument("--log-rate", type=float, default=None, help="log lines per second (default 200, quick 50)")
    parser.add_argument("--keep", action="store_true", help="keep this run's topics and indices afterwards")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from playscope.chaos.runner import ChaosOptions, ChaosRun

    options = ChaosOptions(
        brokers=args.brokers,
        sessions_per_s=args.rate or (6.0 if args.quick else 8.0),
        log_lines_per_s=args.log_rate or (50.0 if args.quick else 200.0),
        broker_down_s=20.0 if args.quick else 60.0,
        search_down_s=15.0 if args.quick else 30.0,
        keep=args.keep,
    )
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:5.0f}s] {message}", file=sys.stderr, flush=True)

    run_id = time.strftime("%H%M%S") + uuid.uuid4().hex[:4]
    chaos = ChaosRun(settings, options, run_id, Path(settings.home).resolve() / "chaos" / run_id, say)
    report: dict[str, Any] = chaos.execute()
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode(), flush=True)
    failures = report.get("failures", [])
    say("passed: nothing lost, nothing duplicated, every fault applied and recovered" if not failures
        else f"FAILED: {'; '.join(failures)}")
    return 0 if not failures else 1
