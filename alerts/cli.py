"""``playscope alerts -r RULES``: run the evaluator; ``--check`` validates; ``--dry-run`` replays history."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import orjson

from alerts.config import load_config
from alerts.loader import load_rules
from playscope.config import Settings
from playscope.metrics import serve_metrics
from playscope.timeparse import ms_to_rfc3339, parse_ts_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-r", "--rules", required=True,
                        help="rules file, or a directory of them (e.g. alerts/rules)")  # fmt: skip
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="validate the rules and exit")
    mode.add_argument("--dry-run", action="store_true",
                      help="replay the indexed windows through the rules; print what would fire")  # fmt: skip
    parser.add_argument("--since", help="with --dry-run: windows ending after this (ms or RFC 3339)")
    parser.add_argument("--json", action="store_true", help="with --dry-run: one JSON document per line")


def run(args: argparse.Namespace, settings: Settings) -> int:
    ruleset = load_rules(args.rules)
    cfg = load_config(settings)
    if args.check:
        print(f"{args.rules}: OK, {len(ruleset.rules)} rules, {len(ruleset.channels)} channels")
        for rule in ruleset.rules:
            print(f"  {rule.name:<28} {rule.kind:<9} {rule.source:<7} group={rule.group_name:<14} "
                  f"notify={','.join(rule.notify) or '-'}")  # fmt: skip
        return 0
    if args.dry_run:
        from alerts.dryrun import dry_run

        since = parse_ts_text(args.since, "--since") if args.since else None
        docs = dry_run(settings, ruleset, since)
        for doc in docs:
            if args.json:
                sys.stdout.write(orjson.dumps(doc).decode() + "\n")
            else:
                print(f"{ms_to_rfc3339(doc['window_end'])}  {doc['status']:<8} {doc['rule']:<24} "
                      f"{doc['group_key']:<24} value={doc['value']}  {doc['summary']}")  # fmt: skip
        firing = sum(1 for d in docs if d["status"] == "firing")
        print(f"{len(docs)} state changes ({firing} firing)", file=sys.stderr)
        return 0
    from alerts.service import AlertService

    serve_metrics("alerts", cfg.metrics_port)
    service = AlertService(settings, ruleset, cfg)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, service.stop)
        await service.run()

    asyncio.run(main())
    return 0
