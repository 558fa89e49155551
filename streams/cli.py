"""``playscope streams``: run one stream-processing worker (start several to share partitions)."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from playscope.config import Settings
from playscope.logs import log_event
from playscope.metrics import serve_metrics

if TYPE_CHECKING:
    from streams.app import StreamsApp

log = logging.getLogger("playscope.streams")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus /metrics port (default: streams.metrics_port or 9182; 0 = any free)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    import faust

    from streams.app import StreamsApp
    from streams.config import StreamsConfig

    cfg = settings.section("streams", StreamsConfig)
    port = args.metrics_port if args.metrics_port is not None else cfg.metrics_port
    serve_metrics("streams", port)
    streams = StreamsApp(settings, cfg)
    log_event(
        log,
        "streams.starting",
        app_id=streams.names.app_id,
        window_s=settings.window_s,
        allowed_lateness_s=settings.allowed_lateness_s,
        idle_timeout_s=cfg.idle_timeout_s,
        member=streams.member,
    )
    worker = faust.Worker(
        streams.app,
        loglevel=args.log_level.lower().replace("warning", "warn"),
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    try:
        worker.execute_from_commandline()  # handles SIGTERM/SIGINT: stops agents, flushes, commits
    finally:
        _leave(settings, streams)
    return 0


def _leave(settings: Settings, streams: StreamsApp) -> None:
    """After Faust stopped: leave the group (a static member is not taken out on close, so the
    other workers would wait ``kafka.session_timeout_s`` for its partitions), give the slot back."""
    from playscope import membership

    if streams.member and streams.joined:
        membership.leave_group(settings, streams.names.app_id, streams.member,
                               streams.coordinator_member_id)
    if streams.member:
        membership.release(streams.names.app_id)
    streams.kafka.stop()
