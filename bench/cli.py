"""``playscope bench [--quick]``: every stage benchmark on the local stack, one JSON object.

Each stage module provides ``run(settings, quick) -> dict`` and measures itself next to a raw
baseline in the same run (SPEC 11). Stages run one after another, each on topics and indices of
its own, so one stage's leftovers never slow the next. The JSON goes to stdout; a readable table
and progress go to stderr. Each report is also kept as ``PLAYSCOPE_HOME/bench/bench-<UTC time>.json``,
so ``playscope capacity`` can size a deployment from the latest one.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from playscope.config import Settings

# SPEC 11 key -> module providing run(settings, quick)
STAGES: dict[str, str] = {
    "collector": "bench.collector",
    "agent": "bench.agent",
    "streams": "bench.streams",
    "indexer": "bench.indexer",
    "freshness": "bench.freshness",
    "alerting": "bench.alerting",
    # playscope's own: ten times the sustainable request rate (answers, refusals, loss, p99)
    "surge": "bench.surge",
}


def reports_dir(home: Path) -> Path:
    """Where bench keeps its reports: one file per run, named so that sorting is by time."""
    return Path(home) / "bench"


def save_report(home: Path, report: dict[str, Any]) -> Path:
    folder = reports_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bench-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="short runs (under 5 minutes in all)")
    parser.add_argument("--only", action="append", choices=sorted(STAGES), help="run only these stages")
    parser.add_argument("--no-stack", action="store_true", help="do not start the local stack; use what is configured")
    parser.add_argument("--peers", action="store_true",
                        help="also run the tools users would pick instead, side by side (installs them; not in CI)")


def _stage_settings(settings: Settings, stage: str) -> Settings:
    from playscope.provision import ensure_templates, ensure_topics
    from playscope.search import make_client

    tag = f"bench-{stage}-{uuid.uuid4().hex[:6]}"
    staged = settings.model_copy(update={"topic_prefix": f"{tag}.", "index_prefix": f"{tag}-"})
    ensure_topics(staged)
    with make_client(staged.elasticsearch, "elasticsearch") as es:
        ensure_templates(es, staged.index_prefix)
    return staged


def _cleanup(staged: Settings) -> None:
    """Take away the stage's topics and indices: benchmark data is not worth keeping."""
    from playscope.provision import delete_prefixed
    from playscope.search import make_client

    with make_client(staged.elasticsearch, "elasticsearch") as es:
        delete_prefixed(staged, (es,))


def run(args: argparse.Namespace, settings: Settings) -> int:
    console = Console(stderr=True)
    if not args.no_stack:
        from playscope.stack.manager import StackManager

        StackManager(settings.home, settings).up(progress=lambda m: console.print(f"  {m}"))
    report: dict[str, Any] = {}
    failed = []
    for stage in args.only or list(STAGES):
        console.print(f"[bold]bench {stage}[/] ({'quick' if args.quick else 'full'})")
        started = time.monotonic()
        staged = _stage_settings(settings, stage)
        try:
            module = importlib.import_module(STAGES[stage])
            report[stage] = module.run(staged, args.quick)
        except Exception as exc:  # one broken stage must not hide the others' figures
            failed.append(stage)
            report[stage] = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc(file=sys.stderr)
        finally:
            _cleanup(staged)
        console.print(f"  done in {time.monotonic() - started:.0f} s")
    if args.peers:
        from bench import peers

        report["peers"] = peers.run(args.only or list(STAGES), args.quick, report,
                                    lambda stage: _stage_settings(settings, stage), _cleanup, console.print)
    _print_table(console, report)
    console.print(f"  report kept in {save_report(settings.home, report)}")
    sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 1 if failed else 0


def _print_table(console: Console, report: dict[str, Any]) -> None:
    table = Table(title="playscope bench")
    table.add_column("stage")
    table.add_column("figures")
    for stage, figures in report.items():
        text = ", ".join(f"{k}={_fmt(v)}" for k, v in figures.items() if not isinstance(v, dict | list))
        table.add_row(stage, text)
    console.print(table)


def _fmt(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else str(value)
