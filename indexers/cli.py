"""``playscope indexer``: run the indexer until SIGTERM, or sweep retention once."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from playscope.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--retention-days",
        type=int,
        metavar="N",
        help="delete daily indices older than N days (at start, then every retention_interval_s)",
    )
    parser.add_argument(
        "--retention-only",
        action="store_true",
        help="apply retention once and exit, without indexing (for cron)",
    )
    parser.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (default 9183, 0: any)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from prometheus_client import REGISTRY

    from indexers.backends import backend_for
    from indexers.config import IndexerConfig
    from indexers.indexer import Indexer
    from indexers.metrics import IndexerMetrics
    from indexers.retention import sweep
    from playscope.errors import ConfigError
    from playscope.metrics import serve_metrics

    config = settings.section("indexer", IndexerConfig)
    days = args.retention_days
    if days is None and (config.retention_enabled or args.retention_only):
        days = settings.retention_days
    if days is not None and days < 1:
        raise ConfigError("--retention-days must be at least 1")
    if args.retention_only:
        backend = backend_for(settings)
        try:
            for name in sweep(backend, settings.index_prefix, days or settings.retention_days):
                print(f"deleted {name}")
        finally:
            backend.close()
        return 0

    indexer = Indexer(settings, config, metrics=IndexerMetrics(REGISTRY), retention_days=days)
    port = args.metrics_port if args.metrics_port is not None else config.metrics_port
    serve_metrics("indexer", port)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        indexer.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = indexer.run()
    sys.stderr.flush()
    return code
