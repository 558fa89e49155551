"""``playscope collector``: serve the HTTP beacon collector (uvicorn)."""

from __future__ import annotations

import argparse

import uvicorn

from collectors.http.app import create_app
from collectors.http.config import CollectorConfig
from playscope.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default: collector.host, 0.0.0.0)")
    parser.add_argument("--port", type=int, help="listen port (default: collector.port, 8080)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    config = settings.section("collector", CollectorConfig)
    app = create_app(settings, config)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host or config.host,
            port=args.port if args.port is not None else config.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=int(config.produce_timeout_s) + 5,
        )
    )
    server.run()
    return 0
