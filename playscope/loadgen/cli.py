"""``playscope loadgen``: simulated players (beacons, some CMCD) and services (log files for the
agent, and the logging handler), with an optional incident."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import orjson

from playscope.config import Settings
from playscope.loadgen.runner import LoadgenOptions, LoadgenStats, run_loadgen
from playscope.loadgen.simulator import CDNS, SERVICES, Incident


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--collector", default=None, help="collector URL (default http://127.0.0.1:<collector.port>)")
    parser.add_argument("--rate", type=float, default=5.0, help="new sessions per second (default 5)")
    parser.add_argument("--requests", type=float, default=40.0, help="service requests per second (default 40)")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of new traffic (default 120)")
    parser.add_argument("--session-length", type=float, default=30.0, help="mean session length in s (default 30)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-incident", action="store_true", help="no incident")
    parser.add_argument("--incident-start", type=float, default=40.0, help="s after start (default 40)")
    parser.add_argument("--incident-end", type=float, default=100.0, help="s after start (default 100)")
    parser.add_argument("--incident-cdn", default="oca-edge-3", choices=CDNS)
    parser.add_argument("--incident-service", default="license", choices=sorted(SERVICES))
    parser.add_argument("--cmcd-fraction", type=float, default=0.1, help="share of sessions sent as CMCD v2")
    parser.add_argument("--logs-dir", type=Path, default=None,
                        help="write other services' access logs here for the agent (default: SDK for all)")
    parser.add_argument("--drain", type=float, default=180.0, help="max s to let open sessions finish")


def options_from_args(args: argparse.Namespace, settings: Settings) -> LoadgenOptions:
    port = int(settings.raw("collector").get("port", 8080))
    incident = None if args.no_incident else Incident(
        start_s=args.incident_start, end_s=args.incident_end, cdn=args.incident_cdn, service=args.incident_service)
    return LoadgenOptions(
        collector_url=args.collector or f"http://127.0.0.1:{port}",
        duration_s=args.duration, sessions_per_s=args.rate, requests_per_s=args.requests,
        mean_session_s=args.session_length, seed=args.seed, incident=incident,
        cmcd_fraction=args.cmcd_fraction, logs_dir=args.logs_dir,
        sdk_services=("playback-api", "profile") if args.logs_dir else tuple(SERVICES),
        drain_s=args.drain,
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    options = options_from_args(args, settings)
    last = [0.0]

    def progress(stats: LoadgenStats, elapsed: float) -> None:
        if time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            print(f"loadgen {elapsed:6.0f}s  sessions={stats.sessions} events={stats.events} "
                  f"accepted={stats.accepted} rejected={stats.rejected} logs={stats.log_records} "
                  f"failed_requests={stats.failed_requests}", file=sys.stderr, flush=True)

    stats = run_loadgen(options, settings, progress)
    sys.stdout.write(orjson.dumps(stats.as_dict()).decode() + "\n")
    return 0 if stats.failed_requests == 0 else 1

