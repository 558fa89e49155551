"""``playscope capacity --viewers N``: what a load needs, sized from a bench report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from playscope.capacity import figures, prices, render
from playscope.capacity.model import Load, Policy
from playscope.capacity.report import build
from playscope.config import Settings


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not positive")
        return value

    return parse


def _fraction(text: str) -> float:
    value = _positive(float)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text} is above 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--viewers", type=_positive(int), required=True, help="concurrent viewers, all regions")
    parser.add_argument("--heartbeat-s", type=_positive(float), default=10.0,
                        help="seconds between heartbeats (default 10)")
    parser.add_argument("--cmcd-requests", action="store_true",
                        help="players also send a CMCD request beacon per media segment")
    parser.add_argument("--segment-s", type=_positive(float), default=2.0, help="media segment length (default 2)")
    parser.add_argument("--session-minutes", type=_positive(float), default=30.0,
                        help="mean session length in minutes (default 30)")
    parser.add_argument("--log-lines-per-s", type=float, default=0.0,
                        help="service log lines through the agent, all regions (default 0: no agent)")
    parser.add_argument("--retention-days", type=_positive(int),
                        help="search index retention in days (default: retention_days)")
    parser.add_argument("--regions", type=_positive(int), default=1, help="regions the load splits over (default 1)")
    parser.add_argument("--qoe-groups", type=int, default=2000, help="QoE window groups with traffic (default 2000)")
    parser.add_argument("--service-groups", type=int, default=200, help="service window groups (default 200)")
    parser.add_argument("--utilisation", type=_fraction, default=0.6, help="planned CPU per core (default 0.6)")
    parser.add_argument("--surge-factor", type=_positive(float), default=10.0,
                        help="surge multiple of viewers (default 10)")
    parser.add_argument("--bench", type=Path,
                        help="bench report (default: the newest complete one in PLAYSCOPE_HOME/bench/)")
    parser.add_argument("--prices", type=Path, help=f"price table (default {prices.DEFAULT.name} in the package)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bench.cli import reports_dir

    load = Load(viewers=args.viewers, heartbeat_s=args.heartbeat_s, cmcd_requests=args.cmcd_requests,
                segment_s=args.segment_s, session_minutes=args.session_minutes, log_lines_per_s=args.log_lines_per_s,
                retention_days=args.retention_days or settings.retention_days, regions=args.regions,
                qoe_groups=args.qoe_groups, service_groups=args.service_groups, window_s=settings.window_s)
    policy = Policy(utilisation=args.utilisation, surge_factor=args.surge_factor)
    need_agent = load.log_lines_per_s > 0
    measured = (figures.load(args.bench, need_agent) if args.bench
                else figures.latest(reports_dir(settings.home), need_agent))
    result = build(load, policy, measured, prices.load(args.prices))
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        render.print_report(result)
    return 0
